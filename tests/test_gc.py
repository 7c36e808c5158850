"""jvs gc (SPEC §9): what is protected, the plan → run handshake (with the seeds' shell
pipeline verbatim), the plan mismatch, pins, rescues, and a run killed between phases.

"Old" snapshots are made by moving gc's clock (JVS_GC_NOW), never by editing
descriptors (their checksum covers created_at)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import run_jvs

BIN = os.path.dirname(sys.executable)
DAYS = 24 * 3600


def later(days: float) -> dict:
    return {"JVS_GC_NOW": str(time.time() + days * DAYS)}


def snap(main, note, *tags):
    (main / "f.txt").write_text(note + "\n")
    args = ["snapshot", note]
    for t in tags:
        args += ["--tag", t]
    return run_jvs(*args, "--json", cwd=main).json["snapshot_id"]


def plan(main, *args, days=2.0):
    return run_jvs("gc", "plan", *args, "--json", cwd=main, env=later(days)).json


def published(repo):
    return {p.name[:-5] for p in (repo / ".jvs" / "descriptors").glob("*.json")}


@pytest.fixture(scope="module")
def branched_template(tmp_path_factory):
    """main: s1 -> s2 -> s3, then restore s1 and snapshot s4: s2 and s3 are off every
    live lineage (the old latest and its parent). Built once; each test gets a copy."""
    base = tmp_path_factory.mktemp("branched")
    run_jvs("init", "repo", cwd=base)
    repo = base / "repo"
    main = repo / "main"
    if run_jvs("restore", "--help", cwd=main, check=False).returncode != 0:
        pytest.skip("jvs restore does not exist yet")
    s1 = snap(main, "s1")
    s2 = snap(main, "s2")
    s3 = snap(main, "s3")
    run_jvs("restore", s1, cwd=main)
    s4 = snap(main, "s4")
    return repo, (s1, s2, s3, s4)


@pytest.fixture
def branched(branched_template, tmp_path):
    template, ids = branched_template
    repo = tmp_path / "repo"
    shutil.copytree(template, repo, symlinks=True)
    return repo, repo / "main", ids


def test_linear_history_is_never_collected(repo):
    main = repo / "main"
    for i in range(4):
        snap(main, f"v{i}")
    data = plan(main, "--keep-last", "0", days=30)
    assert data["candidates"] == []
    assert data["kept_reasons"].get("ancestor of a head or latest") == 3


def test_candidates_and_protections(branched):
    repo, main, (s1, s2, s3, s4) = branched
    assert plan(main, "--keep-last", "0")["candidates"] == [s2, s3]
    # younger than 24 h: nothing
    young = run_jvs("gc", "plan", "--keep-last", "0", "--json", cwd=main).json
    assert young["candidates"] == []
    # keep-last is per worktree; 4 keeps everything of main
    assert plan(main, "--keep-last", "4")["candidates"] == []
    # a pin on s3 keeps s3 alone (only heads and latests keep their ancestors)
    run_jvs("gc", "pin", s3, "--reason", "paper", cwd=main)
    assert plan(main, "--keep-last", "0")["candidates"] == [s2]
    pins = run_jvs("gc", "pins", "--json", cwd=main).json["pins"]
    assert [(p["snapshot_id"], p["reason"]) for p in pins] == [(s3, "paper")]
    run_jvs("gc", "unpin", s3, cwd=main)
    assert plan(main, "--keep-last", "0")["candidates"] == [s2, s3]
    # an intent naming s2 (an operation in flight) protects it
    intent = repo / ".jvs" / "intents" / "restore-other.json"
    intent.write_text(json.dumps({"operation": "restore", "target_id": s2,
                                  "host": "elsewhere", "pid": 1}))
    assert plan(main, "--keep-last", "0")["candidates"] == [s3]
    intent.unlink()


def test_tags_protect_by_default(repo):
    main = repo / "main"
    if run_jvs("restore", "--help", cwd=main, check=False).returncode != 0:
        pytest.skip("jvs restore does not exist yet")
    s1 = snap(main, "s1")
    s2 = snap(main, "s2", "important")
    run_jvs("restore", s1, cwd=main)
    snap(main, "s3")
    assert plan(main, "--keep-last", "0")["candidates"] == []
    assert plan(main, "--keep-last", "0", "--no-keep-tagged")["candidates"] == [s2]


def test_pin_expiry(branched):
    repo, main, (s1, s2, s3, s4) = branched
    run_jvs("gc", "pin", s3, "--expires", "3d", cwd=main)
    assert plan(main, "--keep-last", "0", days=2)["candidates"] == [s2]
    assert plan(main, "--keep-last", "0", days=4)["candidates"] == [s2, s3]
    pins = run_jvs("gc", "pins", "--json", cwd=main, env=later(4)).json["pins"]
    assert pins[0]["expired"] is True


def test_rescues_expire_after_seven_days(repo):
    main = repo / "main"
    if run_jvs("restore", "--help", cwd=main, check=False).returncode != 0:
        pytest.skip("jvs restore does not exist yet")
    s1 = snap(main, "s1")
    snap(main, "s2")
    (main / "f.txt").write_text("unsaved work\n")
    run_jvs("restore", s1, cwd=main)
    rescues = [s for s in run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]
               if s["kind"] == "rescue"]
    assert len(rescues) == 1
    assert plan(main, "--keep-last", "0", days=2)["candidates"] == []
    assert plan(main, "--keep-last", "0", days=8)["candidates"] == [rescues[0]["snapshot_id"]]


def test_seeds_pipeline_verbatim(branched):
    repo, main, (s1, s2, s3, s4) = branched
    script = """set -euo pipefail
