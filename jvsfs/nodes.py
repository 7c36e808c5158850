"""The view's nodes: what each kind of inode shows, with no FUSE import.

Node kinds (one section each below, after restic's internal/fuse):

- the root: ``@snapshots`` and ``@worktrees``;
- ``@snapshots``: one directory per served snapshot, and each tag as a symlink to the
  newest snapshot carrying it; lookups of any other reference the resolver accepts are
  answered as symlinks too;
- a snapshot root: the payload directory, without the Go implementation's root ``.READY``,
  with virtual ``user.jvs.*`` xattrs;
- an entry: a file, directory or symlink inside a snapshot, passed through from the
  backing payload (stat, readlink, xattrs, reads);
- a link: tag, worktree (``@worktrees/<name> -> ../@snapshots/<head>``) or reference.

Failures are raised as ``OSError(errno)``; the FUSE adapter turns them into replies.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from jvsfs.catalog import ViewCatalog
from jvsfs.inodes import (
    BACKING_BITS,
    ENTRY,
    LINK,
    ROOT,
    SNAPSHOT_ROOT,
    SNAPSHOTS,
    SNAPSHOTS_INO,
    WORKTREES,
    WORKTREES_INO,
    InodeTable,
    Node,
)

READY_MARKER = b".READY"
XATTR_PREFIX = b"user.jvs."
VIRTUAL_XATTRS = (b"user.jvs.id", b"user.jvs.note", b"user.jvs.tags", b"user.jvs.parent",
                  b"user.jvs.created_at")
# What `ls -l` asks of every entry: its SELinux label and POSIX ACLs. Each question is a
# round trip to this server, so an entry that has none of them answers "not supported"
# rather than "no such attribute": `ls` then stops asking for the rest of the mount (it
# remembers, per st_dev, that these are unsupported) and `ls -lR` runs at the speed of a
# server without xattrs. The view does not apply ACLs anyway (the kernel checks modes
# only); a stored label or ACL is still served to whoever asks for it (getfattr, getfacl,
# cp -a, rsync -AX), and those tools take "not supported" as "none".
UNSUPPORTED_WHEN_ABSENT = frozenset((b"security.selinux", b"system.posix_acl_access",
                                     b"system.posix_acl_default"))

# Kernel cache lifetimes (seconds). Snapshot contents never change, so the kernel may keep
# them long; the root, @snapshots and links change as snapshots come and go, so they are
# revalidated quickly and a new or collected snapshot shows within about a second.
IMMUTABLE_TIMEOUT = 300.0
FRESH_TIMEOUT = 1.0

_O_NOATIME = getattr(os, "O_NOATIME", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT


class SyntheticStat:
    """A stat result for a node with no backing file (root, @snapshots, links)."""

    __slots__ = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_rdev",
                 "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks")

    def __init__(self, mode: int, size: int = 0, mtime_ns: int = 0, nlink: int = 1) -> None:
        self.st_mode = mode
        self.st_nlink = nlink
        self.st_uid = os.getuid()
        self.st_gid = os.getgid()
        self.st_size = size
        self.st_rdev = 0
        self.st_atime_ns = self.st_mtime_ns = self.st_ctime_ns = mtime_ns
        self.st_blksize = 4096
        self.st_blocks = 0


class Attributes:
    """What a lookup, getattr or readdir entry answers: the inode, its stat and how long
    the kernel may cache the name and the attributes."""

    __slots__ = ("ino", "st", "entry_timeout", "attr_timeout")

    def __init__(self, ino: int, st, entry_timeout: float, attr_timeout: float) -> None:
        self.ino = ino
        self.st = st
        self.entry_timeout = entry_timeout
        self.attr_timeout = attr_timeout


class Listing:
    """A directory's entries captured once at opendir and served by index, so readdir
    offsets stay correct however the kernel splits the listing. Passthrough directories
    keep an fd open and stat each entry relative to it as it is served (memory stays flat
    for a 100,000-entry directory: names only, no stats)."""

    __slots__ = ("node", "names", "dir_fd")

    def __init__(self, node: Node, names: list[bytes], dir_fd: int | None = None) -> None:
        self.node = node
        self.names = names
        self.dir_fd = dir_fd

    def close(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None


class View:
    """The model of the mounted tree. Every method runs without FUSE and answers with plain
    values or raises ``OSError``."""

    def __init__(self, catalog: ViewCatalog) -> None:
        self.catalog = catalog
        self.inodes = InodeTable()
        self.mounted_at_ns = time.time_ns()
        self._snapshots_dir = os.fsencode(catalog.repo.snapshots_dir) + b"/"
        catalog.refresh(force=True)

    # ---------------------------------------------------------------- lookups and attrs

    def node(self, ino: int) -> Node:
        node = self.inodes.get(ino)
        if node is None:
            raise OSError(errno.ENOENT, "stale inode")
        return node

    def lookup(self, parent_ino: int, name: bytes) -> Attributes:
        """The child *name* of *parent_ino*; its node is created with no kernel reference
        (the caller ``remember``s it once the kernel accepted the reply)."""
        parent = self.node(parent_ino)
        kind = parent.kind
        if name == b"." or name == b"..":
            raise OSError(errno.ENOENT, "no such entry")
        if kind == ENTRY or kind == SNAPSHOT_ROOT:
            if kind == SNAPSHOT_ROOT and name == READY_MARKER:
                raise OSError(errno.ENOENT, "publish marker")
            path = parent.path + b"/" + name
            return self._entry_attributes(parent, path, os.lstat(path))
        if kind == SNAPSHOTS:
            return self._lookup_in_snapshots(name)
        if kind == WORKTREES:
            self.catalog.refresh()
            head = self.catalog.worktree_heads.get(name.decode("utf-8", "surrogateescape"))
            if head is None:
                raise OSError(errno.ENOENT, "no such worktree")
            return self._link(("worktree", name), b"../@snapshots/" + head.encode())
        if kind == ROOT:
            if name == b"@snapshots":
                return Attributes(SNAPSHOTS_INO, self._dir_stat(), IMMUTABLE_TIMEOUT,
                                  FRESH_TIMEOUT)
            if name == b"@worktrees":
                return Attributes(WORKTREES_INO, self._dir_stat(), IMMUTABLE_TIMEOUT,
                                  FRESH_TIMEOUT)
        raise OSError(errno.ENOENT, "no such entry")

    def getattr(self, ino: int) -> Attributes:
        node = self.node(ino)
        kind = node.kind
        if kind == ENTRY:
            return Attributes(ino, os.lstat(node.path), IMMUTABLE_TIMEOUT, IMMUTABLE_TIMEOUT)
        if kind == SNAPSHOT_ROOT:
            if node.snapshot_id not in self.catalog.snapshots:
                self.catalog.refresh()
            return Attributes(ino, os.lstat(node.path), FRESH_TIMEOUT, IMMUTABLE_TIMEOUT)
        if kind == LINK:
            return Attributes(ino, self._link_stat(node.target), FRESH_TIMEOUT, FRESH_TIMEOUT)
        return Attributes(ino, self._dir_stat(), FRESH_TIMEOUT, FRESH_TIMEOUT)

    def readlink(self, ino: int) -> bytes:
        node = self.node(ino)
        if node.kind == LINK:
            return node.target
        if node.kind == ENTRY:
            return os.readlink(node.path)
        raise OSError(errno.EINVAL, "not a symlink")

    def _entry_attributes(self, parent: Node, path: bytes, st: os.stat_result) -> Attributes:
        disc = parent.disc
        ino = self.inodes.snapshot_ino(disc, st.st_ino, path)
        self.inodes.ensure(ino, ENTRY, path=path, snapshot_id=parent.snapshot_id, disc=disc)
        return Attributes(ino, st, IMMUTABLE_TIMEOUT, IMMUTABLE_TIMEOUT)

    # ---------------------------------------------------------------- @snapshots

    def _lookup_in_snapshots(self, name: bytes) -> Attributes:
        text = name.decode("utf-8", "surrogateescape")
        # Refresh on every lookup (throttled to one listdir per interval): a name the kernel
        # revalidates must vanish once its snapshot or tag is gone.
        self.catalog.refresh()
        found = self._snapshot_or_tag(text)
        if found is None:
            raise OSError(errno.ENOENT, "no such snapshot or tag")
        return found

    def _snapshot_or_tag(self, text: str) -> Attributes | None:
        catalog = self.catalog
        if text in catalog.snapshots:
            return self.snapshot_root(text)
        sid = catalog.tags.get(text)
        if sid is not None:
            return self._link(("tag", text), sid.encode())
        return None

    def snapshot_root(self, sid: str) -> Attributes:
        disc = self.catalog.discriminators[sid]
        path = self._snapshots_dir + sid.encode()
        st = os.lstat(path)  # a descriptor without its payload is not served
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOENT, "payload is not a directory")
        ino = disc << BACKING_BITS
        self.inodes.ensure(ino, SNAPSHOT_ROOT, path=path, snapshot_id=sid, disc=disc)
        return Attributes(ino, st, FRESH_TIMEOUT, IMMUTABLE_TIMEOUT)

    def reference_link(self, ref: str, sid: str) -> Attributes:
        """Answer a lookup of any other reference (short ID, note, ``latest``) that the
        resolver mapped to *sid*, as a symlink to it."""
        if sid not in self.catalog.snapshots:
            raise OSError(errno.ENOENT, "snapshot not served")
        return self._link(("ref", ref), sid.encode())

    def resolve_reference(self, ref: str) -> str | None:
        """The snapshot ID *ref* names, or None. Uses ``jvs.resolve`` (the one resolver of
        SPEC §2) when it is available; ``latest`` means the newest served snapshot unless a
        tag or note says otherwise. May be slow on a large repository: the adapter runs it
        in a worker thread. Reads only; touches no view state."""
        try:
            from jvs.errors import JvsError
            from jvs.resolve import resolve
        except ImportError:
            resolve = None
        if resolve is not None:
            try:
                return resolve(self.catalog.repo, ref).snapshot_id
            except JvsError:
                pass
            except Exception:  # a resolver bug must never take the view down
                pass
        if ref == "latest" and self.catalog.snapshots:
            return max(self.catalog.snapshots)
        return None

    def _link(self, key: tuple, target: bytes) -> Attributes:
        ino = self.inodes.synthetic_ino(key)
        node = self.inodes.ensure(ino, LINK, target=target, key=key)
        node.target = target  # a tag or head may have moved since the kernel last asked
        return Attributes(ino, self._link_stat(target), FRESH_TIMEOUT, FRESH_TIMEOUT)

    # ---------------------------------------------------------------- directories

    def opendir(self, ino: int) -> Listing:
        node = self.node(ino)
        kind = node.kind
        if kind == ENTRY or kind == SNAPSHOT_ROOT:
            fd = os.open(node.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                names = os.listdir(node.path)  # bytes in, bytes out: no re-encoding
            except BaseException:
                os.close(fd)
                raise
            if kind == SNAPSHOT_ROOT:
                names = [n for n in names if n != READY_MARKER]
            return Listing(node, names, fd)
        if kind == ROOT:
            return Listing(node, [b"@snapshots", b"@worktrees"])
        if kind == SNAPSHOTS:
            self.catalog.refresh()
            names = [sid.encode() for sid in self.catalog.sorted_ids()]
            names += [tag.encode("utf-8", "surrogateescape") for tag in sorted(self.catalog.tags)]
            return Listing(node, names)
        if kind == WORKTREES:
            self.catalog.refresh()
            return Listing(node, [n.encode("utf-8", "surrogateescape")
                                  for n in sorted(self.catalog.worktree_heads)])
        raise OSError(errno.ENOTDIR, "not a directory")

    def listing_entry(self, listing: Listing, index: int) -> Attributes | None:
        """The attributes of entry *index*, or None when it vanished since opendir (a
        collected snapshot, a moved tag): readdir skips it."""
        name = listing.names[index]
        try:
            if listing.dir_fd is not None:
                st = os.lstat(name, dir_fd=listing.dir_fd)
                return self._entry_attributes(listing.node, listing.node.path + b"/" + name, st)
            if listing.node.kind == SNAPSHOTS:  # the catalog was refreshed at opendir
                return self._snapshot_or_tag(name.decode("utf-8", "surrogateescape"))
            return self.lookup(listing.node.ino, name)
        except OSError:
            return None

    # ---------------------------------------------------------------- files

    def open(self, ino: int, flags: int) -> int:
        """A read-only fd on the backing file. Opened with O_NOATIME where the kernel
        allows it (owner or CAP_FOWNER), so browsing history does not dirty inodes."""
        if flags & _WRITE_FLAGS:
            raise OSError(errno.EROFS, "read-only view")
        node = self.node(ino)
        if node.kind != ENTRY:
            raise OSError(errno.EISDIR if node.kind != LINK else errno.ELOOP, "not a file")
        return open_backing(node.path)

    # ---------------------------------------------------------------- xattrs

    def listxattr(self, ino: int) -> list[bytes]:
        node = self.node(ino)
        if node.kind == ENTRY:
            return list(self._own_xattrs(node))
        if node.kind == SNAPSHOT_ROOT:
            own = self._own_xattrs(node)
            return list(VIRTUAL_XATTRS) + [n for n in own if not n.startswith(XATTR_PREFIX)]
        return []

    def getxattr(self, ino: int, name: bytes) -> bytes:
        node = self.node(ino)
        kind = node.kind
        if kind == SNAPSHOT_ROOT and name.startswith(XATTR_PREFIX):
            return self._virtual_xattr(node, name)
        if (kind == ENTRY or kind == SNAPSHOT_ROOT) and name in self._own_xattrs(node):
            return os.getxattr(node.path, name, follow_symlinks=False)
        if name in UNSUPPORTED_WHEN_ABSENT:
            raise OSError(errno.EOPNOTSUPP, "no label or ACL here")
        raise OSError(errno.ENODATA, "no such attribute")

    def _own_xattrs(self, node: Node) -> tuple[bytes, ...]:
        """The names of the backing file's xattrs, read once per node: snapshot contents
        never change, so a question about an absent name never touches the backing file."""
        names = node.xattrs
        if names is None:
            try:
                listed = os.listxattr(node.path, follow_symlinks=False)
            except OSError as exc:
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                listed = []  # the backing filesystem holds no xattrs
            names = node.xattrs = tuple(os.fsencode(n) for n in listed)
        return names

    def _virtual_xattr(self, node: Node, name: bytes) -> bytes:
        desc = self.catalog.snapshots.get(node.snapshot_id)
        if desc is None or name not in VIRTUAL_XATTRS:
            raise OSError(errno.ENODATA, "no such attribute")
        field = name[len(XATTR_PREFIX):].decode()
        value = {
            "id": desc.snapshot_id,
            "note": desc.note,
            "tags": ",".join(desc.tags),
            "parent": desc.parent_id or "",
            "created_at": desc.created_at,
        }[field]
        return value.encode("utf-8")

    # ---------------------------------------------------------------- helpers

    def _dir_stat(self) -> SyntheticStat:
        return SyntheticStat(stat.S_IFDIR | 0o555, mtime_ns=self.mounted_at_ns, nlink=2)

    def _link_stat(self, target: bytes) -> SyntheticStat:
        return SyntheticStat(stat.S_IFLNK | 0o777, size=len(target), mtime_ns=self.mounted_at_ns)


def open_backing(path: bytes) -> int:
    try:
        return os.open(path, os.O_RDONLY | _O_NOATIME)
    except PermissionError:
        if not _O_NOATIME:
            raise
        return os.open(path, os.O_RDONLY)  # EPERM: not the owner and no CAP_FOWNER
