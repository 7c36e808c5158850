"""The pyfuse3 adapter at the Operations level (pytest-trio): node logic that is awkward to
reach through the kernel — readdir offsets and rejected entries, forget, stale inodes."""

from __future__ import annotations

import errno
import os

import pyfuse3
import pytest

from conftest import run_jvs
from jvs.repo import Repo
from jvsfs.catalog import ViewCatalog
from jvsfs.fuse import ViewOperations
from jvsfs.inodes import SNAPSHOTS_INO
from jvsfs.view import View


@pytest.fixture
def ops(repo, main_wt):
    many = main_wt / "many"
    many.mkdir()
    for i in range(500):
        (many / f"f{i:04d}").write_text(str(i))
    (main_wt / "weights.bin").write_bytes(os.urandom(300_000))
    sid = run_jvs("snapshot", "first", "--tag", "t1", "--json", cwd=main_wt).json["snapshot_id"]
    operations = ViewOperations(View(ViewCatalog(Repo(repo))))
    operations.sid = sid
    return operations


class Collector:
    """Stands in for the kernel's readdir buffer: accepts *room* entries, then is full."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.entries: list[tuple[bytes, int, int]] = []

    def __call__(self, token, name, attrs, next_id):
        if len(self.entries) >= self.room:
            return False
        self.entries.append((name, attrs.st_ino, next_id))
        return True


async def _list(ops, ino, room, monkeypatch):
    fh = await ops.opendir(ino, None)
    seen, offset = [], 0
    try:
        while True:
            collector = Collector(room)
            monkeypatch.setattr(pyfuse3, "readdir_reply", collector)
            await ops.readdir(fh, offset, None)
            if not collector.entries:
                return seen
            seen += collector.entries
            offset = collector.entries[-1][2]
    finally:
        await ops.releasedir(fh)


@pytest.mark.trio
async def test_readdir_resumes_at_the_offset_it_handed_out(ops, monkeypatch):
    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    many = await ops.lookup(root.st_ino, b"many")
    entries = await _list(ops, many.st_ino, 37, monkeypatch)
    names = [name for name, _, _ in entries]
    assert names[:2] == [b".", b".."]
    assert sorted(names[2:]) == [f"f{i:04d}".encode() for i in range(500)]
    assert entries[0][1] == many.st_ino and entries[1][1] == root.st_ino
    # Every accepted entry holds one kernel reference; a refused one holds none, and so
    # do . and .. (the kernel takes none on them).
    for _, ino, _ in entries[2:]:
        assert ops.view.inodes.get(ino).lookups == 1
    assert ops.view.inodes.get(many.st_ino).lookups == 1


@pytest.mark.trio
async def test_forget_releases_nodes_and_a_stale_inode_fails_cleanly(ops, monkeypatch):
    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    many = await ops.lookup(root.st_ino, b"many")
    before = len(ops.view.inodes)
    entries = await _list(ops, many.st_ino, 1000, monkeypatch)
    assert len(ops.view.inodes) == before + 500
    await ops.forget([(ino, 1) for _, ino, _ in entries[2:]])
    assert len(ops.view.inodes) == before
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.getattr(entries[2][1])
    assert exc.value.errno == errno.ENOENT


@pytest.mark.trio
async def test_reads_inline_and_in_threads_agree(ops):
    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    weights = await ops.lookup(root.st_ino, b"weights.bin")
    info = await ops.open(weights.st_ino, os.O_RDONLY, None)
    assert info.keep_cache and not info.direct_io
    try:
        inline = await ops.read(info.fh, 1000, 131072)
        ops.read_in_thread = True
        threaded = await ops.read(info.fh, 1000, 131072)
    finally:
        await ops.release(info.fh)
    assert inline == threaded and len(inline) == 131072


@pytest.mark.trio
async def test_references_are_answered_as_symlinks(ops):
    short = await ops.lookup(SNAPSHOTS_INO, ops.sid[-8:].encode())
    assert await ops.readlink(short.st_ino, None) == ops.sid.encode()
    tag = await ops.lookup(SNAPSHOTS_INO, b"t1")
    assert await ops.readlink(tag.st_ino, None) == ops.sid.encode()
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.lookup(SNAPSHOTS_INO, b"nothing-like-this")
    assert exc.value.errno == errno.ENOENT


@pytest.mark.trio
async def test_every_write_operation_is_erofs(ops):
    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    ino = root.st_ino
    calls = [
        ops.setattr(ino, None, None, None, None),
        ops.setxattr(ino, b"user.x", b"1", None),
        ops.removexattr(ino, b"user.x", None),
        ops.mknod(ino, b"n", 0o644, 0, None),
        ops.mkdir(ino, b"d", 0o755, None),
        ops.unlink(ino, b"weights.bin", None),
        ops.rmdir(ino, b"many", None),
        ops.symlink(ino, b"l", b"t", None),
        ops.rename(ino, b"weights.bin", ino, b"w2", 0, None),
        ops.link(ino, ino, b"h", None),
        ops.create(ino, b"c", 0o644, os.O_WRONLY, None),
        ops.write(0, 0, b"x"),
    ]
    for call in calls:
        with pytest.raises(pyfuse3.FUSEError) as exc:
            await call
        assert exc.value.errno == errno.EROFS
    weights = await ops.lookup(ino, b"weights.bin")
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.open(weights.st_ino, os.O_RDWR, None)
    assert exc.value.errno == errno.EROFS


@pytest.mark.trio
async def test_a_handler_bug_fails_one_request_not_the_server(ops):
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.readdir(12345, 0, None)  # no such directory handle: a KeyError inside
    assert exc.value.errno == errno.EIO
    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    assert root.st_ino > 2**40


@pytest.mark.trio
async def test_without_xattrs_the_kernel_is_told_to_stop_asking(ops):
    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    assert await ops.getxattr(root.st_ino, b"user.jvs.note", None) == b"first"
    ops.xattrs = False
    for call in (ops.getxattr(root.st_ino, b"user.jvs.note", None),
                 ops.listxattr(root.st_ino, None)):
        with pytest.raises(pyfuse3.FUSEError) as exc:
            await call
        assert exc.value.errno == errno.ENOSYS


@pytest.mark.trio
async def test_a_slow_catalog_refresh_stalls_only_the_lookup_that_waits_for_it(ops):
    """The refresh runs in a worker thread: while it waits on slow metadata (held here
    until the read is done), a read of an open file is answered."""
    import threading

    import trio

    root = await ops.lookup(SNAPSHOTS_INO, ops.sid.encode())
    weights = await ops.lookup(root.st_ino, b"weights.bin")
    info = await ops.open(weights.st_ino, os.O_RDONLY, None)
    catalog = ops.view.catalog
    release, entered = threading.Event(), threading.Event()
    real = catalog._refresh_snapshots

    def slow(served):
        entered.set()
        release.wait(30)
        return real(served)

    catalog._refresh_snapshots = slow
    catalog.min_interval = 0
    done = []
    try:
        async with trio.open_nursery() as nursery:
            async def listing() -> None:
                done.append(await ops.lookup(SNAPSHOTS_INO, b"t1"))

            nursery.start_soon(listing)
            await trio.to_thread.run_sync(entered.wait, 30)
            data = await ops.read(info.fh, 0, 4096)  # answered while the refresh waits
            assert len(data) == 4096 and not done
            release.set()
    finally:
        release.set()
        await ops.release(info.fh)
    assert await ops.readlink(done[0].st_ino, None) == ops.sid.encode()
