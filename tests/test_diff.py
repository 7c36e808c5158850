"""``jvs diff`` (SPEC §10): snapshot to snapshot, snapshot to worktree, head to worktree."""

from __future__ import annotations

import os

from conftest import run_jvs


def snap(main, note, *tags):
    args = ["snapshot", note, "--json"]
    for t in tags:
        args += ["--tag", t]
    return run_jvs(*args, cwd=main).json["snapshot_id"]


def changes(result):
    return {c["path"]: c["change"] for c in result["changes"]}


def test_head_to_worktree_and_snapshot_to_snapshot(repo):
    main = repo / "main"
    (main / "keep.txt").write_text("same\n")
    (main / "edit.txt").write_text("one\n")
    (main / "gone.txt").write_text("bye\n")
    (main / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(main / "run.sh", 0o644)
    a = snap(main, "first", "a")

    assert run_jvs("diff", "--json", cwd=main).json["changes"] == []
    assert "No differences." in run_jvs("diff", cwd=main).stdout

    (main / "edit.txt").write_text("two!\n")
    (main / "gone.txt").unlink()
    (main / "new.txt").write_text("hello\n")
    os.chmod(main / "run.sh", 0o755)  # mode-only change counts
    res = run_jvs("diff", "--json", cwd=main).json
    assert changes(res) == {"edit.txt": "modified", "gone.txt": "removed",
                            "new.txt": "added", "run.sh": "mode"}
    assert res["from"] == a and res["to"] == "worktree"
    assert res["summary"]["mode"] == 1 and res["summary"]["added"] == 1

    b = snap(main, "second", "b")
    res = run_jvs("diff", "a", "b", "--json", cwd=main).json
    assert res["from"] == a and res["to"] == b
    assert changes(res) == {"edit.txt": "modified", "gone.txt": "removed",
                            "new.txt": "added", "run.sh": "mode"}
    back = run_jvs("diff", "b", "a", "--json", cwd=main).json
    assert changes(back) == {"edit.txt": "modified", "gone.txt": "added",
                             "new.txt": "removed", "run.sh": "mode"}

    # A given, B missing: from A to the worktree
    (main / "keep.txt").write_text("changed\n")
    res = run_jvs("diff", "a", "--json", cwd=main).json
    assert changes(res)["keep.txt"] == "modified" and res["to"] == "worktree"

    stat = run_jvs("diff", "a", "b", "--stat", cwd=main).stdout
    assert "4 change(s)" in stat and "1 added" in stat and "1 mode" in stat


def test_diff_unchanged_worktree_reads_no_file(repo):
    main = repo / "main"
    (main / "big.bin").write_bytes(os.urandom(1 << 20))
    snap(main, "one")
    import time

    time.sleep(0.2)  # leave the stat cache's racy window
    run_jvs("diff", cwd=main)
    res = run_jvs("diff", "--json", cwd=main).json
    assert res["stats"]["bytes_hashed"] == 0 and res["changes"] == []


def test_diff_unknown_ref_is_not_found(repo):
    main = repo / "main"
    (main / "x").write_text("x")
    snap(main, "one")
    res = run_jvs("diff", "nope", cwd=main, check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr
