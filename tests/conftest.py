"""Shared fixtures. Slow fixtures (a JuiceFS volume, an XFS loop mount, a FUSE mount) are
session-scoped and live here once; tests mirror the package (tests/test_snapshot.py for
jvs/snapshot.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
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


def start_paused_jvs(*args: str, cwd: Path | str, step: str,
                     seconds: float) -> subprocess.Popen:
    """Start the real CLI with ``JVS_TEST_PAUSE_AT=step`` and return once it has reached
    that step and sleeps there for *seconds*: the window a test acts in."""
    env = {**os.environ, "NO_COLOR": "1", "JVS_TEST_PAUSE_AT": step,
           "JVS_TEST_PAUSE_S": str(seconds)}
    proc = subprocess.Popen([sys.executable, "-m", "jvs", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert f"paused at {step}" in proc.stderr.readline()
    return proc


def read_terminal(master: int, timeout: float = 30) -> bytes:
    """Everything written to a pseudo-terminal until its other side closes."""
    import select

    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        out += chunk
    return out


def take_snapshot(main: Path | str, note: str, *tags: str) -> str:
    """``jvs snapshot NOTE --tag T...`` in *main*; the new snapshot's ID."""
    args = ["snapshot", note, "--json"]
    for tag in tags:
        args += ["--tag", tag]
    return run_jvs(*args, cwd=main).json["snapshot_id"]


def drawn_repos(tmp_path_factory, examples: int):
    """For a hypothesis test that makes a repository per example: its settings (the
    examples derandomized, slow ones allowed) and a function returning a fresh
    repository (``jvs.Repository``) and its main worktree's path."""
    from hypothesis import HealthCheck, settings

    import jvs

    chosen = settings(max_examples=examples, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow,
                                             HealthCheck.function_scoped_fixture])

    def fresh():
        base = tmp_path_factory.mktemp("drawn")
        return jvs.init(base, "r"), base / "r" / "main"

    return chosen, fresh


def wait_until(predicate, timeout: float = 15.0) -> bool:
    """Poll *predicate* every 0.1 s until it holds or *timeout* passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


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


# --------------------------------------------------------------------------------------
# Real volumes (owned by the engines work; reused by restore, mount and cluster tests).
#
# ``juicefs_mount`` / ``xfs_mount``: one real volume per test session (session-scoped),
# built from scratch and torn down at the end. ``juicefs_dir`` / ``xfs_dir``: a fresh empty
# directory on that volume for one test. ``engine_repo``: a fresh ``jvs init``-ed repo on
# the filesystem that matches each engine (copy → tmp disk, reflink-copy → XFS,
# juicefs-clone → JuiceFS), with JVS_SNAPSHOT_ENGINE set for the test. A test that needs
# a volume the kernel or the environment cannot give skips, naming what is missing.
# --------------------------------------------------------------------------------------

import itertools  # noqa: E402
import shutil  # noqa: E402

import volumes  # noqa: E402
from volumes import juicefs_binary, mounted_fstype  # noqa: E402, F401 - tests import them here

# The mount tests' mark: skip, saying why, where this machine cannot mount a FUSE view.
requires_fuse = pytest.mark.skipif(volumes.fuse_unavailable() is not None,
                                   reason=volumes.fuse_unavailable() or "")


@contextlib.contextmanager
def _volume_or_skip(builder):
    """The volume *builder* makes; skip when this machine cannot give it, fail when it
    should have worked and did not."""
    with contextlib.ExitStack() as stack:
        try:
            mnt = stack.enter_context(builder)
        except volumes.Unavailable as exc:
            pytest.skip(str(exc))
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield mnt


@pytest.fixture(scope="session")
def juicefs_mount(tmp_path_factory):
    """A real JuiceFS volume (sqlite3 metadata, ``file`` object storage, xattrs and ACLs on)
    mounted for the session; yields the mount point."""
    with _volume_or_skip(volumes.juicefs_volume(tmp_path_factory.mktemp("juicefs"))) as mnt:
        yield mnt


@pytest.fixture(scope="session")
def xfs_mount(tmp_path_factory):
    """A 2 GiB sparse XFS image loop-mounted for the session (reflink is on by default in
    mkfs.xfs); yields the mount point."""
    with _volume_or_skip(volumes.xfs_volume(tmp_path_factory.mktemp("xfs"))) as mnt:
        yield mnt


_volume_dirs = itertools.count()


def _fresh_dir(volume: Path, request) -> Path:
    name = "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    path = volume / f"t{next(_volume_dirs):04d}_{name}"
    path.mkdir()
    return path


@pytest.fixture
def juicefs_dir(juicefs_mount, request):
    """A fresh empty directory on the session's JuiceFS volume (removed afterwards)."""
    path = _fresh_dir(juicefs_mount, request)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def xfs_dir(xfs_mount, request):
    """A fresh empty directory on the session's XFS loop volume (removed afterwards)."""
    path = _fresh_dir(xfs_mount, request)
    yield path
    shutil.rmtree(path, ignore_errors=True)


ENGINE_VOLUMES = {"copy": None, "reflink-copy": "xfs_dir", "juicefs-clone": "juicefs_dir"}


@pytest.fixture(params=[
    pytest.param("copy", id="copy"),
    pytest.param("reflink-copy", id="reflink", marks=[pytest.mark.slow, pytest.mark.xfs]),
    pytest.param("juicefs-clone", id="juicefs",
                 marks=[pytest.mark.slow, pytest.mark.juicefs]),
])
def engine_repo(request, tmp_path, monkeypatch):
    """``(repo_root, engine_name)``: a fresh ``jvs init``-ed repo on the filesystem of the
    engine, with JVS_SNAPSHOT_ENGINE set to it for this test (run_jvs inherits it)."""
    engine = request.param
    volume = ENGINE_VOLUMES[engine]
    parent = tmp_path if volume is None else request.getfixturevalue(volume)
    monkeypatch.setenv("JVS_SNAPSHOT_ENGINE", engine)
    run_jvs("init", "repo", cwd=parent)
    return parent / "repo", engine
