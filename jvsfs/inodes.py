"""The inode table: one node per inode the kernel knows, counted and forgotten.

Inode numbers are stable, unique and never reused, so ``find``, ``du``, ``tar`` and
``rsync -H`` work, a shell whose working directory is in a collected snapshot never finds
itself in another one, and numbers do not change from mount to mount (a common complaint
about ``borg mount``)::

    1, 2, 3        the root, @snapshots, @worktrees
    hash(key)      everything else: 2**62 plus 62 bits of BLAKE2b of what the node is —
                   a snapshot root by its ID; a file inside a snapshot by the snapshot ID and
                   its backing ``st_ino`` (so hard links stay hard links); a symlink by its
                   name and target (so a moved tag or head is a new inode, and the kernel
                   never serves an old target under the new number)

A snapshot ID is never made twice (a CSPRNG part), so a number, once given out, never names
anything else: a 64-bit number per (snapshot, file) needs no table kept across mounts or
across gc. Two keys meet on one number with probability about n²/2**63 for n numbers the
kernel holds at once (~1e-5 for ten million); should it happen, the table notices (every
node keeps its key) and the newcomer takes the next probe for the life of the mount.

The kernel holds a lookup count on every inode it was told about (each lookup and each
accepted readdirplus entry adds one) and gives them back with ``forget``; a node is dropped
when its count reaches zero, so browsing a million files does not grow the server without
bound.
"""

from __future__ import annotations

import hashlib
import struct

ROOT_INO = 1
SNAPSHOTS_INO = 2
WORKTREES_INO = 3
_HASHED = 1 << 62
_HASH_MASK = _HASHED - 1


def snapshot_key(snapshot_id: str) -> bytes:
    return b"s\0" + snapshot_id.encode()


def entry_key(snapshot_id: str, backing_ino: int) -> bytes:
    return b"e\0" + snapshot_id.encode() + b"\0" + struct.pack("<Q", backing_ino)


def link_key(kind: str, name: bytes, target: bytes) -> bytes:
    return b"l\0" + kind.encode() + b"\0" + name + b"\0" + target


def stable_ino(key: bytes) -> int:
    digest = hashlib.blake2b(key, digest_size=8, person=b"jvs-view").digest()
    return _HASHED | (int.from_bytes(digest, "little") & _HASH_MASK)


class InodeTable:
    """Inode number → node, with the kernel's lookup counts. A node is any object with
    ``ino``, ``key`` and ``lookups`` attributes (see nodes.py)."""

    def __init__(self, permanent) -> None:
        self._nodes: dict[int, object] = {}
        self._by_key: dict[bytes, int] = {}
        self._permanent = set()
        for node in permanent:
            self._nodes[node.ino] = node
            self._permanent.add(node.ino)

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, ino: int):
        return self._nodes.get(ino)

    def claim(self, key: bytes, make):
        """The node for *key*: the one the table holds, or ``make(ino)`` under its stable
        number (or, if another key holds that number now, the next free probe)."""
        ino = self._by_key.get(key)
        if ino is not None:
            return self._nodes[ino]
        ino = stable_ino(key)
        probe = 0
        while ino in self._nodes:
            probe += 1
            ino = stable_ino(key + b"\0" + struct.pack("<I", probe))
        node = make(ino)
        self._nodes[ino] = node
        self._by_key[key] = ino
        return node

    def remember(self, node, count: int = 1) -> None:
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
        if self._by_key.get(node.key) == ino:
            del self._by_key[node.key]
