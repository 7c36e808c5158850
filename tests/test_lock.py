"""Two-level locks (SPEC §8, issue 17): writers in different worktrees never wait for each
other; two writers in one worktree serialise; gc and repairs wait for worktree operations
in flight, and they for them; a killed holder releases everything; the audit chain stays
whole under concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

from conftest import run_jvs, start_paused_jvs

QUICK = {"JVS_LOCK_TIMEOUT": "0.5"}


@contextmanager
def paused(*args: str, cwd, step: str = "snapshot:after_materialise"):
    """A real jvs command stopped at *step* (holding its locks) for the block's duration,
    then killed."""
    proc = start_paused_jvs(*args, cwd=cwd, step=step, seconds=60)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def two_worktrees(repo):
    """main (with a snapshot, paused mid-snapshot by tests) and worktree b."""
    main = repo / "main"
    (main / "data.bin").write_bytes(os.urandom(1 << 20))
    run_jvs("snapshot", "base", "--tag", "base", cwd=main)
    run_jvs("fork", "b", cwd=main)
    return main, repo / "worktrees" / "b"


def test_other_worktrees_go_on_while_a_snapshot_is_paused_mid_clone(two_worktrees):
    main, b = two_worktrees
    (main / "more.txt").write_text("more\n")
    with paused("snapshot", "slow one", cwd=main) as holder:
        (b / "b.txt").write_text("b\n")
        snap = run_jvs("snapshot", "in b", "--json", cwd=b, env=QUICK).json
        run_jvs("restore", "base", cwd=b, env=QUICK)
        assert not (b / "b.txt").exists()
        run_jvs("restore", snap["snapshot_id"], cwd=b, env=QUICK)
        run_jvs("fork", "c", cwd=b, env=QUICK)
        assert (main.parent / "worktrees" / "c" / "b.txt").read_text() == "b\n"
        assert holder.poll() is None  # main's snapshot is still paused, mid-protocol


def test_two_writers_in_one_worktree_serialise_and_say_who_holds_it(two_worktrees):
    main, b = two_worktrees
    with paused("snapshot", "first", cwd=main) as holder:
        res = run_jvs("snapshot", "second", cwd=main, check=False, env=QUICK)
        assert res.returncode == 1 and "E_BUSY" in res.stderr
        assert "worktree 'main' busy" in res.stderr and "snapshot" in res.stderr
        assert f"pid {holder.pid}" in res.stderr


def test_gc_and_repairs_wait_for_worktree_operations_and_they_for_them(two_worktrees):
    main, b = two_worktrees
    with paused("snapshot", "in flight", cwd=main):
        for args in (["gc", "plan", "--keep-last", "1"], ["doctor", "--repair-runtime"],
                     ["worktree", "remove", "b"]):
            res = run_jvs(*args, cwd=main.parent, check=False, env=QUICK)
            if args[0] == "gc" and res.returncode == 0:
                continue  # planning only reads; the run is what must wait
            assert res.returncode == 1 and "E_BUSY" in res.stderr, (args, res.stderr)
            assert "repository busy (shared by snapshot" in res.stderr, res.stderr
    # The other way round: a repository-wide operation in flight holds worktrees off.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom pathlib import Path\nfrom jvs.lock import repo_lock\n"
         "from jvs.repo import Repo\n"
         f"with repo_lock(Repo(Path({str(main.parent)!r})), 'gc run'):\n"
         "    print('held', flush=True); time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = run_jvs("snapshot", "blocked", cwd=b, check=False, env=QUICK)
        assert res.returncode == 1 and "repository busy" in res.stderr and "gc run" in \
            res.stderr
    finally:
        holder.kill()
        holder.wait()
    run_jvs("snapshot", "after gc", cwd=b, env=QUICK)


def test_a_killed_holder_releases_every_lock(two_worktrees):
    main, b = two_worktrees
    for step in ("snapshot:after_intent", "snapshot:after_materialise",
                 "snapshot:after_descriptor_tmp"):
        (main / "x.txt").write_text(step)
        with paused("snapshot", "killed", cwd=main, step=step):
            pass  # killed at *step*, holding its locks
        run_jvs("snapshot", "after the kill", cwd=main, env=QUICK)
        run_jvs("worktree", "rename", "b", "b2", cwd=main, env=QUICK)
        run_jvs("worktree", "rename", "b2", "b", cwd=main, env=QUICK)
    assert run_jvs("doctor", "--strict", cwd=main).returncode == 0


def test_the_audit_chain_stays_whole_under_eight_concurrent_writers(repo):
    main = repo / "main"
    (main / "seed.txt").write_text("seed\n")
    run_jvs("snapshot", "seed", cwd=main)
    names = [f"w{n}" for n in range(8)]
    for name in names:
        run_jvs("fork", name, cwd=main)
    env = {**os.environ, "NO_COLOR": "1", "JVS_LOCK_TIMEOUT": "120"}
    script = ("for i in 1 2 3; do echo $i > f.txt; {jvs} snapshot \"run $i\" >/dev/null || "
              "exit 1; {jvs} restore HEAD~1 >/dev/null || exit 1; done")
    jvs = f"{sys.executable} -m jvs"
    procs = [subprocess.Popen(["sh", "-c", script.format(jvs=jvs)],
                              cwd=repo / "worktrees" / name, env=env,
                              stderr=subprocess.PIPE, text=True) for name in names]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    doctor = run_jvs("doctor", "--strict", "--json", cwd=main)
    assert doctor.returncode == 0
    history = run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]
    assert len(history) == 1 + 8 * 3
    audit = (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()
    assert sum('"operation":"snapshot"' in line for line in audit) == 1 + 8 * 3
