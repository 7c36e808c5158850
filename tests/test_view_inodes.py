"""The view's inode table alone (jvsfs/inodes.py, no FUSE): numbers stable across mounts
and unique, counted lookups, forget, and a collision that cannot hand one number to two
things."""

from __future__ import annotations

from dataclasses import dataclass

from jvsfs.inodes import (
    ROOT_INO,
    SNAPSHOTS_INO,
    InodeTable,
    entry_key,
    link_key,
    snapshot_key,
    stable_ino,
)

SID = "1796302044192-46206ebf"


@dataclass
class Node:
    ino: int
    key: bytes
    lookups: int = 0


def _table() -> InodeTable:
    return InodeTable([Node(ROOT_INO, b"root"), Node(SNAPSHOTS_INO, b"snapshots")])


def test_numbers_are_the_same_in_every_mount_and_differ_per_thing():
    keys = [snapshot_key(SID), entry_key(SID, 1234), entry_key(SID, 1235),
            entry_key("1796302044192-46206ebe", 1234), link_key("tag", b"v1", SID.encode()),
            link_key("tag", b"v1", b"1796302044192-46206ebe")]
    first = [_table().claim(k, lambda ino, k=k: Node(ino, k)).ino for k in keys]
    second = [_table().claim(k, lambda ino, k=k: Node(ino, k)).ino for k in keys]
    assert first == second == [stable_ino(k) for k in keys]
    assert len(set(first)) == len(keys)
    assert all(ino > SNAPSHOTS_INO and ino < 2**63 for ino in first)


def test_claim_returns_the_node_the_kernel_already_has():
    table = _table()
    made = []
    node = table.claim(snapshot_key(SID), lambda ino: made.append(ino) or Node(ino, b"s"))
    again = table.claim(snapshot_key(SID), lambda ino: made.append(ino) or Node(ino, b"s"))
    assert again is node and len(made) == 1 and table.get(node.ino) is node


def test_forget_drops_a_node_at_zero_and_keeps_the_permanent_ones():
    table = _table()
    key = entry_key(SID, 7)
    node = table.claim(key, lambda ino: Node(ino, key))
    table.remember(node, 2)
    table.forget(node.ino, 1)
    assert table.get(node.ino) is node
    table.forget(node.ino, 1)
    assert table.get(node.ino) is None and len(table) == 2
    # Looked up again later: the same number (the kernel may still cache it by number).
    assert table.claim(key, lambda ino: Node(ino, key)).ino == node.ino
    table.forget(ROOT_INO, 5)
    assert table.get(ROOT_INO) is not None
    table.forget(123456, 1)  # unknown numbers are ignored


def test_a_collision_gives_the_newcomer_another_number():
    key = entry_key(SID, 99)
    squatter = Node(stable_ino(key), b"someone else")
    table = InodeTable([squatter])
    node = table.claim(key, lambda ino: Node(ino, key))
    assert node.ino != squatter.ino and table.get(squatter.ino) is squatter
    assert table.claim(key, lambda ino: Node(ino, key)) is node
