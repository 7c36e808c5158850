"""The Python API mirrors the CLI: one workflow driven from Python, checked with the CLI
(and the other way round), with the CLI's errors."""

from __future__ import annotations

import pytest

import jvs
from conftest import run_jvs
from jvs.errors import JvsError


def test_full_workflow_through_the_api_matches_the_cli(tmp_path):
    repo = jvs.init(tmp_path, "proj")
    assert repo.worktree_name == "main" and repo.path == tmp_path / "proj" / "main"
    wt = repo.path
    (wt / "data.txt").write_text("v1")
    (wt / "models").mkdir()
    (wt / "models" / "m.bin").write_bytes(b"\0" * 1000)
    base = repo.snapshot("Initial setup", tags=["baseline"]).descriptor
    (wt / "data.txt").write_text("v2")
    exp1 = repo.snapshot("Exp1", tags=["exp1", "model"]).descriptor

    # The CLI sees what the API did, and the API answers as the CLI does.
    cli_hist = run_jvs("history", "--json", cwd=wt).json
    api_hist = repo.history()
    assert [s["snapshot_id"] for s in cli_hist["snapshots"]] == [
        d.snapshot_id for d in api_hist.snapshots] == [exp1.snapshot_id, base.snapshot_id]
    assert [d.snapshot_id for d in repo.history(tag="exp*").snapshots] == [exp1.snapshot_id]
    assert repo.resolve("baseline").snapshot_id == base.snapshot_id
    assert repo.resolve("HEAD~1").snapshot_id == base.snapshot_id
    cli_info = run_jvs("info", "--json", cwd=wt).json
    assert repo.info() == cli_info
    assert repo.status().changes.clean

    # Opening from a path inside the worktree, as jvs.open documents.
    again = jvs.open(wt / "models")
    assert again.worktree_name == "main" and again.root == repo.root

    # Restore keeps unsaved work as a rescue, as the CLI does.
    (wt / "data.txt").write_text("unsaved")
    result = repo.restore("baseline")
    assert result.target.snapshot_id == base.snapshot_id
    assert result.rescue is not None and result.worktree.detached
    assert (wt / "data.txt").read_text() == "v1"
    assert [c.relpath for c in repo.diff("baseline", "exp1").changes.items] == ["data.txt"]
    cli_status = run_jvs("status", "--json", cwd=wt).json
    assert cli_status["detached"] is True and cli_status["clean"] is True
    assert repo.restore(result.rescue.snapshot_id).target.kind == "rescue"
    assert (wt / "data.txt").read_text() == "unsaved"
    repo.restore(latest_tag="exp1", discard_unsaved=True)
    assert (wt / "data.txt").read_text() == "v2"

    # Worktrees.
    info = repo.fork("bugfix", ref="baseline")
    assert info.path == repo.root / "worktrees" / "bugfix"
    assert (info.path / "data.txt").read_text() == "v1"
    bug = repo.at("bugfix")
    (bug.path / "fix.txt").write_text("fixed")
    fix = bug.snapshot("Fix", tags=["fix"]).descriptor
    assert fix.parent_id == base.snapshot_id and fix.worktree_name == "bugfix"
    cli_list = run_jvs("worktree", "list", "--json", cwd=wt).json
    assert sorted(w["name"] for w in cli_list["worktrees"]) == sorted(
        i.config.name for i in repo.worktrees()) == ["bugfix", "main"]
    repo.rename_worktree("bugfix", "hotfix")
    assert run_jvs("worktree", "path", "hotfix", cwd=wt).stdout.strip() == str(
        repo.root / "worktrees" / "hotfix")
    repo.remove_worktree("hotfix")
    assert [i.config.name for i in repo.worktrees()] == ["main"]

    # Integrity and gc.
    report = repo.verify(all=True)
    assert report.ok and len(report.results) == len(run_jvs(
        "verify", "--all", "--json", cwd=wt).json["snapshots"])
    assert repo.doctor(strict=True).healthy
    pin = repo.pin("baseline", reason="paper")
    assert pin.snapshot_id == base.snapshot_id
    assert run_jvs("gc", "pins", "--json", cwd=wt).json["pins"][0]["reason"] == "paper"
    plan = repo.gc_plan(keep_last=1)
    assert base.snapshot_id not in plan.candidates
    assert repo.gc_run(plan.plan_id).plan_id == plan.plan_id
    repo.unpin("baseline")
    assert repo.pins() == []

    # Config, shared with `jvs config`.
    assert repo.set_config("default_tags", ["nightly"]) == ["nightly"]
    assert run_jvs("config", "get", "default_tags", cwd=wt).stdout.strip() == "nightly"
    assert repo.set_config("gc.keep_tagged", False) is False
    run_jvs("config", "set", "gc.keep_daily", "5", cwd=wt)
    assert repo.get_config("gc.keep_daily") == 5
    assert repo.unset_config("gc.keep_daily") == 0
    (wt / "more.txt").write_text("x")
    assert repo.snapshot("with defaults", tags=["t"]).descriptor.tags == ("t", "nightly")

    # Every mutation above left an intact audit chain.
    assert run_jvs("verify", "--all", "--json", cwd=wt).json["audit_chain_valid"] is True


def test_tampering_is_reported_and_check_raises(tmp_path):
    repo = jvs.init(tmp_path, "proj")
    (repo.path / "a.txt").write_text("data")
    sid = repo.snapshot("one").descriptor.snapshot_id
    (repo.root / ".jvs" / "snapshots" / sid / "a.txt").write_text("evil")
    report = repo.verify(sid)
    assert not report.ok and report.results[0].tamper_detected
    with pytest.raises(JvsError) as exc:
        repo.verify(sid, check=True)
    assert exc.value.code == "E_PAYLOAD_HASH_MISMATCH"
    cli = run_jvs("verify", sid, "--json", cwd=repo.path, check=False)
    assert cli.returncode == 1 and cli.json["error"]["code"] == exc.value.code


def test_errors_are_the_cli_error_classes(tmp_path):
    with pytest.raises(JvsError) as exc:
        jvs.open(tmp_path)
    assert exc.value.code == "E_NOT_A_REPO"
    repo = jvs.init(tmp_path, "proj")
    with pytest.raises(JvsError) as exc:
        jvs.init(tmp_path, "proj")
    assert exc.value.code == "E_USAGE"
    with pytest.raises(JvsError) as exc:
        repo.snapshot("x", tags=["HEAD"])
    assert exc.value.code == "E_NAME_INVALID"
    with pytest.raises(JvsError) as exc:
        repo.restore("nothing-like-this")
    assert exc.value.code == "E_NOT_FOUND"
    with pytest.raises(JvsError) as exc:
        repo.snapshot("n" * (64 * 1024 + 1))
    assert exc.value.code == "E_USAGE"
    with pytest.raises(JvsError) as exc:
        repo.set_config("gc.keep_last", -3)
    assert exc.value.code == "E_USAGE"
    root_view = jvs.open(repo.root)
    assert root_view.worktree_name is None
    with pytest.raises(JvsError) as exc:
        root_view.snapshot("from the root")
    assert exc.value.code == "E_NOT_FOUND"
    assert root_view.at("main").worktree_name == "main"
    assert jvs.open(repo.root, worktree="main").path == repo.path
