"""Shared fixtures. Slow fixtures (a JuiceFS volume, an XFS loop mount, a FUSE mount) are
session-scoped and live here once; tests mirror the package (tests/test_snapshot.py for
jvs/snapshot.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)


def run_jvs(*args: str, cwd: Path | str | None = None, input: str | None = None,
            env: dict | None = None, check: bool = True, timeout: float = 120) -> Result:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "jvs", *args], cwd=cwd, input=input,
                          capture_output=True, text=True, env=full_env, timeout=timeout)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"jvs {' '.join(args)} failed ({proc.returncode}):\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return result


@pytest.fixture
def jvs():
    return run_jvs


@pytest.fixture
def repo(tmp_path):
    """A fresh repository ``tmp_path/repo``; yields its root. Tests cd into root/'main'."""
    run_jvs("init", "repo", cwd=tmp_path)
    return tmp_path / "repo"


@pytest.fixture
def main_wt(repo):
    return repo / "main"
