"""The scenario scripts in tools/examples/ run end to end with the jvs on PATH, as a user
would run them. Each script checks its own outcomes (``check``) and exits non-zero on any
failed command (``set -euo pipefail``)."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tools" / "examples"
BIN = Path(sys.executable).parent  # the venv's bin: its jvs is the one under test

# The commands each script needs besides init, snapshot, history, status and info.
NEEDS = {
    "ml_experiments.sh": ["restore", "worktree fork"],
    "agent_sandbox.sh": ["restore", "worktree fork", "worktree list", "verify"],
    "etl_pipeline.sh": ["restore", "diff", "verify"],
    "game_assets.sh": ["restore", "diff", "verify"],
    "backup_restore_drill.sh": ["restore", "worktree fork", "worktree remove", "verify",
                                "doctor", "gc plan", "gc run"],
    "ci_pipeline.sh": ["restore", "worktree fork", "diff"],
    "dev_environments.sh": ["restore", "worktree fork", "worktree list", "verify", "doctor"],
    "multi_environment.sh": ["restore", "worktree fork", "verify"],
}


def _env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1"}


@cache
def registered(command: str) -> bool:
    proc = subprocess.run([str(BIN / "jvs"), *command.split(), "--help"], env=_env(),
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


def test_every_script_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.sh") if not p.name.startswith("_")) \
        == sorted(NEEDS)


@pytest.mark.parametrize("script", sorted(NEEDS))
def test_example_runs(script, tmp_path):
    missing = [c for c in NEEDS[script] if not registered(c)]
    if missing:
        pytest.skip(f"jvs {', jvs '.join(missing)} not registered yet")
    proc = subprocess.run(["bash", str(EXAMPLES / script)], cwd=tmp_path,
                          env={**_env(), "JVS_EXAMPLES_DIR": str(tmp_path), "RUNS": "3"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"{script} exited {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-4000:]}\n"
        f"--- stderr (tail)\n{proc.stderr[-4000:]}")
    assert "CHECK FAILED" not in proc.stderr
    assert not list(tmp_path.glob("jvs-example.*")), "the script left its scratch dir behind"
