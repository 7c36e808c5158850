""".jvsignore in a worktree: ignored paths are neither captured by snapshots nor touched
by restore, on every engine, through crashes too."""

from __future__ import annotations

import os

import pytest
from test_restore import tree, write

from conftest import ROOT, run_jvs

IGNORE = "Library/\nTemp/\n*.tmp\n**/cache/\n!keep.tmp\n"
KEPT = {"Assets/hero.png": b"png v1\n", "Assets/hero.png.meta": b"guid: 1\n",
        "ProjectSettings/p.asset": b"settings\n", "keep.tmp": b"kept although *.tmp\n"}
IGNORED = {"Library/ShaderCache/a.bin": b"\1" * 4096, "Library/ArtifactDB": b"db\n",
           "Temp/x": b"temp\n", "Assets/scratch.tmp": b"scratch\n",
           "Assets/Art/cache/thumb.bin": b"thumb\n"}


def snap(main, note, *extra):
    return run_jvs("snapshot", note, "--json", *extra, cwd=main).json


def payload_tree(root, sid):
    return tree(root / ".jvs" / "snapshots" / sid)


def files_of(t):
    return {k: v for k, v in t.items() if v != "dir"}


@pytest.fixture
def unity(engine_repo):
    root, engine = engine_repo
    main = root / "main"
    (main / ".jvsignore").write_text(IGNORE)
    write(main, KEPT)
    write(main, IGNORED)
    return root, main, engine


def test_snapshot_leaves_ignored_paths_out(unity):
    root, main, engine = unity
    out = snap(main, "unity project")
    assert out["engine"] == engine
    assert sorted(out["ignored"]) == ["Assets/Art/cache", "Assets/scratch.tmp", "Library",
                                      "Temp"]
    stored = files_of(payload_tree(root, out["snapshot_id"]))
    assert stored == {**KEPT, ".jvsignore": IGNORE.encode()}
    assert "Assets/Art" in payload_tree(root, out["snapshot_id"])  # the dir itself is kept
    assert run_jvs("verify", out["snapshot_id"], cwd=main).returncode == 0
    # Whatever happens under ignored paths, the worktree stays clean.
    (main / "Library" / "new.bin").write_bytes(b"more cache")
    (main / "Temp" / "x").write_bytes(b"changed")
    (main / "Assets" / "Art" / "cache" / "thumb.bin").unlink()
    status = run_jvs("status", "--json", cwd=main).json
    assert status["clean"], status
    assert run_jvs("diff", "--json", cwd=main).json["changes"] == []


def test_restore_never_touches_ignored_paths(unity):
    root, main, engine = unity
    v1 = snap(main, "v1")["snapshot_id"]
    write(main, {"Assets/hero.png": b"png v2\n", "Assets/new.cs": b"class New {}\n"})
    snap(main, "v2")
    # Unsaved work next to ignored content that changed since.
    write(main, {"Assets/hero.png": b"unsaved edit\n", "Library/fresh.bin": b"fresh\n",
                 "Assets/Art/cache/new-thumb.bin": b"new thumb\n"})
    inode = os.stat(main / "Library").st_ino
    before_ignored = {k: v for k, v in tree(main).items()
                      if k.startswith(("Library", "Temp")) or k.endswith(".tmp")
                      and k != "keep.tmp" or "/cache" in k}
    out = run_jvs("restore", v1, "--json", cwd=main).json
    after = tree(main)
    assert {k: after.get(k) for k in before_ignored} == before_ignored
    assert os.stat(main / "Library").st_ino == inode  # not even moved
    assert after["Assets/hero.png"] == b"png v1\n" and "Assets/new.cs" not in after
    # The rescue holds the unsaved edit, and no ignored content.
    rescue = files_of(payload_tree(root, out["rescue_id"]))
    assert rescue["Assets/hero.png"] == b"unsaved edit\n"
    assert not any(k.startswith(("Library", "Temp")) or "/cache/" in k for k in rescue)
    assert run_jvs("status", "--json", cwd=main).json["clean"]


def test_old_snapshot_with_now_ignored_paths(repo):
    """A snapshot taken before a path was ignored still has it: a restore leaves the
    worktree's own copy in place and says which paths it did not restore."""
    main = repo / "main"
    write(main, {"src/a.py": b"a\n", "build/out.bin": b"old build\n"})
    old = snap(main, "before the rule")["snapshot_id"]
    (main / ".jvsignore").write_text("build/\n")
    write(main, {"build/out.bin": b"new build\n"})
    snap(main, "with the rule")
    out = run_jvs("restore", old, "--json", cwd=main)
    assert out.json["not_restored"] == ["build"]
    assert (main / "build" / "out.bin").read_bytes() == b"new build\n"
    human = run_jvs("restore", "HEAD", cwd=main)
    assert "Restored to snapshot" in human.stdout


