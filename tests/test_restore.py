"""Restore (SPEC §6): in place, by every kind of reference, detached state, rescue of
unsaved work, --discard-unsaved, partial overlays, and a SIGKILL at every step."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from conftest import drawn_repos, run_jvs, start_paused_jvs
from conftest import take_snapshot as snap

STEPS = ["after_intent", "after_stage", "after_move_to_rescue", "after_rescue", "during_swap",
         "after_swap", "after_worktree_update", "after_audit"]


def tree(root):
    """{relpath: content, or 'dir', or '-> target'} of a directory, recursively."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = "dir"
            else:
                with open(path, "rb") as f:
                    out[rel] = f.read()
    return out


def write(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def state(main):
    return run_jvs("status", "--json", cwd=main).json


def all_snapshots(main):
    return run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]


V1 = {"a.txt": b"v1 a\n", "b.txt": b"v1 b\n", "d/c.txt": b"v1 c\n", "e/f/g.bin": b"\0" * 100}
V2 = {"a.txt": b"v2 a\n", "b.txt": b"v2 b\n", "d/c.txt": b"v2 c\n", "e/f/g.bin": b"\1" * 50,
      "z.txt": b"v2 only\n"}


@pytest.fixture
def two(repo):
    """main with snapshots v1 (tag v1) and v2 (tag v2, head, latest)."""
    main = repo / "main"
    write(main, V1)
    v1 = snap(main, "version one", "v1")
    (main / "z.txt").write_text("")
    write(main, V2)
    v2 = snap(main, "version two", "v2")
    return main, v1, v2


def make_dirty(main):
    """Modify, add, delete (a file and a whole dir), and change a mode."""
    (main / "a.txt").write_bytes(b"unsaved edit\n")
    (main / "new.txt").write_bytes(b"brand new\n")
    (main / "b.txt").unlink()
    os.unlink(main / "d" / "c.txt")
    os.rmdir(main / "d")
    os.chmod(main / "z.txt", 0o600)
    return tree(main)


def test_restore_by_every_reference_kind(two):
    main, v1, v2 = two
    by = {
        "id": v1, "short": v1.rpartition("-")[2], "tag": "v1", "note": "version one",
        "note-prefix": "version o", "head~1": "HEAD~1",
    }
    for kind, ref in by.items():
        run_jvs("restore", "HEAD", cwd=main)
        assert {k: v for k, v in tree(main).items() if v != "dir"} == V2, kind
        out = run_jvs("restore", ref, cwd=main).stdout
        assert f"Restored to snapshot {v1}" in out, kind
        assert {k: v for k, v in tree(main).items() if v != "dir"} == V1, kind
    out = run_jvs("restore", "--latest-tag", "v2", cwd=main).stdout
    assert f"Restored to snapshot {v2}" in out and "HEAD state" in out
    assert (main / "z.txt").read_bytes() == b"v2 only\n"


def test_detached_markers_lineage_and_restore_head(two):
    main, v1, v2 = two
    out = run_jvs("restore", "v1", cwd=main).stdout
    assert "DETACHED" in out
    hist = run_jvs("history", "--json", cwd=main).json
    assert hist["detached"] and hist["head_snapshot_id"] == v1
    assert hist["latest_snapshot_id"] == v2
    assert "DETACHED" in run_jvs("history", cwd=main).stdout
    assert "DETACHED" in run_jvs("status", cwd=main).stdout
    # restore while detached, to another old state, then back with HEAD
    run_jvs("restore", v2, cwd=main)
    run_jvs("restore", "v1", cwd=main)
    out = run_jvs("restore", "HEAD", cwd=main).stdout
    assert f"Restored to snapshot {v2}" in out and "HEAD state" in out
    assert not state(main)["detached"]

    # snapshot after restore: parent is the restored snapshot, it becomes head and latest
    run_jvs("restore", "v1", cwd=main)
    (main / "a.txt").write_text("fixed\n")
    res = run_jvs("snapshot", "fix on v1", "--json", cwd=main)
    assert "DETACHED" in res.stderr
    new = res.json
    assert new["parent_id"] == v1
    st = state(main)
    assert st["head_snapshot_id"] == st["latest_snapshot_id"] == new["snapshot_id"]
    assert v2 in [s["snapshot_id"] for s in all_snapshots(main)]


