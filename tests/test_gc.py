"""jvs gc (SPEC §9): retention along the lineage, what is protected, the plan → run
handshake (with the seeds' shell pipeline verbatim on a simulated month), tombstones and
the lineage after collection, freed bytes, a run killed at every step, pins, rescues.

"Old" snapshots are made by moving gc's clock (JVS_GC_NOW), never by editing
descriptors (their checksum covers created_at). Where snapshots must be days apart (a
month of daily backups), the snapshot process runs with its wall clock shifted, as
faketime would do: ``snap_at`` below; everything else about it is the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import run_jvs, wait_until

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


# The real CLI with time.time / time.time_ns shifted to a given moment (and running on).
_CLOCK_SHIFT = ("import sys, time; _d = float(sys.argv.pop(1)) - time.time(); "
                "_t, _ns = time.time, time.time_ns; time.time = lambda: _t() + _d; "
                "time.time_ns = lambda: _ns() + int(_d * 1e9); sys.argv[0] = 'jvs'; "
                "from jvs.cli.main import main; main()")


def snap_at(main, when: float, note: str, *tags: str, change: str | None = None) -> str:
    """``jvs snapshot NOTE [--tag T]...`` as if run at unix time *when*."""
    (main / "f.txt").write_text((change or note) + "\n")
    args = [sys.executable, "-c", _CLOCK_SHIFT, str(when), "snapshot", note, "--json"]
    for t in tags:
        args += ["--tag", t]
    out = subprocess.run(args, cwd=main, capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["snapshot_id"]


def tombstones(repo) -> dict:
    out = {}
    for path in (repo / ".jvs" / "gc" / "tombstones").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            out[record["snapshot_id"]] = record
    return out


@pytest.fixture(scope="module")
def branched_template(tmp_path_factory):
    """main: s1 -> s2 -> s3, then restore s1 and snapshot s4: s2 and s3 are off every
    live lineage (the old latest and its parent). Built once; each test gets a copy."""
    base = tmp_path_factory.mktemp("branched")
    run_jvs("init", "repo", cwd=base)
    repo = base / "repo"
    main = repo / "main"
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


def test_linear_history_is_pruned_along_the_lineage(repo):
    """The issue's case: every snapshot of one worktree is an ancestor of its head, and
    still an old one goes (a snapshot is a complete payload, not a delta)."""
    main = repo / "main"
    ids = [snap(main, f"v{i}") for i in range(4)]
    data = plan(main, "--keep-last", "0", days=30)
    assert data["candidates"] == ids[:3]
    assert data["kept_reasons"] == {"head": 1}
    assert plan(main, "--keep-last", "2", days=30)["candidates"] == ids[:2]


def test_plan_json_carries_the_go_field_names(branched):
    repo, main, (s1, s2, s3, s4) = branched
    run_jvs("gc", "pin", s3, cwd=main)
    data = plan(main, "--keep-last", "0")
    assert data["candidate_count"] == 2 == len(data["candidates"])
    assert data["to_delete"] == data["candidates"] == [s1, s2]
    assert data["protected_by_pin"] == 1
    assert data["protected_by_lineage"] == 1  # s4: head and latest of main
    assert data["deletable_bytes_estimate"] > 0
    assert data["deletable_bytes_estimate_kind"] == "exact"  # the copy engine


def test_candidates_and_protections(branched):
    repo, main, (s1, s2, s3, s4) = branched
    assert plan(main, "--keep-last", "0")["candidates"] == [s1, s2, s3]
    # younger than 24 h: nothing
    young = run_jvs("gc", "plan", "--keep-last", "0", "--json", cwd=main).json
    assert young["candidates"] == []
    # keep-last is per worktree; 4 keeps everything of main
    assert plan(main, "--keep-last", "4")["candidates"] == []
    run_jvs("gc", "pin", s3, "--reason", "paper", cwd=main)
    assert plan(main, "--keep-last", "0")["candidates"] == [s1, s2]
    pins = run_jvs("gc", "pins", "--json", cwd=main).json["pins"]
    assert [(p["snapshot_id"], p["reason"]) for p in pins] == [(s3, "paper")]
    run_jvs("gc", "unpin", s3, cwd=main)
    assert plan(main, "--keep-last", "0")["candidates"] == [s1, s2, s3]
    # an intent naming s2 (an operation in flight) protects it
    intent = repo / ".jvs" / "intents" / "restore-other.json"
    intent.write_text(json.dumps({"operation": "restore", "target_id": s2,
                                  "host": "elsewhere", "pid": 1}))
    assert plan(main, "--keep-last", "0")["candidates"] == [s1, s3]
    intent.unlink()


def test_tags_protect_by_default(repo):
    main = repo / "main"
    s1 = snap(main, "s1")
    s2 = snap(main, "s2", "important")
    snap(main, "s3")
    assert plan(main, "--keep-last", "0")["candidates"] == [s1]
    assert plan(main, "--keep-last", "0", "--no-keep-tagged")["candidates"] == [s1, s2]


def test_keep_last_daily_weekly_and_tags_on_a_linear_history(repo):
    """Six weeks of one snapshot a day at 02:00 local time, Sundays tagged weekly."""
    main = repo / "main"
    start = datetime(2026, 3, 2, 2, 0).timestamp()  # a Monday, local time
    ids = []
    for day in range(42):
        when = start + day * DAYS
        weekly = datetime.fromtimestamp(when).weekday() == 6
        ids.append(snap_at(main, when, f"day {day}", *(["weekly"] if weekly else [])))
    sundays = {ids[d] for d in range(6, 42, 7)}
    now = {"JVS_GC_NOW": str(start + 42 * DAYS)}

    def candidates(*args):
        return set(run_jvs("gc", "plan", *args, "--json", cwd=main, env=now).json["candidates"])

    everything = set(ids)
    assert candidates("--keep-last", "5") == everything - set(ids[-5:]) - sundays
    assert candidates("--keep-daily", "7") == everything - set(ids[-7:]) - sundays
    # keep-weekly keeps the newest of each ISO week (Monday..Sunday): the Sundays, and
    # the current week's newest, which is also the head.
    weekly_kept = {ids[d] for d in (41, 34, 27)}
    assert candidates("--keep-weekly", "3", "--no-keep-tagged") == everything - weekly_kept
    both = candidates("--keep-daily", "3", "--keep-weekly", "4", "--no-keep-tagged")
    assert both == everything - set(ids[-3:]) - {ids[d] for d in (34, 27, 20)}
    assert candidates("--keep-days", "10") == everything - set(ids[-10:]) - sundays


def test_keep_daily_counts_local_calendar_days(repo):
    """Two snapshots an hour apart around local midnight in Tokyo: two days there, one
    day in UTC. restic counts days on the local wall clock, and so does gc."""
    main = repo / "main"
    before = datetime(2026, 3, 10, 23, 30, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()
    a = snap_at(main, before, "late on the 10th")
    snap_at(main, before + 3600, "early on the 11th")
    snap_at(main, before + 3 * DAYS, "head")
    env = {"JVS_GC_NOW": str(before + 5 * DAYS)}
    tokyo = run_jvs("gc", "plan", "--keep-daily", "3", "--json", cwd=main,
                    env={**env, "TZ": "Asia/Tokyo"}).json
    utc = run_jvs("gc", "plan", "--keep-daily", "3", "--json", cwd=main,
                  env={**env, "TZ": "UTC"}).json
    assert tokyo["candidates"] == []
    assert utc["candidates"] == [a]


def test_pin_expiry(branched):
    repo, main, (s1, s2, s3, s4) = branched
    run_jvs("gc", "pin", s3, "--expires", "3d", cwd=main)
    assert plan(main, "--keep-last", "0", days=2)["candidates"] == [s1, s2]
    assert plan(main, "--keep-last", "0", days=4)["candidates"] == [s1, s2, s3]
    pins = run_jvs("gc", "pins", "--json", cwd=main, env=later(4)).json["pins"]
    assert pins[0]["expired"] is True


def test_rescues_expire_after_seven_days(repo):
    main = repo / "main"
    s1 = snap(main, "s1")
    snap(main, "s2")
    (main / "f.txt").write_text("unsaved work\n")
    run_jvs("restore", s1, cwd=main)  # head s1, latest s2: both protected
    rescues = [s for s in run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]
               if s["kind"] == "rescue"]
    assert len(rescues) == 1
    assert plan(main, "--keep-last", "0", days=2)["candidates"] == []
    assert plan(main, "--keep-last", "0", days=8)["candidates"] == [rescues[0]["snapshot_id"]]


SEEDS_RETENTION = """set -euo pipefail
# Clean up old daily snapshots, keep tagged ones
jvs gc plan --keep-daily 7 --keep-tagged

