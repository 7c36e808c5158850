"""The view through the kernel: real ``jvs mount`` of a real repository (SPEC §11)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from volumes import jvs_view, view_server_pid

from conftest import mounted_fstype, requires_fuse, run_jvs, take_snapshot, wait_until

pytestmark = [pytest.mark.fuse, pytest.mark.slow, requires_fuse]


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _acl(uid: int) -> bytes:
    """A POSIX access ACL in the kernel's xattr form (``setfacl -m u:UID:r``)."""
    undefined = 0xFFFFFFFF
    entries = ((0x01, 6, undefined), (0x02, 4, uid), (0x04, 4, undefined),
               (0x10, 4, undefined), (0x20, 4, undefined))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


@pytest.fixture(scope="module")
def mounted(tmp_path_factory):
    """A repository with three snapshots, mounted once for the module."""
    base = tmp_path_factory.mktemp("view")
    run_jvs("init", "repo", cwd=base)
    repo = base / "repo"
    main = repo / "main"
    (main / "logs").mkdir()
    (main / "logs" / "train.log").write_text("epoch 1 loss 0.9\n")
    (main / "data").mkdir()
    for i in range(50):
        (main / "data" / f"part{i:03d}.csv").write_text(f"row,{i}\n" * (i + 1))
    os.symlink("logs/train.log", main / "latest.log")
    try:
        os.setxattr(main / "logs" / "train.log", "user.origin", b"gpu1")
        os.setxattr(main / "logs" / "train.log", "system.posix_acl_access", _acl(4242))
    except OSError:
        pass
    baseline = take_snapshot(main, "baseline run", "baseline")
    (main / "logs" / "train.log").write_text("epoch 2 loss 0.5\n")
    exp1 = take_snapshot(main, "experiment one", "exp1")
    view = base / "view"
    view.mkdir()
    with jvs_view(repo, view):
        yield {"repo": repo, "main": main, "view": view, "baseline": baseline, "exp1": exp1}


def test_mount_lists_snapshots_tags_and_worktrees(mounted):
    view, baseline, exp1 = mounted["view"], mounted["baseline"], mounted["exp1"]
    assert mounted_fstype(view) == "fuse.jvs"
    assert sorted(os.listdir(view)) == ["@snapshots", "@worktrees"]
    names = os.listdir(view / "@snapshots")
    assert {baseline, exp1, "baseline", "exp1"} <= set(names)
    assert os.readlink(view / "@snapshots" / "baseline") == baseline
    assert os.readlink(view / "@worktrees" / "main").startswith("../@snapshots/")
    assert (view / "@worktrees" / "main" / "logs" / "train.log").read_text() == \
        (mounted["main"] / "logs" / "train.log").read_text()