def test_shell_inside_worktree_sees_restored_content(two):
    main, v1, v2 = two
    ino = os.stat(main).st_ino
    reader = subprocess.Popen(
        [sys.executable, "-c",
         "import os,sys; sys.stdin.readline(); "
         "print(os.stat('.').st_ino); print(open('a.txt').read(), end='')"],
        cwd=main, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    run_jvs("restore", "v1", cwd=main)
    out, _ = reader.communicate("go\n", timeout=30)
    reader_ino, content = out.split("\n", 1)
    assert int(reader_ino) == ino == os.stat(main).st_ino
    assert content == "v1 a\n"


def test_unsaved_work_is_rescued_and_restorable(two):
    main, v1, v2 = two
    dirty = make_dirty(main)
    res = run_jvs("restore", "v1", "--json", cwd=main).json
    rescue = res["rescue_id"]
    assert rescue and res["unsaved_changes"] >= 4
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1
    listed = {s["snapshot_id"]: s for s in all_snapshots(main)}
    assert listed[rescue]["kind"] == "rescue" and listed[rescue]["parent_id"] == v2
    # rescues do not move the worktree's latest
    assert state(main)["latest_snapshot_id"] == v2
    out = run_jvs("restore", rescue, cwd=main).stdout
    assert f"Restored to snapshot {rescue}" in out
    assert tree(main) == dirty
    assert oct(os.stat(main / "z.txt").st_mode & 0o777) == oct(0o600)
    ver = run_jvs("verify", rescue, check=False, cwd=main)
    if "No such command" not in ver.stderr:  # verify is built in parallel
        assert ver.returncode == 0, ver.stdout + ver.stderr


def test_human_output_says_how_to_get_rescue_back(two):
    main, v1, v2 = two
    (main / "a.txt").write_text("oops\n")
    out = run_jvs("restore", "v1", cwd=main).stdout
    assert "rescue snapshot" in out and "jvs restore " in out


def test_discard_unsaved_really_discards(two):
    main, v1, v2 = two
    make_dirty(main)
    before = len(all_snapshots(main))
    res = run_jvs("restore", "v1", "--discard-unsaved", "--json", cwd=main)
    assert res.json["rescue_id"] is None and res.json["discarded_unsaved"]
    assert "discarded" in res.stderr
    assert len(all_snapshots(main)) == before
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1
    assert not (main.parent / ".jvs" / "restore" / "main").exists()
    # the replaced content was deleted before the command returned
    leftovers = [p for p in (main.parent / ".jvs").rglob("*") if p.is_file()
                 and p.read_bytes() in (b"unsaved edit\n", b"brand new\n")]
    assert leftovers == []


def test_worktree_without_snapshot_counts_as_dirty(repo):
    main = repo / "main"
    run_jvs("worktree", "create", "empty", cwd=main)
    write(main, V1)
    v1 = snap(main, "v1", "v1")
    wt = repo / "worktrees" / "empty"
    (wt / "scratch.txt").write_text("not saved anywhere\n")
    res = run_jvs("restore", v1, "--json", cwd=wt).json
    assert res["rescue_id"] and not (wt / "scratch.txt").exists()
    run_jvs("restore", res["rescue_id"], cwd=wt)
    assert (wt / "scratch.txt").read_text() == "not saved anywhere\n"


def test_restore_same_clean_head_moves_nothing(two):
    main, v1, v2 = two
    ino = os.stat(main / "a.txt").st_ino
    res = run_jvs("restore", "v2", "--json", cwd=main).json
    assert res["unchanged"] and os.stat(main / "a.txt").st_ino == ino


def test_interactive_pick_from_stdin(two):
    main, v1, v2 = two
    res = run_jvs("restore", "-i", "version", cwd=main, input="2\n")
    assert f"Restored to snapshot {v1}" in res.stdout  # newest first: 1) v2, 2) v1
    assert "version two" in res.stderr and "version one" in res.stderr
    bad = run_jvs("restore", "-i", cwd=main, input="9\n", check=False)
    assert bad.returncode != 0


def test_partial_snapshot_restores_by_overlay(two):
    main, v1, v2 = two
    part = run_jvs("snapshot", "just d", "--paths", "d", "--json", cwd=main).json["snapshot_id"]
    (main / "d" / "c.txt").write_text("changed d\n")
    (main / "a.txt").write_text("changed a\n")
    res = run_jvs("restore", part, "--json", cwd=main).json
    assert res["partial_paths"] == ["d"]
    assert (main / "d" / "c.txt").read_bytes() == V2["d/c.txt"]
    assert (main / "a.txt").read_text() == "changed a\n"  # outside the overlay: untouched
    rescue = res["rescue_id"]
    assert rescue
    run_jvs("restore", rescue, cwd=main)
    assert (main / "d" / "c.txt").read_text() == "changed d\n"


def test_tampered_descriptor_is_refused_before_touching_worktree(two):
    main, v1, v2 = two
    path = main.parent / ".jvs" / "descriptors" / f"{v1}.json"
    path.write_text(path.read_text().replace("version one", "version 1"))
    before = tree(main)
    res = run_jvs("restore", v1, cwd=main, check=False)
    assert res.returncode == 1 and "E_DESCRIPTOR_CORRUPT" in res.stderr
    assert tree(main) == before


def test_agent_loop_from_the_seeds(repo):
    main = repo / "main"
    write(main, {"agent.py": b"print('agent')\n", "lib/util.py": b"X = 1\n"})
    env = snap(main, "Initial agent environment", "agent-env")
    for run in range(1, 4):
        out = run_jvs("restore", "agent-env", cwd=main).stdout
        assert f"Restored to snapshot {env}" in out
        assert not (main / "output").exists()
        (main / "output").mkdir()
        (main / "output" / "result.txt").write_text(f"score {run}\n")
        result = (main / "output" / "result.txt").read_text().strip()
        run_jvs("snapshot", f"Agent run {run}: {result}", "--tag", f"run-{run}", "--tag",
                "agent", cwd=main)
        hist = run_jvs("history", "--tag", f"run-{run}", "--format", "json", cwd=main).json
        assert len(hist["snapshots"]) == 1
        assert hist["snapshots"][0]["parent_id"] == env
    assert not any(s["kind"] == "rescue" for s in all_snapshots(main))


def _restore_intents(repo):
    return list((repo / ".jvs" / "intents").glob("restore-*.json"))


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_every_step_never_loses_or_mixes(two, step):
    main, v1, v2 = two
    repo = main.parent
    dirty = make_dirty(main)
    res = run_jvs("restore", "v1", cwd=main, check=False,
                  env={"JVS_CRASH_AT": f"restore:{step}"})
    assert res.returncode == -9, res.stdout + res.stderr
    assert os.path.isdir(main)

    # At the crash: every entry is the unsaved one or the target's, nothing else (an
    # entry moved into the rescue is missing until the restore is finished).
    now = tree(main)
    target = {**V1, "d": "dir", "e": "dir", "e/f": "dir"}
    assert all(dirty.get(k) == v or target.get(k) == v for k, v in now.items()), now
    if STEPS.index(step) < STEPS.index("after_move_to_rescue"):
        assert now == dirty  # untouched before the first move
    if STEPS.index(step) >= STEPS.index("after_swap"):
        assert {k: v for k, v in now.items() if v != "dir"} == V1

    # status says so; until it is finished, no other command acts on the worktree.
    interrupted = state(main)["interrupted_restore"]
    assert interrupted["target_id"] == v1
    # Until it is finished, no other command acts on the half-restored worktree.
    if STEPS.index(step) >= STEPS.index("after_move_to_rescue") \
            and STEPS.index(step) < STEPS.index("after_audit"):
        refused = run_jvs("snapshot", "in between", cwd=main, check=False)
        assert refused.returncode != 0 and "E_UNSAVED" in refused.stderr

    # The next restore finishes the interrupted one (or forgets one that had not touched
    # the worktree), then does its own work.
    out = run_jvs("restore", "v1", cwd=main)
    if STEPS.index(step) < STEPS.index("after_move_to_rescue"):
        assert "forgot a restore" in out.stderr
    else:
        assert "finished an interrupted restore" in out.stderr
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1
    assert not _restore_intents(repo)
    assert not (repo / ".jvs" / "restore" / "main").exists()

    # Exactly one rescue holds every unsaved change.
    rescues = [s for s in all_snapshots(main) if s["kind"] == "rescue"]
    assert len(rescues) == 1, rescues
    run_jvs("restore", rescues[0]["snapshot_id"], cwd=main)
    assert tree(main) == dirty


@pytest.mark.parametrize("step", ["after_move_to_rescue", "after_rescue", "during_swap"])
def test_finish_restore_rolls_forward(two, step):
    """What 'jvs doctor --repair finish_restore' calls: the library entry point."""
    from jvs.intents import list_intents
    from jvs.lock import repo_lock
    from jvs.repo import Repo
    from jvs.restore import finish_restore

    main, v1, v2 = two
    dirty = make_dirty(main)
    res = run_jvs("restore", "v1", cwd=main, check=False,
                  env={"JVS_CRASH_AT": f"restore:{step}"})
    assert res.returncode == -9
    r = Repo(main.parent)
    (intent,) = [i for i in list_intents(r) if i.operation == "restore"]
    with repo_lock(r, "doctor"):
        result = finish_restore(r, intent)
    assert result.target.snapshot_id == v1
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1
    assert state(main)["head_snapshot_id"] == v1
    run_jvs("restore", result.rescue.snapshot_id, cwd=main)
    assert tree(main) == dirty


def test_restore_and_fork_on_every_engine(engine_repo):
    """The core round trip on the copy engine, XFS reflinks and JuiceFS clones: restore
    in place (same inode), rescue by moving, fork cloned with the engine."""
    root, engine = engine_repo
    main = root / "main"
    write(main, V1)
    res = run_jvs("snapshot", "version one", "--tag", "v1", "--json", cwd=main).json
    assert res["engine"] == engine
    write(main, V2)
    snap(main, "version two", "v2")
    ino = os.stat(main).st_ino
    dirty = make_dirty(main)
    out = run_jvs("restore", "v1", "--json", cwd=main).json
    assert os.stat(main).st_ino == ino
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1
    run_jvs("fork", "v2", "side", cwd=main)
    side = root / "worktrees" / "side"
    assert {k: v for k, v in tree(side).items() if v != "dir"} == V2
    run_jvs("restore", out["rescue_id"], cwd=main)
    assert tree(main) == dirty


def test_a_restore_where_most_entries_differ_on_every_engine(engine_repo):
    """200 files, every one different between the snapshots, some in read-only
    directories: on JuiceFS this takes the one-clone-of-the-whole-target path
    (restore.WHOLE_TREE_SHARE), elsewhere a clone per entry. Either way the worktree ends
    exactly as the snapshot, and the next snapshot reads nothing."""
    root, engine = engine_repo
    main = root / "main"
    one = {f"d{i % 4}/f{i:03d}": f"one {i}\n".encode() for i in range(200)}
    two = {f"d{i % 4}/f{i:03d}": f"two {i}\n".encode() for i in range(200)}
    write(main, one)
    os.chmod(main / "d0", 0o555)
    v1 = snap(main, "one")
    os.chmod(main / "d0", 0o755)
    write(main, two)
    snap(main, "two")
    run_jvs("restore", v1, cwd=main)
    assert {k: v for k, v in tree(main).items() if v != "dir"} == one
    assert stat.S_IMODE(os.lstat(main / "d0").st_mode) == 0o555
    assert run_jvs("status", "--json", cwd=main).json["clean"]
    again = run_jvs("snapshot", "same", "--json", cwd=main).json
    assert again["stats"]["files_hashed"] == 0, again["stats"]


def test_failed_staging_leaves_worktree_and_no_pending_restore(two):
    main, v1, v2 = two
    dirty = make_dirty(main)
    res = run_jvs("restore", "v1", cwd=main, check=False,
                  env={"JVS_SNAPSHOT_ENGINE": "reflink-copy"})
    if res.returncode == 0:
        pytest.skip("this filesystem supports reflinks: no engine failure to provoke")
    assert "E_ENGINE" in res.stderr
    assert tree(main) == dirty
    assert not _restore_intents(main.parent)
    out = run_jvs("restore", "v1", cwd=main)
    assert "interrupted" not in out.stderr
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1


def test_seed_ml_and_deterministic_workflows(tmp_path):
    run_jvs("init", "ml-experiments", cwd=tmp_path)
    main = tmp_path / "ml-experiments" / "main"
    write(main, {"dataset/train.csv": b"a,b\n1,2\n", "train.py": b"resnet\n"})
    run_jvs("snapshot", "Initial setup with dataset", "--tag", "baseline", cwd=main)
    (main / "train.py").write_text("resnet50\n")
    exp1 = snap(main, "Exp1: ResNet50 architecture", "exp1", "model")
    (main / "checkpoints").mkdir()
    (main / "checkpoints" / "epoch10.pt").write_text("garbage\n")
    (main / "dataset" / "train.csv").write_text("corrupted\n")
    out = run_jvs("restore", "exp1", cwd=main).stdout
    assert f"Restored to snapshot {exp1}" in out and "rescue snapshot" in out
    assert not (main / "checkpoints").exists()
    assert (main / "dataset" / "train.csv").read_text() == "a,b\n1,2\n"
    (main / "train.py").write_text("resnet50 fixed\n")
    snap(main, "Exp1: ResNet50 with fix", "exp1", "model")
    snap(main, "v1.0 candidate", "stable", "v1.0")
    (main / "train.py").write_text("lr 0.001\n")
    snap(main, "Exp2: LR 0.001", "exp2", "hyperparam")
    out = run_jvs("restore", "--latest-tag", "stable", cwd=main).stdout
    assert "Restored to snapshot" in out and "DETACHED" in out
    assert (main / "train.py").read_text() == "resnet50 fixed\n"

    out = run_jvs("worktree", "fork", "investigation", cwd=main).stdout
    assert "Created worktree" in out
    inv = main / ".." / "worktrees" / "investigation"
    assert (inv / "train.py").read_text() == "resnet50 fixed\n"

    # deterministic experiments
    run_jvs("restore", "baseline", cwd=main)
    (main / "results.txt").write_text("seed 42 -> 0.93\n")
    seed = snap(main, "Experiment with seed 42", "deterministic")
    run_jvs("restore", "exp2", cwd=main)
    assert not (main / "results.txt").exists()
    out = run_jvs("restore", "Experiment with seed 42", cwd=main).stdout
    assert f"Restored to snapshot {seed}" in out
    assert (main / "results.txt").read_text() == "seed 42 -> 0.93\n"


def test_seed_multi_environment_promotion(tmp_path):
    run_jvs("init", "platform-envs", cwd=tmp_path)
    main = tmp_path / "platform-envs" / "main"
    write(main, {"config/database.yaml": b"dev\n"})
    run_jvs("snapshot", "Development environment v1", "--tag", "dev", "--tag", "v1.0", cwd=main)
    run_jvs("worktree", "fork", "staging", cwd=main)
    staging = main / ".." / "worktrees" / "staging"
    (staging / "config" / "database.yaml").write_text("staging\n")
    run_jvs("snapshot", "Staging environment v1", "--tag", "staging", "--tag", "v1.0",
            cwd=staging)
    run_jvs("worktree", "fork", "production", cwd=staging)
    prod = staging / ".." / "production"
    (prod / "config" / "database.yaml").write_text("production\n")
    run_jvs("snapshot", "Production environment v1", "--tag", "production", "--tag", "v1.0",
            "--tag", "stable", cwd=prod)
    run_jvs("restore", "staging", cwd=staging)
    (staging / "config" / "database.yaml").write_text("staging v1.1\n")
    run_jvs("snapshot", "Staging v1.1: Database update", "--tag", "staging", cwd=staging)
    run_jvs("restore", "stable", cwd=prod)
    subprocess.run("cp -r ../staging/* .", shell=True, cwd=prod, check=True)
    run_jvs("snapshot", "Production v1.1: Database update", "--tag", "production", "--tag",
            "stable", cwd=prod)
    out = run_jvs("restore", "--latest-tag", "stable", cwd=prod).stdout
    assert "Restored to snapshot" in out
    assert (prod / "config" / "database.yaml").read_text() == "staging v1.1\n"
    run_jvs("worktree", "fork", "investigation", cwd=prod)
    inv = prod / ".." / "investigation"
    run_jvs("restore", "production", cwd=inv)
    assert (inv / "config" / "database.yaml").read_text() == "staging v1.1\n"


def test_second_writer_during_restore_gets_busy(two):
    """A restore holds the repository lock for its whole protocol."""
    main, v1, v2 = two
    env = {**os.environ, "NO_COLOR": "1", "JVS_TEST_PAUSE_AT": "restore:after_stage",
           "JVS_TEST_PAUSE_S": "30"}
    slow = subprocess.Popen([sys.executable, "-m", "jvs", "restore", "v1"], cwd=main, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(20):  # progress lines may come first on a loaded machine
            line = slow.stderr.readline()
            if "paused at restore:after_stage" in line or not line:
                break
        assert "paused at restore:after_stage" in line
        res = run_jvs("restore", "v2", cwd=main, check=False, env={"JVS_LOCK_TIMEOUT": "0.3"})
        assert res.returncode == 1 and "E_BUSY" in res.stderr
    finally:
        slow.kill()
        slow.wait()
    # the paused restore never touched the worktree; the next one finishes or redoes it
    run_jvs("restore", "v1", cwd=main)
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1


def test_a_shell_in_a_subdirectory_stays_valid(two):
    """A directory the restore only changes inside keeps its inode: a shell in it sees
    the restored files with no 'cd'. One the restore removes is said to be gone."""
    main, v1, v2 = two
    res = run_jvs("restore", "v1", cwd=main / "d")
    assert "directory you are in" not in res.stderr
    assert (main / "d" / "c.txt").read_bytes() == V1["d/c.txt"]
    run_jvs("restore", "v2", cwd=main)
    (main / "only3").mkdir()
    (main / "only3" / "x").write_text("x")
    snap(main, "three")
    res = run_jvs("restore", "v1", cwd=main / "only3")
    assert "is not in the restored snapshot" in res.stderr
    assert not (main / "only3").exists()


def test_restore_that_lost_the_lock_touches_nothing(repo):
    """A host whose JuiceFS session expired lost the lock to another host: the holder
    record names someone else. Restore must stop before moving anything."""

    main = repo / "main"
    (main / "a.txt").write_text("one")
    first = run_jvs("snapshot", "one", "--json", cwd=main).json["snapshot_id"]
    (main / "a.txt").write_text("two")
    run_jvs("snapshot", "two", cwd=main)
    proc = start_paused_jvs("restore", first, cwd=main, step="restore:after_stage", seconds=2)
    (repo / ".jvs" / "locks" / "repo.lock").write_text(
        '{"pid": 1, "host": "other-host", "since": "now", "operation": "snapshot"}\n')
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "E_BUSY" in err and "lost the repository lock" in err and "other-host" in err
    assert (main / "a.txt").read_text() == "two"


def test_restored_files_are_not_read_again_by_the_next_snapshot(two):
    """The stat cache stays exact across a restore: what it did not touch keeps its
    records, what it wrote is recorded with the target's hashes. The next snapshot reads
    only the file written after the restore."""
    main, v1, v2 = two
    run_jvs("restore", "v1", cwd=main)
    (main / "new.txt").write_text("new\n")
    out = run_jvs("snapshot", "after restore", "--json", cwd=main).json
    assert out["stats"]["files_hashed"] == 1, out["stats"]
    assert out["stats"]["bytes_hashed"] == len("new\n"), out["stats"]
    assert run_jvs("verify", "--all", cwd=main).returncode == 0


def test_unchanged_entries_are_not_touched(two):
    """Restore replaces only what differs: an unchanged file keeps its inode and ctime,
    an unchanged directory its inode (so a shell in it stays there)."""
    main, v1, v2 = two
    (main / "same").mkdir()
    (main / "same" / "keep.txt").write_text("same in both\n")
    snap(main, "three", "v3")
    run_jvs("restore", "v2", cwd=main)
    (main / "same").mkdir()
    (main / "same" / "keep.txt").write_text("same in both\n")
    (main / "a.txt").write_text("v4 a\n")
    snap(main, "four", "v4")
    before = {p: os.lstat(main / p) for p in ("same", "same/keep.txt", "e", "e/f")}
    res = run_jvs("restore", "v3", "--json", cwd=main).json
    after = {p: os.lstat(main / p) for p in before}
    for p in before:
        assert after[p].st_ino == before[p].st_ino, p
    assert after["same/keep.txt"].st_ctime_ns == before["same/keep.txt"].st_ctime_ns
    assert res["changed_entries"] == 1  # a.txt
    assert (main / "a.txt").read_bytes() == V2["a.txt"]
    assert run_jvs("status", "--json", cwd=main).json["clean"]


def test_work_after_a_crash_is_never_moved(two):
    """A restore killed half-way through its swap: the user then edits an entry the
    restore was about to replace. Finishing it refuses (E_UNSAVED) and moves nothing;
    once the edit is out of the way, it finishes."""
    import json

    main, v1, v2 = two
    repo = main.parent
    res = run_jvs("restore", "v1", cwd=main, check=False,
                  env={"JVS_CRASH_AT": "restore:during_swap"})
    assert res.returncode == -9
    (intent,) = _restore_intents(repo)
    steps = json.loads(intent.read_text())["record"]["steps"]
    waiting = steps[1][1]  # step 0 is done when the crash point fires
    (main / waiting).write_text("typed after the crash\n")
    for attempt in (["restore", "v1"], ["doctor", "--repair", "finish_restore"]):
        refused = run_jvs(*attempt, cwd=main, check=False)
        assert refused.returncode != 0 and "E_UNSAVED" in refused.stderr, refused.stderr
        assert (main / waiting).read_text() == "typed after the crash\n"
    (main / waiting).rename(repo / "kept-aside")
    run_jvs("restore", "v1", cwd=main)
    assert {k: v for k, v in tree(main).items() if v != "dir"} == V1
    assert (repo / "kept-aside").read_text() == "typed after the crash\n"



def test_a_file_added_after_a_crash_to_a_directory_being_removed_is_kept(repo, tmp_path):
    """Killed mid-swap, a restore still has to remove directory zdir (not in the target).
    A file the user then puts into zdir must not go with it: the roll-forward refuses.
    The check is by content and times, not inodes: the same crashed repository copied
    with cp -a finishes normally."""
    main = repo / "main"
    write(main, {"a.txt": b"one\n"})
    v1 = snap(main, "one")
    write(main, {"a.txt": b"two\n", "zdir/x": b"x\n"})
    snap(main, "two")
    res = run_jvs("restore", v1, cwd=main, check=False,
                  env={"JVS_CRASH_AT": "restore:during_swap"})
    assert res.returncode == -9
    assert (main / "zdir" / "x").exists()
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(repo), str(copy)], check=True)

    (main / "zdir" / "new.txt").write_text("written after the crash\n")
    refused = run_jvs("restore", v1, cwd=main, check=False)
    assert refused.returncode == 1 and "E_UNSAVED" in refused.stderr and "zdir" in \
        refused.stderr
    assert (main / "zdir" / "new.txt").read_text() == "written after the crash\n"

    run_jvs("restore", v1, cwd=copy / "main")
    assert tree(copy / "main") == {"a.txt": b"one\n"}


