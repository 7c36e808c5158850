"""Worktree operations (SPEC §4): create, fork, list, path, rename, remove, and the
path-safety rules for names and symlinked worktree dirs."""

from __future__ import annotations

import os

import pytest

from conftest import run_jvs, start_paused_jvs


def snap(cwd, note, *tags):
    args = ["snapshot", note, "--json"]
    for t in tags:
        args += ["--tag", t]
    return run_jvs(*args, cwd=cwd).json["snapshot_id"]


@pytest.fixture
def seeded(repo):
    main = repo / "main"
    (main / "src").mkdir()
    (main / "src" / "handler.go").write_text("package main // v1.0\n")
    v10 = snap(main, "Initial import", "v1.0")
    (main / "src" / "handler.go").write_text("package main // feature a\n")
    fa = snap(main, "Feature A: Add authentication", "feature-a", "wip")
    return repo, main, v10, fa


def test_seed_fork_and_cd(seeded):
    repo, main, v10, fa = seeded
    out = run_jvs("worktree", "fork", "feature-b", cwd=main).stdout
    assert "Created worktree" in out
    wt = main / ".." / "worktrees" / "feature-b"
    assert (wt / "src" / "handler.go").read_text() == "package main // feature a\n"
    (wt / "src" / "handler.go").write_text("package main // caching\n")
    fb = snap(wt, "Feature B: Add caching", "feature-b", "wip")
    st = run_jvs("status", "--json", cwd=wt).json
    assert st["worktree"] == "feature-b" and st["head_snapshot_id"] == fb
    # main is untouched and can restore feature-a while feature-b lives on
    assert (main / "src" / "handler.go").read_text() == "package main // feature a\n"
    run_jvs("restore", "feature-a", cwd=main)
    listed = run_jvs("worktree", "list", "--json", cwd=main).json
    assert [w["name"] for w in listed["worktrees"]] == ["main", "feature-b"]
    assert listed["current"] == "main"


def test_fork_after_restore_starts_at_restored_head(seeded):
    repo, main, v10, fa = seeded
    run_jvs("restore", "v1.0", cwd=main)
    run_jvs("worktree", "fork", "bugfix-1234", cwd=main)
    wt = repo / "worktrees" / "bugfix-1234"
    assert (wt / "src" / "handler.go").read_text() == "package main // v1.0\n"
    cfg = run_jvs("status", "--json", cwd=wt).json
    assert cfg["head_snapshot_id"] == cfg["latest_snapshot_id"] == v10
    assert not cfg["detached"]
    out = run_jvs("history", cwd=wt).stdout
    assert "HEAD" in out
    (wt / "src" / "handler.go").write_text("package main // fixed\n")
    fix = run_jvs("snapshot", "Fix: Handle null pointer", "--tag", "bugfix", "--json",
                  cwd=wt).json
    assert fix["parent_id"] == v10 and fix["worktree_name"] == "bugfix-1234"


