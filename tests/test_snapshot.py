"""The snapshot protocol (SPEC §6) on the copy engine: crash safety, two writers, bad
input, the stat cache, and what the copy engine preserves."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, run_jvs, start_paused_jvs

STEPS = ["after_intent", "after_materialise", "after_hash", "after_fsync",
         "after_descriptor_tmp", "after_publish_payload", "after_commit",
         "after_worktree_update", "after_audit"]


def snapshot_ids(repo):
    return sorted(p.name[:-5] for p in (repo / ".jvs" / "descriptors").glob("*.json"))


def history(main, *extra):
    return run_jvs("history", "--all", "--json", *extra, cwd=main).json["snapshots"]


def make_files(main, n=5):
    (main / "data").mkdir(exist_ok=True)
    for i in range(n):
        (main / "data" / f"f{i}.txt").write_text(f"content {i}\n" * 10)


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_every_step_leaves_none_or_complete(repo, step):
    main = repo / "main"
    make_files(main)
    first = run_jvs("snapshot", "first", "--json", cwd=main).json["snapshot_id"]
    (main / "data" / "f0.txt").write_text("changed\n")
    res = run_jvs("snapshot", "crashing", cwd=main, check=False,
                  env={"JVS_CRASH_AT": f"snapshot:{step}"})
    assert res.returncode == -9, res.stderr  # SIGKILL

    ids = snapshot_ids(repo)
    committed = STEPS.index(step) >= STEPS.index("after_commit")
    assert len(ids) == (2 if committed else 1)
    # Nothing half-published is visible: every listed snapshot is complete and verifies.
    for entry in history(main):
        sid = entry["snapshot_id"]
        payload = repo / ".jvs" / "snapshots" / sid
        assert payload.is_dir(), f"{sid} listed without payload"
        from jvs.descriptor import read_descriptor
        from jvs.integrity import compute_payload
        from jvs.repo import Repo

        desc = read_descriptor(Repo(repo), sid)
        assert compute_payload(payload, desc.payload_hash_algo)[1] == desc.payload_root_hash
    if committed:
        new = next(i for i in ids if i != first)
        assert (repo / ".jvs" / "snapshots" / new / "data" / "f0.txt").read_text() == "changed\n"

    # The next snapshot first finishes the crashed one from its intent: a payload that
    # was renamed into place (complete and durable) is published, anything earlier is
    # rolled back. Then it succeeds, and lineage is a chain through what was published.
    after = run_jvs("snapshot", "next", "--json", cwd=main).json
    finished = snapshot_ids(repo)
    kept = STEPS.index(step) >= STEPS.index("after_publish_payload")
    assert len(finished) == (3 if kept else 2)
    crashed = [i for i in finished if i not in (first, after["snapshot_id"])]
    assert after["parent_id"] == (crashed[0] if kept else first)
    assert not list((repo / ".jvs" / "intents").iterdir())
    assert not list((repo / ".jvs" / "snapshots").glob("*.tmp"))
    assert (repo / ".jvs" / "snapshots" / after["snapshot_id"] / "data" / "f0.txt").read_text() \
        == "changed\n"


def test_two_writers_at_once_serialise_or_busy(repo):
    main = repo / "main"
    make_files(main, 200)
    results = []

    def writer(i):
        results.append(run_jvs("snapshot", f"writer {i}", "--json", cwd=main, check=False))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.returncode == 0]
    busy = [r for r in results if r.returncode != 0]
    assert ok, [r.stderr for r in results]
    for r in busy:
        assert "E_BUSY" in r.stderr and "repository busy" in r.stderr
    snaps = history(main)
    assert len(snaps) == len(ok)
    if len(snaps) == 2:  # lineage stays a chain
        newer, older = snaps
        assert newer["parent_id"] == older["snapshot_id"]
    for s in snaps:  # no file lost
        assert len(list((repo / ".jvs" / "snapshots" / s["snapshot_id"] / "data").iterdir())) == 200


def test_busy_error_names_the_holder(repo):
    main = repo / "main"
    code = (
        "import sys, time\n"
        "from jvs.lock import repo_lock\nfrom jvs.repo import Repo\n"
        f"with repo_lock(Repo(__import__('pathlib').Path({str(repo)!r})), 'test-hold'):\n"
        "    print('locked', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = run_jvs("snapshot", "blocked", cwd=main, check=False, env={"JVS_LOCK_TIMEOUT": "0.3"})
        assert res.returncode == 1
        assert "E_BUSY" in res.stderr and f"pid {holder.pid}" in res.stderr
        assert "test-hold" in res.stderr
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock
    run_jvs("snapshot", "after holder died", cwd=main, env={"JVS_LOCK_TIMEOUT": "2"})


def test_odd_names_notes_and_files(repo):
    main = repo / "main"
    deep = main
    for i in range(20):
        deep = deep / f"level{i}"
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("deep")
    for name in ["file(1).txt", "level:", "level?", "ünïcödé 文件.txt", " spaced name ",
                 "-dash", "*star"]:
        (main / name).write_text(name)
    (main / "big.bin").write_bytes(os.urandom(1 << 20))
    os.symlink("does/not/exist", main / "dangling")
    note = "line one\nline two <&> ü\x07" + "x" * 2000
    out = run_jvs("snapshot", "-", "--json", cwd=main, input=note).json
    assert out["note"] == note
    payload = repo / ".jvs" / "snapshots" / out["snapshot_id"]
    assert (payload / "level:").read_text() == "level:"
    assert (payload / "ünïcödé 文件.txt").read_text() == "ünïcödé 文件.txt"
    assert os.readlink(payload / "dangling") == "does/not/exist"
    assert (payload / "big.bin").read_bytes() == (main / "big.bin").read_bytes()
    assert (payload.joinpath(*[f"level{i}" for i in range(20)]) / "bottom.txt").exists()
    hist = run_jvs("history", "--json", cwd=main).json["snapshots"]
    assert hist[0]["note"] == note


@pytest.mark.parametrize("tag", ["../evil", "a/b", "HEAD", "bad tag", "x\x01"])
def test_invalid_tag_is_refused_and_nothing_published(repo, tag):
    main = repo / "main"
    (main / "a").write_text("a")
    res = run_jvs("snapshot", "n", "--tag", tag, cwd=main, check=False)
    assert res.returncode == 1 and "E_NAME_INVALID" in res.stderr
    assert snapshot_ids(repo) == []


def test_empty_worktree_snapshot(repo):
    out = run_jvs("snapshot", "empty", "--json", cwd=repo / "main").json
    assert list((repo / ".jvs" / "snapshots" / out["snapshot_id"]).iterdir()) == []


def test_fifo_is_skipped_never_hangs_and_is_recorded(repo):
    main = repo / "main"
    (main / "a.txt").write_text("a")
    os.mkfifo(main / "pipe")
    res = run_jvs("snapshot", "with fifo", "--json", cwd=main, timeout=30)
    out = res.json
    assert "special-file:pipe" in out["degraded"]
    assert "skipped special file" in res.stderr
    payload = repo / ".jvs" / "snapshots" / out["snapshot_id"]
    assert not os.path.lexists(payload / "pipe")
    assert (payload / "a.txt").read_text() == "a"


def test_copy_engine_keeps_modes_mtimes_symlinks_and_reports_hardlinks(repo):
    main = repo / "main"
    os.umask(0o022)
    (main / "ro_dir").mkdir()
    (main / "ro_dir" / "x").write_text("x")
    (main / "secret").write_text("s")
    os.chmod(main / "secret", 0o600)
    (main / "group_w").write_text("g")
    os.chmod(main / "group_w", 0o664)  # would be lost to a umask of 022
    (main / "script").write_text("#!/bin/sh\n")
    os.chmod(main / "script", 0o4755)
    os.chmod(main / "ro_dir", 0o555)
    (main / "empty").mkdir()
    os.utime(main / "secret", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.link(main / "group_w", main / "hard")
    out = run_jvs("snapshot", "modes", "--json", cwd=main).json
    payload = repo / ".jvs" / "snapshots" / out["snapshot_id"]
    mode = lambda p: stat.S_IMODE(os.lstat(p).st_mode)  # noqa: E731
    assert mode(payload / "secret") == 0o600
    assert mode(payload / "group_w") == 0o664
    assert mode(payload / "script") == 0o4755
    assert mode(payload / "ro_dir") == 0o555
    assert (payload / "empty").is_dir()
    assert os.stat(payload / "secret").st_mtime_ns == 1_600_000_000_123_456_789
    assert out["engine"] == "copy"
    assert "hardlinks" in out["degraded"]
    os.chmod(main / "ro_dir", 0o755)


def test_stat_cache_reads_only_changed_files(repo):
    main = repo / "main"
    make_files(main, 50)
    time.sleep(0.25)  # older than the racily-clean window
    first = run_jvs("snapshot", "one", "--json", cwd=main).json
    assert first["stats"]["files_hashed"] == 50
    unchanged = run_jvs("snapshot", "two", "--json", cwd=main).json
    assert unchanged["stats"]["bytes_hashed"] == 0
    target = main / "data" / "f7.txt"
    target.write_text("different content of another size\n")
    changed = run_jvs("snapshot", "three", "--json", cwd=main).json
    assert changed["stats"]["files_hashed"] == 1
    assert changed["stats"]["bytes_hashed"] == target.stat().st_size


def test_same_size_same_mtime_rewrite_is_caught(repo):
    main = repo / "main"
    f = main / "model.bin"
    f.write_bytes(b"A" * 4096)
    os.utime(f, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    time.sleep(0.25)
    first = run_jvs("snapshot", "one", "--json", cwd=main).json
    before = os.stat(f)
    f.write_bytes(b"B" * 4096)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(f).st_size == before.st_size and os.stat(f).st_mtime_ns == before.st_mtime_ns
    second = run_jvs("snapshot", "two", "--json", cwd=main).json
    assert second["stats"]["files_hashed"] == 1
    manifests = repo / ".jvs" / "manifests"
    assert (manifests / first["snapshot_id"]).read_bytes() != \
        (manifests / second["snapshot_id"]).read_bytes()


def test_deleting_the_stat_cache_changes_no_result(repo):
    main = repo / "main"
    make_files(main, 10)
    time.sleep(0.25)
    a = run_jvs("snapshot", "a", "--json", cwd=main).json
    import shutil

    shutil.rmtree(repo / ".jvs" / "cache")
    b = run_jvs("snapshot", "b", "--json", cwd=main).json
    assert b["stats"]["files_hashed"] == 10
    m = repo / ".jvs" / "manifests"
    assert (m / a["snapshot_id"]).read_bytes() == (m / b["snapshot_id"]).read_bytes()


def test_a_broken_stat_cache_is_rewritten_by_the_next_snapshot(repo):
    """A snapshot skips rewriting a stat cache that would not change, but never keeps a
    broken one (doctor would report it for ever), even when the cache would be empty."""
    main = repo / "main"
    (main / "empty-dir").mkdir()
    run_jvs("snapshot", "a", cwd=main)
    caches = list((repo / ".jvs" / "cache").rglob("stat-*.cache"))
    assert caches
    for cache in caches:
        cache.write_text("{broken")
    assert "stat_cache_corrupt" in run_jvs("doctor", cwd=main, check=False).stdout
    run_jvs("snapshot", "b", cwd=main)
    assert "stat_cache_corrupt" not in run_jvs("doctor", cwd=main, check=False).stdout
    from jvs.statcache import read_cache_file

    for cache in caches:
        assert read_cache_file(cache).entries == {}


def test_status_reports_changes_and_clean(repo):
    main = repo / "main"
    make_files(main, 3)
    run_jvs("snapshot", "s", cwd=main)
    assert run_jvs("status", "--json", cwd=main).json["clean"]
    (main / "data" / "f0.txt").write_text("new")
    (main / "data" / "f1.txt").unlink()
    (main / "added").write_text("x")
    os.chmod(main / "data" / "f2.txt", 0o600)
    status = run_jvs("status", "--json", cwd=main).json
    changes = {c["path"]: c["change"] for c in status["changes"]}
    assert changes == {"data/f0.txt": "modified", "data/f1.txt": "removed", "added": "added",
                       "data/f2.txt": "mode"}


def test_partial_snapshot_records_only_its_paths(repo):
    main = repo / "main"
    (main / "Assets").mkdir()
    (main / "Assets" / "a.png").write_bytes(b"png")
    (main / "Library").mkdir()
    (main / "Library" / "cache").write_bytes(b"junk")
    out = run_jvs("snapshot", "assets", "--paths", "Assets", "--json", cwd=main).json
    assert out["partial_paths"] == ["Assets"]
    payload = repo / ".jvs" / "snapshots" / out["snapshot_id"]
    assert sorted(os.listdir(payload)) == ["Assets"]
    res = run_jvs("snapshot", "escape", "--paths", "../x", cwd=main, check=False)
    assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr


def test_audit_log_chains_every_snapshot(repo):
    main = repo / "main"
    for i in range(3):
        run_jvs("snapshot", f"s{i}", cwd=main)
    log = repo / ".jvs" / "audit" / "audit.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["operation"] for r in lines] == ["init", "snapshot", "snapshot", "snapshot"]
    from jvs.audit import check_chain
    from jvs.repo import Repo

    assert check_chain(Repo(repo)) == []
    for prev, cur in zip(lines, lines[1:], strict=False):
        assert cur["prev_hash"] == prev["record_hash"]


def test_write_during_the_clone_is_never_cached_as_clean(repo):
    """A file rewritten (same size) between the clone and the stat scan: the snapshot
    records what it copied, and the next snapshot sees the new content, so every payload
    still matches its manifest."""
    main = repo / "main"
    f = main / "weights.bin"
    f.write_bytes(b"1" * 8192)
    time.sleep(0.25)
    run_jvs("snapshot", "warm the cache", cwd=main)
    f.write_bytes(b"2" * 8192)
    time.sleep(0.25)
    proc = start_paused_jvs("snapshot", "racing", "--json", cwd=main,
                            step="snapshot:after_materialise", seconds=3)
    f.write_bytes(b"3" * 8192)  # lands after the clone, before the stat scan
    out, _ = proc.communicate(timeout=60)
    racing = json.loads(out)["snapshot_id"]
    after = run_jvs("snapshot", "after", "--json", cwd=main).json["snapshot_id"]
    snaps = repo / ".jvs" / "snapshots"
    assert (snaps / racing / "weights.bin").read_bytes() == b"2" * 8192
    assert (snaps / after / "weights.bin").read_bytes() == b"3" * 8192
    from jvs.descriptor import read_descriptor
    from jvs.integrity import compute_payload
    from jvs.repo import Repo

    for sid in (racing, after):
        desc = read_descriptor(Repo(repo), sid)
        assert compute_payload(snaps / sid, desc.payload_hash_algo)[1] == desc.payload_root_hash


@pytest.mark.parametrize("step", ["restore:during_swap", "restore:after_swap"])
def test_snapshot_after_a_half_done_restore_refuses_and_moves_nothing(repo, step):
    """A restore killed half-way: a snapshot must neither capture the half-moved worktree
    nor finish the restore behind the user's back (which would move their work into a
    rescue and record the old state under their new note). It refuses with E_UNSAVED and
    names the command that finishes the restore; after that, it works."""
    main = repo / "main"
    (main / "a.txt").write_text("one")
    first = run_jvs("snapshot", "one", "--json", cwd=main).json["snapshot_id"]
    (main / "a.txt").write_text("two")
    (main / "b.txt").write_text("two")
    run_jvs("snapshot", "two", cwd=main)
    res = run_jvs("restore", first, cwd=main, check=False, env={"JVS_CRASH_AT": step})
    assert res.returncode == -9
    before = sorted(os.listdir(main))
    refused = run_jvs("snapshot", "my new work", cwd=main, check=False)
    assert refused.returncode == 1
    assert "E_UNSAVED" in refused.stderr and "crashed half-way" in refused.stderr
    assert f"jvs restore {first}" in refused.stderr
    assert sorted(os.listdir(main)) == before
    assert len(snapshot_ids(repo)) == 2
    run_jvs("restore", first, cwd=main)
    assert (main / "a.txt").read_text() == "one" and not (main / "b.txt").exists()
    out = run_jvs("snapshot", "after the crash", "--json", cwd=main).json
    assert out["parent_id"] == first


def test_snapshot_after_a_restore_killed_before_it_touched_anything(repo):
    """Killed right after its intent, a restore has changed nothing: the next snapshot
    forgets it and records what the user has now (their work since the crash included)."""
    main = repo / "main"
    (main / "a.txt").write_text("one")
    first = run_jvs("snapshot", "one", "--json", cwd=main).json["snapshot_id"]
    (main / "a.txt").write_text("two")
    second = run_jvs("snapshot", "two", "--json", cwd=main).json["snapshot_id"]
    res = run_jvs("restore", first, cwd=main, check=False,
                  env={"JVS_CRASH_AT": "restore:after_intent"})
    assert res.returncode == -9
    (main / "a.txt").write_text("my new work")
    (main / "c.txt").write_text("created after the crash")
    out = run_jvs("snapshot", "my new work", "--json", cwd=main).json
    assert out["parent_id"] == second
    payload = repo / ".jvs" / "snapshots" / out["snapshot_id"]
    assert (payload / "a.txt").read_text() == "my new work"
    assert (payload / "c.txt").read_text() == "created after the crash"
    assert (main / "a.txt").read_text() == "my new work"
    assert [e for e in history(main) if e.get("kind") == "rescue"] == []
    assert not list((repo / ".jvs" / "intents").iterdir())


def test_sparse_files_keep_their_holes(repo):
    """4 KiB of data in a 50 MiB file: the copy engine copies the data, not 50 MiB of
    zeros, into the snapshot, and a restore (a copy again) keeps the holes too."""
    main = repo / "main"
    path = main / "disk.img"
    with open(path, "wb") as f:
        f.truncate(50 << 20)
        f.seek(20 << 20)
        f.write(b"x" * 4096)
    if os.stat(path).st_blocks * 512 >= 1 << 20:
        pytest.fail("this filesystem does not make sparse files")
    sid = run_jvs("snapshot", "sparse", "--json", cwd=main).json["snapshot_id"]
    copy = repo / ".jvs" / "snapshots" / sid / "disk.img"
    assert os.stat(copy).st_size == 50 << 20
    assert os.stat(copy).st_blocks * 512 < 1 << 20
    run_jvs("verify", sid, cwd=main)
    path.unlink()
    run_jvs("restore", sid, "--discard-unsaved", cwd=main)
    assert os.stat(path).st_size == 50 << 20 and os.stat(path).st_blocks * 512 < 1 << 20
    with open(path, "rb") as f:
        f.seek(20 << 20)
        assert f.read(4097) == b"x" * 4096 + b"\0"
    assert run_jvs("status", "--json", cwd=main).json["clean"]


def test_a_refused_snapshot_leaves_nothing(repo):
    """A file name with a line break cannot be recorded: the snapshot is refused with
    E_NAME_INVALID, and nothing of it remains (no staging, intent, manifest or trash)."""
    main = repo / "main"
    (main / "ok.txt").write_text("fine\n")
    run_jvs("snapshot", "one", cwd=main)
    before = sorted(str(p.relative_to(repo)) for p in (repo / ".jvs").rglob("*")
                    if "cache" not in p.parts and p.name != "audit.jsonl")
    (main / "bad\nname").write_text("x")
    out = run_jvs("snapshot", "two", cwd=main, check=False)
    assert out.returncode == 1 and "E_NAME_INVALID" in out.stderr
    after = sorted(str(p.relative_to(repo)) for p in (repo / ".jvs").rglob("*")
                   if "cache" not in p.parts and p.name != "audit.jsonl")
    assert after == before
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