def test_restore_refuses_a_file_over_ignored_content(repo):
    main = repo / "main"
    write(main, {"data": b"a file\n"})
    old = snap(main, "data is a file")["snapshot_id"]
    os.unlink(main / "data")
    (main / ".jvsignore").write_text("*.cache\n")
    write(main, {"data/x.txt": b"x\n", "data/big.cache": b"precious cache\n"})
    snap(main, "data is a dir")
    before = tree(main)
    res = run_jvs("restore", old, cwd=main, check=False)
    assert res.returncode == 1
    assert "E_UNSAVED" in res.stderr and "data/big.cache" in res.stderr
    assert tree(main) == before
    assert not list((repo / ".jvs" / "intents").glob("restore-*"))


def test_partial_snapshot_of_an_ignored_path_is_refused(repo):
    main = repo / "main"
    (main / ".jvsignore").write_text("Library/\n")
    write(main, {"Library/a": b"a\n", "Assets/b": b"b\n"})
    res = run_jvs("snapshot", "lib", "--paths", "Library", cwd=main, check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr
    res = run_jvs("snapshot", "lib", "--paths", "Library/a", cwd=main, check=False)
    assert res.returncode == 1 and "ignored by .jvsignore" in res.stderr
    out = snap(main, "assets", "--paths", "Assets")
    assert out["partial_paths"] == ["Assets"]


def test_symlinked_ignore_file_is_refused(repo, tmp_path):
    main = repo / "main"
    (tmp_path / "elsewhere").write_text("*\n")
    os.symlink(tmp_path / "elsewhere", main / ".jvsignore")
    write(main, {"a": b"a\n"})
    res = run_jvs("snapshot", "x", cwd=main, check=False)
    assert res.returncode == 1 and "E_PATH_ESCAPE" in res.stderr


RESTORE_STEPS = ["after_intent", "after_stage", "after_move_to_rescue", "after_rescue",
                 "during_swap", "after_swap", "after_worktree_update", "after_audit"]


@pytest.mark.parametrize("step", RESTORE_STEPS)
def test_sigkill_during_restore_keeps_ignored_content(repo, step):
    main = repo / "main"
    (main / ".jvsignore").write_text(IGNORE)
    write(main, KEPT)
    v1 = snap(main, "v1")["snapshot_id"]
    write(main, {"Assets/hero.png": b"v2\n", "Assets/more.cs": b"more\n"})
    snap(main, "v2")
    write(main, IGNORED)
    write(main, {"Assets/hero.png": b"unsaved\n"})
    ignored_before = {k: v for k, v in tree(main).items() if k in IGNORED}
    res = run_jvs("restore", v1, cwd=main, check=False,
                  env={"JVS_CRASH_AT": f"restore:{step}"})
    assert res.returncode == -9, res.stdout + res.stderr
    saved_before = {k: v for k, v in tree(main).items() if k not in IGNORED}
    run_jvs("doctor", "--repair-runtime", cwd=repo)
    now = tree(main)
    assert {k: now.get(k) for k in IGNORED} == ignored_before
    assert not (repo / ".jvs" / "restore" / "main").exists()
    rescues = [s for s in run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]
               if s["kind"] == "rescue"]
    if step in ("after_intent", "after_stage"):
        # Killed before it touched the worktree: the restore is forgotten, the worktree
        # holds exactly what it held, unsaved work included.
        assert {k: v for k, v in now.items() if k not in IGNORED} == saved_before
        assert rescues == []
        return
    assert files_of({k: v for k, v in now.items() if k not in IGNORED}) == \
        {**KEPT, ".jvsignore": IGNORE.encode()}
    assert len(rescues) == 1
    rescued = files_of(payload_tree(repo, rescues[0]["snapshot_id"]))
    assert rescued["Assets/hero.png"] == b"unsaved\n"
    assert not set(rescued) & set(IGNORED)


