"""``jvs init NAME --from DIR [--move]`` (jvs/importing.py): an existing folder becomes a
repository's first snapshot, through the engine of the filesystem."""

from __future__ import annotations

import os

import pytest

from conftest import ENGINE_VOLUMES, run_jvs


def _folder(path):
    (path / "data" / "raw").mkdir(parents=True)
    (path / "data" / "raw" / "train.csv").write_text("a,b\n1,2\n")
    (path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(path / "run.sh", 0o755)
    os.symlink("data/raw/train.csv", path / "latest.csv")
    return path


@pytest.mark.parametrize("engine", [
    pytest.param("copy", id="copy"),
    pytest.param("reflink-copy", id="reflink", marks=[pytest.mark.slow, pytest.mark.xfs]),
    pytest.param("juicefs-clone", id="juicefs", marks=[pytest.mark.slow, pytest.mark.juicefs]),
])
def test_init_from_imports_a_folder_as_the_first_snapshot(engine, request, tmp_path,
                                                          monkeypatch):
    volume = ENGINE_VOLUMES[engine]
    parent = tmp_path if volume is None else request.getfixturevalue(volume)
    monkeypatch.setenv("JVS_SNAPSHOT_ENGINE", engine)
    src = _folder(parent / "dataset")
    before = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    res = run_jvs("init", "proj", "--from", str(src), "--json", cwd=parent)
    assert res.json["import"]["how"] == engine
    main = parent / "proj" / "main"
    assert (main / "data" / "raw" / "train.csv").read_text() == "a,b\n1,2\n"
    assert os.readlink(main / "latest.csv") == "data/raw/train.csv"
    assert os.stat(main / "run.sh").st_mode & 0o777 == 0o755
    assert sorted(str(p.relative_to(src)) for p in src.rglob("*")) == before  # untouched
    history = run_jvs("history", "--json", cwd=main).json["snapshots"]
    assert len(history) == 1 and history[0]["note"] == f"Initial import of {src}"
    assert history[0]["engine"] == engine
    assert run_jvs("status", "--json", cwd=main).json["clean"]
    assert "OK" in run_jvs("verify", "--all", cwd=main).stdout


@pytest.mark.slow
@pytest.mark.xfs
def test_init_from_a_folder_on_another_filesystem_copies_it_and_says_so(xfs_dir, tmp_path):
    """The repository's engine shares extents, which needs one filesystem: the folder on
    the tmp disk is copied, and the JSON says why, instead of a reflink that fails."""
    src = _folder(tmp_path / "dataset")
    res = run_jvs("init", "proj", "--from", str(src), "--json", cwd=xfs_dir)
    assert res.json["import"]["how"] == "copy"
    assert "on another filesystem than the repository" in res.json["import"]["reason"]
    main = xfs_dir / "proj" / "main"
    assert (main / "data" / "raw" / "train.csv").read_text() == "a,b\n1,2\n"
    assert run_jvs("info", "--json", cwd=main).json["engine"] == "reflink-copy"


def test_init_from_move_renames_the_folder(tmp_path):
    src = _folder(tmp_path / "dataset")
    inode = os.stat(src / "data" / "raw" / "train.csv").st_ino
    res = run_jvs("init", "proj", "--from", "dataset", "--move", "--json", cwd=tmp_path)
    assert res.json["import"]["how"] == "move" and not src.exists()
    main = tmp_path / "proj" / "main"
    assert os.stat(main / "data" / "raw" / "train.csv").st_ino == inode  # moved, not copied
    assert run_jvs("status", "--json", cwd=main).json["clean"]


def test_init_from_refuses_what_cannot_work_and_leaves_nothing(tmp_path):
    src = _folder(tmp_path / "dataset")
    for args, code, text in [
        (["inner", "--from", "."], "E_USAGE", "would be inside"),
        (["proj", "--from", "nowhere"], "E_NOT_FOUND", "no such directory"),
        (["proj", "--move"], None, "--move needs --from"),
    ]:
        res = run_jvs("init", *args, cwd=tmp_path if args[0] != "inner" else src,
                      check=False)
        assert res.returncode != 0 and text in res.stderr, res.stderr
        if code:
            assert code in res.stderr
    assert sorted(os.listdir(tmp_path)) == ["dataset"]
    assert not (src / "inner").exists()
    run_jvs("init", "proj", "--from", "dataset", cwd=tmp_path)
    res = run_jvs("init", "again", "--from", "proj/main", cwd=tmp_path, check=False)
    assert res.returncode == 1 and "inside the jvs repository" in res.stderr
    assert not (tmp_path / "again").exists()


def test_init_takes_a_path(tmp_path):
    (tmp_path / "projects").mkdir()
    res = run_jvs("init", str(tmp_path / "projects" / "ml"), "--json", cwd=tmp_path)
    assert res.json["repo_root"] == str(tmp_path / "projects" / "ml")
    run_jvs("init", "../side/", cwd=tmp_path / "projects")
    assert (tmp_path / "side" / ".jvs" / "format_version").exists()
    res = run_jvs("init", str(tmp_path / "nowhere" / "ml"), cwd=tmp_path, check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr
    res = run_jvs("init", ".", cwd=tmp_path / "projects" / "ml" / "main", check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr  # a repository's own worktree
