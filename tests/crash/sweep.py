"""The crash-injection harness: kill a jvs command at every mutating system call, repair
the way a user would, and check that nothing was lost.

For one *scenario* (a repository state and a command run in it):

1. The state is built once, in a template directory.
2. The command runs once to completion on a copy, with the kill shim counting its
   mutating system calls (``killshim.c``): N calls, and the state it leads to ("after").
3. For each k in 1..N, on a fresh copy of the template: the command is killed by SIGKILL
   just before call k; then ``jvs doctor --strict --repair-runtime`` runs (what jvs tells a
   user to run), and the invariants are checked:
   - ``jvs doctor --strict`` exits 0 and ``jvs verify --all`` exits 0;
   - every file a worktree held before the command (saved or not) is, with the same
     content at the same path, in a worktree or in a published snapshot;
   - every worktree holds exactly its before state or its after state;
   - nothing is left over (intents, ``*.tmp`` staging, restore work dirs);
   - the scenario's follow-up command (usually the command again) succeeds.

Commands run through a fork server (``forkserver.py``): each is a real process of the
real CLI, killed for real; only interpreter start-up is saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM_SOURCE = HERE / "killshim.c"

TreeState = dict[str, tuple]


def build_shim(directory: Path) -> Path:
    """Compile the kill shim into *directory* (once per source version)."""
    source = SHIM_SOURCE.read_bytes()
    out = directory / f"killshim-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp),
                        str(SHIM_SOURCE), "-ldl"], check=True, capture_output=True)
        os.replace(tmp, out)
    return out


@dataclass
class Run:
    status: int  # exit code, or -signal
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.status == -9

    @property
    def json(self):
        return json.loads(self.stdout)


class Runner:
    """Runs jvs commands in fresh processes forked from one warm server."""

    def __init__(self, shim: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        self.env.pop("LD_PRELOAD", None)
        self._n = 0
        server_env = {**self.env, "LD_PRELOAD": str(shim)}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "forkserver.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=server_env, text=True)
        ready = self.proc.stdout.readline()
        if '"ready"' not in ready:
            raise RuntimeError(f"fork server did not start: {ready!r}")

    def run(self, *args: str, cwd: Path, kill_at: int = 0, log: Path | None = None,
            env: dict[str, str] | None = None) -> Run:
        self._n += 1
        out, err = self.workdir / f"out-{self._n}", self.workdir / f"err-{self._n}"
        request = {"args": list(args), "cwd": str(cwd), "env": {**self.env, **(env or {})},
                   "kill_at": kill_at, "log": str(log) if log else None,
                   "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        result = Run(reply["status"], out.read_text(errors="replace"),
                     err.read_text(errors="replace"))
        out.unlink()
        err.unlink()
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


# ------------------------------------------------------------------------ observations

def tree_state(root: Path) -> TreeState | None:
    """What a user sees in a tree: every entry's type, permission bits and content (file
    hash, link target). None if *root* does not exist."""
    if not root.is_dir():
        return None
    out: TreeState = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", mode, hashlib.sha256(f.read()).hexdigest())
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out


def worktree_dirs(repo: Path) -> dict[str, Path]:
    out = {"main": repo / "main"}
    others = repo / "worktrees"
    if others.is_dir():
        for name in sorted(os.listdir(others)):
            out[name] = others / name
    return out


def worktree_states(repo: Path) -> dict[str, TreeState | None]:
    return {name: tree_state(path) for name, path in worktree_dirs(repo).items()}


def published(repo: Path) -> list[str]:
    try:
        names = os.listdir(repo / ".jvs" / "descriptors")
    except FileNotFoundError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json") and len(n) == 27)


def saved_files(repo: Path) -> set[tuple[str, str]]:
    """(relpath, content hash) of every file in a published snapshot or a worktree."""
    out = set()
    trees = [repo / ".jvs" / "snapshots" / sid for sid in published(repo)]
    trees += list(worktree_dirs(repo).values())
    for tree in trees:
        for rel, entry in (tree_state(tree) or {}).items():
            if entry[0] == "file":
                out.add((rel, entry[2]))
    return out


def leftovers(repo: Path) -> list[str]:
    jvs = repo / ".jvs"
    out = []
    for sub in ("intents",):
        if (jvs / sub).is_dir():
            out += [f"{sub}/{n}" for n in os.listdir(jvs / sub)]
    for sub in ("snapshots", "descriptors"):
        if (jvs / sub).is_dir():
            out += [f"{sub}/{n}" for n in os.listdir(jvs / sub) if n.endswith(".tmp")]
    restore = jvs / "restore"
    if restore.is_dir():
        for name in os.listdir(restore):
            if name == "@trash" and not os.listdir(restore / name):
                continue
            out.append(f"restore/{name}")
    return out


# --------------------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    """A repository state (built by *prepare* in ``<base>/repo``) and a command to kill."""

    name: str
    prepare: Callable[[Runner, Path], None]
    command: tuple[str, ...]
    cwd: str = "main"  # where the command runs, relative to the repository root
    followup: tuple[str, ...] | None = None  # must succeed after the repair (default: command)
    discards: bool = False  # the command throws unsaved work away on purpose (--force)
    env: dict[str, str] = field(default_factory=dict)
    # What the user runs after the kill (doctor's advice); must exit 0 and leave the
    # repository strictly healthy.
    repair: tuple[str, ...] = ("doctor", "--strict", "--repair-runtime")


@dataclass
class Failure:
    point: int
    call: str
    problems: list[str]

    def __str__(self) -> str:
        return f"kill at #{self.point} ({self.call}):\n    " + "\n    ".join(self.problems)


@dataclass
class SweepResult:
    scenario: str
    points: int
    checked: list[int]
    failures: list[Failure]

    @property
    def clean(self) -> int:
        return len(self.checked) - len(self.failures)

    def summary(self) -> str:
        return (f"{self.scenario}: {self.clean}/{len(self.checked)} clean of {self.points} "
                "kill points")


# Calls inside a copy being staged (a snapshot's ``<id>.tmp``, a restore's or a fork's
# staged payload) lead to the same state whichever of them the kill hits: the protocol has
# not moved past staging. A sampled sweep keeps every other call and every *stride*-th of
# these.
# The same goes for deleting what is already in the trash.
_STAGING = (".tmp/", "/target/", "/payload/", "/@trash/")


def select_points(calls: list[str], stride: int, every: int = 1) -> list[int]:
    """The kill points to check: every *every*-th call, and of those inside staging every
    *stride*-th (all of them at 1 and 1)."""
    out = []
    for k, call in enumerate(calls, 1):
        path = call.split(" ", 2)[2] if call.count(" ") >= 2 else ""
        staging = any(marker in path.split(" -> ")[0] for marker in _STAGING)
        if k % every == 0 and (stride == 1 or not staging or k % stride == 0):
            out.append(k)
    return out


def copy_tree(src: Path, dst: Path) -> None:
    """A copy that keeps hard links, modes, times and reflinks where the filesystem can."""
    subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dst)], check=True)


class Sweep:
    """Runs scenarios in *base* (a directory on the filesystem the engine needs)."""

    def __init__(self, runner: Runner, base: Path, *, thorough: bool = True) -> None:
        """*thorough*: also run a plain ``doctor --strict`` after the repair (without it,
        the repair's own strict diagnosis, taken under the lock, is the verdict)."""
        self.runner = runner
        self.base = base
        self.thorough = thorough

    def jvs(self, *args: str, cwd: Path, **kw) -> Run:
        return self.runner.run(*args, cwd=cwd, **kw)

    def run(self, scenario: Scenario, *, points: list[int] | None = None,
            stride: int = 1, every: int = 1) -> SweepResult:
        work = Path(tempfile.mkdtemp(prefix=f"{scenario.name}-", dir=self.base))
        try:
            return self._run(scenario, work, points, stride, every)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, scenario: Scenario, work: Path, points: list[int] | None,
             stride: int, every: int) -> SweepResult:
        template = work / "template"
        template.mkdir()
        scenario.prepare(self.runner, template)
        before_repo = template / "repo"
        before = worktree_states(before_repo)
        before_files = {(rel, e[2]) for name, tree in before.items()
                        for rel, e in (tree or {}).items() if e[0] == "file"}
        # A state prepared by a crash names the files the user had before it.
        if (template / "before.json").exists():
            before_files |= {tuple(x) for x in json.loads((template / "before.json").read_text())}
        if scenario.discards:
            before_files = set()
        variables = json.loads((template / "vars.json").read_text()) \
            if (template / "vars.json").exists() else {}
        scenario = replace(scenario, command=tuple(a.format(**variables)
                                                   for a in scenario.command))

        # The complete run: how many calls, and where it leads.
        trace = work / "trace.log"
        full = work / "full"
        copy_tree(template, full)
        done = self.jvs(*scenario.command, cwd=full / "repo" / scenario.cwd, log=trace,
                        env=scenario.env)
        if done.status != 0:
            raise AssertionError(f"{scenario.name}: {' '.join(scenario.command)} failed "
                                 f"without a kill ({done.status}):\n{done.stderr}")
        calls = trace.read_text(errors="replace").splitlines()
        after = worktree_states(full / "repo")
        shutil.rmtree(full)

        wanted = points if points is not None else select_points(calls, stride, every)
        failures = []
        for k in wanted:
            problems = self._one(scenario, work, template, k, before, after, before_files)
            if problems:
                failures.append(Failure(k, calls[k - 1] if k <= len(calls) else "?",
                                        problems))
        return SweepResult(scenario.name, len(calls), wanted, failures)

    def _one(self, scenario: Scenario, work: Path, template: Path, k: int, before: dict,
             after: dict, before_files: set) -> list[str]:
        trial = work / f"k{k}"
        copy_tree(template, trial)
        repo = trial / "repo"
        try:
            return self._check(scenario, repo, k, before, after, before_files)
        finally:
            shutil.rmtree(trial, ignore_errors=True)

    def _check(self, scenario: Scenario, repo: Path, k: int, before: dict, after: dict,
               before_files: set) -> list[str]:
        problems: list[str] = []
        cwd = repo / scenario.cwd
        killed = self.jvs(*scenario.command, cwd=cwd, kill_at=k, env=scenario.env)
        if not killed.killed and killed.status != 0:
            # (Exit 0: this run made fewer calls than the counted one, e.g. a stat cache
            # it did not need to rewrite; the after state is checked all the same.)
            problems.append(f"not killed (exit {killed.status}): {killed.stderr.strip()}")
        fixed = self.jvs(*scenario.repair, cwd=repo)
        if fixed.status != 0:
            problems.append(f"{' '.join(scenario.repair)} exits {fixed.status}: "
                            f"{(fixed.stdout + fixed.stderr).strip()[-1500:]}")
        strict = self.jvs("doctor", "--strict", cwd=repo) if self.thorough else fixed
        if strict.status != 0 and strict is not fixed:
            problems.append(f"doctor --strict exits {strict.status}: "
                            f"{(strict.stdout + strict.stderr).strip()[-1500:]}")
        verify = self.jvs("verify", "--all", cwd=repo)
        if verify.status != 0:
            problems.append(f"verify --all exits {verify.status}: "
                            f"{(verify.stdout + verify.stderr).strip()[-1500:]}")
        lost = before_files - saved_files(repo)
        if lost:
            problems.append(f"lost {len(lost)} file(s): {sorted(lost)[:5]}")
        now = worktree_states(repo)
        for name in sorted(set(before) | set(after) | set(now)):
            state = now.get(name)
            if state != before.get(name) and state != after.get(name):
                how = describe_difference(state, before.get(name), after.get(name))
                problems.append(f"worktree {name} is neither its before nor its after "
                                f"state: {how}")
        left = leftovers(repo)
        if left:
            problems.append(f"left over after repair: {left[:6]}")
        followup = scenario.followup or scenario.command
        if followup and (repo / scenario.cwd).is_dir():
            again = self.jvs(*followup, cwd=repo / scenario.cwd, env=scenario.env)
            if again.status != 0:
                problems.append(f"follow-up 'jvs {' '.join(followup)}' exits {again.status}: "
                                f"{again.stderr.strip()[-800:]}")
        return problems


def describe_difference(state, before, after) -> str:
    if state is None:
        return "missing"

    def diff(other) -> str:
        if other is None:
            return "it did not exist"
        keys = sorted(set(state) ^ set(other) | {k for k in state if k in other
                                                 and state[k] != other[k]})
        return ", ".join(keys[:4]) + ("..." if len(keys) > 4 else "")

    return f"vs before: {diff(before)}; vs after: {diff(after)}"
