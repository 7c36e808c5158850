"""In-flight operations (``.jvs/intents/``): written before a protocol starts and dropped
when it ends, so that ``doctor`` can tell a crashed operation from a running one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jvs import fsio
from jvs.ids import rfc3339_utc
from jvs.repo import Repo


@dataclass(frozen=True)
class Intent:
    path: Path
    record: dict


def write_intent(repo: Repo, operation: str, key: str, **fields: object) -> Intent:
    record = {"operation": operation, "pid": os.getpid(), "host": os.uname().nodename,
              "started_at": rfc3339_utc(), **fields}
    repo.intents_dir.mkdir(parents=True, exist_ok=True)
    path = repo.intents_dir / f"{operation}-{key}.json"
    fsio.write_json_atomic(path, record)
    return Intent(path, record)


def update_intent(intent: Intent, **fields: object) -> Intent:
    record = {**intent.record, **fields}
    fsio.write_json_atomic(intent.path, record)
    return Intent(intent.path, record)


def drop_intent(intent: Intent) -> None:
    intent.path.unlink(missing_ok=True)
    fsio.fsync_dir(intent.path.parent)


def list_intents(repo: Repo) -> list[Intent]:
    out = []
    try:
        names = sorted(os.listdir(repo.intents_dir))
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = repo.intents_dir / name
        try:
            record = fsio.read_json(path)
        except (OSError, ValueError):
            record = {}
        out.append(Intent(path, record if isinstance(record, dict) else {}))
    return out


def intent_is_live(intent: Intent) -> bool:
    """True if the process that wrote the intent may still be running (same host and its
    pid exists). Intents of other hosts are treated as live: we cannot see their processes."""
    rec = intent.record
    if rec.get("host") != os.uname().nodename:
        return True
    pid = rec.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

