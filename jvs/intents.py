"""In-flight operations (``.jvs/intents/``): written before a protocol changes anything and
dropped when it ends, so that ``doctor`` and the next command can tell a crashed operation
from a running one, and finish it from what it recorded, never from guesses.

Each protocol has its own record type (a frozen dataclass with ``OPERATION``, ``key`` and
``to_json``/``from_json``). An intent file that cannot be read, or names an operation this
jvs does not know, is listed with ``record = None`` and a ``problem``: it is reported, and
nothing acts on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Protocol

from jvs import fsio
from jvs.ids import rfc3339_utc
from jvs.repo import Repo


class IntentRecord(Protocol):
    OPERATION: ClassVar[str]

    @property
    def key(self) -> str: ...

    def to_json(self) -> dict: ...


def _plain_to_json(record) -> dict:
    out = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, tuple):
            value = list(value)
        if value is not None:
            out[f.name] = value
    return out


def _plain_from_json(cls, obj: dict):
    kwargs = {}
    for f in fields(cls):
        if f.name in obj:
            value = obj[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class SnapshotIntent:
    """A snapshot of *worktree* being taken as *snapshot_id*. *parent_id* and
    *worktree_created_at* say where the worktree was when it started: a repair moves the
    worktree to the snapshot only if it is still there (same worktree, same head)."""

    OPERATION: ClassVar[str] = "snapshot"
    snapshot_id: str
    worktree: str
    parent_id: str | None = None
    worktree_created_at: str | None = None

    @property
    def key(self) -> str:
        return self.snapshot_id

    def to_json(self) -> dict:
        return _plain_to_json(self)

    @classmethod
    def from_json(cls, obj: dict) -> SnapshotIntent:
        return _plain_from_json(cls, obj)


@dataclass(frozen=True)
class WorktreeIntent:
    """A change to the set of worktrees. *operation* is ``worktree_create`` (also fork),
    ``worktree_rename`` or ``worktree_remove``; *name* is the worktree it acts on, *new_name*
    the new name of a rename, *snapshot_id* the snapshot a created worktree starts at and
    *created_at* the creation time its config gets."""

    OPERATION: ClassVar[str] = "worktree"
    operation: str
    name: str
    new_name: str | None = None
    snapshot_id: str | None = None
    created_at: str | None = None
    source_worktree: str | None = None  # a fork's source, for its audit record
    reason: str | None = None  # for the audit record
    # A forced remove that keeps unsaved work (jvs.worktrees.remove): the rescue it
    # publishes before anything is deleted, cloned from *rescue_base*, made by
    # *transfers* (jvs.rescue.Transfer.to_json()); *phase* ``prepare`` while only its
    # base is staged (forgotten after a crash), ``rescue`` once work may have moved into
    # it (finished after a crash); *ignore_rules* as read, to tell new work from ignored.
    phase: str | None = None
    rescue_id: str | None = None
    rescue_base: str | None = None
    transfers: tuple = ()
    ignore_rules: str | None = None
    unsaved: int = 0

    @property
    def key(self) -> str:
        return self.name

    def to_json(self) -> dict:
        return _plain_to_json(self)

    @classmethod
    def from_json(cls, obj: dict) -> WorktreeIntent:
        return _plain_from_json(cls, obj)


@dataclass(frozen=True)
class RestoreIntent:
    """A restore of *worktree* to *target_id*, in *phase* (``jvs.restore.Phase``), with
    its plan: the *steps* from the worktree to the target and the *transfers* that make
    the rescue (lists, as JSON holds them)."""

    OPERATION: ClassVar[str] = "restore"
    worktree: str
    target_id: str
    phase: str
    previous_head: str | None = None
    rescue_id: str | None = None
    discard: bool = False
    paths: tuple[str, ...] = ()
    unsaved: int = 0
    ignore_rules: str | None = None
    steps: tuple = ()  # jvs.plan.Step.to_json() of each step, in order
    transfers: tuple = ()  # jvs.rescue.Transfer.to_json(): what goes into the rescue
    rescue_base: str | None = None  # the snapshot the rescue is cloned from

    @property
    def key(self) -> str:
        return self.worktree

    def to_json(self) -> dict:
        return _plain_to_json(self)

    @classmethod
    def from_json(cls, obj: dict) -> RestoreIntent:
        return _plain_from_json(cls, obj)


RECORD_TYPES: dict[str, type] = {}


def register(cls: type) -> type:
    """Make intents of *cls*'s operation readable by :func:`list_intents`."""
    RECORD_TYPES[cls.OPERATION] = cls
    return cls


