"""The hash-chained audit log (SPEC §9): one JSON line per mutating operation.

``record_hash`` is the SHA-256 of the record's canonical JSON with ``record_hash`` set to
``""``; ``prev_hash`` is the previous record's ``record_hash`` (``""`` for the first).
Appending reads only the tail of the log, never the whole file, and runs under the
audit's short lock, so the chain cannot fork.

A chain alone cannot show that its last records were cut off: what is left is still a
valid chain. So each append also records the chain's head (the last record's hash) in
``audit/head.json``, and the check requires that record to be in the log. The head is
written after the log line, so a crash between the two leaves a head one record behind,
which is still in the log: a stale head is never reported, a missing record always is.
A log without a head file (the Go implementation writes none) is checked as a chain only.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jvs.canonical import canonical_json, sha256_hex
from jvs.ids import rfc3339_utc
from jvs.repo import Repo

_TAIL = 64 * 1024


def actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{os.uname().nodename}"


def record_hash(record: dict) -> str:
    body = dict(record)
    body["record_hash"] = ""
    return sha256_hex(canonical_json(body))


def last_record_hash(repo: Repo) -> str:
    """The record_hash of the last complete line, read from the tail of the file."""
    try:
        with open(repo.audit_log, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            start = max(0, size - _TAIL)
            while True:
                f.seek(start)
                chunk = f.read(size - start)
                lines = [ln for ln in chunk.split(b"\n") if ln.strip()]
                if start > 0:
                    lines = lines[1:]  # the first may be cut
                for line in reversed(lines):
                    try:
                        return json.loads(line)["record_hash"]
                    except (ValueError, KeyError, TypeError):
                        continue
                if start == 0:
                    return ""
                start = max(0, start - _TAIL)
    except FileNotFoundError:
        return ""


def append_audit(repo: Repo, operation: str, target: str = "", reason: str = "",
                 **details: object) -> dict:
    """Append one record. The caller holds the repository lock, maybe only shared (a
    worktree operation): the hash chain is extended under the audit's own short lock."""
    from jvs.lock import short_lock

    with short_lock(repo, "audit", operation):
        return _append(repo, operation, target, reason, details)


def _append(repo: Repo, operation: str, target: str, reason: str, details: dict) -> dict:
    record = {
        "event_id": str(uuid.uuid4()),
        "timestamp": rfc3339_utc(),
        "operation": operation,
        "actor": actor(),
        "target": target,
        "reason": reason,
        "prev_hash": last_record_hash(repo),
        "record_hash": "",
    }
    if details:
        record["details"] = {k: v for k, v in details.items() if v is not None}
    record["record_hash"] = record_hash(record)
    repo.audit_log.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    # O_NOFOLLOW: never append through a symlink (check_control_plane refuses one first).
    fd = os.open(repo.audit_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    write_head(repo, record["record_hash"])
    return record


def head_path(repo: Repo) -> Path:
    return repo.audit_log.with_name("head.json")


def write_head(repo: Repo, last_hash: str) -> None:
    """Record *last_hash* as the chain's head (after its line is in the log)."""
    from jvs.fsio import write_bytes_atomic

    body = json.dumps({"last_record_hash": last_hash}) + "\n"
    write_bytes_atomic(head_path(repo), body.encode())


def read_head(repo: Repo) -> str | None:
    """The recorded head's hash; None when there is no head file (a log of the Go
    implementation's, or of a jvs before heads). An unreadable head file is not a
    head: it reads as ``"?"``, which no record has, so the check reports it."""
    try:
        head = json.loads(head_path(repo).read_bytes())
        value = head["last_record_hash"]
        return value if isinstance(value, str) else "?"
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def recently_recorded(repo: Repo, operation: str, target: str) -> bool:
    """Whether one of the last records of the log is *operation* on *target*: how a repair
    finishing a crashed operation tells whether the crash came before or after its audit
    append (that append is the operation's last write but one, so it is near the end)."""
    try:
        with open(repo.audit_log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL))
            chunk = f.read()
    except FileNotFoundError:
        return False
    for line in chunk.split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("operation") == operation \
                and record.get("target") == target:
            return True
    return False


@dataclass(frozen=True)
class ChainProblem:
    line: int
    message: str


def read_records(repo: Repo) -> Iterator[tuple[int, bytes]]:
    try:
        with open(repo.audit_log, "rb") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield number, line
    except FileNotFoundError:
        return


def check_chain(repo: Repo) -> list[ChainProblem]:
    """Recompute every record hash and the chain, and find the recorded head in it; an
    empty list means intact."""
    problems: list[ChainProblem] = []
    prev = ""
    head = read_head(repo)
    head_seen = head is None or head == ""
    number = 0
    for number, line in read_records(repo):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(ChainProblem(number, "line is not a JSON record (truncated?)"))
            prev = None
            continue
        if record.get("record_hash") != record_hash(record):
            problems.append(ChainProblem(number, "record_hash does not match the record"))
        if prev is not None and record.get("prev_hash") != prev:
            problems.append(ChainProblem(number, "prev_hash does not match the previous record"))
        prev = record.get("record_hash")
        head_seen = head_seen or prev == head
    if not head_seen:
        problems.append(ChainProblem(
            number + 1, "the log ends before the head recorded in audit/head.json "
            "(records were removed from its end)" if head != "?" else
            "audit/head.json is unreadable: whether records were removed cannot be told"))
    return problems
