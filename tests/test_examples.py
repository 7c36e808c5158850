"""The scenario scripts in tools/examples/ run end to end with the jvs on PATH, as a user
would run them. Each script checks its own outcomes (``check``) and exits non-zero on any
failed command (``set -euo pipefail``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tools" / "examples"
BIN = Path(sys.executable).parent  # the venv's bin: its jvs is the one under test

# Every scenario script; a new one must be added here (test_every_script_is_listed).
SCRIPTS = ["ml_experiments.sh", "agent_sandbox.sh", "etl_pipeline.sh", "game_assets.sh",
           "backup_restore_drill.sh", "ci_pipeline.sh", "dev_environments.sh",
           "multi_environment.sh"]


def _env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1"}


def test_every_script_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.sh") if not p.name.startswith("_")) \
        == sorted(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_runs(script, tmp_path):
    proc = subprocess.run(["bash", str(EXAMPLES / script)], cwd=tmp_path,
                          env={**_env(), "JVS_EXAMPLES_DIR": str(tmp_path), "RUNS": "3"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"{script} exited {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-4000:]}\n"
        f"--- stderr (tail)\n{proc.stderr[-4000:]}")
    assert "CHECK FAILED" not in proc.stderr
    assert not list(tmp_path.glob("jvs-example.*")), "the script left its scratch dir behind"
