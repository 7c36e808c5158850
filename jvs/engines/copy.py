"""The ``copy`` engine: a real copy that keeps modes exactly, mtimes, owners where allowed,
xattrs where allowed, symlinks as symlinks and empty directories.

Hardlinks become separate files (reported in ``degraded``). FIFOs, sockets and devices are
skipped without being opened, so a FIFO cannot hang a copy; the snapshot protocol records
them in ``degraded`` from its own scan of the worktree.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from jvs.engines.base import Capabilities, CloneResult
from jvs.ignore import IgnoreRules
from jvs.integrity import Entry, refuse_name


class _Degraded:
    def __init__(self) -> None:
        self.items: dict[str, None] = {}

    def add(self, what: str) -> None:
        self.items.setdefault(what, None)


def copy_metadata(src_st: os.stat_result, src: bytes | str | int, dst: bytes | str | int,
                  degraded: _Degraded, *, xattrs: bool = True) -> None:
    """Owner, xattrs, exact mode and mtime of *src* onto *dst* (in that order: chown
    clears set-id bits, and setting the mode last makes it exact whatever the umask).
    *src* and *dst* are paths, or open file descriptors of regular files."""
    is_link = stat.S_ISLNK(src_st.st_mode)
    nofollow = {} if isinstance(dst, int) else {"follow_symlinks": False}
    if (src_st.st_uid, src_st.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(dst, src_st.st_uid, src_st.st_gid, **nofollow)
        except PermissionError:
            degraded.add("owners")
    if xattrs and not is_link:
        copy_xattrs(src, dst, degraded)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(src_st.st_mode))
    os.utime(dst, ns=(src_st.st_atime_ns, src_st.st_mtime_ns), **nofollow)


def copy_xattrs(src: bytes | str | int, dst: bytes | str | int, degraded: _Degraded) -> None:
    src_kw = {} if isinstance(src, int) else {"follow_symlinks": False}
    dst_kw = {} if isinstance(dst, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(src, **src_kw)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name, **src_kw), **dst_kw)
        except OSError:
            degraded.add("xattrs")


class WalkSink(Protocol):
    """What a snapshot hears from a walking engine's clone (``clone_walking``), entry by
    entry as each is done, in walk order: each directory's names sorted by their bytes
    plus ``/`` for a directory and ``:`` for anything else (``jvs.statcache.walk_key``),
    a directory after what it holds. The snapshot builds its manifest and its next stat
    cache from these as the walk goes (``jvs.snapshot_walk``), so neither tree is listed
    again and nothing is kept per file."""

    algo: str  # the hash the walk computes on the way

    def cached(self, rel: str, st: os.stat_result) -> bool:
        """The stat cache vouches for *rel* at lstat *st*: no need to hash it on the way."""

    def link(self, rel: str, st: os.stat_result, src: bytes, dst: bytes) -> bool:
        """Put the head snapshot's copy of *rel* at *dst* if it is the same file (the copy
        engine's ``PreviousPayload``); False when it must be copied."""

    def file(self, rel: str, dst: bytes, source_st: os.stat_result,
             staged_st: os.stat_result, digest: str | None, nbytes: int) -> None:
        """*rel* was copied to *dst*: the source's stat after its data was copied, the
        copy's after its metadata was applied, and the hash of the bytes written with
        their count if the walk hashed them on the way."""

    def dir(self, rel: str, staged_st: os.stat_result) -> None: ...

    def symlink(self, rel: str, target: bytes, staged_st: os.stat_result) -> None: ...

    def special(self, rel: str) -> None:
        """A FIFO, socket or device: not copied."""

    def ignored_path(self, rel: str) -> None:
        """Matched by ``.jvsignore``: not copied, nothing below it walked."""


