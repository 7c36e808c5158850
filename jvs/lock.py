"""Locks (SPEC §8): ``flock`` on files in ``.jvs/locks/``, at two levels.

- ``repo.lock``: an operation that changes the set of worktrees or deletes snapshots
  (worktree create/fork/rename/remove, gc, doctor repairs, config, init) holds it
  exclusively; an operation on one worktree (snapshot, restore) holds it shared.
- ``worktree-<name>.lock``: that worktree's operations hold it exclusively.

So writers in different worktrees never wait for each other, two writers in one worktree
serialise, and gc or a repair waits for every worktree operation in flight (and they for
it). The few repository-wide writes of a worktree operation (the audit append with its hash
chain, finishing a crashed operation) take short locks of their own (``short_lock``).
Locks are always taken in the order repo → worktree → short, so two holders never wait
for each other in a circle. Readers (history, verify, mount) never lock.

On JuiceFS, ``flock`` is enforced across all clients of the volume, shared and exclusive
alike, so the same locks serialise writers on different hosts. An exclusive holder writes
who it is into its lock file so that a waiting writer can say "busy (which lock, pid,
host, since, operation)". The kernel (or JuiceFS, for a client whose session expired)
releases a lock when its holder dies, so a crashed writer never leaves anything locked;
the holder record it leaves behind is only informational.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jvs.errors import JvsError
from jvs.ids import rfc3339_utc
from jvs.names import validate_worktree_name
from jvs.repo import Repo, check_control_plane

DEFAULT_WAIT_S = 10.0

# The locks this process holds: lock file → exclusive? (for assert_lock_still_held).
_held: dict[Path, bool] = {}


def lock_wait_seconds() -> float:
    raw = os.environ.get("JVS_LOCK_TIMEOUT")
    if raw is None:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise JvsError("E_USAGE", f"JVS_LOCK_TIMEOUT={raw!r} is not a number of seconds",
                       hint="e.g. JVS_LOCK_TIMEOUT=30 (0: do not wait)")
    return value


def _read_record(path: Path) -> dict | None:
    try:
        text = path.read_text()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def read_holder(repo: Repo) -> dict | None:
    """Who holds the repository lock exclusively (None: nobody, or only shared)."""
    return _read_record(repo.locks_dir / "repo.lock")


def worktree_lock_path(repo: Repo, worktree: str) -> Path:
    return repo.locks_dir / f"worktree-{validate_worktree_name(worktree)}.lock"


def _busy(what: str, holder: dict | None, repo: Repo) -> JvsError:
    if holder:
        who = "{pid}, {host}, since {since}{op}".format(
            pid=f"pid {holder.get('pid', '?')}", host=holder.get("host", "unknown host"),
            since=holder.get("since", "unknown"),
            op=f", {holder['operation']}" if holder.get("operation") else "")
    else:
        # Held shared: by the worktree operations in flight, which say who they are.
        ops = [f"{r.get('operation', '?')} (pid {r.get('pid', '?')}, {r.get('host', '?')})"
               for r in map(_read_record, sorted(repo.locks_dir.glob("worktree-*.lock")))
               if r]
        who = "shared by " + (", ".join(ops) if ops else "worktree operations")
    return JvsError("E_BUSY", f"{what} busy ({who})",
                    hint="another jvs command is writing; retry, or raise JVS_LOCK_TIMEOUT")


@contextmanager
def _flock(repo: Repo, path: Path, what: str, operation: str, *, exclusive: bool,
           deadline: float) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        delay = 0.005
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(what, _read_record(path), repo) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        if exclusive:
            record = json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                 "since": rfc3339_utc(), "operation": operation})
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode() + b"\n", 0)
            # Other hosts of a JuiceFS volume see written data only once it is flushed.
            os.fsync(fd)
        elif os.fstat(fd).st_size:
            # Held shared, so nobody holds it exclusively: a record is a crashed exclusive
            # holder's, and would read as "lost the lock" to assert_lock_still_held.
            os.ftruncate(fd, 0)
        _held[path] = exclusive
        try:
            yield
        finally:
            _held.pop(path, None)
            if exclusive:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _deadline(wait: float | None) -> float:
    return time.monotonic() + (lock_wait_seconds() if wait is None else wait)


@contextmanager
def repo_lock(repo: Repo, operation: str, *, wait: float | None = None,
              shared: bool = False) -> Iterator[None]:
    """Hold the repository lock (exclusively, unless *shared*); wait up to *wait* seconds
    (``JVS_LOCK_TIMEOUT``), then E_BUSY. Every writer comes through here: the control
    plane is checked first (no symlink in it)."""
    check_control_plane(repo.jvs_dir)
    repo.locks_dir.mkdir(parents=True, exist_ok=True)
    with _flock(repo, repo.locks_dir / "repo.lock", "repository", operation,
                exclusive=not shared, deadline=_deadline(wait)):
        repo.ensure_control_dirs()
        yield


@contextmanager
def worktree_lock(repo: Repo, worktree: str, operation: str, *,
                  wait: float | None = None) -> Iterator[None]:
    """What an operation on one worktree holds: the repository lock shared and the
    worktree's lock exclusively. *wait* (``JVS_LOCK_TIMEOUT``) bounds the total wait."""
    deadline = _deadline(wait)
    check_control_plane(repo.jvs_dir)
    repo.locks_dir.mkdir(parents=True, exist_ok=True)
    with _flock(repo, repo.locks_dir / "repo.lock", "repository", operation,
                exclusive=False, deadline=deadline):
        repo.ensure_control_dirs()
        with _flock(repo, worktree_lock_path(repo, worktree), f"worktree {worktree!r}",
                    operation, exclusive=True, deadline=deadline):
            yield


