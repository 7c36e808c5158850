"""``jvs status`` (jvs/status.py): the worktree against its head, on paths, and the
stable ``--short`` format."""

from __future__ import annotations

import time

from conftest import drawn_repos, run_jvs, take_snapshot


def test_status_on_paths_and_short(repo):
    main = repo / "main"
    (main / "data").mkdir()
    (main / "data" / "x.txt").write_text("x\n")
    (main / "data" / "gone.txt").write_text("g\n")
    (main / "run.sh").write_text("#!/bin/sh\n")
    (main / "other.txt").write_text("o\n")
    take_snapshot(main, "base")
    (main / "data" / "x.txt").write_text("changed\n")
    (main / "data" / "gone.txt").unlink()
    (main / "data" / "new.txt").write_text("n\n")
    (main / "run.sh").chmod(0o755)
    (main / "other.txt").unlink()
    (main / "other.txt").mkdir()
    short = run_jvs("status", "--short", cwd=main).stdout
    assert short == ("D data/gone.txt\nA data/new.txt\nM data/x.txt\nT other.txt\n"
                     "m run.sh\n")
    # paths: relative to the current directory; the short form keeps root-relative paths
    assert run_jvs("status", "-s", "x.txt", "new.txt", cwd=main / "data").stdout == \
        "A data/new.txt\nM data/x.txt\n"
    data = run_jvs("status", "data", "--json", cwd=main).json
    assert data["paths"] == ["data"] and not data["clean"]
    assert {c["path"] for c in data["changes"]} == {"data/gone.txt", "data/new.txt",
                                                     "data/x.txt"}
    assert run_jvs("status", ".", "--json", cwd=main).json["paths"] == []  # the root: all
    clean = run_jvs("status", "nothing-here", cwd=main).stdout
    assert "Clean: nothing-here match(es) the head snapshot." in clean
    res = run_jvs("status", "../..", cwd=main, check=False)
    assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr
    take_snapshot(main, "all")
    assert run_jvs("status", "--short", cwd=main).stdout == ""


def test_status_on_a_path_reads_only_files_there(repo):
    main = repo / "main"
    (main / "a").mkdir()
    (main / "b").mkdir()
    (main / "a" / "f").write_text("1\n")
    (main / "b" / "g").write_text("1\n")
    # Past the stat cache's racily-clean window, or the snapshot does not vouch for a/f
    # and the status below reads it again, rightly (a fast machine starts jvs in less).
    time.sleep(0.2)
    take_snapshot(main, "base")
    (main / "b" / "g").write_text("2\n")  # changed: reading it would hash it
    from jvs.repo import Repo
    from jvs.status import worktree_status

    st = worktree_status(Repo(repo), "main", ("a",))
    assert st.changes.clean and st.stats.files_hashed == 0
    st = worktree_status(Repo(repo), "main")
    assert not st.changes.clean and st.stats.files_hashed == 1


NAMES = ["a", "a.b", "a-b", "a:b", "a:", "b", "é", "z"]
EDITS = ["write", "remove", "chmod", "to_dir", "to_symlink", "touch"]


def _build(root, data) -> None:
    """A tree of names whose walk order and sorted order differ, two levels deep."""
    import os

    from hypothesis import strategies as st

    for name in data.draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6)):
        kind = data.draw(st.sampled_from(["file", "dir", "symlink"]))
        path = root / name
        if kind == "file":
            path.write_text(name)
        elif kind == "symlink":
            os.symlink(name + "-target", path)
        else:
            path.mkdir()
            for inner in data.draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4)):
                (path / inner).write_text(inner)


def _edit(root, data) -> None:
    import os
    import shutil

    from hypothesis import strategies as st

    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    for rel in data.draw(st.lists(st.sampled_from(paths), unique=True, max_size=4)
                         if paths else st.just([])):
        path = root / rel
        if not os.path.lexists(path):
            continue
        how = data.draw(st.sampled_from(EDITS))
        if how == "write" and path.is_file() and not path.is_symlink():
            path.write_text("edited " + rel)
        elif how == "chmod" and path.is_file() and not path.is_symlink():
            path.chmod(0o755)
        elif how == "touch":
            os.utime(path, ns=(0, 1), follow_symlinks=False)
        elif how == "to_dir":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            path.mkdir()
        elif how == "to_symlink":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            os.symlink("elsewhere", path)
        else:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for name in data.draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2)):
        if not os.path.lexists(root / name):
            (root / name).write_text("new " + name)


def test_status_in_one_pass_finds_what_the_two_pass_comparison_finds(tmp_path_factory):
    """``status`` walks the worktree in walk order beside its stat cache and its head's
    manifest (``changes.worktree_differing``): for any tree and any edits, including
    names whose walk order and manifest order differ (``a:b``, ``a.b``, ``a/``), it
    reports exactly what comparing all entries reports, and the stat cache it writes
    answers the next status as well."""
    from hypothesis import given
    from hypothesis import strategies as st

    from jvs.changes import (
        compare,
        differing,
        snapshot_manifest,
        worktree_differing,
        worktree_entries,
    )
    from jvs.integrity import HashStats

    chosen, fresh = drawn_repos(tmp_path_factory, 30)

    @chosen
    @given(data=st.data())
    def check(data):
        repo, main = fresh()
        _build(main, data)
        repo.snapshot("base")
        r = repo.repo
        head = repo.resolve("HEAD")
        # Unchanged: nothing is kept, every record was met in order and matched (with a
        # ":" in a name the manifest's order may differ: such records are kept, and
        # paired up by compare()).
        if not any(":" in p.name for p in main.rglob("*")):
            assert worktree_differing(r, "main", main, head, HashStats()) == ([], [])
        _edit(main, data)
        for _ in range(2):  # the second time answered from the cache the first one wrote
            found = worktree_differing(r, "main", main, head, HashStats())
            assert found is not None
            one_pass = compare(*found)
            old, new = differing(snapshot_manifest(r, head),
                                 worktree_entries(r, "main", main, head.payload_hash_algo))
            assert one_pass.to_json() == compare(old, new).to_json()

    check()


def test_status_of_an_unchanged_worktree_keeps_no_entry(tmp_path):
    """Names that sort one way as paths and another in the manifest ("a/" after "a.b"):
    the one-pass status meets every record in order and keeps none of them."""
    import jvs
    from jvs.changes import worktree_differing
    from jvs.integrity import HashStats

    repo = jvs.init(tmp_path, "r")
    main = tmp_path / "r" / "main"
    (main / "a").mkdir()
    (main / "a" / "x").write_text("x")
    for name in ("a.b", "a-b", "a0", "b"):
        (main / name).write_text(name)
    (main / "link").symlink_to("a")
    repo.snapshot("base")
    head = repo.resolve("HEAD")
    assert worktree_differing(repo.repo, "main", main, head, HashStats()) == ([], [])


def test_a_head_manifest_with_a_line_that_is_no_record_is_not_trusted(tmp_path):
    """The one-pass status reads the head's manifest before it can check its hash: a
    line that is no record (a damaged or forged manifest) makes it not trusted, and
    status answers from the manifest rebuilt from the payload."""
    import jvs
    from jvs.integrity import decode_manifest

    repo = jvs.init(tmp_path, "r")
    main = tmp_path / "r" / "main"
    (main / "a.txt").write_text("a")
    head = repo.snapshot("s").descriptor
    manifest = repo.repo.manifest_path(head.snapshot_id)
    manifest.write_bytes(b"file:no-colons-here\n" + decode_manifest(manifest.read_bytes()))
    status = repo.status()
    assert status.changes.clean
