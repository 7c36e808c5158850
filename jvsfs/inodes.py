"""The inode table: one Node per inode the kernel knows, counted and forgotten.

Inode numbers are stable and unique, so ``find``, ``du`` and ``tar`` work and numbers do not
change from mount to mount (a common complaint about ``borg mount``)::

    1, 2, 3               the root, @snapshots, @worktrees
    16 .. 2**40           synthetic nodes (tag, worktree and reference symlinks), counted up
    disc << 40 | ino      a file inside a snapshot: its backing ``st_ino`` combined with the
                          snapshot's discriminator (a stable hash of its ID, see catalog.py),
                          so hard links stay hard links and two snapshots never collide;
    disc << 40            the snapshot root itself

A backing inode number of 2**40 or more (rare: huge XFS volumes) gets a synthetic number
for the life of the mount instead.

The kernel holds a lookup count on every inode it was told about (each lookup and each
accepted readdirplus entry adds one) and gives them back with ``forget``; a node is dropped
when its count reaches zero, so browsing a million files does not grow the server without
bound.
"""

from __future__ import annotations

ROOT_INO = 1
SNAPSHOTS_INO = 2
WORKTREES_INO = 3
FIRST_SYNTHETIC_INO = 16
BACKING_BITS = 40
BACKING_LIMIT = 1 << BACKING_BITS

# Node kinds.
ROOT = "root"
SNAPSHOTS = "snapshots"      # @snapshots
WORKTREES = "worktrees"      # @worktrees
SNAPSHOT_ROOT = "snapshot"   # @snapshots/<id>
ENTRY = "entry"              # a file, directory or symlink inside a snapshot
LINK = "link"                # a tag, worktree or reference symlink


class Node:
    """What one inode number stands for. ``path`` is the backing path (bytes) of a snapshot
    root or entry; ``target`` the text of a synthetic symlink; ``xattrs`` the names of the
    backing file's own xattrs once asked (snapshot contents never change, so one
    ``llistxattr`` per node answers every later question)."""

    __slots__ = ("ino", "kind", "path", "snapshot_id", "disc", "target", "key", "lookups",
                 "xattrs")

    def __init__(self, ino: int, kind: str, *, path: bytes | None = None,
                 snapshot_id: str | None = None, disc: int = 0, target: bytes = b"",
                 key: tuple | None = None) -> None:
        self.ino = ino
        self.kind = kind
        self.path = path
        self.snapshot_id = snapshot_id
        self.disc = disc
        self.target = target
        self.key = key
        self.lookups = 0
        self.xattrs: tuple[bytes, ...] | None = None


class InodeTable:
    """Inode number → Node, with the kernel's lookup counts."""

    def __init__(self) -> None:
        self._nodes: dict[int, Node] = {}
        self._permanent = {ROOT_INO, SNAPSHOTS_INO, WORKTREES_INO}
        self._next_synthetic = FIRST_SYNTHETIC_INO
        self._synthetic_by_key: dict[tuple, int] = {}
        for ino, kind in ((ROOT_INO, ROOT), (SNAPSHOTS_INO, SNAPSHOTS),
                          (WORKTREES_INO, WORKTREES)):
            self._nodes[ino] = Node(ino, kind)

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, ino: int) -> Node | None:
        return self._nodes.get(ino)

    def synthetic_ino(self, key: tuple) -> int:
        """A number for a synthetic node, the same for the same *key* while it is known."""
        ino = self._synthetic_by_key.get(key)
        if ino is None:
            ino = self._next_synthetic
            self._next_synthetic += 1
            self._synthetic_by_key[key] = ino
        return ino

    def snapshot_ino(self, disc: int, backing_ino: int, path: bytes) -> int:
        if backing_ino < BACKING_LIMIT:
            return disc << BACKING_BITS | backing_ino
        return self.synthetic_ino(("big", disc, backing_ino, path))

    def ensure(self, ino: int, kind: str, **fields) -> Node:
        """The node for *ino*, created with *fields* if the table does not hold it yet."""
        node = self._nodes.get(ino)
        if node is None:
            node = self._nodes[ino] = Node(ino, kind, **fields)
        return node

    def remember(self, node: Node, count: int = 1) -> None:
        """The kernel now holds *count* more references to *node*."""
        node.lookups += count

    def forget(self, ino: int, count: int) -> None:
        node = self._nodes.get(ino)
        if node is None:
            return
        node.lookups -= count
        if node.lookups <= 0:
            self.drop_if_unused(ino)

    def drop_if_unused(self, ino: int) -> None:
        node = self._nodes.get(ino)
        if node is None or node.lookups > 0 or ino in self._permanent:
            return
        del self._nodes[ino]
        if node.key is not None:
            self._synthetic_by_key.pop(node.key, None)
