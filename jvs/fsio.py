"""Every write to the control plane goes through here.

The guarantees the snapshot and restore protocols lean on live in this module: a file
is written to a temporary name, fsynced, renamed into place, and its parent directory is
fsynced, so after a crash a control-plane file is either absent or complete.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
import time
from pathlib import Path

from jvs.errors import JvsError
from jvs.libc import last_errno, libc

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicWriter:
    """A file written piece by piece that replaces *path* on ``commit``, so readers see
    the old or the new file, never a mix. Until then it is ``.<name>.<hex>.part`` beside
    it: ``abort`` removes it, and ``doctor`` removes one a crash left."""

    def __init__(self, path: Path, *, mode: int = 0o644, durable: bool = False) -> None:
        self.path = path
        self.durable = durable
        self.tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.part")
        self._fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        view = memoryview(self._buffer)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BaseException:
            view.release()
            self.abort()
            raise
        view.release()
        self._buffer.clear()

    def write_all(self, pieces) -> None:
        """Write big *pieces* without copying them into the buffer."""
        self._flush()
        for piece in pieces:
            view = memoryview(piece)
            try:
                while view:
                    view = view[os.write(self._fd, view):]
            except BaseException:
                self.abort()
                raise

    def commit(self) -> None:
        self._flush()
        try:
            if self.durable:
                os.fsync(self._fd)
        except BaseException:
            self.abort()
            raise
        os.close(self._fd)
        self._fd = None
        os.replace(self.tmp, self.path)
        if self.durable:
            fsync_dir(self.path.parent)

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes | list[bytes], *, mode: int = 0o644,
                       durable: bool = True) -> None:
    """Replace *path* with *data* (bytes, or a list of pieces written one after the
    other) so that readers see the old or the new file, never a mix.

    With ``durable=False`` nothing is fsynced: for caches, and for files a later
    ``syncfs`` of the same filesystem makes durable anyway."""
    out = AtomicWriter(path, mode=mode, durable=durable)
    out.write_all(data if isinstance(data, list) else (data,))
    out.commit()


def write_json_atomic(path: Path, obj: object) -> None:
    """Pretty JSON (two-space indent), written atomically."""
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_new(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create *path* (it must not exist) with *data*, fsynced; the parent is not fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> object:
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


# Network file systems whose kernel entry cache can outlive a rename by another host.
_FUSE_SUPER_MAGIC = 0x65735546
_NFS_SUPER_MAGIC = 0x6969
FRESH_READ_WAIT_S = 5.0


def _fs_type(path: Path) -> int:
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is its first long
    if libc().statfs(os.fsencode(path), buf) != 0:
        return 0
    return ctypes.c_long.from_buffer(buf).value


def _listed_inode(path: Path) -> int | None:
    try:
        with os.scandir(path.parent) as it:
            for entry in it:
                if entry.name == path.name:
                    return entry.inode()
    except FileNotFoundError:
        pass
    return None


def read_json_fresh(path: Path, *, wait: float = FRESH_READ_WAIT_S) -> object:
    """read_json for a file that another host may just have replaced by rename (a
    worktree config read under the repository lock).

    On a shared JuiceFS volume the kernel keeps resolving a name to the inode it had for
    the mount's entry-cache timeout (1 s by default), even after another host renamed a
    new file over it. Opening that dentry gives ENOENT, or, when JuiceFS keeps deleted
    files in its trash, the *old content*: a snapshot would then take a stale head as its
    parent and fork the lineage. A directory listing is answered by the metadata engine,
    so we trust what we read only once the inode we opened is the one the listing names,
    and wait (briefly, until the stale dentry expires) while they differ.
    """
    deadline = time.monotonic() + wait
    while True:
        listed = _listed_inode(path)
        try:
            with open(path, "rb") as f:
                opened: int | None = os.fstat(f.fileno()).st_ino
                data = f.read()
        except FileNotFoundError:
            if listed is None:
                raise
            opened, data = None, b""
        if opened == listed or time.monotonic() >= deadline \
                or _fs_type(path.parent) not in (_FUSE_SUPER_MAGIC, _NFS_SUPER_MAGIC):
            if opened is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
            return json.loads(data.decode("utf-8"))
        time.sleep(0.05)


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename *src* to *dst*, failing with FileExistsError if *dst* exists.

    Uses renameat2(RENAME_NOREPLACE) where the filesystem supports it, so two writers can
    never publish over each other; elsewhere falls back to a check then rename, which is
    safe because every publishing writer holds the repository lock.
    """
    renameat2 = getattr(libc(), "renameat2", None)
    if renameat2 is not None:
        res = renameat2(
            _AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE
        )
        if res == 0:
            return
        err = last_errno()
        if err == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(src))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists", str(dst))
    os.rename(src, dst)


def ensure_inside(root: Path, path: Path) -> Path:
    """Return the real path of *path*, refusing one that resolves outside *root*.

    Symlinks anywhere along *path* are followed; a control-plane or payload path that
    escapes the repository this way is refused with E_PATH_ESCAPE before anything is
    touched.
    """
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise JvsError(
            "E_PATH_ESCAPE",
            f"{path} resolves to {real}, outside the repository {real_root}",
            hint="a symlink inside the repository points outside it; remove it",
        )
    return real


def remove_tree(path: Path) -> None:
    """Remove *path* (a tree, a file or a symlink) without following symlinks.

    Snapshot payloads keep modes exactly, so they may hold read-only directories; those
    are made writable on the way down rather than failing half-way.
    """
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return

    def retry_writable(func, p, exc):
        if isinstance(exc, FileNotFoundError):
            return
        if not isinstance(exc, PermissionError):
            raise exc
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        func(p)

    import shutil

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry_writable)
    else:
        shutil.rmtree(path, onerror=lambda func, p, ei: retry_writable(func, p, ei[1]))


def tree_size(path: Path) -> tuple[int, int]:
    """The regular files in the tree *path* and their bytes, symlinks not followed."""
    files = nbytes = 0
    stack = [os.fspath(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        files += 1
                        nbytes += e.stat(follow_symlinks=False).st_size
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue  # gone, or unreadable: a count for a progress line, not a promise
    return files, nbytes


def remove_tree_counted(path: Path, tick) -> None:
    """``remove_tree``, calling ``tick(size)`` for every regular file it deletes (a
    progress meter's). Depth-first with a stack of its own, so no depth is too deep."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        remove_tree(path)
        return
    stack: list[tuple[str, list | None]] = [(os.fspath(path), None)]
    while stack:
        top, pending = stack[-1]
        if pending is None:
            pending = _listing_writable(top)
            stack[-1] = (top, pending)
        while pending:
            e = pending.pop()
            if e.is_dir(follow_symlinks=False):
                stack.append((e.path, None))
                break
            size = e.stat(follow_symlinks=False).st_size \
                if e.is_file(follow_symlinks=False) else None
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                continue
            if size is not None:
                tick(size)
        else:
            os.rmdir(top)
            stack.pop()


def _listing_writable(top: str) -> list:
    """The entries of *top*, after making it writable (and readable) for its owner if it
    was not, since a payload keeps read-only directories as they were saved."""
    mode = os.lstat(top).st_mode & 0o7777
    if mode & 0o700 != 0o700:
        os.chmod(top, mode | 0o700)
    with os.scandir(top) as it:
        return list(it)
