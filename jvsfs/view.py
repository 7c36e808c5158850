"""The model of the mounted tree: ``View`` dispatches each question to the node it is
about (``nodes.py``) and owns what nodes share — the catalog, the store, the inode table
and how attributes are made. No FUSE import; every method answers with plain values or
raises ``OSError``.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from jvsfs.catalog import ViewCatalog
from jvsfs.inodes import InodeTable, entry_key, link_key, snapshot_key
from jvsfs.nodes import PERMANENT, EntryNode, LinkNode, Node, SnapshotRootNode

# Kernel cache lifetimes (seconds). Snapshot contents never change, so the kernel may keep
# them long; the root, @snapshots and links change as snapshots come and go, so names
# there are revalidated quickly and a new or collected snapshot shows within about a
# second. A link's attributes never change (a moved link is a new inode).
IMMUTABLE_TIMEOUT = 300.0
FRESH_TIMEOUT = 1.0

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT
_DOTS = (b".", b"..")


class Stat:
    """A stat result the view may adjust (a synthetic node's, or a stored entry's with
    its snapshot's own link count and change time)."""

    __slots__ = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_rdev",
                 "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks")

    def __init__(self, mode: int, size: int = 0, mtime_ns: int = 0, nlink: int = 1,
                 uid: int = 0, gid: int = 0) -> None:
        self.st_mode = mode
        self.st_nlink = nlink
        self.st_uid = uid
        self.st_gid = gid
        self.st_size = size
        self.st_rdev = 0
        self.st_atime_ns = self.st_mtime_ns = self.st_ctime_ns = mtime_ns
        self.st_blksize = 4096
        self.st_blocks = 0

    @classmethod
    def of(cls, st: os.stat_result) -> Stat:
        out = cls.__new__(cls)
        for name in cls.__slots__:
            setattr(out, name, getattr(st, name))
        return out


class Attributes:
    """What a lookup, getattr or readdir entry answers: the inode, its stat and how long
    the kernel may cache the name and the attributes. ``counted`` is False for ``.`` and
    ``..`` in a listing, which the kernel takes no reference on."""

    __slots__ = ("ino", "st", "entry_timeout", "attr_timeout", "counted")

    def __init__(self, ino: int, st, entry_timeout: float, attr_timeout: float,
                 counted: bool = True) -> None:
        self.ino = ino
        self.st = st
        self.entry_timeout = entry_timeout
        self.attr_timeout = attr_timeout
        self.counted = counted


