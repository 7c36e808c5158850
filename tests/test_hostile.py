"""Hostile and unusual input (issue 21): nothing outside the repository is touched, bad
values get a clear error with their class, and nothing is left behind."""

from __future__ import annotations

import os

import pytest

from conftest import run_jvs


@pytest.fixture
def main(repo):
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    run_jvs("snapshot", "one", cwd=main)
    return main


@pytest.mark.parametrize("where", ["restore/@trash", "intents", "snapshots", "cache/host"])
def test_a_symlinked_control_path_is_refused_and_reported(main, tmp_path, where):
    """A symlink in the control plane would make jvs write (or, for the trash, delete)
    wherever it points: every writer refuses with E_PATH_ESCAPE before touching it, and
    doctor reports it."""
    jvs_dir = main.parent / ".jvs"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("not jvs's\n")
    link = jvs_dir / where
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists():
        os.rename(link, tmp_path / "moved-away")
    os.symlink(victim, link)
    (main / "b.txt").write_text("b\n")
    for args in (["snapshot", "x"], ["restore", "HEAD"], ["fork", "side"]):
        res = run_jvs(*args, cwd=main, check=False)
        assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr, (args, res.stderr)
    assert sorted(os.listdir(victim)) == ["precious"]
    doctor = run_jvs("doctor", cwd=main, check=False)
    assert doctor.returncode == 1 and "control_path_escape" in doctor.stdout


def test_a_corrupt_config_is_an_error_with_its_class_and_doctor_says_so(main):
    (main.parent / ".jvs" / "config.json").write_text("{not json")
    res = run_jvs("snapshot", "x", cwd=main, check=False)
    assert res.returncode == 1 and "E_DESCRIPTOR_CORRUPT" in res.stderr
    assert "Traceback" not in res.stderr
    doctor = run_jvs("doctor", cwd=main, check=False)
    assert doctor.returncode == 1 and "config_corrupt" in doctor.stdout


