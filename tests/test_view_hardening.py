"""The view through the kernel, as its users meet it (issue 20): right answers, no
privilege leaks, limits that hold, friendly refusals. Every test mounts for real; the
security ones read as ``nobody`` through ``--allow-other``."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from volumes import jvs_view, mount_view, unmount_view, view_server_pid

from conftest import ROOT, mounted_fstype, requires_fuse, run_jvs, take_snapshot, wait_until
from jvs.descriptor import parse_descriptor

pytestmark = [pytest.mark.fuse, pytest.mark.slow, requires_fuse]

GO_FIXTURE = ROOT / "tests" / "fixtures" / "go-jvs-repo.tar.gz"


def _as_nobody(*argv: str) -> subprocess.CompletedProcess:
    user = pwd.getpwnam("nobody")
    return subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                           "--clear-groups", *argv], capture_output=True, text=True)


@pytest.fixture
def shared_dir():
    """A directory every user can traverse (pytest's tmp dirs are 0700 to others)."""
    base = Path(tempfile.mkdtemp(prefix="jvs-view-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    for view in base.glob("view*"):
        unmount_view(view)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mounted(tmp_path):
    """A fresh repository and its view; yields (repo, main, view)."""
    run_jvs("init", "repo", cwd=tmp_path)
    repo = tmp_path / "repo"
    view = tmp_path / "view"
    view.mkdir()
    (repo / "main" / "a.txt").write_text("a\n")
    take_snapshot(repo / "main", "first")
    with jvs_view(repo, view):
        yield repo, repo / "main", view


# ------------------------------------------------------------------ right answers

def test_latest_is_the_newest_unless_a_tag_or_note_is_exactly_latest(mounted):
    repo, main, view = mounted
    snaps = view / "@snapshots"
    noted = take_snapshot(main, "latest results of run 7")
    newest = take_snapshot(main, "a later one")
    assert wait_until(lambda: newest in os.listdir(snaps))
    assert os.readlink(snaps / "latest") == newest
    assert os.readlink(snaps / "latest results") == noted  # still a note prefix
    exact = take_snapshot(main, "latest")
    take_snapshot(main, "after the one noted latest")
    assert wait_until(lambda: os.path.lexists(snaps / exact) and
                 os.readlink(snaps / "latest") == exact)


def _old_discriminator(sid: str) -> int:
    return zlib.crc32(sid.encode()) % ((1 << 23) - 1) + 1


def _id_with_old_discriminator_of(sid: str) -> str:
    """Another snapshot ID that the old 23-bit scheme gave the same inode numbers."""
    want = _old_discriminator(sid)
    stamp = int(sid[:13]) + 1
    prefix = f"{stamp:013d}-".encode()
    seed = zlib.crc32(prefix)
    modulus = (1 << 23) - 1
    for i in range(1 << 32):
        if zlib.crc32(b"%08x" % i, seed) % modulus + 1 == want:
            return (prefix + b"%08x" % i).decode()
    raise AssertionError("no such ID")


def test_inodes_are_stable_across_mounts_and_never_reused_after_gc(mounted, tmp_path):
    repo, main, view = mounted
    snaps = view / "@snapshots"
    (main / "data").mkdir()
    (main / "data" / "x.bin").write_bytes(b"x" * 100)
    gone = take_snapshot(main, "to be collected")
    assert wait_until(lambda: gone in os.listdir(snaps))
    held = os.open(snaps / gone, os.O_RDONLY | os.O_DIRECTORY)  # as a shell's cwd
    try:
        gone_ino = os.fstat(held).st_ino
        # A snapshot whose ID the 23-bit scheme mapped onto the collected one's numbers.
        twin = _id_with_old_discriminator_of(gone)
        desc = parse_descriptor((repo / ".jvs/descriptors" / f"{gone}.json").read_bytes())
        shutil.copytree(repo / ".jvs/snapshots" / gone, repo / ".jvs/snapshots" / twin,
                        symlinks=True)
        (repo / ".jvs/descriptors" / f"{gone}.json").unlink()
        shutil.rmtree(repo / ".jvs/snapshots" / gone)
        sealed = dataclasses.replace(desc, snapshot_id=twin, note="the twin",
                                     raw=None).sealed()
        (repo / ".jvs/descriptors" / f"{twin}.json").write_bytes(sealed.to_bytes())
        assert wait_until(lambda: twin in os.listdir(snaps) and gone not in os.listdir(snaps))
        twin_st = os.stat(snaps / twin)
        assert twin_st.st_ino != gone_ino
        assert (snaps / twin / "data" / "x.bin").read_bytes() == b"x" * 100
        numbers = {p: os.lstat(snaps / twin / p).st_ino for p in ("", "data", "data/x.bin")}
    finally:
        os.close(held)
    run_jvs("umount", str(view))
    mount_view(repo, view)
    assert {p: os.lstat(snaps / twin / p).st_ino for p in numbers} == numbers


def test_a_descriptor_without_its_payload_is_not_served_nor_its_tag(mounted):
    repo, main, view = mounted
    snaps = view / "@snapshots"
    orphan = take_snapshot(main, "payload goes missing", "orphan")
    assert wait_until(lambda: orphan in os.listdir(snaps))
    shutil.rmtree(repo / ".jvs/snapshots" / orphan)
    assert wait_until(lambda: orphan not in os.listdir(snaps))
    assert "orphan" not in os.listdir(snaps)
    for name in (orphan, "orphan", orphan[-8:]):
        assert wait_until(lambda name=name: not os.path.lexists(snaps / name))  # cached 1 s
        with pytest.raises(OSError) as exc:
            os.lstat(snaps / name)
        assert exc.value.errno == errno.ENOENT  # not a symlink looping to itself


def test_a_descriptor_edited_after_the_view_saw_it_stops_being_served(mounted):
    repo, main, view = mounted
    snaps = view / "@snapshots"
    sid = take_snapshot(main, "honest note", "kept")
    assert wait_until(lambda: sid in os.listdir(snaps))
    assert os.listdir(snaps / sid)
    path = repo / ".jvs/descriptors" / f"{sid}.json"
    data = json.loads(path.read_text())
    data["note"] = "rewritten history"
    path.write_text(json.dumps(data, indent=2))  # in place: same file, checksum now wrong
    assert wait_until(lambda: sid not in os.listdir(snaps))
    assert wait_until(lambda: not os.path.lexists(snaps / sid))
    assert "kept" not in os.listdir(snaps)
    # Put right again, it is served again.
    data["note"] = "honest note"
    path.write_text(json.dumps(data, indent=2))
    assert wait_until(lambda: sid in os.listdir(snaps))


def test_link_count_and_ctime_do_not_change_when_a_later_snapshot_links_the_file(
        mounted, tmp_path):
    repo, main, view = mounted
    (main / "big.bin").write_bytes(b"b" * 5000)
    # Let its ctime leave the stat cache's racily-clean window (at most 0.1 s), so the
    # cache vouches for it and the next snapshot links it (a file changed just before a
    # snapshot starts is hashed again and copied).
    time.sleep(0.3)
    first = take_snapshot(main, "has big.bin")
    desc = json.loads((repo / ".jvs/descriptors" / f"{first}.json").read_text())
    if desc["engine"] != "copy":
        pytest.skip("only the copy engine links files across snapshots")
    path = view / "@snapshots" / first / "big.bin"
    assert wait_until(lambda: path.exists())
    before = os.stat(path)
    stored = repo / ".jvs/snapshots" / first / "big.bin"
    nlink = os.stat(stored).st_nlink
    (main / "a.txt").write_text("changed\n")
    take_snapshot(main, "links big.bin")
    assert os.stat(stored).st_nlink == nlink + 1  # the copy engine linked it
    other = tmp_path / "view2"
    other.mkdir()
    with jvs_view(repo, other):  # a fresh mount: nothing cached
        after = os.stat(other / "@snapshots" / first / "big.bin")
    assert (after.st_nlink, after.st_ctime_ns) == (before.st_nlink, before.st_ctime_ns) \
        == (1, before.st_ctime_ns)


def test_go_publish_marker_hidden_only_in_go_snapshots(tmp_path):
    subprocess.run(["tar", "xzf", str(GO_FIXTURE), "-C", str(tmp_path)], check=True)
    repo = tmp_path / "project"
    (repo / "main" / ".READY").write_text("a user's file\n")
    ours = take_snapshot(repo / "main", "ours, with a .READY of the user's")
    view = tmp_path / "view"
    view.mkdir()
    with jvs_view(repo, view):
        snaps = view / "@snapshots"
        go_ids = [n for n in os.listdir(snaps) if n[:1].isdigit() and n != ours]
        assert go_ids
        for sid in go_ids:
            assert (repo / ".jvs/snapshots" / sid / ".READY").exists()
            assert ".READY" not in os.listdir(snaps / sid)
            assert not os.path.lexists(snaps / sid / ".READY")
        assert (snaps / ours / ".READY").read_text() == "a user's file\n"


# ------------------------------------------------------------------ security

def test_a_swapped_entry_never_leaks_a_root_file_to_another_user(shared_dir):
    secret = shared_dir / "secret"
    secret.mkdir(mode=0o700)
    (secret / "shadow").write_text("TOPSECRET\n")
    os.chmod(secret / "shadow", 0o600)
    (secret / "data").mkdir()
    (secret / "data" / "x.txt").write_text("TOPSECRET in a dir\n")
    run_jvs("init", "repo", cwd=shared_dir)
    repo = shared_dir / "repo"
    os.chmod(repo, 0o755)
    (repo / "main" / "public.txt").write_text("public\n")
    (repo / "main" / "data").mkdir()
    (repo / "main" / "data" / "x.txt").write_text("public in a dir\n")
    for p in (repo / "main" / "public.txt", repo / "main" / "data" / "x.txt"):
        os.chmod(p, 0o644)
    sid = take_snapshot(repo / "main", "public data")
    view = shared_dir / "view"
    view.mkdir()
    mount_view(repo, view, "--allow-other")
    snap = view / "@snapshots" / sid
    # Their entries and attributes now sit in the kernel's cache (no contents read).
    first = _as_nobody("stat", "-c", "%s %a", str(snap / "public.txt"),
                       str(snap / "data" / "x.txt"))
    assert first.returncode == 0, first.stderr
    assert first.stdout == "7 644\n16 644\n"
    # Whoever can write the payload swaps a file, and a directory, for symlinks.
    stored = repo / ".jvs/snapshots" / sid
    (stored / "public.txt").unlink()
    (stored / "public.txt").symlink_to(secret / "shadow")
    shutil.rmtree(stored / "data")
    (stored / "data").symlink_to(secret / "data")
    for path in (snap / "public.txt", snap / "data" / "x.txt"):
        got = _as_nobody("cat", str(path))
        assert "TOPSEC" not in got.stdout  # (the kernel reads up to the cached size)
        assert got.returncode != 0
    run_jvs("umount", str(view))


def test_allow_other_honours_the_repository_roots_permissions(shared_dir):
    run_jvs("init", "repo", cwd=shared_dir)
    repo = shared_dir / "repo"
    (repo / "main" / "notes.txt").write_text("mine\n")
    os.chmod(repo / "main" / "notes.txt", 0o644)
    take_snapshot(repo / "main", "private")
    os.chmod(repo, 0o700)
    view = shared_dir / "view"
    view.mkdir()
    mount_view(repo, view, "--allow-other")
    denied = _as_nobody("ls", str(view / "@snapshots"))
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert _as_nobody("cat", str(view / "@worktrees/main/notes.txt")).returncode != 0
    os.chmod(repo, 0o755)  # the owner opens it up: the view follows without a remount
    assert wait_until(lambda: _as_nobody("cat", str(view / "@worktrees/main/notes.txt"))
                 .stdout == "mine\n")
    run_jvs("umount", str(view))


# ------------------------------------------------------------------ limits

def test_a_server_started_with_1024_open_files_serves_1500(tmp_path):
    run_jvs("init", "repo", cwd=tmp_path)
    repo = tmp_path / "repo"
    many = repo / "main" / "many"
    many.mkdir()
    for i in range(1500):
        (many / f"f{i:04d}").write_text(str(i))
    sid = take_snapshot(repo / "main", "1500 files")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard limit on open files is {hard}")
    view = tmp_path / "view"
    view.mkdir()

    def soft_1024() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    mount_view(repo, view, preexec_fn=soft_1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    held = []
    try:
        pid = view_server_pid(view)
        with open(f"/proc/{pid}/limits") as f:
            assert "Max open files" in f.read()
        for i in range(1500):
            held.append(open(view / "@snapshots" / sid / "many" / f"f{i:04d}", "rb"))
        assert [f.read() for f in held] == [str(i).encode() for i in range(1500)]
    finally:
        for f in held:
            f.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        run_jvs("umount", str(view))


# ------------------------------------------------------------------ friendly

def test_foreground_prints_serving_only_once_its_checks_passed(repo, tmp_path):
    out = run_jvs("mount", str(tmp_path / "missing"), "-C", str(repo), "--foreground",
                  check=False)
    assert out.returncode == 1 and "E_NOT_FOUND" in out.stderr
    assert "Serving" not in out.stderr


def test_mount_point_refusals_are_right_and_helpful(repo, tmp_path):
    inside = run_jvs("mount", str(repo / "main" / "view"), "-C", str(repo), check=False)
    assert inside.returncode == 1 and "inside the repository" in inside.stderr
    assert "mkdir" not in inside.stderr
    (tmp_path / "file").write_text("")
    a_file = run_jvs("mount", str(tmp_path / "file"), "-C", str(repo), check=False)
    assert a_file.returncode == 1
    assert a_file.stderr.startswith("jvs: E_USAGE:") and "not a directory" in a_file.stderr


def test_umount_of_a_busy_view_refuses_then_detaches_with_lazy(mounted):
    repo, main, view = mounted
    shell = subprocess.Popen(["sleep", "60"], cwd=view / "@snapshots")
    try:
        busy = run_jvs("umount", str(view), check=False)
        assert busy.returncode == 1 and "E_BUSY" in busy.stderr and "--lazy" in busy.stderr
        assert mounted_fstype(view) == "fuse.jvs"
        lazy = run_jvs("umount", "--lazy", str(view))
        assert "Detached" in lazy.stdout
        assert mounted_fstype(view) is None
    finally:
        shell.kill()
        shell.wait()


def test_df_listings_cwd_and_help_are_what_users_expect(mounted):
    repo, main, view = mounted
    df = subprocess.run(["df", "--output=size,pcent", str(view), str(repo)],
                        capture_output=True, text=True, check=True).stdout.splitlines()
    assert df[1].split() == df[2].split()  # the repository's disk, not "100%" full
    sid = os.listdir(view / "@snapshots")[0]
    for where in (view, view / "@snapshots", view / "@snapshots" / sid):
        listed = subprocess.run(["ls", "-a", str(where)], capture_output=True, text=True,
                                check=True).stdout.split()
        assert listed[:2] == [".", ".."]
    assert os.stat(view / "@snapshots" / sid / "..").st_ino == os.stat(view / "@snapshots").st_ino
    assert os.readlink(f"/proc/{view_server_pid(view)}/cwd") == "/"
    helped = run_jvs("mount", "--help").stdout
    for phrase in ("latest", "short ID", "note", "jvs umount", "outside the repository",
                   "JVS_MOUNT_LOG"):
        assert phrase in helped


def test_missing_dev_fuse_is_explained(repo, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    view = tmp_path / "view"
    view.mkdir()
    # A mount namespace of its own whose /dev has no fuse device.
    script = (f"mount -t tmpfs tmpfs /dev && exec {sys.executable} -m jvs mount {view} "
              f"-C {repo}")
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          script], capture_output=True, text=True)
    if "unshare:" in out.stderr or "mount:" in out.stderr:
        pytest.skip(f"cannot make a mount namespace here: {out.stderr.strip()}")
    assert out.returncode == 1 and "/dev/fuse is missing" in out.stderr
    assert "hint" in out.stderr and "modprobe fuse" in out.stderr


# A mount the code before this fix could not unmount: last, so that it spoils no other test.
def test_mountinfo_with_a_non_utf8_mount_point_breaks_nothing(tmp_path):
    run_jvs("init", "repo", cwd=tmp_path)
    repo = tmp_path / "repo"
    take_snapshot(repo / "main", "one", "one")
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9 view")  # Latin-1, not UTF-8
    os.mkdir(odd)
    plain = tmp_path / "plain"
    plain.mkdir()
    jvs = [sys.executable, "-m", "jvs"]
    try:
        first = subprocess.run([*jvs, "mount", odd, "-C", str(repo)], capture_output=True)
        assert first.returncode == 0, first.stderr
        assert b"one" in os.listdir(os.path.join(odd, b"@snapshots"))
        # Every other mount and umount reads the mount table that now holds it.
        second = subprocess.run([*jvs, "mount", str(plain), "-C", str(repo)],
                                capture_output=True)
        assert second.returncode == 0, second.stderr
        assert b"Traceback" not in second.stderr
        busy = subprocess.run([*jvs, "mount", odd, "-C", str(repo)], capture_output=True)
        assert busy.returncode == 1 and b"E_BUSY" in busy.stderr
        for where in (plain, odd):
            done = subprocess.run([*jvs, "umount", where], capture_output=True)
            assert done.returncode == 0, done.stderr
        assert mounted_fstype(plain) is None and mounted_fstype(odd) is None
    finally:
        for where in (plain, odd):
            unmount_view(where)
