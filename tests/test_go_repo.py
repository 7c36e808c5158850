"""A repository written by the Go implementation's own binary (../shared/fixtures): every
read and write command works on it, its publish markers are never payload, and ours is
the only meaning of a ``.READY`` a user creates in a repository of ours."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_jvs

# A copy of ../shared/fixtures/go-jvs-repo.tar.gz (made by the Go CLI; see its README).
FIXTURE = ROOT / "tests" / "fixtures" / "go-jvs-repo.tar.gz"
BASELINE, EXP1, SIDE = ("1796235759197-5b30ce5c", "1796235759206-66d9de23",
                        "1796235759222-7aa0f584")


@pytest.fixture
def go_repo(tmp_path) -> Path:
    if not FIXTURE.exists():
        pytest.fail(f"the Go fixture is missing: {FIXTURE}")
    subprocess.run(["tar", "xzf", str(FIXTURE), "-C", str(tmp_path)], check=True)
    return tmp_path / "project"


def files(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            out[rel] = os.readlink(path) if path.is_symlink() else path.read_text()
    return out


def test_reading_commands_and_doctor_are_clean(go_repo):
    main = go_repo / "main"
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
    verify = run_jvs("verify", "--all", cwd=main).stdout
    for sid in (BASELINE, EXP1, SIDE):
        assert f"{sid}  OK" in verify
    assert run_jvs("status", "--json", cwd=main).json["clean"]
    # Go's fork copied the publish marker into the new worktree: not a change of the user's.
    assert run_jvs("status", "--json", cwd=go_repo / "worktrees" / "side").json["clean"]
    notes = [s["note"] for s in run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]]
    assert notes == ["side work", "exp1", "baseline"]
    run_jvs("diff", "baseline", "exp1", cwd=main)
    assert not (go_repo / ".jvs" / "config.json").exists()  # nothing rewrote its layout


def test_writing_commands_work(go_repo):
    main = go_repo / "main"
    before = files(main)
    run_jvs("restore", "baseline", cwd=main)
    assert (main / "data" / "raw" / "train.csv").read_text() == "a,b\n"
    assert not (main / ".READY").exists()
    assert oct(os.stat(main / "data" / "raw" / "train.csv").st_mode & 0o777) == "0o600"
    assert os.readlink(main / "latest.csv") == "data/raw/train.csv"
    run_jvs("restore", "exp1", cwd=main)
    assert files(main) == before
    (main / "new.txt").write_text("written by the Python jvs\n")
    out = run_jvs("snapshot", "after the Go one", "--json", cwd=main).json
    assert out["parent_id"] == EXP1
    desc = json.loads((go_repo / ".jvs" / "descriptors" / f"{out['snapshot_id']}.json").read_text())
    assert desc["payload_hash_algo"] == "sha256"  # the Go-compatible default: it has no config.json
    run_jvs("fork", "exp1", "f2", cwd=main)
    fork = go_repo / "worktrees" / "f2"
    assert not (fork / ".READY").exists() and (fork / "run.sh").exists()
    run_jvs("gc", "plan", cwd=main)
    run_jvs("worktree", "remove", "f2", cwd=main)
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
    run_jvs("verify", "--all", cwd=main)


def test_our_snapshot_keeps_a_users_ready_file(repo):
    """In a repository of ours a root .READY is a user's file like any other: snapshotted,
    verified, forked and restored as such."""
    main = repo / "main"
    (main / ".READY").write_text("my own file\n")
    (main / "a.txt").write_text("a\n")
    first = run_jvs("snapshot", "with .READY", "--json", cwd=main).json["snapshot_id"]
    (main / "a.txt").write_text("b\n")
    run_jvs("snapshot", "later", cwd=main)
    assert run_jvs("verify", "--all", "--json", cwd=main).returncode == 0
    run_jvs("fork", first, "side", cwd=main)
    assert (repo / "worktrees" / "side" / ".READY").read_text() == "my own file\n"
    assert run_jvs("status", "--json", cwd=repo / "worktrees" / "side").json["clean"]
    (main / ".READY").unlink()
    run_jvs("restore", first, "--discard-unsaved", cwd=main)
    assert (main / ".READY").read_text() == "my own file\n"
    data = json.loads(run_jvs("verify", first, "--json", cwd=main).stdout)
    assert not data.get("tamper_detected", False) and data