def test_notes_that_are_not_text_or_too_long_are_refused_without_reading_on(main):
    res = run_jvs("snapshot", os.fsdecode(b"bad \xff note"), cwd=main, check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr and "UTF-8" in res.stderr
    # /dev/zero never ends: the note is read only up to its limit.
    res = run_jvs("snapshot", "-F", "/dev/zero", cwd=main, check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr and "longer than" in res.stderr
    assert len(run_jvs("history", "--json", cwd=main).json["snapshots"]) == 1


def test_bad_numbers_and_names_are_usage_errors(main):
    res = run_jvs("worktree", "create", "a" * 300, cwd=main, check=False)
    assert res.returncode == 1 and "E_NAME_INVALID" in res.stderr
    assert len(res.stderr) < 400  # not a 4 KB ENAMETOOLONG echo of the path
    res = run_jvs("history", "--limit", "-1", cwd=main, check=False)
    assert res.returncode == 2
    res = run_jvs("snapshot", "x", cwd=main, check=False, env={"JVS_LOCK_TIMEOUT": "abc"})
    assert res.returncode == 1 and "E_USAGE" in res.stderr and "JVS_LOCK_TIMEOUT" in res.stderr
    res = run_jvs("gc", "pin", "HEAD", "--expires", "2020-01-01", cwd=main, check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr and "in the past" in res.stderr
    assert run_jvs("gc", "pins", "--json", cwd=main).json["pins"] == []


def test_a_dot_jvs_directory_inside_user_data_is_just_data(main):
    """A worktree may hold anything, a `.jvs` folder of another program included: the
    commands run inside it still find the repository it is in."""
    (main / "sub" / ".jvs").mkdir(parents=True)
    (main / "sub" / ".jvs" / "x").write_text("someone else's\n")
    status = run_jvs("status", "--json", cwd=main / "sub")
    assert status.json["worktree"] == "main"
    out = run_jvs("snapshot", "with a .jvs folder", "--json", cwd=main / "sub").json
    listed = run_jvs("diff", out["parent_id"], out["snapshot_id"], "--json", cwd=main).json
    assert "sub/.jvs/x" in {c["path"] for c in listed["changes"]}


def test_a_forged_stat_cache_record_is_not_trusted(main):
    """A record claiming that an edited file still has its saved hash would make restore
    drop the edit without a rescue. The cache file carries a checksum: an edited cache is
    an empty one, and the edit is rescued."""
    import struct

    from jvs.repo import Repo
    from jvs.statcache import StatCache, read_cache_file

    saved = run_jvs("status", "--json", cwd=main)  # the cache now holds a.txt
    assert saved.json["clean"]
    (main / "a.txt").write_text("an edit\n")
    st = os.lstat(main / "a.txt")
    (cache_file,) = (main.parent / ".jvs" / "cache").rglob("stat-main.cache")
    cached = read_cache_file(cache_file)
    head_hash = cached.entries["a.txt"][32:]  # a record: the packed stat key, the hash
    # The forger rewrites a.txt's record in place (its path, a line break, the record),
    # keeping the file's trailer with its checksum.
    data = cache_file.read_bytes()
    at = data.index(b"\na.txt\n") + len(b"\na.txt\n")
    forged = struct.pack("<QqqQ", st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) \
        + head_hash
    cache_file.write_bytes(data[:at] + forged + data[at + len(forged):])
    assert StatCache.load(Repo(main.parent), "main", cached.algo).lookup("a.txt", st) is None
    res = run_jvs("restore", "HEAD", "--json", cwd=main).json
    assert res["rescue_id"], res
    run_jvs("restore", res["rescue_id"], cwd=main)
    assert (main / "a.txt").read_text() == "an edit\n"


def test_a_forged_index_row_cannot_redirect_a_reference(main):
    """`restore prod` must restore the snapshot whose descriptor carries the tag, whatever
    .jvs/index.sqlite says (it is a cache, checked against the descriptor it names)."""
    import sqlite3

    prod = run_jvs("snapshot", "prod state", "--tag", "prod", "--json", cwd=main).json
    (main / "a.txt").write_text("later\n")
    run_jvs("snapshot", "dev state", "--tag", "dev", cwd=main)
    run_jvs("history", cwd=main)  # the index now holds both
    conn = sqlite3.connect(main.parent / ".jvs" / "index.sqlite")
    conn.execute("""UPDATE snapshots SET fields=replace(fields, '"prod"', '"gone"')""")
    conn.execute("""UPDATE snapshots SET fields=replace(fields, '"dev"', '"prod"')""")
    conn.commit()
    conn.close()
    out = run_jvs("restore", "prod", "--json", cwd=main).json
    assert out["snapshot_id"] == prod["snapshot_id"]
    assert (main / "a.txt").read_text() == "a\n"
    assert "index_stale" in run_jvs("doctor", cwd=main, check=False).stdout


def test_the_directory_name_is_a_worktrees_identity(main):
    """A worktree config whose `name` field names another worktree: a restore in main
    rewrites main's config, never the other one's."""
    import json

    run_jvs("fork", "side", cwd=main)
    side_cfg = main.parent / ".jvs" / "worktrees" / "side" / "config.json"
    before = side_cfg.read_bytes()
    cfg = main.parent / ".jvs" / "worktrees" / "main" / "config.json"
    obj = json.loads(cfg.read_text())
    obj["name"] = "side"
    cfg.write_text(json.dumps(obj))
    (main / "a.txt").write_text("two\n")
    run_jvs("snapshot", "two", cwd=main)
    run_jvs("restore", "HEAD~1", cwd=main)
    assert side_cfg.read_bytes() == before
    assert json.loads(cfg.read_text())["name"] == "main"


def test_records_cut_from_the_end_of_the_audit_log_are_noticed(main):
    """What is left of a chain cut short is still a valid chain: the recorded head shows
    the cut, verify and doctor report it, and audit_repair makes the rest whole again."""
    (main / "b.txt").write_text("b\n")
    run_jvs("snapshot", "two", cwd=main)
    log = main.parent / ".jvs" / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))
    verify = run_jvs("verify", "--all", cwd=main, check=False)
    assert verify.returncode == 1 and "audit log  BROKEN" in verify.stdout
    assert "records were removed from its end" in verify.stdout
    doctor = run_jvs("doctor", "--strict", cwd=main, check=False)
    assert doctor.returncode == 1 and "E_AUDIT_CHAIN_BROKEN" in doctor.stdout
    run_jvs("doctor", "--repair", "audit_repair", cwd=main)
    assert run_jvs("doctor", "--strict", cwd=main).returncode == 0
    # A log cut whole is noticed too, and a new one starts where the repair leaves it.
    log.unlink()
    assert run_jvs("verify", "--all", cwd=main, check=False).returncode == 1
    run_jvs("doctor", "--repair", "audit_repair", cwd=main)
    (main / "c.txt").write_text("c\n")
    run_jvs("snapshot", "three", cwd=main)
    assert run_jvs("verify", "--all", cwd=main).returncode == 0


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs: a filesystem that fills up."""
    import subprocess

    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_an_io_error_and_leaves_nothing_behind(small_fs):
    run_jvs("init", "r", cwd=small_fs)
    main = small_fs / "r" / "main"
    (main / "small.txt").write_text("fits\n")
    run_jvs("snapshot", "fits", cwd=main, env={"JVS_SNAPSHOT_ENGINE": "copy"})
    (main / "big.bin").write_bytes(os.urandom(600 << 10))
    res = run_jvs("snapshot", "too big", cwd=main, check=False,
                  env={"JVS_SNAPSHOT_ENGINE": "copy"})
    assert res.returncode == 1 and "E_IO" in res.stderr, res.stderr
    assert "No space left on device (ENOSPC)" in res.stderr
    assert "Traceback" not in res.stderr
    jvs_dir = small_fs / "r" / ".jvs"
    assert os.listdir(jvs_dir / "intents") == []
    assert [n for n in os.listdir(jvs_dir / "snapshots") if n.endswith(".tmp")] == []
    assert [s["note"] for s in run_jvs("history", "--json", cwd=main).json["snapshots"]] \
        == ["fits"]
    assert run_jvs("doctor", "--strict", cwd=main).returncode == 0
    assert (main / "big.bin").stat().st_size == 600 << 10


def test_a_path_near_path_max_is_refused_briefly_and_nothing_is_lost(main):
    """Inside .jvs/ the path is longer than in the worktree: a path that just fits there
    cannot be staged. The snapshot says so in a line, not 4 KB; nothing is lost and the
    worktree goes on working."""
    deep = main
    while len(os.fsencode(deep)) < 4080 - 220:
        deep = deep / ("d" * 200)
    deep = deep / ("e" * (4080 - len(os.fsencode(deep)) - len("/leaf.txt") - 1))
    os.makedirs(deep)
    (deep / "leaf.txt").write_text("deep\n")  # 4080 bytes: it fits, by 16
    res = run_jvs("snapshot", "deep", cwd=main, check=False)
    assert res.returncode == 1 and "E_IO" in res.stderr and "ENAMETOOLONG" in res.stderr
    assert len(res.stderr) < 600, res.stderr
    assert (deep / "leaf.txt").read_text() == "deep\n"
    assert len(run_jvs("history", "--json", cwd=main).json["snapshots"]) == 1
    assert run_jvs("doctor", "--strict", cwd=main).returncode == 0
    (main / "a.txt").write_text("edited\n")
    assert run_jvs("status", "--json", cwd=main).json["clean"] is False


def test_restore_verify_refuses_a_tampered_payload_before_changing_anything(main):
    first = run_jvs("history", "--json", cwd=main).json["snapshots"][0]["snapshot_id"]
    (main / "a.txt").write_text("second\n")
    run_jvs("snapshot", "two", cwd=main)
    victim = main.parent / ".jvs" / "snapshots" / first / "a.txt"
    victim.chmod(0o644)
    victim.write_text("evil\n")
    res = run_jvs("restore", first, "--verify", cwd=main, check=False)
    assert res.returncode == 1 and "E_PAYLOAD_HASH_MISMATCH" in res.stderr, res.stderr
    assert "nothing was changed" in res.stderr
    assert (main / "a.txt").read_text() == "second\n"
    assert run_jvs("status", "--json", cwd=main).json["clean"]
    # An intact snapshot restores with --verify as without.
    run_jvs("restore", "two", "--verify", cwd=main)


@pytest.mark.parametrize("where", ["audit/audit.jsonl", "locks/repo.lock"])
def test_a_symlinked_control_file_is_never_written_through(main, tmp_path, where):
    """Appending to the audit log and taking a lock open the file in place: through a
    symlink they would write to (or truncate) a file outside the repository."""
    victim = tmp_path / "victim.txt"
    victim.write_text("not jvs's\n")
    link = main.parent / ".jvs" / where
    link.unlink()
    os.symlink(victim, link)
    (main / "b.txt").write_text("b\n")
    res = run_jvs("snapshot", "x", cwd=main, check=False)
    assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr, res.stderr
    assert victim.read_text() == "not jvs's\n"
    doctor = run_jvs("doctor", cwd=main, check=False)
    assert doctor.returncode == 1 and "control_path_escape" in doctor.stdout


def test_history_says_a_restore_was_interrupted(main):
    """history lists snapshots, but after a crashed restore the worktree holds part of
    two: it says so, as status does, with the command that finishes it."""
    (main / "a.txt").write_text("two\n")
    run_jvs("snapshot", "two", cwd=main)
    (main / "a.txt").write_text("unsaved\n")
    crashed = run_jvs("restore", "one", cwd=main, check=False,
                      env={"JVS_CRASH_AT": "restore:after_move_to_rescue"})
    assert crashed.returncode != 0
    res = run_jvs("history", cwd=main)
    assert "was interrupted" in res.stderr and "jvs restore" in res.stderr
    run_jvs("restore", "one", cwd=main)
    assert "interrupted" not in run_jvs("history", cwd=main).stderr
