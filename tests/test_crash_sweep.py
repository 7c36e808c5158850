"""Kill every protocol at its mutating system calls, then repair as a user would and
check that nothing was lost (the harness: tests/crash/sweep.py).

In CI every protocol is killed at each call that moves it on (renames, unlinks, fsyncs,
control-plane writes) and at every n-th call inside a copy being staged (those lead to the
same state; see ``select_points``), on the copy engine, XFS and JuiceFS;
``JVS_CRASH_SWEEP=full`` kills at every call, as ``tools/crash_sweep`` does for the
figures in docs/guarantees.md.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "crash"))

from scenarios import by_name  # noqa: E402
from sweep import Runner, Sweep, build_shim  # noqa: E402

FULL = os.environ.get("JVS_CRASH_SWEEP") == "full"

# (scenario, stride inside staging, every n-th call) per engine: what CI runs, about two
# minutes of the suite's ten. The snapshot and fork protocols are killed at every call;
# the variants of a protocol another scenario covers call by call, and the other
# engines (whose protocol differs only in the clone), are sampled more thinly, with
# different strides so that together they kill at odd and even calls. The full sweep
# (tools/crash_sweep, every call of every scenario on every engine) gives the figures in
# docs/guarantees.md and runs whenever a protocol changes.
COPY = [*((name, 8, 1) for name in ("snapshot", "fork")),
        *((name, 8, 2) for name in (
            "restore-unsaved", "worktree-create-from", "worktree-rename", "worktree-remove",
            "worktree-remove-force", "doctor-finish-snapshot", "doctor-finish-fork")),
        *((name, 8, 3) for name in ("restore-partial", "gc-run", "doctor-finish-restore",
                                    "doctor-audit-repair", "doctor-rebuild-index")),
        *((name, 8, 4) for name in (
            "first-snapshot", "restore-clean", "restore-discard", "worktree-create",
            "doctor-clean-tmp", "doctor-advance-head", "tag-add", "note",
            "go-snapshot", "go-restore", "go-fork"))]
XFS = [("snapshot", 8, 3), ("restore-unsaved", 8, 5)]
JUICEFS = [("snapshot", 8, 11), ("restore-unsaved", 8, 13)]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None,
                                reason="gcc is needed to build the kill shim")


def cases(engine: str, table: list[tuple[str, int, int]], marks=()):
    return [pytest.param(engine, name, (1, 1) if FULL else (stride, every),
                         id=f"{engine}-{name}", marks=list(marks))
            for name, stride, every in table]


@pytest.fixture(scope="session")
def shim(tmp_path_factory) -> Path:
    return build_shim(tmp_path_factory.mktemp("killshim"))


@pytest.fixture
def sweep_on(request, shim, tmp_path):
    runners = []

    def make(engine: str) -> Sweep:
        base = tmp_path if engine == "copy" else request.getfixturevalue(
            {"reflink-copy": "xfs_dir", "juicefs-clone": "juicefs_dir"}[engine])
        runner = Runner(shim, tmp_path, env={"JVS_SNAPSHOT_ENGINE": engine})
        runners.append(runner)
        return Sweep(runner, base, thorough=FULL)

    yield make
    for runner in runners:
        runner.close()


@pytest.mark.parametrize("engine,name,sampling", [
    *cases("copy", COPY),
    *cases("reflink-copy", XFS, [pytest.mark.slow, pytest.mark.xfs]),
    *cases("juicefs-clone", JUICEFS, [pytest.mark.slow, pytest.mark.juicefs]),
])
def test_a_kill_at_any_call_loses_nothing(sweep_on, engine, name, sampling):
    stride, every = sampling
    result = sweep_on(engine).run(by_name(name), stride=stride, every=every)
    assert result.points > 5, "the protocol made almost no calls: is the shim loaded?"
    assert not result.failures, result.summary() + "\n" + "\n".join(
        str(f) for f in result.failures[:10])


def test_the_harness_sees_lost_work(sweep_on):
    """The checker can fail: a forced removal of a worktree with unsaved work, judged as
    if it had to keep that work, is reported as losing it (at any kill point after the
    payload went, and without a kill)."""
    from dataclasses import replace

    scenario = replace(by_name("worktree-remove-force"), discards=False)
    result = sweep_on("copy").run(scenario, points=[1])
    assert result.points > 5
    assert result.failures == []  # killed before anything went
    result = sweep_on("copy").run(scenario, points=[result.points])
    assert result.failures and any("lost" in p for p in result.failures[0].problems)
