"""The view's model alone (jvsfs.catalog, jvsfs.inodes, jvsfs.nodes): no FUSE, no kernel."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess

import pytest

from conftest import ROOT, run_jvs
from jvs.repo import Repo
from jvsfs.catalog import ViewCatalog
from jvsfs.inodes import ROOT_INO, SNAPSHOTS_INO, WORKTREES_INO, InodeTable
from jvsfs.view import View

GO_FIXTURE = ROOT / "tests" / "fixtures" / "go-jvs-repo.tar.gz"


def _snapshot(main, note, *tags):
    args = ["snapshot", note, "--json"]
    for tag in tags:
        args += ["--tag", tag]
    return run_jvs(*args, cwd=main).json["snapshot_id"]


@pytest.fixture
def two_snapshots(repo, main_wt):
    (main_wt / "logs").mkdir()
    (main_wt / "logs" / "run.txt").write_text("loss 1\n")
    (main_wt / "big.bin").write_bytes(b"x" * 10000)
    first = _snapshot(main_wt, "first", "baseline")
    (main_wt / "logs" / "run.txt").write_text("loss 2\n")
    second = _snapshot(main_wt, "second", "exp1")
    return Repo(repo), first, second


def _names(view, ino):
    listing = view.opendir(ino)
    try:
        names = [listing.names[i] for i in range(len(listing.names))
                 if view.listing_entry(listing, i) is not None]
        assert names[:2] == [b".", b".."]  # every listing starts with them
        return names[2:]
    finally:
        listing.close()


def _walk(view, ino, *names):
    for name in names:
        ino = view.lookup(ino, name).ino
    return ino


def test_snapshots_tags_and_worktree_heads_are_listed(two_snapshots):
    repo, first, second = two_snapshots
    view = View(ViewCatalog(repo))
    assert _names(view, ROOT_INO) == [b"@snapshots", b"@worktrees"]
    assert _names(view, SNAPSHOTS_INO) == [first.encode(), second.encode(), b"baseline", b"exp1"]
    assert view.readlink(view.lookup(SNAPSHOTS_INO, b"baseline").ino) == first.encode()
    link = view.lookup(WORKTREES_INO, b"main").ino
    assert view.readlink(link) == b"../@snapshots/" + second.encode()


def test_snapshot_contents_pass_through(two_snapshots):
    repo, first, second = two_snapshots
    view = View(ViewCatalog(repo))
    ino = _walk(view, SNAPSHOTS_INO, first.encode(), b"logs", b"run.txt")
    fd = view.open(ino, os.O_RDONLY)
    try:
        assert os.pread(fd, 100, 0) == b"loss 1\n"
    finally:
        os.close(fd)
    assert view.getattr(ino).st.st_size == 7


def test_inode_numbers_are_unique_across_snapshots_and_stable_across_mounts(two_snapshots):
    repo, first, second = two_snapshots
    view = View(ViewCatalog(repo))
    a = _walk(view, SNAPSHOTS_INO, first.encode(), b"big.bin")
    b = _walk(view, SNAPSHOTS_INO, second.encode(), b"big.bin")
    assert a != b
    again = View(ViewCatalog(repo))
    assert _walk(again, SNAPSHOTS_INO, first.encode(), b"big.bin") == a
    assert a > 2**40  # outside the synthetic range


def test_hard_links_inside_a_snapshot_share_one_inode(repo, main_wt):
    (main_wt / "a").write_text("same")
    sid = _snapshot(main_wt, "links")
    payload = Repo(repo).payload_dir(sid)
    os.link(payload / "a", payload / "b")  # as an engine that keeps hard links leaves it
    view = View(ViewCatalog(Repo(repo)))
    root = view.lookup(SNAPSHOTS_INO, sid.encode()).ino
    assert view.lookup(root, b"a").ino == view.lookup(root, b"b").ino


def test_a_tampered_descriptor_is_not_served(two_snapshots):
    repo, first, second = two_snapshots
    path = repo.descriptor_path(first)
    data = json.loads(path.read_text())
    data["note"] = "rewritten history"
    path.write_text(json.dumps(data, indent=2))
    view = View(ViewCatalog(repo))
    assert first.encode() not in _names(view, SNAPSHOTS_INO)
    with pytest.raises(OSError) as exc:
        view.lookup(SNAPSHOTS_INO, first.encode())
    assert exc.value.errno == errno.ENOENT
    # The tag that only the tampered snapshot carried points nowhere any more.
    assert b"baseline" not in _names(view, SNAPSHOTS_INO)


def test_new_and_collected_snapshots_show_without_remounting(two_snapshots, main_wt):
    repo, first, second = two_snapshots
    view = View(ViewCatalog(repo, min_interval=0))
    third = _snapshot(main_wt, "third", "exp1")
    assert third.encode() in _names(view, SNAPSHOTS_INO)
    assert view.readlink(view.lookup(SNAPSHOTS_INO, b"exp1").ino) == third.encode()
    repo.descriptor_path(first).unlink()
    shutil.rmtree(repo.payload_dir(first))
    assert first.encode() not in _names(view, SNAPSHOTS_INO)
    with pytest.raises(OSError):
        view.lookup(SNAPSHOTS_INO, first.encode())


def test_go_publish_marker_is_hidden_only_in_snapshots_go_wrote(tmp_path):
    subprocess.run(["tar", "xzf", str(GO_FIXTURE), "-C", str(tmp_path)], check=True)
    repo = Repo(tmp_path / "project")
    view = View(ViewCatalog(repo))
    sid = sorted(view.catalog.snapshots)[0]
    assert view.catalog.snapshots[sid].has_ready_marker
    assert (repo.payload_dir(sid) / ".READY").exists()
    root = view.lookup(SNAPSHOTS_INO, sid.encode()).ino
    assert b".READY" not in _names(view, root)
    with pytest.raises(OSError):
        view.lookup(root, b".READY")


def test_a_users_ready_file_is_shown_in_our_snapshots(repo, main_wt):
    (main_wt / ".READY").write_text("mine\n")
    sid = _snapshot(main_wt, "with a .READY of mine")
    view = View(ViewCatalog(Repo(repo)))
    root = view.lookup(SNAPSHOTS_INO, sid.encode()).ino
    assert b".READY" in _names(view, root)
    ready = view.lookup(root, b".READY").ino
    fd = view.open(ready, os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"mine\n"
    finally:
        os.close(fd)


def test_virtual_xattrs_on_a_snapshot_root(two_snapshots):
    repo, first, second = two_snapshots
    view = View(ViewCatalog(repo))
    root = view.lookup(SNAPSHOTS_INO, second.encode()).ino
    names = view.listxattr(root)
    assert {b"user.jvs.note", b"user.jvs.tags", b"user.jvs.parent",
            b"user.jvs.created_at"} <= set(names)
    assert view.getxattr(root, b"user.jvs.note") == b"second"
    assert view.getxattr(root, b"user.jvs.tags") == b"exp1"
    assert view.getxattr(root, b"user.jvs.parent") == first.encode()


def _acl(uid: int) -> bytes:
    """A POSIX access ACL in the kernel's xattr form: owner rw, user *uid* r, group r, mask r,
    other r (what ``setfacl -m u:UID:r`` stores)."""
    undefined = 0xFFFFFFFF
    entries = ((0x01, 6, undefined), (0x02, 4, uid), (0x04, 4, undefined),
               (0x10, 4, undefined), (0x20, 4, undefined))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_files_own_xattrs_and_acls_are_passed_through(repo, main_wt):
    log = main_wt / "run.log"
    log.write_text("loss 1\n")
    plain = main_wt / "plain.txt"
    plain.write_text("x")
    try:
        os.setxattr(log, "user.origin", b"gpu1")
        os.setxattr(log, "system.posix_acl_access", _acl(4242))
        os.setxattr(main_wt, "user.kind", b"worktree")
    except OSError as exc:
        pytest.skip(f"this filesystem holds no user xattrs or ACLs: {exc}")
    sid = _snapshot(main_wt, "with xattrs")
    view = View(ViewCatalog(Repo(repo)))
    root = view.lookup(SNAPSHOTS_INO, sid.encode()).ino
    ino = view.lookup(root, b"run.log").ino
    for _ in range(2):  # the second answer comes from the node's cached names
        assert {b"user.origin", b"system.posix_acl_access"} <= set(view.listxattr(ino))
        assert view.getxattr(ino, b"user.origin") == b"gpu1"
        assert view.getxattr(ino, b"system.posix_acl_access") == _acl(4242)
    assert view.getxattr(root, b"user.kind") == b"worktree"
    assert b"user.kind" in view.listxattr(root) and b"user.jvs.note" in view.listxattr(root)

    # Absent: what `ls -l` asks of every entry is "not supported", so it stops asking;
    # any other name is "no such attribute".
    plain_ino = view.lookup(root, b"plain.txt").ino
    for name in (b"security.selinux", b"system.posix_acl_access", b"system.posix_acl_default"):
        with pytest.raises(OSError) as exc:
            view.getxattr(plain_ino, name)
        assert exc.value.errno == errno.EOPNOTSUPP
    for where in (plain_ino, ino, root, SNAPSHOTS_INO):
        with pytest.raises(OSError) as exc:
            view.getxattr(where, b"user.absent")
        assert exc.value.errno == errno.ENODATA


def test_opening_for_write_is_refused(two_snapshots):
    repo, first, _ = two_snapshots
    view = View(ViewCatalog(repo))
    ino = _walk(view, SNAPSHOTS_INO, first.encode(), b"big.bin")
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC):
        with pytest.raises(OSError) as exc:
            view.open(ino, flags)
        assert exc.value.errno == errno.EROFS


def test_references_resolve_to_snapshots(two_snapshots):
    repo, first, second = two_snapshots
    catalog = View(ViewCatalog(repo)).catalog
    assert catalog.resolve(first[-8:]) == first
    assert catalog.resolve("second") == second
    assert catalog.resolve("latest") == second
    assert catalog.resolve("no-such-thing") is None
    assert catalog.resolve("HEAD") is None and catalog.resolve("HEAD~1") is None
    # ancestry suffixes, as on the command line
    assert catalog.resolve(f"{second[-8:]}^") == first
    assert catalog.resolve("latest~1") == first
    assert catalog.resolve("second~1") == first
    assert catalog.resolve("second~2") is None  # before the first snapshot


def test_latest_is_taken_over_only_by_a_tag_or_note_named_latest(two_snapshots, main_wt):
    repo, first, second = two_snapshots
    _snapshot(main_wt, "newest")
    noted = _snapshot(main_wt, "latest results of run 7")  # a note that starts with it
    newest = _snapshot(main_wt, "the very newest")
    catalog = View(ViewCatalog(repo, min_interval=0)).catalog
    assert catalog.resolve("latest") == newest
    assert catalog.resolve("latest results") == noted  # a note prefix still resolves
    exact = _snapshot(main_wt, "latest")
    _snapshot(main_wt, "after the one noted latest")
    catalog.refresh()
    assert catalog.resolve("latest") == exact
    # "latest" is refused as a new tag now; a repository written before (or by the Go
    # implementation) may still carry it.
    from jvs.descriptor import read_descriptor, relabeled, replace_descriptor

    tagged = _snapshot(main_wt, "tagged")
    replace_descriptor(repo, relabeled(read_descriptor(repo, tagged), tags=("latest",)))
    _snapshot(main_wt, "after the one tagged latest")
    catalog.refresh()
    assert catalog.resolve("latest") == tagged


def test_inode_numbers_never_depend_on_order_or_collide(two_snapshots):
    from jvsfs.inodes import entry_key, snapshot_key, stable_ino

    ids = [f"{1796288886239 + i:013d}-{os.urandom(4).hex()}" for i in range(20_000)]
    roots = {stable_ino(snapshot_key(sid)) for sid in ids}
    assert len(roots) == 20_000
    files = {stable_ino(entry_key(sid, ino)) for sid in ids[:200] for ino in range(2, 502)}
    assert len(files) == 200 * 500 and not files & roots
    assert min(roots | files) >= 1 << 62 and max(roots | files) < 1 << 63
    # The same snapshot, the same numbers, in any view (no allocation order).
    repo, first, second = two_snapshots
    one, two = View(ViewCatalog(repo)), View(ViewCatalog(repo))
    two.lookup(SNAPSHOTS_INO, second.encode())
    assert one.lookup(SNAPSHOTS_INO, first.encode()).ino == \
        two.lookup(SNAPSHOTS_INO, first.encode()).ino == stable_ino(snapshot_key(first))


def test_forget_drops_nodes_so_browsing_does_not_grow_the_table():
    from jvsfs.nodes import Node, RootNode

    table = InodeTable([RootNode(ROOT_INO)])
    base = len(table)
    keys = [b"k%d" % i for i in range(1000)]
    nodes = [table.claim(key, lambda ino, key=key: Node(ino, key)) for key in keys]
    for node in nodes:
        table.remember(node)
    assert table.claim(keys[5], None) is nodes[5]  # known keys keep their node
    assert len(table) == base + 1000
    table.forget(nodes[0].ino, 1)
    for node in nodes[1:]:
        table.remember(node)  # looked up twice
        table.forget(node.ino, 2)
    assert len(table) == base
    table.forget(ROOT_INO, 5)  # the fixed nodes are never dropped
    assert table.get(ROOT_INO) is not None


def test_a_large_directory_is_listed_by_index(repo, main_wt):
    big = main_wt / "many"
    big.mkdir()
    for i in range(3000):
        (big / f"f{i:05d}").write_bytes(b"")
    sid = _snapshot(main_wt, "many")
    view = View(ViewCatalog(Repo(repo)))
    many = _walk(view, SNAPSHOTS_INO, sid.encode(), b"many")
    listing = view.opendir(many)
    try:
        # Any window of offsets gives the same entries as one pass.
        firsts = [listing.names[i] for i in range(0, 1500)]
        rest = [listing.names[i] for i in range(1500, len(listing.names))]
        assert sorted(firsts + rest) == \
            [b".", b"..", *(f"f{i:05d}".encode() for i in range(3000))]
        assert view.listing_entry(listing, 2999) is not None
    finally:
        listing.close()


def test_a_stored_symlinks_target_is_read_once(repo, main_wt):
    (main_wt / "target.txt").write_text("t\n")
    os.symlink("target.txt", main_wt / "link")
    sid = _snapshot(main_wt, "with a link")
    view = View(ViewCatalog(Repo(repo)))
    ino = _walk(view, SNAPSHOTS_INO, sid.encode(), b"link")
    calls = []
    real = view.store.readlink
    view.store.readlink = lambda *args: calls.append(args) or real(*args)
    assert [view.readlink(ino) for _ in range(3)] == [b"target.txt"] * 3
    assert len(calls) == 1  # snapshot contents never change
