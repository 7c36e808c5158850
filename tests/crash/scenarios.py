"""The protocols the crash harness kills, each as a repository state and a command.

Trees are small on purpose (a dozen entries, nested, with modes and a symlink): every kill
point of a protocol is reached by a few files already, and the sweep runs each protocol
once per system call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sweep import Runner, Scenario, tree_state


def write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        os.chmod(path, mode)


def jvs_ok(runner: Runner, *args: str, cwd: Path, env: dict | None = None) -> str:
    run = runner.run(*args, cwd=cwd, env=env)
    if run.status != 0:
        raise AssertionError(f"prepare: jvs {' '.join(args)} failed ({run.status}): "
                             f"{run.stderr}")
    return run.stdout


def base_tree(wt: Path) -> None:
    write(wt / "README.md", "hello\n")
    write(wt / "data" / "raw" / "train.csv", "a,b\n1,2\n")
    write(wt / "data" / "raw" / "test.csv", "a,b\n3,4\n")
    write(wt / "data" / "notes.txt", "notes\n")
    write(wt / "src" / "run.sh", "#!/bin/sh\necho hi\n", 0o755)
    write(wt / "src" / "lib" / "util.py", "X = 1\n")
    (wt / "empty").mkdir()
    os.symlink("data/raw/train.csv", wt / "latest.csv")
    write(wt / "secret.txt", "s\n", 0o600)


def change_tree(wt: Path) -> None:
    """A second state: an edit, a new file in a new dir, a deletion, a mode change."""
    write(wt / "data" / "raw" / "train.csv", "a,b\n1,2\n5,6\n")
    write(wt / "models" / "m1" / "weights.bin", "w" * 3000)
    (wt / "data" / "notes.txt").unlink()
    os.chmod(wt / "src" / "run.sh", 0o700)


def unsaved_edits(wt: Path) -> None:
    """Work nobody saved: an edit deep down, a new file in a new dir, a deletion."""
    write(wt / "src" / "lib" / "util.py", "X = 2  # unsaved\n")
    write(wt / "scratch" / "deep" / "new.txt", "unsaved new file\n")
    (wt / "README.md").unlink()


def repo_v1_v2(runner: Runner, base: Path) -> Path:
    jvs_ok(runner, "init", "repo", cwd=base)
    wt = base / "repo" / "main"
    base_tree(wt)
    jvs_ok(runner, "snapshot", "v1", "--tag", "v1", cwd=wt)
    change_tree(wt)
    jvs_ok(runner, "snapshot", "v2", "--tag", "v2", cwd=wt)
    return wt


def prepare_snapshot(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    unsaved_edits(wt)


def prepare_first_snapshot(runner: Runner, base: Path) -> None:
    jvs_ok(runner, "init", "repo", cwd=base)
    base_tree(base / "repo" / "main")


def prepare_restore_unsaved(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    unsaved_edits(wt)


def prepare_restore_clean(runner: Runner, base: Path) -> None:
    repo_v1_v2(runner, base)


def prepare_partial(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    jvs_ok(runner, "snapshot", "data only", "--tag", "part", "--paths", "data", cwd=wt)
    write(wt / "data" / "raw" / "train.csv", "changed after the partial\n")
    write(wt / "data" / "extra.txt", "unsaved, under the partial's path\n")
    write(wt / "src" / "lib" / "util.py", "X = 3  # unsaved, outside the partial\n")


def prepare_fork(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    unsaved_edits(wt)  # a fork starts at HEAD state; main's unsaved work stays in main


def prepare_with_agent(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    jvs_ok(runner, "fork", "v1", "agent", cwd=wt)
    agent = base / "repo" / "worktrees" / "agent"
    write(agent / "result.txt", "agent result\n")
    jvs_ok(runner, "snapshot", "agent run", cwd=agent)


def prepare_agent_unsaved(runner: Runner, base: Path) -> None:
    prepare_with_agent(runner, base)
    unsaved_edits(base / "repo" / "worktrees" / "agent")


def prepare_crashed_restore(runner: Runner, base: Path) -> None:
    """A restore over unsaved work killed after it moved that work into the rescue's
    base: doctor's finish_restore has the rescue's publish and the swap left to do."""
    wt = repo_v1_v2(runner, base)
    unsaved_edits(wt)
    files = [(rel, e[2]) for rel, e in (tree_state(wt) or {}).items() if e[0] == "file"]
    (base / "before.json").write_text(json.dumps(files))
    run = runner.run("restore", "v1", cwd=wt, env={"JVS_CRASH_AT": "restore:after_move_to_rescue"})
    assert run.killed, run.stderr


def prepare_gc(runner: Runner, base: Path) -> None:
    """Six snapshots in main, the old ones due for collection a month later; the plan is
    made in the prepared state and its ID kept in vars.json."""
    jvs_ok(runner, "init", "repo", cwd=base)
    wt = base / "repo" / "main"
    base_tree(wt)
    for n in range(6):
        write(wt / "data" / f"day{n}.txt", f"day {n}\n")
        jvs_ok(runner, "snapshot", f"day {n}", cwd=wt)
    out = jvs_ok(runner, "gc", "plan", "--keep-last", "2", "--no-keep-tagged", "--json",
                 cwd=wt, env=GC_ENV)
    plan = json.loads(out)
    (base / "vars.json").write_text(json.dumps({"plan": plan["plan_id"]}))


GC_ENV = {"JVS_GC_NOW": "2100-01-01T00:00:00Z"}


def prepare_debris(runner: Runner, base: Path) -> None:
    """What doctor's clean_tmp removes: a gc run killed after it unpublished two snapshots
    (their payloads and manifests still there), a staging directory nobody's intent
    names, and an item a restore left in its trash."""
    prepare_gc(runner, base)
    plan = json.loads((base / "vars.json").read_text())["plan"]
    run = runner.run("gc", "run", "--plan-id", plan, cwd=base / "repo" / "main",
                     env={**GC_ENV, "JVS_CRASH_AT": "gc:after_phase1"})
    assert run.killed, run.stderr
    jvs_dir = base / "repo" / ".jvs"
    write(jvs_dir / "snapshots" / "1700000000000-0badcafe.tmp" / "half.txt", "half\n")
    item = jvs_dir / "restore" / "@trash" / "old-entry"
    write(item / "f.txt", "replaced by a restore\n")
    os.utime(item, (1_700_000_000, 1_700_000_000))


def prepare_head_behind(runner: Runner, base: Path) -> None:
    """A snapshot killed after its commit point, before it moved its worktree's head."""
    wt = repo_v1_v2(runner, base)
    write(wt / "v3.txt", "v3\n")
    crashed(runner, base, "snapshot:after_commit", "snapshot", "v3", cwd=wt)