class PreviousPayload:
    """The worktree's head snapshot, as a source of files that need not be copied again.

    A snapshot's payload never changes after it is published, so a worktree file the stat
    cache vouches for (unchanged since it was hashed), whose hash, mode and size are the
    ones the head's manifest records and whose inode metadata (type and mode, size,
    mtime, owner, xattrs) equals the head's copy, would be copied to the same bytes and
    metadata: the new payload gets a hard link to the head's file instead. A snapshot of
    a big, mostly unchanged worktree then writes only what changed (rsync's
    ``--link-dest``). Files with several links in the worktree are always copied, so the
    engine still reports worktree hardlinks it cannot keep. The manifest's records are
    read as the walk goes (*saved*); the snapshot checks the whole manifest against the
    head's root hash afterwards and, if it fails, starts over without linking.

    What a link trusts is the head's payload file: a payload changed behind jvs's back
    (tampering, bit rot) is carried into the new snapshot, where ``verify`` reports it as
    it does in the head."""

    def __init__(self, payload: Path, saved: SavedFiles,
                 known: Callable[[str, os.stat_result], str | None]) -> None:
        self.payload = os.fsencode(payload)
        self.saved = saved  # relpath -> (mode, size, hash) of the head's files
        self.known = known

    def link(self, rel: str, st: os.stat_result, src: bytes, dst: bytes) -> Entry | None:
        """Hard-link the head's copy of *rel* at *dst* if it is the same file as *src*
        (with lstat *st*), and return its manifest entry; None when it must be copied."""
        saved = self.saved.get(rel)
        if saved is None or st.st_nlink != 1:
            return None
        mode, size, digest = saved
        if mode != stat.S_IMODE(st.st_mode) or size != st.st_size \
                or digest != self.known(rel, st):
            return None
        twin = self.payload + b"/" + os.fsencode(rel)
        try:
            tst = os.lstat(twin)
        except OSError:
            return None
        if (tst.st_mode, tst.st_size, tst.st_mtime_ns, tst.st_uid, tst.st_gid) != \
                (st.st_mode, st.st_size, st.st_mtime_ns, st.st_uid, st.st_gid) \
                or not same_xattrs(src, twin):
            return None
        try:
            os.link(twin, dst, follow_symlinks=False)
        except OSError as exc:
            # EMLINK: the file has as many links as the filesystem allows (ext4: 65,000).
            if exc.errno in (errno.EMLINK, errno.EXDEV, errno.EPERM, errno.EACCES,
                             errno.ENOTSUP, errno.EOPNOTSUPP):
                return None
            raise
        return Entry("file", rel, mode, size, digest)


class SavedFiles(Protocol):
    def get(self, rel: str) -> tuple[int, int, str] | None:
        """(mode, size, hash) of the head's file *rel*, asked in walk order."""


def same_xattrs(a: bytes, b: bytes) -> bool:
    try:
        names = os.listxattr(a, follow_symlinks=False)
        others = os.listxattr(b, follow_symlinks=False)
        if not names and not others:
            return True  # the common case, without sorting two lists per file
        if sorted(names) != sorted(others):
            return False
        return all(os.getxattr(a, n, follow_symlinks=False)
                   == os.getxattr(b, n, follow_symlinks=False) for n in names)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return True  # neither can hold any
        return False


