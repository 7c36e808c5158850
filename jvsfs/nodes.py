"""The view's node kinds, one small class each (after restic's ``internal/fuse``), with no
FUSE import:

- ``RootNode``: ``@snapshots`` and ``@worktrees``;
- ``SnapshotsNode`` (``@snapshots``): one directory per served snapshot, each tag as a
  symlink to the newest snapshot carrying it, and any other reference the resolver accepts
  answered as a symlink (resolution lives in the catalog);
- ``WorktreesNode`` (``@worktrees``): ``<name> -> ../@snapshots/<head>``;
- ``SnapshotRootNode``: a payload directory, without the Go implementation's root
  ``.READY`` (only in snapshots that Go wrote), with virtual ``user.jvs.*`` xattrs;
- ``EntryNode``: a file, directory or symlink inside a snapshot, passed through from the
  stored payload through ``backing.SnapshotStore`` (no symlink is ever followed);
- ``LinkNode``: a tag, worktree or reference symlink.

Every node answers ``attributes``, ``lookup``, ``opendir``/``listing_entry``, ``readlink``,
``open`` and the xattr questions for itself; ``view.View`` only dispatches. Failures are
raised as ``OSError(errno)``; the FUSE adapter turns them into replies.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from jvsfs.inodes import ROOT_INO, SNAPSHOTS_INO, WORKTREES_INO

if TYPE_CHECKING:
    from jvsfs.view import Attributes, Listing, View

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


def _absent(name: bytes) -> OSError:
    if name in UNSUPPORTED_WHEN_ABSENT:
        return OSError(errno.EOPNOTSUPP, "no label or ACL here")
    return OSError(errno.ENODATA, "no such attribute")


def _text(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


class Node:
    """What one inode number stands for. ``key`` is what the number was made from (see
    inodes.py); ``lookups`` the references the kernel holds."""

    __slots__ = ("ino", "key", "lookups")
    parent_ino = ROOT_INO

    def __init__(self, ino: int, key: bytes = b"") -> None:
        self.ino = ino
        self.key = key
        self.lookups = 0

    def blocking_work(self, view: View, name: bytes | None):
        """A function to run in a worker thread before ``lookup(name)`` (or ``opendir``
        when *name* is None) because it may wait on the disk; None when nothing is due."""
        return None

    def attributes(self, view: View) -> Attributes:
        raise NotImplementedError

    def lookup(self, view: View, name: bytes) -> Attributes:
        raise OSError(errno.ENOTDIR, "not a directory")

    def opendir(self, view: View) -> Listing:
        raise OSError(errno.ENOTDIR, "not a directory")

    def listing_entry(self, view: View, listing: Listing, name: bytes) -> Attributes:
        return self.lookup(view, name)

    def readlink(self, view: View) -> bytes:
        raise OSError(errno.EINVAL, "not a symlink")

    def open(self, view: View) -> int:
        raise OSError(errno.EISDIR, "not a file")

    def listxattr(self, view: View) -> list[bytes]:
        return []

    def getxattr(self, view: View, name: bytes) -> bytes:
        raise _absent(name)


# ---------------------------------------------------------------------- the top levels

class RootNode(Node):
    __slots__ = ()

    def attributes(self, view: View) -> Attributes:
        return view.dir_attributes(self.ino)

    def lookup(self, view: View, name: bytes) -> Attributes:
        if name == b"@snapshots":
            return view.dir_attributes(SNAPSHOTS_INO, long_name=True)
        if name == b"@worktrees":
            return view.dir_attributes(WORKTREES_INO, long_name=True)
        raise OSError(errno.ENOENT, "no such entry")

    def opendir(self, view: View) -> Listing:
        return view.listing(self, [b"@snapshots", b"@worktrees"])


class SnapshotsNode(Node):
    __slots__ = ()

    def blocking_work(self, view: View, name: bytes | None):
        catalog = view.catalog
        refresh = catalog.due()
        if name is None:
            return catalog.refresh if refresh else None
        ref = _text(name)
        state = catalog.state
        resolve = (ref not in state.snapshots and ref not in state.tags
                   and not catalog.resolved_already(ref))
        if not (refresh or resolve):
            return None

        def work() -> None:
            if refresh:
                catalog.refresh()
            catalog.resolve(ref)  # kept for the lookup that follows

        return work

    def attributes(self, view: View) -> Attributes:
        return view.dir_attributes(self.ino)

    def lookup(self, view: View, name: bytes) -> Attributes:
        catalog = view.catalog
        ref = _text(name)
        state = catalog.state
        if ref in state.snapshots:
            if not catalog.recheck(ref):  # its descriptor changed or its payload went
                raise OSError(errno.ENOENT, "snapshot no longer served")
            return view.snapshot_root(ref)
        sid = state.tags.get(ref)
        if sid is not None:
            return view.link("tag", name, sid.encode())
        sid = catalog.resolve(ref)
        if sid is None or catalog.served(sid) is None:
            raise OSError(errno.ENOENT, "no such snapshot or reference")
        return view.link("ref", name, sid.encode())

    def opendir(self, view: View) -> Listing:
        state = view.catalog.state
        names = [sid.encode() for sid in sorted(state.snapshots)]
        names += [tag.encode("utf-8", "surrogateescape") for tag in sorted(state.tags)]
        return view.listing(self, names)

    def listing_entry(self, view: View, listing: Listing, name: bytes) -> Attributes:
        # The catalog was refreshed at opendir; no per-entry re-check (20,000 snapshots
        # would cost 40,000 stat calls per `ls -l`): a lookup by name re-checks.
        ref = _text(name)
        state = view.catalog.state
        if ref in state.snapshots:
            return view.snapshot_root(ref)
        sid = state.tags.get(ref)
        if sid is None:
            raise OSError(errno.ENOENT, "tag moved away")
        return view.link("tag", name, sid.encode())


class WorktreesNode(Node):
    __slots__ = ()

    def blocking_work(self, view: View, name: bytes | None):
        return view.catalog.refresh if view.catalog.due() else None

    def attributes(self, view: View) -> Attributes:
        return view.dir_attributes(self.ino)

    def lookup(self, view: View, name: bytes) -> Attributes:
        head = view.catalog.state.worktree_heads.get(_text(name))
        if head is None:
            raise OSError(errno.ENOENT, "no such worktree")
        return view.link("worktree", name, b"../@snapshots/" + head.encode())

    def opendir(self, view: View) -> Listing:
        heads = view.catalog.state.worktree_heads
        return view.listing(self, [n.encode("utf-8", "surrogateescape")
                                   for n in sorted(heads)])


# ---------------------------------------------------------------------- snapshots

class _Stored(Node):
    """A node backed by an entry of a stored payload: *rel* inside snapshot *sid*,
    expected to be backing inode *backing_ino*."""

    __slots__ = ("sid", "rel", "backing_ino", "xattrs")

    def __init__(self, ino: int, key: bytes, sid: str, rel: bytes, backing_ino: int) -> None:
        super().__init__(ino, key)
        self.sid = sid
        self.rel = rel
        self.backing_ino = backing_ino
        self.xattrs: tuple[bytes, ...] | None = None

    def _child_rel(self, name: bytes) -> bytes:
        return self.rel + b"/" + name if self.rel else name

    def lookup(self, view: View, name: bytes) -> Attributes:
        return view.entry(self.sid, self._child_rel(name), self.ino)

    def opendir(self, view: View) -> Listing:
        view.require_served(self.sid)
        fd = view.store.open_dir(self.sid, self.rel, self.backing_ino)
        try:
            names = os.listdir(fd)
        except BaseException:
            os.close(fd)
            raise
        return view.listing(self, self._shown(view, names), dir_fd=fd)

    def _shown(self, view: View, names: list) -> list[bytes]:
        return [os.fsencode(n) for n in names]

    def listing_entry(self, view: View, listing: Listing, name: bytes) -> Attributes:
        st = os.stat(name, dir_fd=listing.dir_fd, follow_symlinks=False)
        return view.entry_from_stat(self.sid, self._child_rel(name), st, self.ino)

    def listxattr(self, view: View) -> list[bytes]:
        return list(self._own_xattrs(view))

    def getxattr(self, view: View, name: bytes) -> bytes:
        if name in self._own_xattrs(view):
            return view.store.getxattr(self.sid, self.rel, name)
        raise _absent(name)

    def _own_xattrs(self, view: View) -> tuple[bytes, ...]:
        """The names of the stored entry's xattrs, read once per node: snapshot contents
        never change, so a question about an absent name never touches the store."""
        names = self.xattrs
        if names is None:
            view.require_served(self.sid)
            try:
                listed = view.store.listxattr(self.sid, self.rel)
            except OSError as exc:
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                listed = []  # the store's filesystem holds no xattrs
            names = self.xattrs = tuple(os.fsencode(n) for n in listed)
        return names


class SnapshotRootNode(_Stored):
    __slots__ = ()
    parent_ino = SNAPSHOTS_INO

    def attributes(self, view: View) -> Attributes:
        return view.snapshot_root(self.sid)

    def lookup(self, view: View, name: bytes) -> Attributes:
        if name == READY_MARKER and self._has_ready_marker(view):
            raise OSError(errno.ENOENT, "publish marker")
        return super().lookup(view, name)

    def _has_ready_marker(self, view: View) -> bool:
        desc = view.catalog.served(self.sid)
        return desc is not None and desc.has_ready_marker

    def _shown(self, view: View, names: list) -> list[bytes]:
        shown = super()._shown(view, names)
        if self._has_ready_marker(view):
            shown = [n for n in shown if n != READY_MARKER]
        return shown

    def listxattr(self, view: View) -> list[bytes]:
        own = self._own_xattrs(view)
        return list(VIRTUAL_XATTRS) + [n for n in own if not n.startswith(XATTR_PREFIX)]

    def getxattr(self, view: View, name: bytes) -> bytes:
        if not name.startswith(XATTR_PREFIX):
            return super().getxattr(view, name)
        desc = view.catalog.served(self.sid)
        if desc is None or name not in VIRTUAL_XATTRS:
            raise OSError(errno.ENODATA, "no such attribute")
        value = {
            b"id": desc.snapshot_id,
            b"note": desc.note,
            b"tags": ",".join(desc.tags),
            b"parent": desc.parent_id or "",
            b"created_at": desc.created_at,
        }[name[len(XATTR_PREFIX):]]
        return value.encode("utf-8")


class EntryNode(_Stored):
    __slots__ = ("fmt", "parent", "target")

    def __init__(self, ino: int, key: bytes, sid: str, rel: bytes, backing_ino: int,
                 fmt: int, parent_ino: int) -> None:
        super().__init__(ino, key, sid, rel, backing_ino)
        self.fmt = fmt
        self.parent = parent_ino
        self.target: bytes | None = None

    @property
    def parent_ino(self) -> int:
        return self.parent

    def attributes(self, view: View) -> Attributes:
        view.require_served(self.sid)
        st = view.store.lstat(self.sid, self.rel)
        if st.st_ino != self.backing_ino or stat.S_IFMT(st.st_mode) != self.fmt:
            raise OSError(errno.ESTALE, "the stored entry changed since it was looked up")
        return view.entry_attributes(self.ino, self.sid, st)

    def lookup(self, view: View, name: bytes) -> Attributes:
        if self.fmt != stat.S_IFDIR:
            raise OSError(errno.ENOTDIR, "not a directory")
        return super().lookup(view, name)

    def opendir(self, view: View) -> Listing:
        if self.fmt != stat.S_IFDIR:
            raise OSError(errno.ENOTDIR, "not a directory")
        return super().opendir(view)

    def readlink(self, view: View) -> bytes:
        if self.fmt != stat.S_IFLNK:
            raise OSError(errno.EINVAL, "not a symlink")
        if self.target is None:  # snapshot contents never change: read it once
            view.require_served(self.sid)
            self.target = view.store.readlink(self.sid, self.rel)
        return self.target

    def open(self, view: View) -> int:
        if self.fmt == stat.S_IFDIR:
            raise OSError(errno.EISDIR, "is a directory")
        if self.fmt != stat.S_IFREG:
            raise OSError(errno.ELOOP if self.fmt == stat.S_IFLNK else errno.EACCES,
                          "not a regular file")
        view.require_served(self.sid)
        return view.store.open_file(self.sid, self.rel, self.backing_ino)


class LinkNode(Node):
    """A synthetic symlink. Its number is made from its name *and* target, so a tag or
    head that moves is a new inode and no cached target can outlive the move."""

    __slots__ = ("target",)

    def __init__(self, ino: int, key: bytes, target: bytes) -> None:
        super().__init__(ino, key)
        self.target = target

    def attributes(self, view: View) -> Attributes:
        return view.link_attributes(self)

    def readlink(self, view: View) -> bytes:
        return self.target

    def open(self, view: View) -> int:
        raise OSError(errno.ELOOP, "a symlink")


PERMANENT = ((ROOT_INO, RootNode), (SNAPSHOTS_INO, SnapshotsNode),
             (WORKTREES_INO, WorktreesNode))