def prepare_stale_index(runner: Runner, base: Path) -> None:
    """An index that lists a snapshot that is gone and misses one that is there."""
    wt = repo_v1_v2(runner, base)
    jvs_dir = base / "repo" / ".jvs"
    jvs_ok(runner, "history", cwd=wt)  # the index is built by the first listing
    saved = (jvs_dir / "index.sqlite").read_bytes()
    write(wt / "v3.txt", "v3\n")
    jvs_ok(runner, "snapshot", "v3", cwd=wt)
    (jvs_dir / "index.sqlite").write_bytes(saved)


def prepare_v1_v2(runner: Runner, base: Path) -> None:
    repo_v1_v2(runner, base)


def tamper_audit(runner: Runner, base: Path) -> None:
    """An audit log with an altered record and a torn last line (audit_repair re-chains)."""
    repo_v1_v2(runner, base)
    log = base / "repo" / ".jvs" / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines()
    record = json.loads(lines[0])
    record["note"] = "altered"
    lines[0] = json.dumps(record).encode()
    log.write_bytes(b"\n".join(lines) + b'\n{"torn')


def crashed(runner: Runner, base: Path, step: str, *args: str, cwd: Path) -> None:
    """Leave *base* as a crash at the named hook *step* of ``jvs args`` left it."""
    run = runner.run(*args, cwd=cwd, env={"JVS_CRASH_AT": step})
    assert run.killed, f"prepare: {args} was not killed at {step}: {run.stderr}"