# Review plan
jvs gc plan --keep-daily 7 --keep-tagged
# Output shows what will be deleted

# Execute when ready
PLAN_ID=$(jvs gc plan --keep-daily 7 --keep-tagged | grep "Plan ID:" | cut -d: -f2)
jvs gc run --plan-id "$PLAN_ID"
"""


def _bash(script: str, cwd, env: dict):
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env, "NO_COLOR": "1",
                               "PATH": f"{BIN}:{os.environ['PATH']}"})


@pytest.fixture(scope="module")
def month_template(tmp_path_factory):
    """Example 3's backup recipe for 30 days: a daily snapshot at 02:00, and on Sundays the
    weekly one (tagged ``weekly``), as its cron lines take them. The dailies here are not
    tagged: with ``--tag daily`` on every one, ``--keep-tagged`` keeps them all (see
    test_seeds_recipe_with_every_daily_tagged_keeps_them)."""
    base = tmp_path_factory.mktemp("month")
    run_jvs("init", "critical-app", cwd=base)
    repo = base / "critical-app"
    main = repo / "main"
    start = datetime(2026, 5, 1, 2, 0).timestamp()
    dailies, weeklies = [], []
    for day in range(30):
        when = start + day * DAYS
        stamp = datetime.fromtimestamp(when).strftime("%Y-%m-%d")
        dailies.append(snap_at(main, when, f"Daily backup {stamp}"))
        if datetime.fromtimestamp(when).weekday() == 6:
            weeklies.append(snap_at(main, when + 60, f"Weekly backup {stamp}", "weekly"))
    return repo, dailies, weeklies, start + 30 * DAYS + 3600


@pytest.fixture
def month(month_template, tmp_path):
    template, dailies, weeklies, now = month_template
    repo = tmp_path / "critical-app"
    shutil.copytree(template, repo, symlinks=True)
    return repo, dailies, weeklies, now


def test_seeds_retention_verbatim_on_a_month_of_daily_snapshots(month):
    repo, dailies, weeklies, now = month
    main = repo / "main"
    du_before = _du(repo / ".jvs")
    out = _bash(SEEDS_RETENTION + "jvs verify --all\njvs doctor --strict\n", main,
                {"JVS_GC_NOW": str(now)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("GC Plan") == 2
    # keep-daily 7: the newest of each of the last 7 days, which on a Sunday is the
    # weekly one (02:01); the weeklies are tagged, so all of them stay too.
    last_week = {d for d in dailies[-7:]
                 if datetime.fromtimestamp(int(d[:13]) / 1000).weekday() != 6}
    kept = last_week | set(weeklies)
    gone = set(dailies) - kept
    assert f"deleted {len(gone)} snapshot(s)" in out.stdout
    assert "Repository is healthy." in out.stdout
    assert published(repo) == kept
    for sid in gone:
        assert not (repo / ".jvs" / "snapshots" / sid).exists()
        assert not (repo / ".jvs" / "manifests" / sid).exists()
    assert set(tombstones(repo)) == gone
    assert _du(repo / ".jvs") < du_before
    listed = {s["snapshot_id"] for s in
              run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]}
    assert listed == kept
    log = (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["operation"] == "gc"
    # Run again: nothing more to do, same answer.
    again = _bash(SEEDS_RETENTION, main, {"JVS_GC_NOW": str(now)})
    assert again.returncode == 0 and "deleted 0 snapshot(s)" in again.stdout


def test_seeds_recipe_with_every_daily_tagged_keeps_them(repo):
    """The cron line tags every daily snapshot ``daily``; ``--keep-tagged`` then keeps all
    of them, and the plan says why. docs/operations.md gives the recipe that prunes."""
    main = repo / "main"
    start = datetime(2026, 5, 1, 2, 0).timestamp()
    ids = [snap_at(main, start + d * DAYS, f"Daily backup {d}", "daily") for d in range(10)]
    env = {"JVS_GC_NOW": str(start + 11 * DAYS)}
    human = run_jvs("gc", "plan", "--keep-daily", "7", "--keep-tagged", cwd=main, env=env)
    assert "to delete: 0 snapshot(s)" in human.stdout and "9 tagged" in human.stdout
    pruned = run_jvs("gc", "plan", "--keep-daily", "7", "--no-keep-tagged", "--json",
                     cwd=main, env=env).json
    assert pruned["candidates"] == ids[:3]


def leave_racy_window() -> None:
    """Let files just written age past the stat cache's racily-clean window (100 ms,
    jvs/statcache.py): one changed inside it is not cached by the next snapshot, so the
    snapshot after copies it instead of linking it (rightly counted as freed then, but
    not the sharing these tests are about). Not a timed assertion: only a wait."""
    time.sleep(0.3)


def _du(path) -> int:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True,
                              text=True).stdout.split()[0])


def test_plan_reports_the_bytes_a_run_frees(repo):
    """Copy engine: unchanged files are hard links shared with kept snapshots; only the
    bytes whose last link goes are freed, and the plan says exactly that many."""
    main = repo / "main"
    (main / "big.bin").write_bytes(os.urandom(1 << 20))  # shared by every snapshot
    leave_racy_window()
    ids = []
    for i in range(4):
        (main / "changing.bin").write_bytes(os.urandom(256 << 10))  # new each time
        ids.append(snap(main, f"v{i}"))
    data = plan(main, "--keep-last", "1", days=2)
    assert data["candidates"] == ids[:3]
    freed = data["deletable_bytes_estimate"]
    assert 3 * (256 << 10) <= freed < (1 << 20)  # the 1 MiB file stays linked by v3
    before = _du(repo / ".jvs" / "snapshots") + _du(repo / ".jvs" / "manifests")
    run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
    after = _du(repo / ".jvs" / "snapshots") + _du(repo / ".jvs" / "manifests")
    assert (before - after) * 1024 == freed
    assert (main / "big.bin").stat().st_size == 1 << 20
    run_jvs("verify", "--all", cwd=main)


def test_du_splits_exclusive_and_shared(repo):
    main = repo / "main"
    (main / "big.bin").write_bytes(os.urandom(1 << 20))
    leave_racy_window()
    a = snap(main, "a")
    (main / "own.bin").write_bytes(os.urandom(512 << 10))
    b = snap(main, "b")
    data = run_jvs("du", "--json", cwd=main).json
    rows = {r["snapshot_id"]: r for r in data["snapshots"]}
    assert list(rows) == [b, a]
    assert rows[a]["shared_bytes"] >= 1 << 20 and rows[b]["shared_bytes"] >= 1 << 20
    assert rows[b]["exclusive_bytes"] >= 512 << 10 > rows[a]["exclusive_bytes"]
    assert rows[b]["exclusive_is_exact"] is True
    whole = data["repository"]
    # Each file counted once: the shared 1 MiB is in the total once, not twice.
    assert (1 << 20) + (512 << 10) <= whole["snapshots_bytes"] < 2 * (1 << 20)
    assert whole["total_bytes"] == (whole["snapshots_bytes"] + whole["worktrees_bytes"]
                                    + whole["control_plane_bytes"])
    human = run_jvs("du", cwd=main).stdout
    assert "EXCLUSIVE" in human and "Repository:" in human
    assert [r["snapshot_id"] for r in run_jvs("du", "HEAD~1", "--json", cwd=main)
            .json["snapshots"]] == [a]


def test_seeds_pipeline_verbatim(branched):
    repo, main, (s1, s2, s3, s4) = branched
    # Three days later, keep-daily 7 keeps the newest snapshot of each day: s4 (the head
    # as well); s1, s2 and s3 are of the same day and go, s1 although s4 descends from it.
    out = _bash(SEEDS_RETENTION + "jvs verify --all\njvs doctor --strict\n", main, later(3))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("GC Plan") == 2
    assert "deleted 3 snapshot(s)" in out.stdout
    assert "Repository is healthy." in out.stdout
    assert published(repo) == {s4}
    for sid in (s1, s2, s3):
        assert not (repo / ".jvs" / "snapshots" / sid).exists()
        assert not (repo / ".jvs" / "manifests" / sid).exists()


def test_lineage_head_n_and_doctor_after_collection(repo):
    main = repo / "main"
    ids = [snap(main, f"v{i}", *(["keep"] if i == 1 else [])) for i in range(5)]
    data = plan(main, "--keep-last", "2")
    assert data["candidates"] == [ids[0], ids[2]]
    run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
    assert published(repo) == {ids[1], ids[3], ids[4]}
    stones = tombstones(repo)
    assert stones[ids[2]]["parent_id"] == ids[1] and stones[ids[2]]["note"] == "v2"
    assert stones[ids[2]]["plan_id"] == data["plan_id"]
    # HEAD~N counts the lineage as it was, through the collected v2.
    assert run_jvs("diff", "HEAD~3", "HEAD", "--json", cwd=main).returncode == 0
    head3 = run_jvs("verify", "HEAD~3", "--json", cwd=main).json
    assert head3["snapshots"][0]["snapshot_id"] == ids[1]
    gone = run_jvs("diff", "HEAD~2", cwd=main, check=False)
    assert gone.returncode == 1 and "E_NOT_FOUND" in gone.stderr
    assert data["plan_id"] in gone.stderr and "collected" in gone.stderr
    deeper = run_jvs("verify", "HEAD~5", cwd=main, check=False)
    assert "only 4 snapshot(s) deep" in deeper.stderr  # v0, collected, is HEAD~4
    # history hides collected snapshots; --collected shows them, marked, in place.
    plain = run_jvs("history", "--json", cwd=main).json["snapshots"]
    assert [s["snapshot_id"] for s in plain] == [ids[4], ids[3], ids[1]]
    full = run_jvs("history", "--collected", "--json", cwd=main).json
    assert [t["snapshot_id"] for t in full["collected"]] == [ids[2], ids[0]]
    human = run_jvs("history", "--collected", cwd=main).stdout.splitlines()
    assert "collected" in human[2] and "v2" in human[2] and "collected" not in human[1]
    report = run_jvs("doctor", "--strict", "--json", cwd=main).json
    assert report["healthy"] is True, report
    # fork from a snapshot whose parent was collected, and its history reaches v1.
    run_jvs("fork", ids[3], "side", cwd=main)
    side = run_jvs("history", "--json", cwd=repo / "worktrees" / "side").json["snapshots"]
    assert [s["snapshot_id"] for s in side] == [ids[3], ids[1]]


def test_restore_of_a_collected_snapshot_names_plan_and_date(repo):
    main = repo / "main"
    old = snap(main, "old one")
    snap(main, "new one")
    data = plan(main, "--keep-last", "1")
    run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
    for ref in (old, old.rpartition("-")[2]):
        res = run_jvs("restore", ref, cwd=main, check=False)
        assert res.returncode == 1
        assert "E_NOT_FOUND" in res.stderr and "collected" in res.stderr
        assert f"gc plan {data['plan_id']}" in res.stderr
        assert time.strftime("%Y-%m-%d", time.gmtime()) in res.stderr
    js = run_jvs("restore", old, "--json", cwd=main, check=False)
    assert json.loads(js.stdout)["error"]["code"] == "E_NOT_FOUND"
    assert (main / "f.txt").read_text() == "new one\n"  # the worktree was not touched


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


GC_STEPS = ["gc:after_tombstones", "gc:after_unpublish_one", "gc:after_phase1",
            "gc:after_delete_one", "gc:after_phase2"]


@pytest.mark.parametrize("step", GC_STEPS)
@pytest.mark.parametrize("finisher", ["gc run", "doctor"])
def test_run_killed_at_every_step_is_finished(branched, step, finisher):
    """SIGKILL at each step of gc run: every candidate is either still a whole snapshot
    or collected (no descriptor, tombstone recorded); then the next gc run, or doctor,
    finishes, and nothing kept was touched."""
    repo, main, (s1, s2, s3, s4) = branched
    plan_id = plan(main, "--keep-last", "0")["plan_id"]
    killed = run_jvs("gc", "run", "--plan-id", plan_id, cwd=main,
                     env={**later(2), "JVS_CRASH_AT": step}, check=False)
    assert killed.returncode == -9
    for sid in (s1, s2, s3):
        if sid in published(repo):  # untouched: a whole, verifiable snapshot
            run_jvs("verify", sid, cwd=main)
        else:  # collected: gone for readers, its tombstone already durable
            assert sid in tombstones(repo)
            res = run_jvs("restore", sid, cwd=main, check=False)
            assert res.returncode == 1 and "collected" in res.stderr
    if finisher == "gc run":
        rerun = run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later(2))
        assert "deleted" in rerun.stdout
    else:
        run_jvs("doctor", "--repair-runtime", cwd=main)
        rest = plan(main, "--keep-last", "0")
        run_jvs("gc", "run", "--plan-id", rest["plan_id"], cwd=main, env=later(2))
    assert published(repo) == {s4}
    for sid in (s1, s2, s3):
        assert not (repo / ".jvs" / "snapshots" / sid).exists()
        assert not (repo / ".jvs" / "manifests" / sid).exists()
    assert set(tombstones(repo)) == {s1, s2, s3}
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
    run_jvs("verify", "--all", cwd=main)


def test_doctor_reports_an_unfinished_run(branched):
    repo, main, (s1, s2, s3, s4) = branched
    plan_id = plan(main, "--keep-last", "0")["plan_id"]
    env = {**later(2), "JVS_CRASH_AT": "gc:after_phase1"}
    assert run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=env,
                   check=False).returncode == -9
    assert published(repo) == {s4}
    assert (repo / ".jvs" / "snapshots" / s2).is_dir()
    assert run_jvs("verify", s2, cwd=main, check=False).returncode == 1
    assert "gc_unfinished" in run_jvs("doctor", cwd=main, check=False).stdout
    rerun = run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later(2))
    assert "Finished an interrupted run: 3" in rerun.stdout
    assert not (repo / ".jvs" / "snapshots" / s2).exists()
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout


def test_gc_config_defaults(branched):
    repo, main, (s1, s2, s3, s4) = branched
    config_path = repo / ".jvs" / "config.json"
    config = json.loads(config_path.read_text())
    config["gc"] = {"keep_last": 0, "keep_tagged": True}
    config_path.write_text(json.dumps(config))
    data = plan(main)
    assert data["policy"]["keep_last"] == 0 and data["candidates"] == [s1, s2, s3]
    human = run_jvs("gc", "plan", cwd=main, env=later(2)).stdout
    assert "GC Plan" in human and f"Plan ID: {data['plan_id']}" in human
    assert "frees:" in human and "exact" in human


def test_thinning_a_branch_keeps_doctor_green(branched):
    """A pinned snapshot whose parent is collected: its parent link resolves to a
    tombstone, and doctor --strict counts that as healthy."""
    repo, main, (s1, s2, s3, s4) = branched
    run_jvs("gc", "pin", s3, cwd=main)
    plan_id = plan(main, "--keep-last", "0")["plan_id"]
    run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later(2))
    assert published(repo) == {s3, s4}
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
    run_jvs("verify", s3, cwd=main)


def test_doctor_strict_still_flags_a_parent_lost_without_gc(branched):
    """The tombstone is what makes a missing parent healthy: one deleted by hand is not."""
    repo, main, (s1, s2, s3, s4) = branched
    (repo / ".jvs" / "descriptors" / f"{s2}.json").unlink()
    shutil.rmtree(repo / ".jvs" / "snapshots" / s2)
    report = run_jvs("doctor", "--strict", "--json", cwd=main, check=False).json
    assert any(f["check"] == "parent_missing" for f in report["findings"])


def test_detached_worktree_keeps_head_and_latest(repo):
    main = repo / "main"
    s1 = snap(main, "s1")
    s2 = snap(main, "s2")
    s3 = snap(main, "s3")
    run_jvs("restore", s1, cwd=main)  # DETACHED: head s1, latest s3
    assert plan(main, "--keep-last", "0")["candidates"] == [s2]
    assert s3 not in plan(main, "--keep-last", "0")["candidates"]


def test_removed_worktree_snapshots_are_collected(repo):
    main = repo / "main"
    base = snap(main, "base")
    run_jvs("fork", base, "side", cwd=main)
    side = repo / "worktrees" / "side"
    side_ids = [snap(side, f"side {i}") for i in range(2)]
    assert plan(main, "--keep-last", "0")["candidates"] == side_ids[:1]  # side's head stays
    run_jvs("worktree", "remove", "side", "--force", cwd=main)
    data = plan(main, "--keep-last", "0")
    assert data["candidates"] == side_ids
    run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
    assert published(repo) == {base}
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout


@pytest.mark.fuse
@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None,
                    reason="FUSE (/dev/fuse, fusermount3) is not available")
def test_the_view_serves_kept_snapshots_while_gc_runs(repo, tmp_path):
    """A real mount: gc runs (the view holds no lock), and while it is stopped inside its
    deletion step, a kept snapshot reads exactly through the view, the collected ones have
    vanished, and a file of a collected snapshot opened before keeps reading."""
    from conftest import mounted_fstype, start_paused_jvs

    main = repo / "main"
    (main / "data.bin").write_bytes(os.urandom(2 << 20))
    old = snap(main, "old")
    old_bytes = (main / "f.txt").read_bytes()
    (main / "data.bin").write_bytes(os.urandom(2 << 20))
    middle = snap(main, "middle")
    kept_bytes = (main / "data.bin").read_bytes()
    kept = snap(main, "kept", "keep")
    head = snap(main, "head")
    view = tmp_path / "view"
    view.mkdir()
    run_jvs("mount", str(view), "-C", str(repo))
    try:
        snaps = view / "@snapshots"
        assert {old, middle, kept} <= set(os.listdir(snaps))
        held = open(snaps / old / "f.txt", "rb")
        data = plan(main, "--keep-last", "1")
        assert data["candidates"] == [old, middle]
        gc = start_paused_jvs("gc", "run", "--plan-id", data["plan_id"],
                              "--now", str(time.time() + 2 * DAYS), cwd=main,
                              step="gc:after_delete_one", seconds=300)
        try:
            assert not (repo / ".jvs" / "snapshots" / old).exists()  # deleting under us
            assert (snaps / kept / "data.bin").read_bytes() == kept_bytes
            assert (snaps / "keep" / "f.txt").read_text() == "kept\n"
            assert wait_until(lambda: old not in os.listdir(snaps)
                         and middle not in os.listdir(snaps))
            assert held.read() == old_bytes
        finally:
            held.close()
            gc.kill()
            gc.wait()
        run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
        assert published(repo) == {kept, head}
        assert (snaps / kept / "data.bin").read_bytes() == kept_bytes
        assert wait_until(lambda: not os.path.lexists(snaps / middle))
    finally:
        if mounted_fstype(view) is not None:
            run_jvs("umount", str(view), check=False)


def test_freed_bytes_say_how_sure_they_are_per_engine(engine_repo):
    """Copy: exact (last hard link). Reflink and JuiceFS clones share data below the file
    level, which the file system does not report cheaply: the plan says "at most"."""
    repo, engine = engine_repo
    main = repo / "main"
    (main / "data.bin").write_bytes(os.urandom(1 << 20))
    old = snap(main, "old")
    (main / "data.bin").write_bytes(os.urandom(1 << 20))
    snap(main, "new")
    data = plan(main, "--keep-last", "1")
    assert data["candidates"] == [old]
    human = run_jvs("gc", "plan", "--keep-last", "1", cwd=main, env=later(2)).stdout
    rows = {r["snapshot_id"]: r for r in run_jvs("du", "--json", cwd=main).json["snapshots"]}
    if engine == "copy":
        assert data["deletable_bytes_estimate_kind"] == "exact"
        assert "exact" in human and "at most" not in human
        assert rows[old]["exclusive_is_exact"] is True
    else:
        assert data["deletable_bytes_estimate_kind"] == "upper_bound"
        assert "at most" in human and data["freed"]["shared_below_files"]
        assert rows[old]["exclusive_is_exact"] is False
        assert "<=" in run_jvs("du", cwd=main).stdout
    assert data["deletable_bytes_estimate"] >= 1 << 20  # old's data.bin is its own
    run_jvs("gc", "run", "--plan-id", data["plan_id"], cwd=main, env=later(2))
    assert published(repo) == {rows[next(iter(set(rows) - {old}))]["snapshot_id"]}


@pytest.mark.parametrize("reader", ["verify", "doctor"])
def test_readers_tell_a_snapshot_being_collected_from_a_tampered_one(repo, reader):
    """verify --all and doctor --strict list the snapshots, then read them one by one: a
    gc run between the two must not make the collected ones read as TAMPERED."""
    from jvs.doctor import diagnose
    from jvs.repo import Repo
    from jvs.verify import verify_all

    main = repo / "main"
    ids = [snap(main, f"v{i}") for i in range(4)]
    plan_id = plan(main, "--keep-last", "1", days=30)["plan_id"]
    ran = []

    def gc_once(_message):
        if not ran:
            ran.append(run_jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later(30)))

    r = Repo(repo)
    if reader == "verify":
        report = verify_all(r, progress=gc_once)
        assert ran and report.ok, [x.problems for x in report.results]
        assert sorted(report.collected) == sorted(ids[:3])
        assert [x.snapshot_id for x in report.results] == [ids[3]]
    else:
        report = diagnose(r, strict=True, progress=gc_once)
        assert ran and not [f for f in report.findings if f.severity != "info"], \
            report.findings
    # A snapshot tampered with for real is still TAMPERED.
    victim = r.payload_dir(ids[3]) / "f.txt"
    victim.chmod(0o644)
    victim.write_text("tampered\n")
    assert not verify_all(r).ok