def test_fork_with_ref_top_level_alias_and_create_from(seeded):
    repo, main, v10, fa = seeded
    out = run_jvs("fork", "v1.0", "hotfix", cwd=main).stdout
    assert "Created worktree" in out
    assert (repo / "worktrees" / "hotfix" / "src" / "handler.go").read_text() \
        == "package main // v1.0\n"
    run_jvs("worktree", "create", "staging", "--from", "feature-a", cwd=main)
    assert (repo / "worktrees" / "staging" / "src" / "handler.go").read_text() \
        == "package main // feature a\n"
    run_jvs("worktree", "create", "scratch", cwd=main)
    assert os.listdir(repo / "worktrees" / "scratch") == []
    path = run_jvs("worktree", "path", "staging", cwd=main).stdout.strip()
    assert path == str(repo / "worktrees" / "staging")
    assert run_jvs("worktree", "path", cwd=repo / "worktrees" / "staging").stdout.strip() == path
    dup = run_jvs("worktree", "create", "staging", cwd=main, check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr


@pytest.mark.parametrize("bad", ["../evil", "a/b", "..", "", "tab\there", "new\nline", "x..y"])
def test_bad_names_are_refused(seeded, bad):
    repo, main, v10, fa = seeded
    before = sorted(os.listdir(repo))
    for args in (["worktree", "create", bad], ["worktree", "fork", bad],
                 ["worktree", "rename", "main", bad], ["worktree", "remove", bad]):
        res = run_jvs(*args, cwd=main, check=False)
        assert res.returncode != 0
        assert "E_NAME_INVALID" in res.stderr or "Error" in res.stderr, (args, res.stderr)
    assert sorted(os.listdir(repo)) == before
    assert not (repo.parent / "evil").exists()


def test_main_cannot_be_renamed_or_removed(seeded):
    repo, main, v10, fa = seeded
    for args in (["worktree", "rename", "main", "other"], ["worktree", "remove", "main"]):
        res = run_jvs(*args, cwd=main, check=False)
        assert res.returncode == 1 and "E_NAME_INVALID" in res.stderr
    run_jvs("worktree", "fork", "side", cwd=main)
    res = run_jvs("worktree", "rename", "side", "main", cwd=main, check=False)
    assert res.returncode == 1


def test_rename_keeps_payload_and_shell(seeded):
    repo, main, v10, fa = seeded
    run_jvs("worktree", "fork", "old-name", cwd=main)
    wt = repo / "worktrees" / "old-name"
    ino = os.stat(wt).st_ino
    out = run_jvs("worktree", "rename", "old-name", "new-name", cwd=main).stdout
    assert "Renamed worktree" in out
    moved = repo / "worktrees" / "new-name"
    assert not wt.exists() and os.stat(moved).st_ino == ino
    st = run_jvs("status", "--json", cwd=moved).json
    assert st["worktree"] == "new-name" and st["clean"] and st["head_snapshot_id"] == fa


def test_remove_refuses_unsaved_work_without_force(seeded):
    repo, main, v10, fa = seeded
    run_jvs("worktree", "fork", "investigation", cwd=main)
    wt = repo / "worktrees" / "investigation"
    (wt / "debug.log").write_text("unsaved\n")
    res = run_jvs("worktree", "remove", "investigation", cwd=main, check=False)
    assert res.returncode == 1 and "E_UNSAVED" in res.stderr
    # It names both ways on: keep the work as a rescue, or drop it.
    assert "--force removes it and keeps them as a rescue snapshot" in res.stderr
    assert "--force --discard-unsaved" in res.stderr
    assert (wt / "debug.log").exists()
    out = run_jvs("worktree", "remove", "investigation", "--force", cwd=main).stdout
    assert "Removed worktree" in out and not wt.exists()
    assert "investigation" not in run_jvs("worktree", "list", cwd=main).stdout
    # its snapshots stay
    assert fa in [s["snapshot_id"] for s in
                  run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]]


def test_symlink_escape_is_refused_and_outside_untouched(seeded, tmp_path):
    repo, main, v10, fa = seeded
    run_jvs("worktree", "fork", "victim", cwd=main)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    wt = repo / "worktrees" / "victim"
    os.rename(wt, tmp_path / "victim-payload")
    os.symlink(outside, wt)
    for args, cwd in ((["worktree", "remove", "victim", "--force"], main),
                      (["worktree", "rename", "victim", "other"], main),
                      (["worktree", "path", "victim"], main),
                      (["-C", str(wt), "restore", "v1.0"], main)):
        res = run_jvs(*args, cwd=cwd, check=False)
        assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr, (args, res.stderr)
    assert os.listdir(outside) == ["precious.txt"]
    assert (outside / "precious.txt").read_text() == "keep me\n"


def test_restore_through_symlinked_worktree_is_refused(seeded, tmp_path):
    repo, main, v10, fa = seeded
    run_jvs("worktree", "fork", "victim", cwd=main)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    wt = repo / "worktrees" / "victim"
    os.rename(wt, tmp_path / "victim-payload")
    os.symlink(outside, wt)
    from jvs.errors import JvsError
    from jvs.repo import Repo
    from jvs.restore import restore

    with pytest.raises(JvsError) as exc:
        restore(Repo(repo), "victim", "v1.0")
    assert exc.value.code == "E_PATH_ESCAPE"
    assert os.listdir(outside) == ["precious.txt"]


