"""The Python API mirrors the CLI: one workflow driven from Python, checked with the CLI
(and the other way round), with the CLI's errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

import jvs
from conftest import run_jvs
from jvs.api import import_repository, init_repository
from jvs.errors import JvsError, NotFoundError, UsageError


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
    assert repo.info().to_json() == cli_info
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
    assert [c.path for c in repo.diff("baseline", "exp1").changes] == ["data.txt"]
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
    (repo.root / "worktrees" / "hotfix" / "wip.txt").write_text("unsaved")
    removed = repo.remove_worktree("hotfix", force=True)
    assert [i.config.name for i in repo.worktrees()] == ["main"]
    # Forced, the unsaved work is kept: the result names the rescue, as --json does.
    assert removed.rescue.kind == "rescue" and removed.rescue.parent_id == fix.snapshot_id
    assert removed.to_json()["rescue_id"] == removed.rescue.snapshot_id
    assert removed.unsaved == 1 and not removed.discarded

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
    assert list(repo.pins()) == []

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


def _normalised(docs: list, root) -> list:
    """*docs* with what must differ between two repositories made the same way replaced
    by placeholders: the root, the repo ID, snapshot IDs (numbered in order of first
    appearance) and their short forms, and times."""
    ids: dict[str, str] = {}
    id_re = re.compile(r"[0-9]{13}-([0-9a-f]{8})")
    time_re = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+Z")

    def walk(value, repo_id):
        if isinstance(value, dict):
            # stats: how many files were re-read depends on how long ago they were written
            # (the stat cache re-reads "racily clean" ones), not on the workflow.
            return {k: "<STATS>" if k == "stats" else walk(v, repo_id)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, repo_id) for v in value]
        if not isinstance(value, str):
            return value
        value = value.replace(str(root), "<ROOT>").replace(repo_id, "<REPO_ID>")
        for m in id_re.finditer(value):
            ids.setdefault(m.group(0), f"S{len(ids) + 1}")
        for full, name in ids.items():
            value = value.replace(full, f"<{name}>").replace(full[-8:], f"<{name}.short>")
        return time_re.sub("<TIME>", value)

    repo_id = docs[0]["repo_id"]
    return [walk(d, repo_id) for d in docs]


def _du_compared(doc: dict) -> dict:
    """``du --json`` without the control plane's bytes, which depend on how long the
    paths written into the audit log are (the two repositories sit in different folders)."""
    rest = {k: v for k, v in doc["repository"].items()
            if k not in ("control_plane_bytes", "total_bytes")}
    return {**doc, "repository": rest}


def test_cli_and_api_give_the_same_json_for_one_workflow(tmp_path):
    """init, snapshot, status, diff, history, restore (and --dry-run), info, verify,
    doctor, worktree list/create/fork/path/rename, gc pin/pins/unpin, du, tag list and
    init --from: the CLI's --json documents and the API's to_json() agree, field for
    field, for the same workflow."""

    def files(wt, text):
        (wt / "data.txt").write_text(text)
        (wt / "models").mkdir(exist_ok=True)
        (wt / "models" / "m.bin").write_bytes(text.encode() * 100)

    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    cli_dir.mkdir()
    api_dir.mkdir()

    cli = [run_jvs("init", "proj", "--json", cwd=cli_dir).json]
    wt = cli_dir / "proj" / "main"
    files(wt, "v1")
    cli.append(run_jvs("snapshot", "base", "--tag", "baseline", "--json", cwd=wt).json)
    files(wt, "v2")
    cli.append(run_jvs("status", "--json", cwd=wt).json)
    cli.append(run_jvs("diff", "--json", cwd=wt).json)
    cli.append(run_jvs("snapshot", "exp1", "--tag", "exp1", "--json", cwd=wt).json)
    cli.append(run_jvs("history", "--json", cwd=wt).json)
    (wt / "data.txt").write_text("unsaved")
    cli.append(run_jvs("restore", "baseline", "--json", cwd=wt).json)
    cli.append(run_jvs("diff", "baseline", "exp1", "--json", cwd=wt).json)
    cli.append(run_jvs("history", "--all", "--json", cwd=wt).json)
    cli.append(run_jvs("restore", "--latest-tag", "exp1", "--json", cwd=wt).json)
    cli.append(run_jvs("info", "--json", cwd=wt).json)
    cli.append(run_jvs("verify", "--all", "--json", cwd=wt).json)
    cli.append(run_jvs("doctor", "--strict", "--json", cwd=wt).json)
    cli.append(run_jvs("worktree", "list", "--json", cwd=wt).json)
    cli.append(run_jvs("gc", "pin", "baseline", "--reason", "paper", "--expires", "30d",
                       "--json", cwd=wt).json)
    cli.append(run_jvs("gc", "pins", "--json", cwd=wt).json)
    cli.append(_du_compared(run_jvs("du", "baseline", "--json", cwd=wt).json))
    cli.append(run_jvs("gc", "unpin", "baseline", "--json", cwd=wt).json)
    cli.append(run_jvs("worktree", "create", "scratch", "--json", cwd=wt).json)
    cli.append(run_jvs("worktree", "create", "staging", "--from", "baseline", "--json",
                       cwd=wt).json)
    cli.append(run_jvs("fork", "exp1", "bug", "--json", cwd=wt).json)
    cli.append(run_jvs("worktree", "path", "scratch", "--json", cwd=wt).json)
    cli.append(run_jvs("worktree", "path", "--json", cwd=wt).json)
    cli.append(run_jvs("worktree", "rename", "scratch", "scratch2", "--json", cwd=wt).json)
    cli.append(run_jvs("tag", "list", "--json", cwd=wt).json)
    cli.append(run_jvs("restore", "--latest-tag", "baseline", "--dry-run", "--json",
                       cwd=wt).json)

    init = init_repository(api_dir, "proj")
    repo = init.repository
    api = [init.to_json()]
    files(repo.path, "v1")
    api.append(repo.snapshot("base", tags=["baseline"]).to_json())
    files(repo.path, "v2")
    api.append(repo.status().to_json())
    api.append(repo.diff().to_json())
    api.append(repo.snapshot("exp1", tags=["exp1"]).to_json())
    api.append(repo.history().to_json())
    (repo.path / "data.txt").write_text("unsaved")
    api.append(repo.restore("baseline").to_json())
    api.append(repo.diff("baseline", "exp1").to_json())
    api.append(repo.history(all=True).to_json())
    api.append(repo.restore(latest_tag="exp1").to_json())
    api.append(repo.info().to_json())
    api.append(repo.verify(all=True).to_json())
    api.append(repo.doctor(strict=True).to_json())
    api.append(repo.worktrees().to_json())
    api.append(repo.pin("baseline", reason="paper", expires="30d").to_json())
    api.append(repo.pins().to_json())
    api.append(_du_compared(repo.du("baseline").to_json()))
    api.append(repo.unpin("baseline").to_json())
    api.append(repo.create_worktree("scratch").to_json())
    api.append(repo.create_worktree("staging", from_ref="baseline").to_json())
    api.append(repo.fork("bug", ref="exp1").to_json())
    api.append(repo.worktree_path("scratch").to_json())
    api.append(repo.worktree_path().to_json())
    api.append(repo.rename_worktree("scratch", "scratch2").to_json())
    api.append(repo.tags().to_json())
    api.append(repo.restore_preview(latest_tag="baseline").to_json())

    assert _normalised(api, api_dir) == _normalised(cli, cli_dir)
    # What the comparison rests on is really there: a rescue, a detached state, changes.
    assert api[6]["rescue_id"] and api[6]["detached"] is True
    assert [c["path"] for c in api[2]["changes"]] == ["data.txt", "models/m.bin"]
    assert [w["name"] for w in api[13]["worktrees"]] == ["main"] and api[13]["current"] == "main"
    assert api[15]["pins"][0]["reason"] == "paper" and api[15]["pins"][0]["expired"] is False
    assert len(api[16]["snapshots"]) == 1 and api[17]["unpinned"] is True
    assert api[18]["source_snapshot_id"] is None
    assert api[19]["source_snapshot_id"] == api[1]["snapshot_id"]
    assert api[20]["source_snapshot_id"] == api[4]["snapshot_id"]
    assert api[21] == {"name": "scratch", "path": str(repo.root / "worktrees" / "scratch")}
    assert api[22] == {"name": "main", "path": str(repo.path)}
    assert api[23]["name"] == "scratch2" and api[23]["old_name"] == "scratch"
    assert [t["tag"] for t in api[24]["tags"]] == ["baseline", "exp1"]
    assert api[25]["target_id"] == api[1]["snapshot_id"] and api[25]["changes"]

    # init --from: a repository of its own (its own repo ID), from the same folder content.
    for parent in cli_dir, api_dir:
        (parent / "src").mkdir()
        files(parent / "src", "imported")
    cli_import = run_jvs("init", "imported", "--from", "src", "--json", cwd=cli_dir).json
    api_import = import_repository(api_dir, "imported", api_dir / "src").to_json()
    assert _normalised([api_import], api_dir) == _normalised([cli_import], cli_dir)
    assert api_import["import"]["source"] == str(api_dir / "src")
    assert api_import["import"]["snapshot_id"] in run_jvs(
        "history", "--json", cwd=api_dir / "imported" / "main").stdout


def test_results_behave_like_python_values(tmp_path):
    repo = jvs.init(tmp_path, "proj")
    (repo.path / "a.txt").write_text("1")
    first = repo.snapshot("one", tags=["t1"]).descriptor
    (repo.path / "a.txt").write_text("22")
    (repo.path / "b.txt").write_text("new")
    second = repo.snapshot("two").descriptor

    hist = repo.history()
    assert len(hist) == 2 and list(hist) == [second, first] and hist[0] == second
    assert [d.short_id for d in hist] == [second.snapshot_id[-8:], first.snapshot_id[-8:]]
    assert first.kind == "snapshot"
    assert isinstance(first.created, datetime) and first.created.tzinfo == UTC
    assert abs((datetime.now(UTC) - first.created).total_seconds()) < 3600
    assert first.created_at.endswith("Z")  # the descriptor's own string, unchanged

    changes = repo.diff(first.snapshot_id, second.snapshot_id).changes
    assert len(changes) == 2 and bool(changes)
    assert [(c.path, c.change, c.type) for c in changes] == [
        ("a.txt", "modified", "file"), ("b.txt", "added", "file")]
    assert changes[0].size_delta == 1 and changes[-1].path == "b.txt"
    assert changes[0].relpath == "a.txt" and changes[0].kind == "file"  # the old names
    assert not repo.status().changes  # empty: falsy, as a list is


def test_each_error_class_is_a_subclass_carrying_its_code(tmp_path):
    repo = jvs.init(tmp_path, "proj")
    with pytest.raises(NotFoundError) as exc:
        repo.restore("nothing-like-this")
    assert exc.value.code == "E_NOT_FOUND" and isinstance(exc.value, JvsError)
    with pytest.raises(UsageError):
        repo.set_config("gc.keep_last", -3)
    # The library's JvsError("E_X", ...) is the subclass, so both spellings catch it.
    err = JvsError("E_NOT_FOUND", "gone", hint="look elsewhere")
    assert type(err) is NotFoundError and err.hint == "look elsewhere"
    assert str(err) == "E_NOT_FOUND: gone"
    with pytest.raises(ValueError):
        JvsError("E_NO_SUCH_CLASS", "x")


def test_the_python_api_page_runs(tmp_path, monkeypatch, capsys):
    """Every ``python`` block of docs/python-api.md, in order, in one namespace."""
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "ml-experiments" / "main" / "result.txt").read_text() == "seed 3\n"
    assert "Agent run 3" in capsys.readouterr().out


def test_history_takes_the_clis_time_span_and_order(tmp_path):
    repo = jvs.init(tmp_path, "proj")
    (repo.path / "a.txt").write_text("1")
    one = repo.snapshot("one").descriptor
    (repo.path / "a.txt").write_text("2")
    two = repo.snapshot("two").descriptor
    assert [d.note for d in repo.history(reverse=True)] == ["one", "two"]
    later = datetime.now(UTC) + timedelta(days=1)
    assert [d.note for d in repo.history(until=later, limit=1)] == ["two"]
    assert list(repo.history(since=later)) == []
    assert len(repo.history(since="yesterday")) == 2 and not repo.history(until="yesterday")
    cli = run_jvs("history", "--since", "yesterday", "--reverse", "--json", cwd=repo.path)
    assert cli.json == repo.history(since="yesterday", reverse=True).to_json()
    assert [s["note"] for s in cli.json["snapshots"]] == ["one", "two"]
    assert one.created < two.created
    with pytest.raises(UsageError):
        repo.history(since="the day after never")
