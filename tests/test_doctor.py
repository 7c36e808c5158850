"""jvs doctor (SPEC §9): every crash leftover is found and repaired, nothing a user wrote
is touched, lineage and audit problems are reported, and a copied repository (intents
left out) comes back green."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import run_jvs

BIN = os.path.dirname(sys.executable)

STEPS = ["after_intent", "after_materialise", "after_hash", "after_fsync",
         "after_descriptor_tmp", "after_publish_payload", "after_commit",
         "after_worktree_update", "after_audit"]


def snapshot(main, note="s", *extra):
    return run_jvs("snapshot", note, *extra, "--json", cwd=main).json["snapshot_id"]


def doctor(main, *args, check=False):
    return run_jvs("doctor", *args, cwd=main, check=check)


def plant_user_decoys(main):
    """User files named like jvs temp files: doctor must never touch them."""
    decoys = {
        ".notes.json.0123abcd.part": "user data\n",
        "1700000000000-deadbeef.tmp/inside.txt": "user dir\n",
        "cache.json.tmp": "user\n",
        "sub/.x.1234abcd.part": "user\n",
    }
    for rel, text in decoys.items():
        (main / rel).parent.mkdir(parents=True, exist_ok=True)
        (main / rel).write_text(text)
    return decoys


def assert_decoys(main, decoys):
    for rel, text in decoys.items():
        assert (main / rel).read_text() == text, rel


def test_fresh_repository_is_healthy(repo):
    main = repo / "main"
    assert doctor(main, check=True).stdout.strip() == "Repository is healthy."
    snapshot(main)
    assert "Repository is healthy." in doctor(main, "--strict", check=True).stdout
    data = doctor(main, "--strict", "--json", check=True)
    assert json.loads(data.stdout)["healthy"] is True


@pytest.mark.parametrize("step", STEPS)
def test_crash_leftovers_are_repaired(repo, step):
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    first = snapshot(main, "first")
    decoys = plant_user_decoys(main)
    (main / "a.txt").write_text("changed\n")
    crashed = run_jvs("snapshot", "crashing", cwd=main, check=False,
                      env={"JVS_CRASH_AT": f"snapshot:{step}"})
    assert crashed.returncode == -9

    found = doctor(main, "--strict", "--json")
    data = json.loads(found.stdout)
    if step != "after_audit" or data["findings"]:
        assert found.returncode == 1 and not data["healthy"]
        assert all(f["repair"] for f in data["findings"]), data["findings"]

    repaired = doctor(main, "--strict", "--repair-runtime", check=True)
    assert "Repository is healthy." in repaired.stdout, repaired.stdout
    assert "Repository is healthy." in doctor(main, "--strict", check=True).stdout
    assert_decoys(main, decoys)
    jvs_dir = repo / ".jvs"
    assert not list((jvs_dir / "snapshots").glob("*.tmp"))
    assert not list((jvs_dir / "descriptors").glob("*.tmp"))
    assert not os.listdir(jvs_dir / "intents")

    history = run_jvs("history", "--json", cwd=main).json
    # From its intent, a snapshot whose payload was renamed into place (complete and
    # durable, its descriptor written) is published; anything earlier is rolled back.
    committed = STEPS.index(step) >= STEPS.index("after_publish_payload")
    assert len(history["snapshots"]) == (2 if committed else 1)
    if committed:  # the repair moved the worktree to the finished snapshot
        assert history["head_snapshot_id"] != first
        assert history["head_snapshot_id"] == history["latest_snapshot_id"]
    nxt = run_jvs("snapshot", "next", "--json", cwd=main).json
    assert nxt["parent_id"] == history["head_snapshot_id"]
    run_jvs("verify", "--all", cwd=main)


def test_repairs_are_audited_and_selectable(repo):
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    snapshot(main)
    run_jvs("snapshot", "x", cwd=main, check=False,
            env={"JVS_CRASH_AT": "snapshot:after_descriptor_tmp"})
    stray = repo / ".jvs" / "snapshots" / "not-an-id.tmp"  # staging of ours, whatever its name
    stray.mkdir()
    only_tmp = doctor(main, "--repair", "clean_tmp")
    # The crashed snapshot's staging is its intent's to handle (clean_intents, not asked
    # for); only the stray staging nobody accounts for is gone.
    assert "abandoned_intent" in only_tmp.stdout and only_tmp.returncode == 1
    assert not stray.exists()
    assert list((repo / ".jvs" / "snapshots").glob("*.tmp"))
    done = doctor(main, "--repair", "clean_intents", check=True)
    assert "rolled back the unfinished snapshot" in done.stdout
    assert not list((repo / ".jvs" / "snapshots").glob("*.tmp"))
    log = (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()
    ops = [(json.loads(line)["operation"], json.loads(line)["target"]) for line in log]
    assert ("doctor", "clean_tmp") in ops and ("doctor", "clean_intents") in ops
    run_jvs("verify", "--all", cwd=main)  # the chain still holds


def test_live_intent_is_left_alone(repo):
    """A snapshot paused mid-protocol is in flight: doctor (without repairs) reports it
    and removes nothing."""
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jvs", "snapshot", "slow"], cwd=main, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "JVS_TEST_PAUSE_AT": "snapshot:after_materialise",
                        "JVS_TEST_PAUSE_S": "60"})
    try:
        line = proc.stderr.readline()
        assert "paused at" in line
        out = doctor(main, "--strict")
        assert "In flight: snapshot" in out.stdout
        assert out.returncode == 0, out.stdout
        assert list((repo / ".jvs" / "snapshots").glob("*.tmp"))
        assert os.listdir(repo / ".jvs" / "intents")
    finally:
        proc.kill()
        proc.wait()


def test_other_host_intent_is_cleaned_only_under_the_lock(repo):
    main = repo / "main"
    snapshot(main)
    intent = repo / ".jvs" / "intents" / "snapshot-1700000000000-abcdef01.json"
    staging = repo / ".jvs" / "snapshots" / "1700000000000-abcdef01.tmp"
    staging.mkdir()
    intent.write_text(json.dumps({
        "operation": "snapshot", "pid": 1, "host": "elsewhere", "started_at": "then",
        "record": {"snapshot_id": "1700000000000-abcdef01", "worktree": "main"}}))
    out = doctor(main)
    assert "In flight: snapshot (pid 1 on elsewhere, since then)" in out.stdout
    assert out.returncode == 0 and staging.exists()
    doctor(main, "--repair-runtime", check=True)
    assert not intent.exists() and not staging.exists()


def test_unreadable_intent_is_reported_as_such_and_left_alone(repo):
    main = repo / "main"
    snapshot(main)
    intent = repo / ".jvs" / "intents" / "snapshot-1700000000000-abcdef01.json"
    intent.write_text('{"operation": "snapshot", "pid": 7}')  # no record
    other = repo / ".jvs" / "intents" / "teleport-x.json"
    other.write_text('{"operation": "teleport", "record": {}}')
    out = doctor(main, "--repair-runtime")
    assert out.returncode == 1
    assert "intent_unreadable" in out.stdout and "malformed snapshot record" in out.stdout
    assert "unknown operation 'teleport'" in out.stdout
    assert "?" not in out.stdout.split("intent_unreadable")[0]  # no "pid ? on ?"
    assert intent.exists() and other.exists()


def test_orphan_payload_manifest_and_part_files(repo):
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    sid = snapshot(main)
    jvs_dir = repo / ".jvs"
    orphan = "1700000000000-0badcafe"
    shutil.copytree(jvs_dir / "snapshots" / sid, jvs_dir / "snapshots" / orphan)
    (jvs_dir / "manifests" / "1700000000001-0badcafe").write_text("x")
    part = jvs_dir / "worktrees" / "main" / ".config.json.0123abcd.part"
    part.write_text("{")
    os.utime(part, (0, 0))
    out = doctor(main)
    assert out.returncode == 1
    for check in ("orphan_payload", "orphan_manifest", "orphan_tmp"):
        assert check in out.stdout
    # A payload no intent accounts for may be the only copy of someone's work (a rescue
    # whose descriptor was lost): reported, never deleted. The rest is ours to remove.
    out = doctor(main, "--repair-runtime")
    assert out.returncode == 1 and "orphan_payload" in out.stdout
    assert "orphan_manifest" not in out.stdout and "orphan_tmp" not in out.stdout
    assert (jvs_dir / "snapshots" / orphan / "a.txt").read_text() == "a\n"
    assert not part.exists() and not (jvs_dir / "manifests" / "1700000000001-0badcafe").exists()
    assert (jvs_dir / "snapshots" / sid).is_dir()


def test_strict_finds_lineage_problems(repo):
    main = repo / "main"
    a = snapshot(main, "a")
    (main / "f").write_text("x")
    b = snapshot(main, "b")
    from jvs.descriptor import Descriptor

    path = repo / ".jvs" / "descriptors" / f"{a}.json"
    desc = Descriptor.from_json(json.loads(path.read_text()))
    # A cycle with a valid checksum: a's parent becomes b.
    from dataclasses import replace

    cyc = replace(desc, parent_id=b).sealed()
    path.write_bytes(cyc.to_bytes())
    out = doctor(main, "--strict")
    assert out.returncode == 1 and "lineage_cycle" in out.stdout
    assert "lineage_cycle" not in doctor(main).stdout  # not without --strict
    orphaned = replace(desc, parent_id="1600000000000-00000000").sealed()
    path.write_bytes(orphaned.to_bytes())
    out = doctor(main, "--strict")
    assert "parent_missing" in out.stdout and "E_LINEAGE_BROKEN" in out.stdout


def test_head_pointing_nowhere_and_payload_missing(repo):
    main = repo / "main"
    sid = snapshot(main)
    shutil.rmtree(repo / ".jvs" / "snapshots" / sid)
    out = doctor(main)
    assert out.returncode == 1 and "payload_missing" in out.stdout
    (repo / ".jvs" / "descriptors" / f"{sid}.json").unlink()
    out = doctor(main)
    assert "head_missing" in out.stdout and "E_LINEAGE_BROKEN" in out.stdout


def test_audit_repair_rechains_and_says_what_is_lost(repo):
    main = repo / "main"
    for i in range(3):
        (main / "f").write_text(str(i))
        snapshot(main, f"s{i}")
    log = repo / ".jvs" / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[1]  # a record removed
    log.write_bytes(b"".join(lines) + b'{"truncated')
    out = doctor(main, "--strict")
    assert out.returncode == 1 and "audit_chain" in out.stdout
    assert run_jvs("verify", "--all", cwd=main, check=False).returncode == 1
    fixed = doctor(main, "--strict", "--repair", "audit_repair", check=True)
    assert "CANNOT be recovered" in fixed.stderr
    assert "Repository is healthy." in fixed.stdout
    run_jvs("verify", "--all", cwd=main)
    assert list(log.parent.glob("audit.jsonl.before-repair-*"))


def test_index_and_stat_cache_problems(repo):
    main = repo / "main"
    (main / "f").write_text("x")
    sid = snapshot(main, "original note")
    run_jvs("history", cwd=main)  # builds the index
    index = repo / ".jvs" / "index.sqlite"
    assert index.exists()
    # A corrupt index is bypassed (and replaced), never an error.
    index.write_bytes(b"garbage" * 100)
    assert run_jvs("history", "--json", cwd=main).json["snapshots"][0]["snapshot_id"] == sid
    import sqlite3

    conn = sqlite3.connect(index)
    conn.execute("UPDATE snapshots SET fields=replace(fields, 'original note', 'stale') "
                 "WHERE id=?", (sid,))
    conn.commit()
    conn.close()
    out = doctor(main)
    assert "index_stale" in out.stdout
    for cache in (repo / ".jvs" / "cache").rglob("stat-*.cache"):
        cache.write_text("{broken")
    assert "stat_cache_corrupt" in doctor(main).stdout
    doctor(main, "--repair", "rebuild_index", check=True)
    assert run_jvs("history", "--json", cwd=main).json["snapshots"][0]["note"] == \
        "original note"


def test_unfinished_restore_is_rolled_forward(repo):
    main = repo / "main"
    (main / "f.txt").write_text("one\n")
    snapshot(main, "one", "--tag", "one")
    (main / "f.txt").write_text("two\n")
    snapshot(main, "two")
    crashed = run_jvs("restore", "one", cwd=main, check=False,
                      env={"JVS_CRASH_AT": "restore:during_swap"})
    assert crashed.returncode == -9
    out = doctor(main)
    assert "unfinished_restore" in out.stdout and "finish_restore" in out.stdout
    doctor(main, "--repair-runtime", check=True)
    assert (main / "f.txt").read_text() == "one\n"
    assert "Repository is healthy." in doctor(main, "--strict", check=True).stdout


def test_copy_without_intents_comes_back_green(repo, tmp_path):
    """The seeds' migration: copy .jvs/ elsewhere without intents and the index, then
    doctor --strict --repair-runtime and verify --all."""
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    snapshot(main, "one", "--tag", "v1")
    run_jvs("snapshot", "crash", cwd=main, check=False,
            env={"JVS_CRASH_AT": "snapshot:after_materialise"})
    run_jvs("history", cwd=main)
    dest = tmp_path / "copy"
    if shutil.which("rsync"):
        subprocess.run(["rsync", "-a", "--exclude", "intents/**", "--exclude", "index.sqlite",
                        f"{repo}/", f"{dest}/"], check=True)
    else:
        shutil.copytree(repo, dest, symlinks=True)
        for p in (dest / ".jvs" / "intents").iterdir():
            p.unlink()
        (dest / ".jvs" / "index.sqlite").unlink()
    assert not os.listdir(dest / ".jvs" / "intents")
    out = subprocess.run(["bash", "-c", "set -e; cd \"$1\"; "
                          "jvs doctor --strict --repair-runtime; jvs verify --all",
                          "sh", str(dest)], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Repository is healthy." in out.stdout and "audit log  OK" in out.stdout
    assert run_jvs("snapshot", "after move", cwd=dest / "main").returncode == 0


def test_runtime_and_audit_repairs_together(repo):
    main = repo / "main"
    (main / "a").write_text("a")
    snapshot(main)
    run_jvs("snapshot", "x", cwd=main, check=False,
            env={"JVS_CRASH_AT": "snapshot:after_hash"})
    log = repo / ".jvs" / "audit" / "audit.jsonl"
    log.write_bytes(log.read_bytes()[:-10])
    out = doctor(main, "--strict", "--repair-runtime", "--repair", "audit_repair",
                 check=True)
    assert "Repository is healthy." in out.stdout
    assert "Repaired (audit_repair)" in out.stdout and "Repaired (clean_intents)" in out.stdout
    run_jvs("verify", "--all", cwd=main)


def test_strict_names_a_tampered_payload_once(repo):
    """doctor --strict checks payloads with the descriptors it has already read: a changed
    file is reported against its snapshot, and an intact neighbour is not."""
    main = repo / "main"
    (main / "f").write_text("one")
    first = snapshot(main, "one")
    (main / "f").write_text("two")
    second = snapshot(main, "two")
    (repo / ".jvs" / "snapshots" / first / "f").write_text("evil")
    out = doctor(main, "--strict", "--json")
    assert out.returncode == 1
    found = [f for f in json.loads(out.stdout)["findings"] if f["check"] == "payload_mismatch"]
    assert len(found) == 1 and first in found[0]["message"] and second not in found[0]["message"]


def test_plain_doctor_hashes_the_heads_so_a_tampered_head_is_not_healthy(repo):
    """Without --strict doctor still hashes what each worktree stands on (issue 18)."""
    main = repo / "main"
    (main / "f.txt").write_text("one\n")
    run_jvs("snapshot", "one", cwd=main)
    (main / "f.txt").write_text("two\n")
    head = run_jvs("snapshot", "two", "--json", cwd=main).json["snapshot_id"]
    assert run_jvs("doctor", cwd=main).returncode == 0
    victim = repo / ".jvs" / "snapshots" / head / "f.txt"
    victim.chmod(0o644)
    victim.write_text("tampered\n")
    res = run_jvs("doctor", cwd=main, check=False)
    assert res.returncode == 1 and "payload_mismatch" in res.stdout and head in res.stdout


def test_leftover_restore_work_and_trash_are_findings_about_what_they_are(repo):
    """A restore cut short leaves its work directory (of one worktree) and trash items:
    doctor's findings say which worktree the work directory is of, clean_tmp removes both,
    and a worktree named like the trash is never mistaken for it."""
    import jvs

    main = repo / "main"
    snapshot(main)
    work = repo / ".jvs" / "restore" / "main"
    (work / "staged").mkdir(parents=True)
    (work / "staged" / "f.txt").write_text("half restored\n")
    trash = repo / ".jvs" / "restore" / "@trash"
    (trash / "old").mkdir(parents=True)
    os.utime(trash / "old", (1, 1))  # not one being emptied right now
    api = jvs.open(main)
    found = {f.path: f for f in api.doctor().findings}
    assert found[str(work)].worktree == "main" and found[str(work)].check == "orphan_tmp"
    assert found[str(trash)].worktree is None and found[str(trash)].repair == "clean_tmp"
    assert "worktree" not in found[str(work)].to_json()  # the JSON is unchanged: path says it
    report = api.doctor(repair=["clean_tmp"])
    assert report.healthy, report.to_json()
    assert not work.exists() and not (trash / "old").exists()
    assert {r.action for r in report.repaired} == {"clean_tmp"}