def test_files_written_while_a_restore_stages_are_kept(repo):
    """A program keeps writing while the restore stages its target (after the worktree
    was read): into a directory the restore removes, at a path it adds, over a file it
    replaces, and somewhere it does not touch. None of it is deleted: what is in the
    restore's way is kept in jvs-restore-conflicts/ and listed, the rest stays put."""
    main = repo / "main"
    write(main, {"a.txt": b"one\n", "b.txt": b"one b\n", "keep/k.txt": b"k\n"})
    v1 = snap(main, "one")
    os.unlink(main / "b.txt")
    write(main, {"a.txt": b"two\n", "zdir/x": b"x\n"})
    snap(main, "two")
    proc = start_paused_jvs("restore", v1, "--json", cwd=main, step="restore:after_stage",
                            seconds=1.5)
    write(main, {"zdir/late.txt": b"late in zdir\n", "b.txt": b"late b\n",
                 "keep/late.txt": b"late elsewhere\n"})
    (main / "a.txt").write_bytes(b"late edit of a\n")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    import json

    conflicts = json.loads(out)["conflicts"]
    assert sorted(conflicts) == ["a.txt", "b.txt", "zdir/late.txt"], conflicts
    kept = main / "jvs-restore-conflicts"
    assert (kept / "zdir" / "late.txt").read_bytes() == b"late in zdir\n"
    assert (kept / "b.txt").read_bytes() == b"late b\n"
    assert (kept / "a.txt").read_bytes() == b"late edit of a\n"
    assert (main / "keep" / "late.txt").read_bytes() == b"late elsewhere\n"
    assert (main / "a.txt").read_bytes() == b"one\n" and (main / "b.txt").read_bytes() == \
        b"one b\n"


