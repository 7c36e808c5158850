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


def _tree(main):
    (main / "data").mkdir()
    (main / "data" / "x.txt").write_text("a\nb\nc\n")
    (main / "data" / "y.txt").write_text("y\n")
    (main / "bin.dat").write_bytes(b"\0\1\2")
    (main / "keep.txt").write_text("k\n")
    return snap(main, "base", "base")


def test_paths_limit_diff_and_are_relative_to_the_current_directory(repo):
    main = repo / "main"
    _tree(main)
    (main / "data" / "x.txt").write_text("a\nB\nc\n")
    (main / "bin.dat").write_bytes(b"\0\3")
    (main / "data2").mkdir()
    (main / "data2" / "z").write_text("z\n")  # shares the prefix "data", not the directory
    assert set(changes(run_jvs("diff", "--json", cwd=main).json)) == \
        {"bin.dat", "data/x.txt", "data2", "data2/z"}
    only = run_jvs("diff", "--json", "--", "data", cwd=main).json
    assert changes(only) == {"data/x.txt": "modified"} and only["paths"] == ["data"]
    inside = run_jvs("diff", "base", "--json", "--", "x.txt", cwd=main / "data").json
    assert changes(inside) == {"data/x.txt": "modified"}
    # "--" keeps a path that looks like a reference from being taken for one
    assert changes(run_jvs("diff", "--json", "--", "base", cwd=main).json) == {}
    res = run_jvs("diff", "--", "../../elsewhere", cwd=main, check=False)
    assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr


def test_patch_shows_text_changes_and_reports_binaries(repo):
    main = repo / "main"
    _tree(main)
    (main / "data" / "x.txt").write_text("a\nB\nc\n")
    (main / "data" / "new.txt").write_text("new\n")
    (main / "data" / "y.txt").unlink()
    (main / "bin.dat").write_bytes(b"\0\3")
    os.chmod(main / "keep.txt", 0o755)
    out = run_jvs("diff", "-p", cwd=main).stdout
    assert "--- a/data/x.txt\n+++ b/data/x.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n" in out
    assert "--- /dev/null\n+++ b/data/new.txt\n@@ -0,0 +1 @@\n+new\n" in out
    assert "--- a/data/y.txt\n+++ /dev/null\n" in out
    assert "Binary files a/bin.dat and b/bin.dat differ" in out
    assert "old mode 100644\nnew mode 100755\n" in out
    # between two snapshots, within a path; and as JSON
    second = snap(main, "second")
    out = run_jvs("diff", "-p", "base", second, "--", "data/x.txt", cwd=main).stdout
    assert out.startswith("diff --jvs a/data/x.txt b/data/x.txt\n") and "bin.dat" not in out
    data = run_jvs("diff", "-p", "base", second, "--json", cwd=main).json
    assert "+B\n" in data["patch"] and changes(data)["bin.dat"] == "modified"
    assert subprocess_patch_applies(repo, main, out)


def subprocess_patch_applies(repo, main, text) -> bool:
    """The patch is one `patch -p1` understands (a user pipes it there)."""
    import shutil
    import subprocess

    if shutil.which("patch") is None:
        return True
    scratch = repo.parent / "scratch"
    scratch.mkdir()
    (scratch / "data").mkdir()
    (scratch / "data" / "x.txt").write_text("a\nb\nc\n")
    proc = subprocess.run(["patch", "-p1"], input=text, text=True, cwd=scratch,
                          capture_output=True)
    return proc.returncode == 0 and (scratch / "data" / "x.txt").read_text() == "a\nB\nc\n"


def test_exit_code_says_whether_anything_differs(repo):
    main = repo / "main"
    _tree(main)
    assert run_jvs("diff", "--exit-code", cwd=main).returncode == 0
    (main / "keep.txt").write_text("changed\n")
    res = run_jvs("diff", "--exit-code", "--stat", cwd=main, check=False)
    assert res.returncode == 1 and "M keep.txt" in res.stdout
    assert run_jvs("diff", "--exit-code", "--", "data", cwd=main).returncode == 0
    assert run_jvs("diff", "--exit-code", "-p", cwd=main, check=False).returncode == 1


def test_two_manifests_merged_as_streams_differ_where_the_whole_comparison_says(tmp_path):
    """``jvs diff A B`` merges the two stored manifests as sorted streams: for any two
    record sets it finds exactly the records ``differing`` finds on each side, and gives
    up (None: the caller rebuilds the usual way) on a manifest that is not the one its
    root hash names."""
    import random

    from jvs.changes import differing
    from jvs.integrity import (
        Entry,
        encode_manifest,
        encoded_records,
        parse_manifest,
        root_hash,
    )
    from jvs.records import differing_records

    rng = random.Random(3)
    paths = [f"d{i % 7}/f{i}" for i in range(300)]

    hashes = {p: f"{rng.getrandbits(128):032x}" for p in paths}

    def manifest() -> bytes:
        """Most of the paths, a tenth of them with another hash."""
        entries = [Entry("file", p, 0o644, len(p),
                         f"{rng.getrandbits(128):032x}" if rng.random() < 0.1 else hashes[p])
                   for p in paths if rng.random() < 0.8]
        return b"".join(r + b"\n" for r in sorted(encoded_records(entries)))

    for _ in range(20):
        a, b = manifest(), manifest()
        (tmp_path / "a").write_bytes(encode_manifest(a))
        (tmp_path / "b").write_bytes(encode_manifest(b))
        found = differing_records((tmp_path / "a", root_hash(a)), (tmp_path / "b", root_hash(b)))
        gone, added = found
        old, new = differing(a, b)
        assert sorted(parse_manifest(b"\n".join(gone))) == sorted(old)
        assert sorted(parse_manifest(b"\n".join(added))) == sorted(new)
        assert old and new
    assert differing_records((tmp_path / "a", root_hash(b)), (tmp_path / "b", root_hash(b))) \
        is None