def prepare_crashed_snapshot(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    unsaved_edits(wt)
    crashed(runner, base, "snapshot:after_publish_payload", "snapshot", "v3", cwd=wt)


def prepare_crashed_fork(runner: Runner, base: Path) -> None:
    wt = repo_v1_v2(runner, base)
    crashed(runner, base, "worktree:after_payload", "fork", "v1", "agent", cwd=wt)


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "go-jvs-repo.tar.gz"


def prepare_go(runner: Runner, base: Path) -> None:
    """The repository the Go implementation's own binary wrote, with unsaved work."""
    import subprocess

    subprocess.run(["tar", "xzf", str(FIXTURE), "-C", str(base)], check=True)
    (base / "project").rename(base / "repo")
    unsaved_edits_go(base / "repo" / "main")


def unsaved_edits_go(wt: Path) -> None:
    write(wt / "data" / "raw" / "train.csv", "a,b\nunsaved\n")
    write(wt / "scratch" / "new.txt", "unsaved new file\n")
    (wt / "run.sh").unlink()


def scenarios() -> list[Scenario]:
    return [
        Scenario("snapshot", prepare_snapshot, ("snapshot", "v3")),
        Scenario("first-snapshot", prepare_first_snapshot, ("snapshot", "first")),
        Scenario("restore-unsaved", prepare_restore_unsaved, ("restore", "v1")),
        Scenario("restore-clean", prepare_restore_clean, ("restore", "v1")),
        Scenario("restore-discard", prepare_restore_unsaved,
                 ("restore", "v1", "--discard-unsaved"), discards=True),
        Scenario("restore-partial", prepare_partial, ("restore", "part")),
        Scenario("fork", prepare_fork, ("fork", "v1", "agent"),
                 followup=("worktree", "list")),
        Scenario("worktree-create", prepare_snapshot, ("worktree", "create", "w2"),
                 followup=("worktree", "list")),
        Scenario("worktree-create-from", prepare_snapshot,
                 ("worktree", "create", "w3", "--from", "v2"), followup=("worktree", "list")),
        Scenario("worktree-rename", prepare_with_agent,
                 ("worktree", "rename", "agent", "agent2"), followup=("worktree", "list")),
        Scenario("worktree-remove", prepare_with_agent, ("worktree", "remove", "agent"),
                 followup=("worktree", "list")),
        Scenario("worktree-remove-force", prepare_agent_unsaved,
                 ("worktree", "remove", "agent", "--force", "--discard-unsaved"),
                 followup=("worktree", "list"), discards=True),
        # --force keeps the unsaved work as a rescue: every file must survive every kill.
        Scenario("worktree-remove-rescue", prepare_agent_unsaved,
                 ("worktree", "remove", "agent", "--force"), followup=("worktree", "list")),
        Scenario("gc-run", prepare_gc, ("gc", "run", "--plan-id", "{plan}"),
                 followup=("gc", "pins"), env=GC_ENV),
        Scenario("doctor-finish-restore", prepare_crashed_restore,
                 ("doctor", "--repair-runtime"), followup=("status",)),
        Scenario("doctor-finish-snapshot", prepare_crashed_snapshot,
                 ("doctor", "--repair-runtime"), followup=("snapshot", "next")),
        Scenario("doctor-finish-fork", prepare_crashed_fork,
                 ("doctor", "--repair-runtime"), followup=("worktree", "list")),
        Scenario("doctor-clean-tmp", prepare_debris, ("doctor", "--repair", "clean_tmp"),
                 followup=("gc", "pins")),
        Scenario("doctor-advance-head", prepare_head_behind,
                 ("doctor", "--repair", "advance_head"), followup=("snapshot", "next")),
        Scenario("doctor-rebuild-index", prepare_stale_index,
                 ("doctor", "--repair", "rebuild_index"), followup=("history", "--all")),
        Scenario("doctor-audit-repair", tamper_audit, ("doctor", "--repair", "audit_repair"),
                 followup=("doctor", "--strict"),
                 repair=("doctor", "--strict", "--repair-runtime", "--repair", "audit_repair")),
        Scenario("tag-add", prepare_v1_v2, ("tag", "add", "v1", "release"),
                 followup=("history", "--tag", "release")),
        Scenario("note", prepare_v1_v2, ("note", "v1", "first state, relabelled"),
                 followup=("show", "v1")),
        Scenario("go-snapshot", prepare_go, ("snapshot", "python")),
        Scenario("go-restore", prepare_go, ("restore", "baseline")),
        Scenario("go-fork", prepare_go, ("fork", "exp1", "agent"),
                 followup=("worktree", "list")),
    ]


def by_name(name: str) -> Scenario:
    return next(s for s in scenarios() if s.name == name)
