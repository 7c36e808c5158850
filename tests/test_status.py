"""``jvs status`` (jvs/status.py): the worktree against its head, on paths, and the
stable ``--short`` format."""

from __future__ import annotations

import time

from conftest import run_jvs, take_snapshot


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
