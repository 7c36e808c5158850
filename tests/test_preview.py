"""``--dry-run`` (jvs/preview.py) on restore, worktree remove and gc run: exactly what
would change, and nothing changes."""

from __future__ import annotations

import json
import time

from conftest import run_jvs, take_snapshot

DAYS = 86400


def _state(repo):
    """Everything a dry run must leave alone: descriptors, worktree configs, payloads."""
    out = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if rel.parts[:2] in ((".jvs", "cache"), (".jvs", "audit")) or \
                rel.name == "index.sqlite" or rel.parts[:2] == (".jvs", "locks"):
            continue
        out[str(rel)] = path.read_bytes() if path.is_file() and not path.is_symlink() \
            else None
    return out


def test_restore_dry_run_lists_exactly_what_restore_then_does(repo):
    main = repo / "main"
    (main / "keep.txt").write_text("k\n")
    (main / "edit.txt").write_text("one\n")
    (main / "gone.txt").write_text("bye\n")
    (main / "run.sh").write_text("#!/bin/sh\n")
    base = take_snapshot(main, "base", "base")
    (main / "edit.txt").write_text("two\n")
    (main / "gone.txt").unlink()
    (main / "new.txt").write_text("new\n")
    (main / "run.sh").chmod(0o755)
    take_snapshot(main, "second")
    (main / "scratch.txt").write_text("unsaved\n")  # unsaved work
    before = _state(repo)
    data = run_jvs("restore", "base", "--dry-run", "--json", cwd=main).json
    assert _state(repo) == before
    assert data["dry_run"] and data["target_id"] == base and data["would_rescue"]
    assert [c["path"] for c in data["unsaved_changes"]] == ["scratch.txt"]
    assert {(c["action"], c["path"]) for c in data["changes"]} == {
        ("replace", "edit.txt"), ("create", "gone.txt"), ("delete", "new.txt"),
        ("chmod", "run.sh"), ("delete", "scratch.txt")}
    human = run_jvs("restore", "base", "-n", cwd=main).stdout
    assert "nothing changed" in human and "rescue" in human and "+ gone.txt" in human
    assert "DISCARDED" in run_jvs("restore", "base", "-n", "--discard-unsaved",
                                  cwd=main).stdout
    only = run_jvs("restore", "base", "-n", "--json", "--", "edit.txt", cwd=main).json
    assert [(c["action"], c["path"]) for c in only["changes"]] == [("replace", "edit.txt")]
    # the real restore does what the preview said
    run_jvs("restore", "base", cwd=main)
    assert (main / "gone.txt").exists() and not (main / "new.txt").exists()
    assert (main / "edit.txt").read_text() == "one\n"
    again = run_jvs("restore", "base", "-n", "--json", cwd=main).json
    assert again["changes"] == [] and not again["would_rescue"]


def test_worktree_remove_dry_run(repo):
    main = repo / "main"
    (main / "a").write_text("a\n")
    take_snapshot(main, "base")
    run_jvs("worktree", "fork", "side", cwd=main)
    side = repo / "worktrees" / "side"
    before = _state(repo)
    clean = run_jvs("worktree", "remove", "side", "--dry-run", "--json", cwd=main).json
    assert clean["dry_run"] and not clean["would_refuse"] and clean["unsaved_changes"] == 0
    (side / "work.txt").write_text("unsaved\n")
    before = _state(repo)
    refused = run_jvs("worktree", "remove", "side", "-n", cwd=main).stdout
    assert "would be refused" in refused and "1 unsaved" in refused
    forced = run_jvs("worktree", "remove", "side", "-n", "--force", cwd=main).stdout
    assert "would be saved as a rescue snapshot" in forced  # --force keeps the work
    dropped = run_jvs("worktree", "remove", "side", "-n", "--force", "--discard-unsaved",
                      cwd=main).stdout
    assert "would be LOST" in dropped
    assert _state(repo) == before and side.is_dir()


def test_gc_run_dry_run_names_the_snapshots_and_deletes_nothing(repo):
    main = repo / "main"
    ids = []
    for i in range(3):
        (main / "f").write_text(f"{i}\n")
        ids.append(take_snapshot(main, f"v{i}"))
    env = {"JVS_GC_NOW": str(time.time() + 5 * DAYS)}
    plan = run_jvs("gc", "plan", "--keep-last", "1", "--json", cwd=main, env=env).json
    assert sorted(plan["to_delete"]) == \
        sorted(ids[:2])
    before = _state(repo)
    data = run_jvs("gc", "run", "--plan-id", plan["plan_id"], "--dry-run", "--json",
                   cwd=main, env=env).json
    assert sorted(data["would_delete"]) == sorted(ids[:2]) and data["would_fail"] is None
    assert _state(repo) == before
    run_jvs("tag", "add", ids[0], "keep", cwd=main)  # now protected: the run would refuse
    refused = run_jvs("gc", "run", "--plan-id", plan["plan_id"], "-n", cwd=main, env=env)
    assert "would fail (E_GC_PLAN_MISMATCH)" in refused.stdout
    real = run_jvs("gc", "run", "--plan-id", plan["plan_id"], cwd=main, env=env, check=False)
    assert real.returncode == 1 and "E_GC_PLAN_MISMATCH" in real.stderr
    assert json.loads((repo / ".jvs" / "descriptors" / f"{ids[1]}.json").read_text())