# ------------------------------------------------------- planning on what differs only

_NAMES = ("a", "b", "a.b", "a b")


def _trees():
    from hypothesis import strategies as st

    from jvs.integrity import Entry

    paths = st.lists(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3)
                     .map("/".join), max_size=12)

    def tree(draw_paths, kinds, hashes, modes) -> dict:
        out: dict = {}
        for n, rel in enumerate(sorted(draw_paths, key=lambda p: p.count("/"))):
            parts = rel.split("/")
            if any(out.get("/".join(parts[:i])) is not None
                   and out["/".join(parts[:i])].kind != "dir" for i in range(1, len(parts))):
                continue  # a file cannot have children
            for i in range(1, len(parts)):
                out.setdefault("/".join(parts[:i]),
                               Entry("dir", "/".join(parts[:i]), 0o755, 0, "d" * 32))
            if rel not in out:
                kind = kinds[n % len(kinds)]
                size = 0 if kind != "file" else 1 + n % 2
                out[rel] = Entry(kind, rel, modes[n % len(modes)], size,
                                 hashes[n % len(hashes)])
        return out

    return st.builds(tree, paths, st.lists(st.sampled_from(("file", "dir", "symlink")),
                                           min_size=1, max_size=4),
                     st.lists(st.sampled_from(("1" * 32, "2" * 32)), min_size=1, max_size=3),
                     st.lists(st.sampled_from((0o644, 0o755, 0o600)), min_size=1, max_size=3))