class Listing:
    """A directory's entries captured once at opendir and served by index, so readdir
    offsets stay correct however the kernel splits the listing; ``.`` and ``..`` first.
    Stored directories keep an fd open and stat each entry relative to it as it is served
    (memory stays flat for a 100,000-entry directory: names only, no stats)."""

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
    """The mounted tree of one repository."""

    def __init__(self, catalog: ViewCatalog) -> None:
        self.catalog = catalog
        self.store = catalog.store
        self.inodes = InodeTable(cls(ino) for ino, cls in PERMANENT)
        self.mounted_at_ns = time.time_ns()
        # The synthetic directories carry the repository root's owner and read/search
        # bits: with --allow-other, a 0700 repository stays its owner's (the kernel
        # checks these modes, default_permissions), a 0755 one is open to all.
        self.uid, self.gid, self.top_mode = _owner(catalog.repo.root)
        catalog.refresh(force=True)

    # ---------------------------------------------------------------- dispatch

    def node(self, ino: int) -> Node:
        node = self.inodes.get(ino)
        if node is None:
            raise OSError(errno.ENOENT, "stale inode")
        return node

    def blocking_work(self, ino: int, name: bytes | None = None):
        """What must run in a worker thread before ``lookup(ino, name)`` (or ``opendir``
        when *name* is None), or None (see ``Node.blocking_work``)."""
        node = self.inodes.get(ino)
        return None if node is None else node.blocking_work(self, name)

    def lookup(self, parent_ino: int, name: bytes) -> Attributes:
        """The child *name* of *parent_ino*; its node is created with no kernel reference
        (the caller ``remember``s it once the kernel accepted the reply)."""
        if name in _DOTS:
            raise OSError(errno.ENOENT, "no such entry")
        node = self.node(parent_ino)
        _run(node.blocking_work(self, name))  # the server already ran it in a thread
        return node.lookup(self, name)

    def getattr(self, ino: int) -> Attributes:
        return self.node(ino).attributes(self)

    def readlink(self, ino: int) -> bytes:
        return self.node(ino).readlink(self)

    def opendir(self, ino: int) -> Listing:
        node = self.node(ino)
        _run(node.blocking_work(self, None))
        return node.opendir(self)

    def listing_entry(self, listing: Listing, index: int) -> Attributes | None:
        """The attributes of entry *index*, or None when it vanished since opendir (a
        collected snapshot, a moved tag): readdir skips it."""
        node = listing.node
        if index < 2:  # only d_ino and the type matter: the kernel links neither
            ino = node.ino if index == 0 else node.parent_ino
            return Attributes(ino, Stat(stat.S_IFDIR | 0o555), 0, 0, counted=False)
        try:
            return node.listing_entry(self, listing, listing.names[index])
        except OSError:
            return None

    def open(self, ino: int, flags: int) -> int:
        """A read-only fd on the stored file."""
        if flags & _WRITE_FLAGS:
            raise OSError(errno.EROFS, "read-only view")
        return self.node(ino).open(self)

    def listxattr(self, ino: int) -> list[bytes]:
        return self.node(ino).listxattr(self)

    def getxattr(self, ino: int, name: bytes) -> bytes:
        return self.node(ino).getxattr(self, name)

    def statfs(self) -> os.statvfs_result:
        """The repository filesystem's numbers: ``df`` shows the view as big and as full
        as the disk its history lives on (not 100% full, as a zero free count would)."""
        return os.statvfs(self.catalog.repo.root)

    # ---------------------------------------------------------------- shared by nodes

    def listing(self, node: Node, names: list[bytes], dir_fd: int | None = None) -> Listing:
        return Listing(node, [b".", b"..", *names], dir_fd)

    def require_served(self, sid: str) -> None:
        if self.catalog.served(sid) is None:
            raise OSError(errno.ENOENT, "snapshot no longer served")

    def snapshot_root(self, sid: str) -> Attributes:
        st = self.store.root_stat(sid) if self.catalog.served(sid) else None
        if st is None:  # a descriptor without its payload is not served, nor its tags
            self.catalog.recheck(sid)
            raise OSError(errno.ENOENT, "no such snapshot")
        key = snapshot_key(sid)
        node = self.inodes.claim(key, lambda ino: SnapshotRootNode(ino, key, sid, b"",
                                                                   st.st_ino))
        node.backing_ino = st.st_ino
        return Attributes(node.ino, self._stored_stat(sid, st), FRESH_TIMEOUT,
                          IMMUTABLE_TIMEOUT)

    def entry(self, sid: str, rel: bytes, parent_ino: int) -> Attributes:
        self.require_served(sid)
        return self.entry_from_stat(sid, rel, self.store.lstat(sid, rel), parent_ino)

    def entry_from_stat(self, sid: str, rel: bytes, st: os.stat_result,
                        parent_ino: int) -> Attributes:
        key = entry_key(sid, st.st_ino)
        node = self.inodes.claim(key, lambda ino: EntryNode(
            ino, key, sid, rel, st.st_ino, stat.S_IFMT(st.st_mode), parent_ino))
        return self.entry_attributes(node.ino, sid, st)

    def entry_attributes(self, ino: int, sid: str, st: os.stat_result) -> Attributes:
        return Attributes(ino, self._stored_stat(sid, st), IMMUTABLE_TIMEOUT,
                          IMMUTABLE_TIMEOUT)

    def _stored_stat(self, sid: str, st: os.stat_result) -> Stat:
        """*st* as the snapshot has it. Its change time is the snapshot's creation time:
        the copy engine hard-links unchanged files into the next snapshot, which bumps the
        stored file's ctime and link count long after this snapshot was made; the kernel
        caches attributes for minutes, so those would be seen to change at random. For the
        same reason a non-directory of a copy-engine snapshot has one link: that engine
        never keeps hard links inside a snapshot (docs/engines.md), so any other link is
        another snapshot's."""
        out = Stat.of(st)
        created = self.catalog.created_ns(sid)
        if created:
            out.st_ctime_ns = created
        if not stat.S_ISDIR(st.st_mode):
            desc = self.catalog.served(sid)
            if desc is not None and desc.engine == "copy":
                out.st_nlink = 1
        return out

    def link(self, kind: str, name: bytes, target: bytes) -> Attributes:
        key = link_key(kind, name, target)
        node = self.inodes.claim(key, lambda ino: LinkNode(ino, key, target))
        return Attributes(node.ino, self._link_stat(target), FRESH_TIMEOUT,
                          IMMUTABLE_TIMEOUT)

    def link_attributes(self, node: LinkNode) -> Attributes:
        return Attributes(node.ino, self._link_stat(node.target), FRESH_TIMEOUT,
                          IMMUTABLE_TIMEOUT)

    def dir_attributes(self, ino: int, *, long_name: bool = False) -> Attributes:
        # Read again each time (a 1 s attribute timeout): a chmod of the repository
        # root shows without remounting.
        self.uid, self.gid, self.top_mode = _owner(self.catalog.repo.root)
        st = Stat(stat.S_IFDIR | self.top_mode, mtime_ns=self.mounted_at_ns, nlink=2,
                  uid=self.uid, gid=self.gid)
        return Attributes(ino, st, IMMUTABLE_TIMEOUT if long_name else FRESH_TIMEOUT,
                          FRESH_TIMEOUT)

    def _link_stat(self, target: bytes) -> Stat:
        return Stat(stat.S_IFLNK | 0o777, size=len(target), mtime_ns=self.mounted_at_ns,
                    uid=self.uid, gid=self.gid)


def _run(work) -> None:
    if work is not None:
        work()


def _owner(path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return os.getuid(), os.getgid(), 0o500
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode) & 0o555