jvs gc plan --keep-daily 7 --keep-tagged

# Review plan
jvs gc plan --keep-daily 7 --keep-tagged
# Output shows what will be deleted

# Execute when ready
PLAN_ID=$(jvs gc plan --keep-daily 7 --keep-tagged | grep "Plan ID:" | cut -d: -f2)
jvs gc run --plan-id "$PLAN_ID"
jvs verify --all
jvs doctor --strict
"""
    # Three days later, keep-daily 7 keeps the newest snapshot of each day: s4 (and
    # its ancestor s1) are kept anyway; s2 and s3 are off-lineage and the same day as s4.
    out = subprocess.run(["bash", "-c", script], cwd=main, capture_output=True, text=True,
                         env={**os.environ, **later(3), "NO_COLOR": "1",
                              "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("GC Plan") == 2
    assert "deleted 2 snapshot(s)" in out.stdout
    assert "Repository is healthy." in out.stdout
    assert published(repo) == {s1, s4}
    for sid in (s2, s3):
        assert not (repo / ".jvs" / "snapshots" / sid).exists()
        assert not (repo / ".jvs" / "manifests" / sid).exists()
    listed = {s["snapshot_id"] for s in
              run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]}
    assert listed == {s1, s4}
    log = (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["operation"] == "gc"


def test_plan_id_is_deterministic_and_run_checks_it(branched):
    repo, main, (s1, s2, s3, s4) = branched
    first = plan(main, "--keep-last", "0")
    assert plan(main, "--keep-last", "0")["plan_id"] == first["plan_id"]
    # the repository changes: s3 gets pinned -> the candidate set differs
    run_jvs("gc", "pin", s3, cwd=main)
    res = run_jvs("gc", "run", "--plan-id", f"  {first['plan_id']} ", cwd=main,
                  env=later(2), check=False)
    assert res.returncode == 1 and "E_GC_PLAN_MISMATCH" in res.stderr
    assert published(repo) == {s1, s2, s3, s4}
    missing = run_jvs("gc", "run", "--plan-id", "0123456789abcdef", cwd=main, check=False)
    assert missing.returncode == 1 and "E_NOT_FOUND" in missing.stderr


def test_run_killed_between_phases_completes_on_rerun(branched):
    repo, main, (s1, s2, s3, s4) = branched
    plan_id = plan(main, "--keep-last", "0")["plan_id"]
    env = {**later(2), "JVS_CRASH_AT": "gc:after_phase1"}
    killed = run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=env, check=False)
    assert killed.returncode == -9
    # phase 1 done: unpublished (not listed, not resolvable), payload still on disk
    assert published(repo) == {s1, s4}
    assert (repo / ".jvs" / "snapshots" / s2).is_dir()
    assert run_jvs("verify", s2, cwd=main, check=False).returncode == 1
    assert "gc_unfinished" in run_jvs("doctor", cwd=main, check=False).stdout
    rerun = run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later(2))
    assert "Finished an interrupted run: 2" in rerun.stdout
    assert not (repo / ".jvs" / "snapshots" / s2).exists()
    assert not (repo / ".jvs" / "snapshots" / s3).exists()
    assert not os.listdir(repo / ".jvs" / "gc" / "tombstones")
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout


def test_run_killed_inside_phase1_is_safe(branched):
    repo, main, (s1, s2, s3, s4) = branched
    plan_id = plan(main, "--keep-last", "0")["plan_id"]
    env = {**later(2), "JVS_CRASH_AT": "gc:after_unpublish_one"}
    assert run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=env,
                   check=False).returncode == -9
    assert published(repo) == {s1, s3, s4}  # s2 unpublished, s3 untouched
    run_jvs("doctor", "--repair-runtime", cwd=main)  # finishes s2's deletion
    assert not (repo / ".jvs" / "snapshots" / s2).exists()
    assert plan(main, "--keep-last", "0")["candidates"] == [s3]
    run_jvs("verify", "--all", cwd=main)


def test_gc_config_defaults(branched):
    repo, main, (s1, s2, s3, s4) = branched
    config_path = repo / ".jvs" / "config.json"
    config = json.loads(config_path.read_text())
    config["gc"] = {"keep_last": 0, "keep_tagged": True}
    config_path.write_text(json.dumps(config))
    data = plan(main)
    assert data["policy"]["keep_last"] == 0 and data["candidates"] == [s2, s3]
    human = run_jvs("gc", "plan", cwd=main, env=later(2)).stdout
    assert "GC Plan" in human and f"Plan ID: {data['plan_id']}" in human
    assert "apparent size" in human


def test_thinning_a_branch_keeps_doctor_green(branched):
    """A pinned snapshot whose parent is collected: its parent_id no longer resolves, and
    doctor --strict knows gc removed it on purpose."""
    repo, main, (s1, s2, s3, s4) = branched
    run_jvs("gc", "pin", s3, cwd=main)
    plan_id = plan(main, "--keep-last", "0")["plan_id"]
    run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later(2))
    assert published(repo) == {s1, s3, s4}
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
    run_jvs("verify", s3, cwd=main)


def test_detached_worktree_keeps_its_latest_line(repo):
    main = repo / "main"
    if run_jvs("restore", "--help", cwd=main, check=False).returncode != 0:
        pytest.skip("jvs restore does not exist yet")
    s1 = snap(main, "s1")
    snap(main, "s2")
    snap(main, "s3")
    run_jvs("restore", s1, cwd=main)  # DETACHED: head s1, latest s3
    assert plan(main, "--keep-last", "0")["candidates"] == []


def test_removed_worktree_snapshots_are_collected(repo):
    main = repo / "main"
    if run_jvs("worktree", "remove", "--help", cwd=main, check=False).returncode != 0:
        pytest.skip("jvs worktree remove does not exist yet")
    base = snap(main, "base")
    run_jvs("fork", base, "side", cwd=main)
    side = repo / "worktrees" / "side"
    side_ids = [snap(side, f"side {i}") for i in range(2)]
    assert plan(main, "--keep-last", "0")["candidates"] == []  # side's head protects them
    run_jvs("worktree", "remove", "side", "--force", cwd=main)
    data = plan(main, "--keep-last", "0")
    assert data["candidates"] == side_ids
    run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
    assert published(repo) == {base}
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
