"""The mount table, read from ``/proc/self/mountinfo``: the one parser of the project.

The kernel writes mount points and sources as raw bytes, escaping only space, tab,
newline and backslash (``\\040``, ``\\011``, ``\\012``, ``\\134``). Any other byte is
written as is, so a mount at a path that is not valid UTF-8 (a USB stick named in
Latin-1, a directory made by a program that writes arbitrary bytes) puts non-UTF-8 bytes
in the file. Reading it as text in strict UTF-8 then fails for *every* caller, whatever
mount it is interested in; so it is read as bytes and decoded like any path the OS hands
out (``os.fsdecode``: UTF-8 with surrogateescape), which compares equal to the
``os.path.realpath`` of the same path and round-trips to the same bytes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPE = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    fstype: str
    source: str
    device: str = ""  # major:minor
    root: str = "/"  # the directory of the filesystem mounted here ("/" unless a bind)


def read_mountinfo(path: str = MOUNTINFO) -> bytes:
    """The raw mount table; empty when it cannot be read (no /proc)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def unescape(field: bytes | str) -> str:
    """One field of a mountinfo line, its octal escapes undone, as an OS path string."""
    raw = os.fsencode(field)
    return os.fsdecode(_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), raw))


def parse_mountinfo(data: bytes | str) -> list[MountEntry]:
    """The mounts listed in *data* (the bytes of ``/proc/<pid>/mountinfo``, or text that
    was decoded with surrogateescape), in kernel order: later entries stack on earlier."""
    raw = os.fsencode(data) if isinstance(data, str) else data
    mounts = []
    for line in raw.splitlines():
        left, sep, right = line.partition(b" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        mounts.append(MountEntry(unescape(fields[4]), os.fsdecode(tail[0]),
                                 unescape(tail[1]) if len(tail) > 1 else "",
                                 os.fsdecode(fields[2]), unescape(fields[3])))
    return mounts


def mounts() -> list[MountEntry]:
    """The mounts this process sees now."""
    return parse_mountinfo(read_mountinfo())


def mount_of(path: str, table: list[MountEntry]) -> MountEntry | None:
    """The mount that holds the absolute, real *path*: the longest mount point that is a
    whole-component prefix of it; of mounts stacked on one point, the last (visible) one."""
    parts = Path(path).parts
    best: MountEntry | None = None
    best_len = -1
    for entry in table:
        mparts = Path(entry.mount_point).parts
        if len(mparts) >= best_len and parts[:len(mparts)] == mparts:
            best, best_len = entry, len(mparts)
    return best


def mount_at(mountpoint: Path | str | bytes, table: list[MountEntry] | None = None, *,
             resolve: bool = True) -> MountEntry | None:
    """The visible (topmost) mount exactly at *mountpoint*, or None. With *resolve* its
    symlinks are resolved first; without, no system call touches the path (a mount whose
    server hangs cannot hang the caller)."""
    target = os.fsdecode(os.path.realpath(mountpoint) if resolve
                         else os.path.abspath(mountpoint))
    found = None
    for entry in mounts() if table is None else table:
        if entry.mount_point == target:
            found = entry
    return found


def fstype_at(mountpoint: Path | str | bytes) -> str | None:
    """The fstype of the mount exactly at *mountpoint* (``fuse.jvs``, ``xfs``), or None."""
    entry = mount_at(mountpoint)
    return entry.fstype if entry is not None else None


# Filesystems whose files only this host writes and whose system calls do not leave the
# kernel: one clock for every timestamp, and a stat costs microseconds, not a round trip.
LOCAL_FSTYPES = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs",
                           "bcachefs", "jfs", "reiserfs"})


def on_local_filesystem(path: Path | str) -> bool:
    """Whether *path* is on one of ``LOCAL_FSTYPES`` (not FUSE, NFS, JuiceFS, ...)."""
    mount = mount_of(os.path.realpath(path), mounts())
    return mount is not None and mount.fstype in LOCAL_FSTYPES