@contextmanager
def short_lock(repo: Repo, name: str, operation: str) -> Iterator[None]:
    """A lock for a write that must not interleave with another process's but lasts
    milliseconds (the audit append): taken after every other lock, never around a clone
    or a hash. Under the exclusive repository lock it is taken all the same (cheap)."""
    repo.locks_dir.mkdir(parents=True, exist_ok=True)
    with _flock(repo, repo.locks_dir / f"{name}.lock", name, operation, exclusive=True,
                deadline=_deadline(None)):
        yield


def assert_lock_still_held(repo: Repo, operation: str) -> None:
    """Fail with E_BUSY, before a commit point, if this process lost a lock it holds.

    On JuiceFS the locks live in the metadata engine and belong to this host's client
    session. A host cut off from the engine (or frozen) for longer than 5 heartbeats
    loses its session, and with it its locks, while its jvs process runs on; another host
    then takes them and writes (docs/cluster.md). An exclusive lock's record not being
    ours, or a record appearing in a lock held shared (only an exclusive holder writes
    one), means we lost it: publishing now would fork the lineage. A fresh open (not the
    held fd) makes JuiceFS fetch the current content. This narrows the window to the
    check itself; it cannot close it without fencing in the storage layer.
    """
    me = (os.getpid(), os.uname().nodename)
    held = [(p, ex) for p, ex in _held.items() if p.parent == repo.locks_dir] or \
        [(repo.locks_dir / "repo.lock", True)]
    for path, exclusive in held:
        holder = _read_record(path)
        ours = holder is not None and (holder.get("pid"), holder.get("host")) == me
        if (exclusive and ours) or (not exclusive and holder is None):
            continue
        which = "" if path.name == "repo.lock" else f" ({path.name})"
        raise JvsError(
            "E_BUSY",
            f"lost the repository lock{which} during {operation} (now held by "
            f"{(holder or {}).get('host', 'nobody')}); nothing was published",
            hint="this host's JuiceFS session probably expired; run 'jvs doctor "
            "--repair-runtime' and retry",
        )