@pytest.mark.parametrize("template", ["unity", "unreal"])
def test_init_with_a_template(tmp_path, template):
    run_jvs("init", "game", "--template", template, cwd=tmp_path)
    main = tmp_path / "game" / "main"
    shipped = (ROOT / "tools" / "templates" / f"{template}.jvsignore").read_text()
    assert (main / ".jvsignore").read_text() == shipped
    project = {
        "unity": {"Assets/Scenes/Main.unity": b"scene", "Assets/Scenes/Main.unity.meta": b"m",
                  "Packages/manifest.json": b"{}", "ProjectSettings/ProjectVersion.txt": b"v",
                  "Library/ArtifactDB": b"x" * 1000, "Temp/t": b"t", "Logs/l.log": b"l",
                  "UserSettings/u.asset": b"u", "Game.sln": b"sln", "Game.csproj": b"proj"},
        "unreal": {"Game.uproject": b"{}", "Config/DefaultEngine.ini": b"ini",
                   "Content/Maps/Main.umap": b"map", "Source/Game/Game.cpp": b"cpp",
                   "Plugins/P/Source/P.cpp": b"cpp", "Plugins/P/Binaries/Win64/P.dll": b"dll",
                   "Binaries/Win64/Game.exe": b"exe", "Intermediate/x": b"x",
                   "DerivedDataCache/d.ddp": b"d", "Saved/Logs/Game.log": b"log"},
    }[template]
    write(main, project)
    out = snap(main, "first")
    kept = set(files_of(payload_tree(tmp_path / "game", out["snapshot_id"])))
    expected = {
        "unity": {"Assets/Scenes/Main.unity", "Assets/Scenes/Main.unity.meta",
                  "Packages/manifest.json", "ProjectSettings/ProjectVersion.txt"},
        "unreal": {"Game.uproject", "Config/DefaultEngine.ini", "Content/Maps/Main.umap",
                   "Source/Game/Game.cpp", "Plugins/P/Source/P.cpp"},
    }[template]
    assert kept == expected | {".jvsignore"}


def test_init_with_an_unknown_template_creates_nothing(tmp_path):
    res = run_jvs("init", "game", "--template", "godot", cwd=tmp_path, check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr and "unity" in res.stderr
    assert not (tmp_path / "game").exists()
    (tmp_path / "mine.txt").write_text("*.bak\n")
    run_jvs("init", "game", "--template", str(tmp_path / "mine.txt"), cwd=tmp_path)
    assert (tmp_path / "game" / "main" / ".jvsignore").read_text() == "*.bak\n"


def test_kept_ignored_file_is_not_seeded_with_the_snapshots_hash(repo):
    """After a restore, the stat cache is seeded from the target's manifest. A path the
    restore left alone because it was ignored holds other content; if the restored
    .jvsignore no longer ignores it, the next snapshot must hash it, not trust the
    manifest (else the snapshot would record a hash its payload does not have)."""
    import time

    main = repo / "main"
    write(main, {"src/a.py": b"a\n", "build/out.bin": b"AAAA"})
    old = snap(main, "no rules yet")["snapshot_id"]
    (main / ".jvsignore").write_text("build/\n")
    write(main, {"build/out.bin": b"BBBB"})  # same size, other content
    snap(main, "with the rule")
    time.sleep(0.3)  # older than the racily-clean window
    out = run_jvs("restore", old, "--json", cwd=main).json
    assert out["not_restored"] == ["build"]
    assert not (main / ".jvsignore").exists()  # the old snapshot had none
    trash = repo / ".jvs" / "restore" / "@trash"
    for _ in range(100):  # the cache is seeded in the background
        if not trash.exists() or not os.listdir(trash):
            break
        time.sleep(0.1)
    new = snap(main, "build is versioned again")
    assert run_jvs("verify", new["snapshot_id"], cwd=main).returncode == 0
    stored = payload_tree(repo, new["snapshot_id"])
    assert stored["build/out.bin"] == b"BBBB"


def test_top_level_fifo_next_to_an_ignored_directory(engine_repo):
    """With an ignored top-level entry, juicefs-clone clones entry by entry: a FIFO at
    the top is still skipped and reported, never cloned or opened."""
    root, engine = engine_repo
    main = root / "main"
    (main / ".jvsignore").write_text("Library/\n")
    write(main, {"Library/cache": b"c", "Assets/a": b"a"})
    os.mkfifo(main / "pipe")
    out = snap(main, "with a fifo")
    assert "special-file:pipe" in out["degraded"]
    assert out["ignored"] == ["Library"]
    assert set(payload_tree(root, out["snapshot_id"])) == {".jvsignore", "Assets", "Assets/a"}