def test_planning_on_the_differing_entries_gives_the_steps_of_planning_on_all():
    """restore.differing_parts cuts both trees down to the entries not recorded alike
    (and the directories above them): the plan must be the one every entry gives, for
    any two trees, with or without restored paths."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from jvs.integrity import manifest_bytes
    from jvs.plan import plan
    from jvs.restore import differing_parts
    from jvs.unsaved import WorktreeState, under

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(old=_trees(), new=_trees(), unit=st.sampled_from(("", "a", "a/b", "b")))
    def check(old, new, unit):
        units = (unit,) if unit and unit in old else ()
        old = {r: e for r, e in old.items() if not units or under(r, units)}
        state = WorktreeState(old, {})
        ours, wanted = differing_parts(state, manifest_bytes(list(new.values())), None, units)
        full_new = {r: e for r, e in new.items() if not units or under(r, units)}
        assert plan(ours, wanted, units=units) == plan(old, full_new, units=units)
        assert (not units) or (units[0] in wanted) == (units[0] in full_new)

    check()


_DISK_NAMES = ("a", "a.b", "a-b", "a:b", "b")


def _materialise(root, data) -> None:
    """Random files, directories and symlinks under *root*, two levels deep, with names
    whose walk order and manifest order differ."""
    from hypothesis import strategies as st

    for name in data.draw(st.lists(st.sampled_from(_DISK_NAMES), unique=True, max_size=5)):
        kind = data.draw(st.sampled_from(["file", "dir", "symlink"]))
        path = root / name
        if kind == "file":
            path.write_text(data.draw(st.sampled_from(["x", "y", "zz"])))
            path.chmod(data.draw(st.sampled_from([0o644, 0o755])))
        elif kind == "symlink":
            path.symlink_to(data.draw(st.sampled_from(["a", "elsewhere"])))
        else:
            path.mkdir()
            for inner in data.draw(st.lists(st.sampled_from(_DISK_NAMES), unique=True,
                                            max_size=3)):
                (path / inner).write_text(inner)


def _clear(root) -> None:
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def test_a_restore_read_in_one_pass_gives_the_snapshot_exactly(tmp_path_factory, monkeypatch):
    """A restore with no unsaved work to rescue (a clean worktree, or unsaved work
    discarded) reads the worktree in one pass against the target's and the head's
    manifests and keeps only what differs (``unsaved.read_thin``): for any two trees the
    worktree then holds the target exactly, and the stat cache it leaves answers the next
    status with nothing to hash. With unsaved work kept, the whole read and its rescue."""
    from hypothesis import given
    from hypothesis import strategies as st

    import jvs.restore as restore_module

    thin_reads: list[bool] = []
    real = restore_module.read_thin

    def counted(*args, **kwargs):
        found = real(*args, **kwargs)
        thin_reads.append(found is not None)
        return found

    monkeypatch.setattr(restore_module, "read_thin", counted)

    chosen, fresh = drawn_repos(tmp_path_factory, 25)

    @chosen
    @given(data=st.data())
    def check(data):
        repo, main = fresh()
        _materialise(main, data)
        a = repo.snapshot("a").descriptor.snapshot_id
        _clear(main)
        _materialise(main, data)
        time.sleep(0.15)  # past the racy window: the snapshot caches every file
        b = repo.snapshot("b").descriptor.snapshot_id
        payload_a = tree(repo.repo.payload_dir(a))
        payload_b = tree(repo.repo.payload_dir(b))

        del thin_reads[:]
        repo.restore(a)
        assert tree(main) == payload_a
        assert thin_reads == [True]
        status = repo.status()
        assert status.changes.clean and status.stats.files_hashed == 0

        (main / "unsaved.txt").write_text("unsaved")
        repo.restore(b, discard_unsaved=True)
        assert tree(main) == payload_b
        assert thin_reads == [True, True]

        (main / "unsaved.txt").write_text("unsaved")
        kept = repo.restore(a)
        assert tree(main) == payload_a
        assert thin_reads == [True, True, False]  # a rescue: the whole read
        assert tree(repo.repo.payload_dir(kept.rescue.snapshot_id))["unsaved.txt"] == \
            b"unsaved"

    check()
