"""The repository lock (SPEC §8): ``flock`` on ``.jvs/locks/repo.lock``.

Every mutating command holds it for its whole protocol; readers (history, verify, mount)
never take it. On JuiceFS, ``flock`` is enforced across all clients of the volume, so the
same lock serialises writers on different hosts. The holder writes who it is into the
file so that a waiting writer can say "repository busy (pid, host, since)".

The kernel (or JuiceFS, for a client whose session expired) releases the lock when its
holder dies, so a crashed writer never leaves the repository locked; the holder record
it leaves behind is only informational.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from jvs.errors import JvsError
from jvs.ids import rfc3339_utc
from jvs.repo import Repo, check_control_plane

DEFAULT_WAIT_S = 10.0


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


def read_holder(repo: Repo) -> dict | None:
    try:
        text = (repo.locks_dir / "repo.lock").read_text()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


@contextmanager
def repo_lock(repo: Repo, operation: str, *, wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive repository lock; wait up to *wait* seconds, then E_BUSY. Every
    writer comes through here: the control plane is checked first (no symlink in it)."""
    check_control_plane(repo.jvs_dir)
    repo.locks_dir.mkdir(parents=True, exist_ok=True)
    path = repo.locks_dir / "repo.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + (lock_wait_seconds() if wait is None else wait)
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_holder(repo) or {}
                    raise JvsError(
                        "E_BUSY",
                        "repository busy ({pid}, {host}, since {since}{op})".format(
                            pid=f"pid {holder.get('pid', '?')}",
                            host=holder.get("host", "unknown host"),
                            since=holder.get("since", "unknown"),
                            op=f", {holder['operation']}" if holder.get("operation") else "",
                        ),
                        hint="another jvs command is writing to this repository; retry, "
                        "or raise JVS_LOCK_TIMEOUT",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        record = json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                             "since": rfc3339_utc(), "operation": operation})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
        # Other hosts of a JuiceFS volume see written data only once it is flushed.
        os.fsync(fd)
        repo.ensure_control_dirs()
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def assert_lock_still_held(repo: Repo, operation: str) -> None:
    """Fail with E_BUSY, before a commit point, if this process no longer holds the lock.

    On JuiceFS the lock lives in the metadata engine and belongs to this host's client
    session. A host cut off from the engine (or frozen) for longer than 5 heartbeats
    loses its session, and with it the lock, while its jvs process runs on; another host
    then takes the lock and writes (docs/cluster.md). Whoever takes the lock rewrites the
    holder record and empties it on release, so a record that is not ours means we lost
    the lock: publishing now would fork the lineage. A fresh open (not our held fd) makes
    JuiceFS fetch the current content. This narrows the window to the check itself; it
    cannot close it without fencing in the storage layer.
    """
    holder = read_holder(repo) or {}
    if holder.get("pid") == os.getpid() and holder.get("host") == os.uname().nodename:
        return
    raise JvsError(
        "E_BUSY",
        f"lost the repository lock during {operation} (now held by "
        f"{holder.get('host', 'nobody')}); nothing was published",
        hint="this host's JuiceFS session probably expired; run 'jvs doctor "
        "--repair-runtime' and retry",
    )