class CopyEngine:
    name = "copy"
    capabilities = Capabilities(walks_files=True, links_unchanged_files=True)
    hashes_on_the_way = True  # a copy reads every byte anyway: hash small files meanwhile
    _ignore: IgnoreRules | None = None
    _sink: WalkSink | None = None
    _flushed = False
    _ticker = None  # counts for a listener (jvs.progress.FileTicker), per clone

    def clone(self, src: Path, dst: Path, ignore: IgnoreRules | None = None, *,
              meter=None) -> CloneResult:
        """*meter* (a ``jvs.progress.Progress``, or None): told the files and bytes
        copied, per batch."""
        return self.clone_walking(src, dst, None, ignore, meter=meter)

    def clone_payload(self, src: Path, dst: Path) -> None:
        link_tree(src, dst)

    def clone_walking(self, src: Path, dst: Path, sink: WalkSink | None,
                      ignore: IgnoreRules | None = None, meter=None) -> CloneResult:
        """Copy *src* to *dst* (which must not exist), leaving out what *ignore* matches
        (paths relative to *src*); with *sink*, in walk order, telling it each entry."""
        from jvs.progress import FileTicker

        self._ticker = FileTicker(meter) if meter is not None else None
        degraded = _Degraded()
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "clone destination exists", str(dst))
        seen: dict[tuple[int, int], None] = {}
        self._ignore = ignore or None
        self._sink = sink
        # Only a snapshot (the caller with a sink) flushes what it copied: only then is
        # writing back early worth slowing the copy for (see _WRITEBACK_WHOLE_FROM).
        self._flushed = sink is not None
        self._copy_entry(os.fsencode(src), os.fsencode(dst), "", degraded, seen)
        if self._ticker is not None:
            self._ticker.flush()
        return CloneResult(self.name, tuple(degraded.items))

    def _children(self, src: bytes, prefix: str) -> list[tuple[bytes, str]]:
        """The names in directory *src* to copy, as bytes and as their relative paths:
        not ignored; with a sink, in walk order, ignored ones told to it, names that
        cannot be recorded refused."""
        ignore, sink = self._ignore, self._sink
        fsdecode = os.fsdecode
        with os.scandir(src) as it:
            if sink is None:
                named = [(e.name, prefix + fsdecode(e.name), e) for e in it]
                return [(name, rel) for name, rel, e in named
                        if ignore is None or not ignore.match(
                            rel, e.is_dir(follow_symlinks=False))]
            items = sorted((e.name + (b"/" if e.is_dir(follow_symlinks=False) else b":"), e)
                           for e in it)
        names = []
        for key, e in items:
            name = fsdecode(e.name)
            if ignore is not None and ignore.match(prefix + name, key.endswith(b"/")):
                sink.ignored_path(prefix + name)
                continue
            if "\n" in name or "\r" in name:
                refuse_name(prefix, name)
            names.append((e.name, prefix + name))
        return names

    def _copy_entry(self, src: bytes, dst: bytes, rel: str, degraded: _Degraded,
                    seen: dict) -> None:
        st = os.lstat(src)
        mode = st.st_mode
        sink = self._sink
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            prefix = rel + "/" if rel else ""
            src_dir, dst_dir = src + b"/", dst + b"/"
            for name, child in self._children(src, prefix):
                self._copy_entry(src_dir + name, dst_dir + name, child, degraded, seen)
            copy_metadata(st, src, dst, degraded)
            if sink is not None and rel:
                sink.dir(rel, os.lstat(dst))
        elif stat.S_ISLNK(mode):
            target = os.readlink(src)
            os.symlink(target, dst)
            copy_metadata(st, src, dst, degraded)
            if sink is not None:
                sink.symlink(rel, target, os.lstat(dst))
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    degraded.add("hardlinks")
                seen[key] = None
            if sink is None:
                self.copy_regular(st, src, dst, degraded)
            elif not sink.link(rel, st, src, dst):
                self._copy_told(st, src, dst, rel, degraded, sink)
            if self._ticker is not None:
                self._ticker.tick(st.st_size)
        elif sink is not None:
            sink.special(rel)

    def _copy_told(self, st: os.stat_result, src: bytes, dst: bytes, rel: str,
                   degraded: _Degraded, sink: WalkSink) -> None:
        """Copy a regular file and tell *sink*, with both stats taken through the open
        descriptors once the copy is complete. Small files are hashed on their way
        through when the cache cannot vouch for them (one open instead of two); big ones
        are copied by the kernel with early writeback and hashed by the sink afterwards,
        from the page cache."""
        stats: list[os.stat_result] = []

        def copied(sfd: int, dfd: int) -> None:
            stats.append(os.fstat(sfd))
            stats.append(os.fstat(dfd))

        digest, n = None, 0
        if self.hashes_on_the_way and st.st_size < _WRITEBACK_STEP \
                and not sink.cached(rel, st):
            digest, n = copy_file(st, src, dst, degraded, sink.algo, copied)
        else:
            self.copy_regular(st, src, dst, degraded, copied)
        sink.file(rel, dst, stats[0], stats[1], digest, n)

    def copy_regular(self, st: os.stat_result, src: bytes, dst: bytes, degraded: _Degraded,
                     copied: Copied | None = None) -> None:
        """One regular file's content and metadata (the reflink engine overrides this)."""
        copy_file(st, src, dst, degraded, None, copied, writeback=self._flushed)


# Called with the source's and the copy's descriptors once a file's copy is complete.
Copied = Callable[[int, int], None]


