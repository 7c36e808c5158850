"""Access to the stored payloads that no symlink can redirect.

The server usually runs as root (under systemd) and, with ``--allow-other``, answers other
users; the kernel checks their permissions against the attributes the server reported
earlier. Whoever can write a payload (its owner, or anyone on a shared repository) could
swap an entry for a symlink to ``/etc/shadow`` after the kernel cached its attributes; a
server that opened ``<snapshots>/<id>/<path>`` by name would follow it and hand a root-only
file to ``nobody`` (reproduced before this module). So every access:

- walks from a descriptor of ``.jvs/snapshots`` opened once at mount, one component at a
  time with ``O_NOFOLLOW`` (an ``O_PATH`` descriptor per directory, closed at once): a
  symlink anywhere on the way fails with ``ELOOP``/``ENOTDIR`` instead of being followed;
- opens the final entry with ``O_NOFOLLOW`` and checks, with ``fstat`` on what it opened,
  that it is still the file the kernel was told about (same ``st_ino`` and type); if not
  (replaced since), the request fails with ``ESTALE``.

Symlinks *inside* a snapshot are passed through as symlinks (``readlink``), never
followed by the server: the reader's kernel resolves them in the reader's own view.
xattrs of an entry are read through ``/proc/self/fd/<dir>/<name>`` with
``follow_symlinks=False``: the directory part is the exact directory already opened.
"""

from __future__ import annotations

import errno
import os
import stat

_O_NOATIME = getattr(os, "O_NOATIME", 0)
_O_PATH = getattr(os, "O_PATH", 0)
_DIR_FLAGS = _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SnapshotStore:
    """The ``.jvs/snapshots`` directory of one repository, reached without following
    symlinks. Paths are bytes relative to a snapshot root (``b""`` is the root)."""

    def __init__(self, snapshots_dir: str | bytes) -> None:
        self.fd = os.open(snapshots_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # ------------------------------------------------------------------ walking

    def _open_parent(self, sid: str, rel: bytes) -> tuple[int, bytes]:
        """An O_PATH descriptor of the directory holding *rel* and its last component;
        for the snapshot root itself, (the store's descriptor, the ID). The caller closes
        the descriptor unless it is the store's."""
        if not rel:
            return self.fd, sid.encode()
        parts = rel.split(b"/")
        fd = os.open(sid.encode(), _DIR_FLAGS, dir_fd=self.fd)
        try:
            for part in parts[:-1]:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def _close(self, fd: int) -> None:
        if fd != self.fd:
            os.close(fd)

    # ------------------------------------------------------------------ questions

    def lstat(self, sid: str, rel: bytes) -> os.stat_result:
        fd, name = self._open_parent(sid, rel)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            self._close(fd)

    def root_stat(self, sid: str) -> os.stat_result | None:
        """The stat of the payload directory of *sid*, or None when there is none (missing,
        or not a real directory: a symlink there is never followed)."""
        try:
            st = os.stat(sid.encode(), dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return None
        return st if stat.S_ISDIR(st.st_mode) else None

    def readlink(self, sid: str, rel: bytes) -> bytes:
        fd, name = self._open_parent(sid, rel)
        try:
            return os.readlink(name, dir_fd=fd)
        finally:
            self._close(fd)

    def open_dir(self, sid: str, rel: bytes, expect_ino: int) -> int:
        """A readable descriptor of the directory *rel*, checked to be inode
        *expect_ino*."""
        fd, name = self._open_parent(sid, rel)
        try:
            dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
        finally:
            self._close(fd)
        _check_same(dfd, expect_ino, stat.S_IFDIR)
        return dfd

    def open_file(self, sid: str, rel: bytes, expect_ino: int) -> int:
        """A read-only descriptor of the regular file *rel*, checked to be inode
        *expect_ino*. With O_NOATIME where the kernel allows it (owner or CAP_FOWNER), so
        browsing history does not dirty the repository's inodes."""
        fd, name = self._open_parent(sid, rel)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            try:
                ffd = os.open(name, flags | _O_NOATIME, dir_fd=fd)
            except PermissionError:
                if not _O_NOATIME:
                    raise
                ffd = os.open(name, flags, dir_fd=fd)  # EPERM: not the owner
        finally:
            self._close(fd)
        _check_same(ffd, expect_ino, stat.S_IFREG)
        os.set_blocking(ffd, True)
        return ffd

    def listxattr(self, sid: str, rel: bytes) -> list[str]:
        fd, name = self._open_parent(sid, rel)
        try:
            return os.listxattr(_proc_path(fd, name), follow_symlinks=False)
        finally:
            self._close(fd)

    def getxattr(self, sid: str, rel: bytes, attr: bytes) -> bytes:
        fd, name = self._open_parent(sid, rel)
        try:
            return os.getxattr(_proc_path(fd, name), attr, follow_symlinks=False)
        finally:
            self._close(fd)


def _proc_path(dir_fd: int, name: bytes) -> bytes:
    return b"/proc/self/fd/%d/%s" % (dir_fd, name)


def _check_same(fd: int, expect_ino: int, kind: int) -> None:
    """The entry was replaced since the kernel was told about it: refuse (ESTALE) rather
    than serve another file under permissions checked against the first one's."""
    st = os.fstat(fd)
    if st.st_ino != expect_ino or stat.S_IFMT(st.st_mode) != kind:
        os.close(fd)
        raise OSError(errno.ESTALE, "the stored entry changed since it was looked up")