def test_every_worktree_operation_is_audited(seeded):
    repo, main, v10, fa = seeded
    run_jvs("worktree", "fork", "a", cwd=main)
    run_jvs("worktree", "create", "b", cwd=main)
    run_jvs("worktree", "rename", "b", "c", cwd=main)
    run_jvs("worktree", "remove", "c", cwd=main)
    run_jvs("restore", "v1.0", cwd=main)
    import json

    ops = [json.loads(line)["operation"]
           for line in (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()]
    for op in ("fork", "worktree_create", "worktree_rename", "worktree_remove", "restore"):
        assert op in ops


def test_worktrees_dir_symlinked_outside_is_refused(seeded, tmp_path):
    repo, main, v10, fa = seeded
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    if (repo / "worktrees").exists():
        os.rmdir(repo / "worktrees")
    os.symlink(outside, repo / "worktrees")
    for args in (["worktree", "fork", "x"], ["worktree", "create", "y"],
                 ["fork", "v1.0", "z"]):
        res = run_jvs(*args, cwd=main, check=False)
        assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr, res.stderr
    assert os.listdir(outside) == []
    assert [w["name"] for w in run_jvs("worktree", "list", "--json", cwd=main).json["worktrees"]] \
        == ["main"]


@pytest.mark.parametrize("command", [("fork", "v1.0", "lost"),
                                     ("worktree", "create", "lost", "--from", "v1.0")])
def test_fork_that_lost_the_lock_publishes_no_worktree(seeded, command):
    """A host whose JuiceFS session expired while it copied the snapshot has lost the lock
    to another host (the holder record names someone else): no worktree may appear."""

    repo, main, v10, fa = seeded
    proc = start_paused_jvs(*command, cwd=main, step="worktree:after_stage", seconds=2)
    (repo / ".jvs" / "locks" / "repo.lock").write_text(
        '{"pid": 1, "host": "other-host", "since": "now", "operation": "snapshot"}\n')
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "E_BUSY" in err and "lost the repository lock" in err and "other-host" in err
    assert not (repo / "worktrees" / "lost").exists()
    listed = run_jvs("worktree", "list", "--json", cwd=main).json["worktrees"]
    names = [w["name"] for w in listed]
    assert "lost" not in names


def _unsaved_fork(repo, main, name="investigation"):
    """A fork of the head with an edit, a new file in a new dir, a deletion and ignored
    content: what a forced remove must keep (all but the ignored)."""
    run_jvs("worktree", "fork", name, cwd=main)
    wt = repo / "worktrees" / name
    (wt / "src" / "handler.go").write_text("package main // unsaved edit\n")
    (wt / "notes" / "deep").mkdir(parents=True)
    (wt / "notes" / "deep" / "idea.txt").write_text("unsaved idea\n")
    (wt / ".jvsignore").write_text("cache/\n")
    (wt / "cache").mkdir()
    (wt / "cache" / "big.bin").write_text("ignored\n")
    return wt


def _crashed_forced_remove(repo, main, step):
    """The unsaved fork, and a ``worktree remove --force`` of it killed at *step*."""
    wt = _unsaved_fork(repo, main)
    crashed = run_jvs("worktree", "remove", "investigation", "--force", cwd=main,
                      check=False, env={"JVS_CRASH_AT": step})
    assert crashed.returncode == -9
    return wt


def _rescues(main):
    return [s for s in run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]
            if s.get("kind") == "rescue"]


def test_remove_force_keeps_unsaved_work_in_a_rescue_that_restores_back(seeded):
    repo, main, v10, fa = seeded
    wt = _unsaved_fork(repo, main)
    preview = run_jvs("worktree", "remove", "investigation", "--force", "--dry-run",
                      cwd=main).stdout
    assert "would be saved as a rescue snapshot" in preview and wt.exists()
    res = run_jvs("worktree", "remove", "investigation", "--force", "--json", cwd=main).json
    assert res["removed"] and res["forced"] and not wt.exists()
    rid = res["rescue_id"]
    assert rid and res["unsaved_changes"] == 5 and not res["discarded_unsaved"]
    [rescue] = _rescues(main)
    assert rescue["snapshot_id"] == rid and rescue["parent_id"] == fa
    assert rescue["worktree_name"] == "investigation"
    run_jvs("verify", rid, cwd=main)
    # Back into a worktree: the unsaved work, and nothing ignored.
    run_jvs("restore", rid, cwd=main)
    assert (main / "src" / "handler.go").read_text() == "package main // unsaved edit\n"
    assert (main / "notes" / "deep" / "idea.txt").read_text() == "unsaved idea\n"
    assert not (main / "cache").exists()
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout


def test_remove_force_human_output_names_the_rescue(seeded):
    repo, main, v10, fa = seeded
    _unsaved_fork(repo, main)
    out = run_jvs("worktree", "remove", "investigation", "--force", cwd=main).stdout
    [rescue] = _rescues(main)
    assert f"as rescue snapshot {rescue['snapshot_id']}" in out and "Removed worktree" in out


def test_remove_force_discard_unsaved_drops_the_work(seeded):
    repo, main, v10, fa = seeded
    wt = _unsaved_fork(repo, main)
    preview = run_jvs("worktree", "remove", "investigation", "--force", "--discard-unsaved",
                      "--dry-run", "--json", cwd=main).json
    assert preview["would_rescue"] is False and preview["unsaved_changes"] == 5
    res = run_jvs("worktree", "remove", "investigation", "--force", "--discard-unsaved",
                  "--json", cwd=main).json
    assert res["rescue_id"] is None and res["discarded_unsaved"] and not wt.exists()
    assert _rescues(main) == []


def test_remove_force_without_unsaved_work_makes_no_rescue(seeded):
    repo, main, v10, fa = seeded
    run_jvs("worktree", "fork", "clean", cwd=main)
    res = run_jvs("worktree", "remove", "clean", "--force", "--json", cwd=main).json
    assert res["rescue_id"] is None and res["unsaved_changes"] == 0
    assert _rescues(main) == []


def test_remove_crashed_before_any_move_is_forgotten(seeded):
    repo, main, v10, fa = seeded
    wt = _crashed_forced_remove(repo, main, "worktree:after_rescue_base")
    out = run_jvs("doctor", "--repair-runtime", cwd=main).stdout
    assert "rolled back the removal" in out
    assert (wt / "src" / "handler.go").read_text() == "package main // unsaved edit\n"
    assert (wt / "notes" / "deep" / "idea.txt").exists() and (wt / "cache" / "big.bin").exists()
    assert _rescues(main) == []
    assert not (repo / ".jvs" / "restore" / "investigation").exists()


def test_remove_crashed_after_moving_work_is_finished_with_the_rescue(seeded):
    repo, main, v10, fa = seeded
    wt = _crashed_forced_remove(repo, main, "worktree:after_move_to_rescue")
    out = run_jvs("doctor", "--repair-runtime", cwd=main).stdout
    assert "finished removing worktree investigation; unsaved work kept as rescue" in out
    assert not wt.exists()
    [rescue] = _rescues(main)
    run_jvs("verify", rescue["snapshot_id"], cwd=main)
    run_jvs("fork", rescue["snapshot_id"], "back", cwd=main)
    back = repo / "worktrees" / "back"
    assert (back / "src" / "handler.go").read_text() == "package main // unsaved edit\n"
    assert (back / "notes" / "deep" / "idea.txt").read_text() == "unsaved idea\n"


def test_remove_crashed_then_written_to_is_not_deleted(seeded):
    repo, main, v10, fa = seeded
    wt = _crashed_forced_remove(repo, main, "worktree:after_move_to_rescue")
    (wt / "written-after-the-crash.txt").write_text("new work\n")
    res = run_jvs("doctor", "--repair-runtime", cwd=main, check=False)
    assert "E_UNSAVED" in res.stdout + res.stderr
    assert (wt / "written-after-the-crash.txt").read_text() == "new work\n"
    [rescue] = _rescues(main)  # the work moved before the crash is published, not lost
    run_jvs("verify", rescue["snapshot_id"], cwd=main)
