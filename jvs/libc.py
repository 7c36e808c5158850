"""The C library, loaded once, for the few Linux calls Python's ``os`` lacks: renameat2
(rename without replace), statfs (the file system's type), syncfs, sync_file_range.

Every caller shares this one handle (loading it costs ~1 ms; it used to be loaded and
kept by each module that needed it)."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    # 64-bit offsets: without argtypes ctypes would pass them as C ints.
    lib.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.c_uint]
    return lib


def last_errno() -> int:
    """errno of the last call made through :func:`libc` on this thread."""
    return ctypes.get_errno()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_big_blocks_to_the_system(threshold: int = 2 << 20) -> None:
    """Make every block of *threshold* bytes or more its own mapping, given back to the
    kernel when freed. glibc raises that threshold by itself each time such a block is
    freed (up to 32 MiB), after which a command's big buffers (a manifest's text, a stat
    cache's file: megabytes at 100,000 files) come from the heap and stay in its memory
    when freed: 15-40 MB of a 100,000-file restore. 2 MiB keeps the 1 MiB reads of the
    view and of the engines on the heap, where a block is reused rather than mapped and
    faulted in again. For the ``jvs`` process only (the CLI calls it): a library does not
    retune its host's allocator. Does nothing on a C library without mallopt."""
    try:
        libc().mallopt(_M_MMAP_THRESHOLD, threshold)
    except (AttributeError, OSError):
        pass