def test_snapshot_contents_read_exactly_as_stored(mounted):
    view, repo, baseline = mounted["view"], mounted["repo"], mounted["baseline"]
    snap = view / "@snapshots" / "baseline"
    assert (snap / "logs" / "train.log").read_text() == "epoch 1 loss 0.9\n"
    assert os.readlink(snap / "latest.log") == "logs/train.log"
    diff = subprocess.run(["diff", "-r", str(view / "@snapshots" / baseline),
                           str(repo / ".jvs" / "snapshots" / baseline)],
                          capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    grep = subprocess.run(["grep", "-r", "loss", "logs/"], cwd=snap, capture_output=True,
                          text=True)
    assert grep.stdout == "logs/train.log:epoch 1 loss 0.9\n"
    differ = subprocess.run(["diff", "-r", str(view / "@snapshots" / "baseline"),
                             str(view / "@snapshots" / "exp1")], capture_output=True, text=True)
    assert differ.returncode == 1 and "loss 0.5" in differ.stdout


def test_find_and_tar_see_unique_inodes(mounted):
    view, baseline = mounted["view"], mounted["baseline"]
    found = subprocess.run(["find", str(view / "@snapshots"), "-printf", "%i %p\n"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    files = [line.split(" ", 1) for line in found if "/data/" in line]
    assert len(files) == 100  # 50 files in each of the two snapshots
    assert len({ino for ino, _ in files}) == 100
    tar = subprocess.run(["tar", "cf", "-", "-C", str(view / "@snapshots"), baseline],
                         capture_output=True, check=True)
    listed = subprocess.run(["tar", "tf", "-"], input=tar.stdout, capture_output=True,
                            check=True).stdout.decode().split()
    assert f"{baseline}/logs/train.log" in listed
    assert f"{baseline}/data/part049.csv" in listed


def test_getfattr_shows_note_tags_parent_and_time(mounted):
    view, baseline, exp1 = mounted["view"], mounted["baseline"], mounted["exp1"]
    if shutil.which("getfattr") is None:
        pytest.skip("getfattr (attr package) is not installed")
    out = subprocess.run(["getfattr", "-d", str(view / "@snapshots" / exp1)],
                         capture_output=True, text=True, check=True).stdout
    assert 'user.jvs.note="experiment one"' in out
    assert 'user.jvs.tags="exp1"' in out
    assert f'user.jvs.parent="{baseline}"' in out
    assert "user.jvs.created_at=" in out
    origin = os.getxattr(view / "@snapshots" / exp1 / "logs" / "train.log", "user.origin")
    assert origin == b"gpu1"


def test_files_xattrs_and_acls_pass_through_and_ls_l_matches_the_store(mounted):
    view, repo, baseline = mounted["view"], mounted["repo"], mounted["baseline"]
    stored = repo / ".jvs" / "snapshots" / baseline
    log = "logs/train.log"
    if "system.posix_acl_access" not in os.listxattr(stored / log):
        pytest.skip("this filesystem keeps no ACLs")
    seen = view / "@snapshots" / baseline
    for _ in range(2):  # asked again: the server answers from what it read once
        assert sorted(os.listxattr(seen / log)) == sorted(os.listxattr(stored / log))
        for name in os.listxattr(stored / log):
            assert os.getxattr(seen / log, name) == os.getxattr(stored / log, name)
    with pytest.raises(OSError) as exc:
        os.getxattr(seen / "data" / "part000.csv", "user.absent")
    assert exc.value.errno == errno.ENODATA

    # `ls -lR` shows what the store shows, except the "+" of an ACL: the view answers
    # "not supported" for the ACL of a file without one, so `ls` stops asking (docs/mount.md).
    def ls(path: Path) -> str:
        out = subprocess.run(["ls", "-lR", "--time-style=full-iso", "."], cwd=path,
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "LC_ALL": "C"})
        return out.stdout

    def own_links(listing: str) -> str:
        # The copy engine hard-links unchanged files into the next snapshot; the view
        # shows each snapshot's own link count (1: that engine keeps no hard links).
        return re.sub(r"(?m)^([-l][^ ]*) +\d+ ", r"\1 1 ", listing)

    engine = json.loads((repo / ".jvs" / "descriptors" / f"{baseline}.json").read_text())
    expect = ls(stored).replace("+ ", " ")
    if engine["engine"] == "copy":
        expect = own_links(expect)
    assert ls(seen) == expect


def test_short_ids_notes_and_latest_resolve_as_symlinks(mounted):
    snaps = mounted["view"] / "@snapshots"
    baseline, exp1 = mounted["baseline"], mounted["exp1"]
    assert os.readlink(snaps / baseline[-8:]) == baseline
    assert os.readlink(snaps / "experiment one") == exp1
    assert os.readlink(snaps / "latest") == exp1
    assert not (snaps / "no-such-reference").exists()


@pytest.mark.parametrize("attempt", ["open_write", "create", "mkdir", "unlink", "rename",
                                     "chmod", "truncate", "setxattr", "symlink", "rmdir"])
def test_every_write_fails_with_erofs(mounted, attempt):
    snap = mounted["view"] / "@snapshots" / mounted["baseline"]
    log = snap / "logs" / "train.log"
    calls = {
        "open_write": lambda: os.open(log, os.O_WRONLY),
        "create": lambda: os.open(snap / "new.txt", os.O_WRONLY | os.O_CREAT, 0o644),
        "mkdir": lambda: os.mkdir(snap / "newdir"),
        "unlink": lambda: os.unlink(log),
        "rename": lambda: os.rename(log, snap / "moved.log"),
        "chmod": lambda: os.chmod(log, 0o600),
        "truncate": lambda: os.truncate(log, 0),
        "setxattr": lambda: os.setxattr(log, "user.x", b"1"),
        "symlink": lambda: os.symlink("x", mounted["view"] / "@snapshots" / "mine"),
        "rmdir": lambda: os.rmdir(snap / "data"),
    }
    with pytest.raises(OSError) as exc:
        calls[attempt]()
    assert exc.value.errno == errno.EROFS
    assert log.read_text() == "epoch 1 loss 0.9\n"


def test_new_and_removed_snapshots_show_without_remounting(mounted):
    view, main, repo = mounted["view"], mounted["main"], mounted["repo"]
    snaps = view / "@snapshots"
    (main / "logs" / "train.log").write_text("epoch 3 loss 0.2\n")
    fresh = take_snapshot(main, "fresh one", "fresh")
    assert wait_until(lambda: fresh in os.listdir(snaps))
    assert (snaps / "fresh" / "logs" / "train.log").read_text() == "epoch 3 loss 0.2\n"
    # Keep a file of it open, then remove the snapshot by hand (descriptor, then payload).
    held = open(snaps / fresh / "logs" / "train.log", "rb")
    try:
        (repo / ".jvs" / "descriptors" / f"{fresh}.json").unlink()
        shutil.rmtree(repo / ".jvs" / "snapshots" / fresh)
        assert wait_until(lambda: fresh not in os.listdir(snaps))
        assert wait_until(lambda: not (snaps / fresh).exists())
        assert wait_until(lambda: not os.path.lexists(snaps / "fresh"))
        assert held.read() == b"epoch 3 loss 0.2\n"  # an open file keeps reading
    finally:
        held.close()
    assert (snaps / "baseline" / "logs" / "train.log").exists()  # the server lives on


def test_a_tampered_descriptor_is_not_served(mounted):
    view, main, repo = mounted["view"], mounted["main"], mounted["repo"]
    sid = take_snapshot(main, "to be forged")
    assert wait_until(lambda: sid in os.listdir(view / "@snapshots"))
    # A copy of it under another ID whose descriptor no longer matches its checksum.
    forged = sid[:-8] + "00000000"
    data = json.loads((repo / ".jvs" / "descriptors" / f"{sid}.json").read_text())
    data["snapshot_id"] = forged
    data["note"] = "forged"
    shutil.copytree(repo / ".jvs" / "snapshots" / sid, repo / ".jvs" / "snapshots" / forged,
                    symlinks=True)
    (repo / ".jvs" / "descriptors" / f"{forged}.json").write_text(json.dumps(data))
    # A genuine snapshot taken after it shows once the view has re-read descriptors/.
    later = take_snapshot(main, "genuine, after the forgery")
    assert wait_until(lambda: later in os.listdir(view / "@snapshots"))
    assert forged not in os.listdir(view / "@snapshots")
    assert not (view / "@snapshots" / forged).exists()
    assert not (view / "@snapshots" / "forged").exists()  # not even as a note


def _readers_round(view: Path, threads: int = 8, processes: int = 3) -> None:
    snaps = view / "@snapshots"

    def walk():
        for _ in range(3):
            for root, _dirs, files in os.walk(snaps / "baseline"):
                for name in files:
                    p = os.path.join(root, name)
                    if not os.path.islink(p):
                        with open(p, "rb") as f:
                            f.read()

    workers = [threading.Thread(target=walk) for _ in range(threads)]
    for w in workers:
        w.start()
    procs = [subprocess.Popen(["sh", "-c", f"for i in 1 2 3; do ls -lR {snaps}/ >/dev/null;"
                               f" grep -r loss {snaps}/exp1 >/dev/null; done"])
             for _ in range(processes)]
    for w in workers:
        w.join()
    for p in procs:
        assert p.wait() == 0


def _drop_kernel_caches() -> bool:
    """Ask the kernel to drop dentries and inodes: it then sends FORGET for the view's."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
        return True
    except OSError:
        return False


def test_many_readers_and_flat_memory_after_forgets(mounted):
    view = mounted["view"]
    pid = view_server_pid(view)
    _readers_round(view)
    forgets = _drop_kernel_caches()
    time.sleep(0.5)
    before = _rss_kib(pid)
    for _ in range(3):
        _readers_round(view)
        _drop_kernel_caches()
    time.sleep(0.5)
    after = _rss_kib(pid)
    if not forgets:
        pytest.skip("cannot drop kernel caches here, so the kernel sends no forgets")
    assert after - before < 8 * 1024, f"server RSS grew from {before} to {after} KiB"


def test_mountpoint_refusals(mounted, tmp_path):
    view, repo = mounted["view"], mounted["repo"]
    busy = run_jvs("mount", str(view), "-C", str(repo), check=False)
    assert busy.returncode == 1 and "E_BUSY" in busy.stderr
    missing = run_jvs("mount", str(tmp_path / "nope"), "-C", str(repo), check=False)
    assert missing.returncode == 1 and "E_NOT_FOUND" in missing.stderr
    (repo / "main" / "inside").mkdir()
    inside = run_jvs("mount", str(repo / "main" / "inside"), "-C", str(repo), check=False)
    assert inside.returncode == 1 and "inside the repository" in inside.stderr
    (repo / "main" / "inside").rmdir()
    outer = run_jvs("mount", str(repo.parent), "-C", str(repo), check=False)
    assert outer.returncode == 1 and "contains the repository" in outer.stderr
    not_a_view = run_jvs("umount", str(tmp_path), check=False)
    assert not_a_view.returncode == 1 and "not mounted" in not_a_view.stderr


def test_killed_server_is_cleaned_up_by_umount_and_mounts_again(repo, main_wt, tmp_path):
    take_snapshot(main_wt, "only", "only")
    view = tmp_path / "view"
    view.mkdir()
    run_jvs("mount", str(view), "-C", str(repo))
    pid = view_server_pid(view)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}/status") or
                 open(f"/proc/{pid}/status").read().find("State:\tZ") >= 0)
    if mounted_fstype(view) is not None:  # stale: "Transport endpoint is not connected"
        run_jvs("umount", str(view))
    assert mounted_fstype(view) is None
    run_jvs("mount", str(view), "-C", str(repo))
    try:
        assert "only" in os.listdir(view / "@snapshots")
    finally:
        run_jvs("umount", str(view))
    assert mounted_fstype(view) is None


def test_mount_and_umount_json_name_the_view_its_repository_and_its_server(repo, main_wt,
                                                                           tmp_path):
    """The documents come from the library's Mounted/Unmounted: the mount point as the
    kernel has it (``sub/..`` resolved), the repository, the pid of the real server."""
    take_snapshot(main_wt, "one")
    view = tmp_path / "view"
    view.mkdir()
    (tmp_path / "sub").mkdir()
    given = tmp_path / "sub" / ".." / "view"
    mounted = run_jvs("mount", str(given), "-C", str(repo), "--json")
    try:
        assert mounted.json == {"mountpoint": str(view), "repo": str(repo),
                                "pid": view_server_pid(given)}
    finally:
        gone = run_jvs("umount", str(view), "--json")
    assert gone.json == {"mountpoint": str(view), "unmounted": True, "how": "unmounted"}
    assert mounted_fstype(view) is None


def test_foreground_tells_systemd_and_unmounts_on_sigterm(repo, main_wt, tmp_path):
    take_snapshot(main_wt, "one")
    view = tmp_path / "view"
    view.mkdir()
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
    proc = subprocess.Popen([sys.executable, "-m", "jvs", "mount", str(view), "-C", str(repo),
                             "--foreground"], env=env, stderr=subprocess.PIPE)
    try:
        assert sock.recv(256) == b"READY=1"
        assert len(os.listdir(view / "@snapshots")) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert mounted_fstype(view) is None
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if mounted_fstype(view) is not None:
            run_jvs("umount", str(view), check=False)


@pytest.mark.juicefs
def test_view_of_a_repository_on_juicefs(juicefs_dir, tmp_path):
    run_jvs("init", "repo", cwd=juicefs_dir)
    repo = juicefs_dir / "repo"
    (repo / "main" / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    sid = take_snapshot(repo / "main", "on juicefs", "jfs")
    view = tmp_path / "view"
    view.mkdir()
    with jvs_view(repo, view):
        got = (view / "@snapshots" / "jfs" / "weights.bin").read_bytes()
        assert got == (repo / ".jvs" / "snapshots" / sid / "weights.bin").read_bytes()
        assert subprocess.run(["diff", "-r", str(view / "@snapshots" / sid),
                               str(repo / ".jvs" / "snapshots" / sid)]).returncode == 0


def test_a_new_tag_shows_in_the_view_without_remounting(mounted):
    view, baseline = mounted["view"], mounted["baseline"]
    run_jvs("tag", "add", baseline, "golden", cwd=mounted["main"])
    try:
        assert wait_until(lambda: os.path.lexists(view / "@snapshots" / "golden"))
        assert os.readlink(view / "@snapshots" / "golden") == baseline
        tags = os.getxattr(view / "@snapshots" / baseline, "user.jvs.tags")
        assert b"golden" in tags
    finally:
        run_jvs("tag", "remove", baseline, "golden", cwd=mounted["main"])
    assert wait_until(lambda: not os.path.lexists(view / "@snapshots" / "golden"))