register(SnapshotIntent)
register(WorktreeIntent)
register(RestoreIntent)


@dataclass(frozen=True)
class Intent:
    """One intent file: who wrote it, and its record (None if unreadable: see *problem*)."""

    path: Path
    operation: str
    pid: int | None
    host: str
    started_at: str
    record: object | None
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    problem: str | None = None

    @property
    def who(self) -> str:
        return f"pid {self.pid if self.pid is not None else '?'} on {self.host or '?'}"

    def describe(self) -> str:
        """One line for humans: the operation, who ran it and since when."""
        if self.record is None:
            return f"unreadable intent {self.path.name} ({self.problem})"
        return f"{self.operation} ({self.who}, since {self.started_at})"


def _intent_path(repo: Repo, record) -> Path:
    return repo.intents_dir / f"{record.OPERATION}-{record.key}.json"


def write_intent(repo: Repo, record) -> Intent:
    """Record that the operation *record* describes is about to change things."""
    envelope = {"operation": record.OPERATION, "pid": os.getpid(),
                "host": os.uname().nodename, "started_at": rfc3339_utc(),
                "record": record.to_json()}
    repo.intents_dir.mkdir(parents=True, exist_ok=True)
    path = _intent_path(repo, record)
    fsio.write_json_atomic(path, envelope)
    return _from_envelope(path, envelope)


def update_intent(intent: Intent, record) -> Intent:
    """Replace the record of *intent* (a protocol moving to its next phase)."""
    envelope = {**intent.raw, "record": record.to_json()}
    fsio.write_json_atomic(intent.path, envelope)
    return _from_envelope(intent.path, envelope)


def drop_intent(intent: Intent) -> None:
    intent.path.unlink(missing_ok=True)
    fsio.fsync_dir(intent.path.parent)


def _from_envelope(path: Path, obj: object) -> Intent:
    if not isinstance(obj, dict):
        return Intent(path, "?", None, "", "", None, {}, "not a JSON object")
    operation = str(obj.get("operation", "?"))
    pid = obj.get("pid") if isinstance(obj.get("pid"), int) else None
    host = str(obj.get("host") or "")
    started = str(obj.get("started_at") or "")
    cls = RECORD_TYPES.get(operation)
    if cls is None:
        return Intent(path, operation, pid, host, started, None, obj,
                      f"unknown operation {operation!r}")
    try:
        record = cls.from_json(obj["record"])
    except (KeyError, TypeError, ValueError) as exc:
        return Intent(path, operation, pid, host, started, None, obj,
                      f"malformed {operation} record ({exc})")
    return Intent(path, operation, pid, host, started, record, obj)


def list_intents(repo: Repo) -> list[Intent]:
    """Every intent file, readable or not (temporary ``.part`` files excluded)."""
    out = []
    try:
        names = sorted(os.listdir(repo.intents_dir))
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = repo.intents_dir / name
        try:
            obj = fsio.read_json(path)
        except FileNotFoundError:
            continue  # finished meanwhile
        except (OSError, ValueError) as exc:
            out.append(Intent(path, "?", None, "", "", None, {}, f"unreadable: {exc}"))
            continue
        out.append(_from_envelope(path, obj))
    return out


def intents_of(repo: Repo, record_type: type, **match: object) -> list[Intent]:
    """The readable intents of *record_type* whose record fields equal *match*."""
    return [i for i in list_intents(repo) if isinstance(i.record, record_type)
            and all(getattr(i.record, k) == v for k, v in match.items())]


def intent_is_live(intent: Intent) -> bool:
    """True if the process that wrote the intent may still be running (same host and its
    pid exists). Intents of other hosts are treated as live: we cannot see their processes."""
    if intent.record is None:
        return False  # reported as unreadable; nothing acts on it either way
    if intent.host != os.uname().nodename:
        return True
    if intent.pid is None:
        return False
    try:
        os.kill(intent.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
