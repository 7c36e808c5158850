"""The ``copy`` engine: a real copy that keeps modes exactly, mtimes, owners where allowed,
xattrs where allowed, symlinks as symlinks and empty directories.

Hardlinks become separate files (reported in ``degraded``). FIFOs, sockets and devices are
skipped without being opened, so a FIFO cannot hang a copy; the snapshot protocol records
them in ``degraded`` from its own scan of the worktree.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from jvs.engines.base import CloneResult


class _Degraded:
    def __init__(self) -> None:
        self.items: dict[str, None] = {}

    def add(self, what: str) -> None:
        self.items.setdefault(what, None)


def copy_metadata(src_st: os.stat_result, src: str, dst: str, degraded: _Degraded,
                  *, xattrs: bool = True) -> None:
    """Owner, xattrs, exact mode and mtime of *src* onto *dst* (in that order: chown
    clears set-id bits, and setting the mode last makes it exact whatever the umask)."""
    is_link = stat.S_ISLNK(src_st.st_mode)
    if (src_st.st_uid, src_st.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(dst, src_st.st_uid, src_st.st_gid, follow_symlinks=False)
        except PermissionError:
            degraded.add("owners")
    if xattrs and not is_link:
        copy_xattrs(src, dst, degraded)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(src_st.st_mode))
    os.utime(dst, ns=(src_st.st_atime_ns, src_st.st_mtime_ns), follow_symlinks=False)


def copy_xattrs(src: str, dst: str, degraded: _Degraded) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                        follow_symlinks=False)
        except OSError:
            degraded.add("xattrs")


class CopyEngine:
    name = "copy"

    def clone(self, src: Path, dst: Path) -> CloneResult:
        degraded = _Degraded()
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "clone destination exists", str(dst))
        seen: dict[tuple[int, int], None] = {}
        self._copy_entry(os.fsencode(src), os.fsencode(dst), degraded, seen)
        return CloneResult(self.name, tuple(degraded.items))

    def _copy_entry(self, src: bytes, dst: bytes, degraded: _Degraded, seen: dict) -> None:
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            with os.scandir(src) as it:
                children = [e.name for e in it]
            for name in children:
                self._copy_entry(os.path.join(src, name), os.path.join(dst, name),
                                 degraded, seen)
            copy_metadata(st, src, dst, degraded)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
            copy_metadata(st, src, dst, degraded)
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    degraded.add("hardlinks")
                seen[key] = None
            copy_file_data(src, dst)
            copy_metadata(st, src, dst, degraded)


def copy_file_data(src: bytes | str, dst: bytes | str) -> None:
    """Copy file content with the kernel's fastest path (copy_file_range/sendfile)."""
    shutil.copyfile(src, dst, follow_symlinks=False)
