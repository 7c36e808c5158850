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