def copy_file(st: os.stat_result, src: bytes | str, dst: bytes | str, degraded: _Degraded,
              algo: str | None = None, copied: Copied | None = None, *,
              writeback: bool = False) -> tuple[str, int] | None:
    """Copy one regular file's content and metadata through two open descriptors, and
    metadata is applied to the descriptor (a path lookup saved per call on trees of many
    small files). Without *algo* the kernel copies the bytes (copy_file_range); with it
    they pass through here once and (digest, bytes) is returned. *copied* is called
    with both descriptors at the end. *writeback*: the caller flushes the copy, so start
    writing it back at once."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            result = None
            if is_sparse(st):
                copy_fd_sparse(sfd, dfd, st.st_size)
                if algo is not None:
                    result = hash_fd(sfd, algo)
            elif algo is None:
                copy_fd_data(sfd, dfd, st.st_size, writeback)
            else:
                result = copy_fd_hashing(sfd, dfd, algo)
            copy_metadata(st, sfd, dfd, degraded)
            if copied is not None:
                copied(sfd, dfd)
            return result
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


# Big files are copied in steps, and the kernel is asked to start writing each step back
# at once (sync_file_range, SYNC_FILE_RANGE_WRITE): the snapshot's final syncfs then
# finds most of the data already on disk instead of flushing it all at the end. Smaller
# files are handed to writeback whole once copied (from 256 KiB: below that the request
# costs more than it overlaps) when the copy is flushed afterwards, i.e. for a snapshot.
# On the plain disk, copying 2,048 files of 1 MiB and then syncfs took 4.0-7.1 s without
# this and 3.3-4.4 s with it (in-process A/B, 3 runs each). A copy nobody flushes
# (restore, fork) would only be slowed down to the disk's pace by it, so it gets none:
# staging a 400 MiB file for a restore took 1.36 s with it and takes what `cp -a` takes
# without (0.65 s).
_WRITEBACK_STEP = 16 << 20
_WRITEBACK_WHOLE_FROM = 256 << 10
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    from jvs.libc import libc

    libc().sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # advisory: ignore errors


def copy_fd_data(sfd: int, dfd: int, size_hint: int, writeback: bool = False) -> None:
    stepped = writeback and size_hint >= _WRITEBACK_STEP
    step = _WRITEBACK_STEP if stepped else min(max(size_hint, 1 << 20), 1 << 30)
    done = 0
    try:
        while n := os.copy_file_range(sfd, dfd, step):
            if stepped:
                start_writeback(dfd, done, n)
            done += n
        if writeback and _WRITEBACK_WHOLE_FROM <= done and size_hint < _WRITEBACK_STEP:
            start_writeback(dfd, 0, 0)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    # Filesystems without copy_file_range: continue from where it stopped.
    from jvs.integrity import read_buffer

    buf = read_buffer()
    whole = memoryview(buf)
    while n := os.readv(sfd, [buf]):
        view = whole[:n]
        while view:
            view = view[os.write(dfd, view):]


def is_sparse(st: os.stat_result) -> bool:
    """Fewer blocks than the size needs: the file has holes (a VM image, a preallocated
    dataset file). A plain copy would write them out as zeros."""
    return st.st_size > 0 and st.st_blocks * 512 < st.st_size


def copy_fd_sparse(sfd: int, dfd: int, size: int) -> None:
    """Copy only the data regions (SEEK_DATA/SEEK_HOLE) and leave the holes as holes: a
    file of 4 KiB of data in 50 MiB stays 4 KiB on disk in the snapshot and on restore."""
    offset = 0
    while offset < size:
        try:
            data = os.lseek(sfd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        hole = os.lseek(sfd, data, os.SEEK_HOLE)
        while data < hole:
            n = os.copy_file_range(sfd, dfd, hole - data, data, data)
            if n == 0:
                break
            data += n
        offset = hole
    os.ftruncate(dfd, size)


def hash_fd(fd: int, algo: str) -> tuple[str, int]:
    """(digest, size) of a file's content from its descriptor (holes read as zeros)."""
    from jvs.integrity import hasher, read_buffer

    h = hasher(algo)
    buf = read_buffer()
    view = memoryview(buf)
    total = 0
    while n := os.preadv(fd, [buf], total):
        h.update(view[:n])
        total += n
    return h.hexdigest(), total


def copy_fd_hashing(sfd: int, dfd: int, algo: str) -> tuple[str, int]:
    from jvs.integrity import hasher, read_buffer

    h = hasher(algo)
    buf = read_buffer()
    mv = memoryview(buf)
    total = 0
    while True:
        n = os.readv(sfd, [buf])
        if not n:
            if total >= _WRITEBACK_WHOLE_FROM:
                start_writeback(dfd, 0, 0)
            return h.hexdigest(), total
        h.update(mv[:n])
        total += n
        view = mv[:n]
        while view:
            view = view[os.write(dfd, view):]


def link_tree(src: Path, dst: Path) -> None:
    """*dst* holding *src*'s files as hard links, its directories and symlinks as new ones
    with the same modes and mtimes. Only for trees nobody writes to (snapshot payloads):
    a write through one link would change the other."""
    degraded = _Degraded()

    def visit(s: bytes, d: bytes) -> None:
        st = os.lstat(s)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(d, 0o700)
            with os.scandir(s) as it:
                names = [e.name for e in it]
            for name in names:
                visit(os.path.join(s, name), os.path.join(d, name))
            copy_metadata(st, s, d, degraded, xattrs=False)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
            copy_metadata(st, s, d, degraded, xattrs=False)
        elif stat.S_ISREG(st.st_mode):
            os.link(s, d, follow_symlinks=False)

    visit(os.fsencode(src), os.fsencode(dst))
