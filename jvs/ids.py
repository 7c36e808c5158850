"""Snapshot IDs and timestamps (SPEC §2, §3)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from jvs.names import SNAPSHOT_ID_RE


def new_snapshot_id(now_ns: int | None = None) -> str:
    """``<unix-ms zero-padded to 13>-<8 lowercase hex from a CSPRNG>``."""
    ns = time.time_ns() if now_ns is None else now_ns
    return f"{ns // 1_000_000:013d}-{os.urandom(4).hex()}"


def is_snapshot_id(text: str) -> bool:
    return SNAPSHOT_ID_RE.fullmatch(text) is not None


def short_id(snapshot_id: str) -> str:
    """The human form: the 8-hex suffix (the timestamp digits collide within 100 s)."""
    return snapshot_id.rpartition("-")[2] if is_snapshot_id(snapshot_id) else snapshot_id


def rfc3339_utc(ns: int | None = None) -> str:
    """RFC 3339 in UTC with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano)."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch for an RFC 3339 string (nanoseconds are truncated to µs)."""
    return rfc3339_datetime(text).timestamp()


def rfc3339_datetime(text: str) -> datetime:
    """An RFC 3339 string as an aware datetime in UTC (nanoseconds truncated to µs)."""
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    if "." in t:
        head, _, rest = t.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        t = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    return datetime.fromisoformat(t).astimezone(UTC)


def local_time(created_at: str) -> str:
    """An RFC 3339 timestamp in the local time zone with its offset, to the second
    (``2026-12-03 14:05:09 +0100``), for human output; the text itself if unparseable.
    Descriptors hold UTC (``...Z``): those take a path 3x faster than a full parse, which
    is a third of ``history`` over 20,000 snapshots otherwise."""
    try:
        if created_at[19:20] in (".", "Z") and created_at.endswith("Z"):
            secs = datetime.fromisoformat(created_at[:19]).replace(tzinfo=UTC).timestamp()
        else:
            secs = parse_rfc3339(created_at)
        return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(secs))
    except (ValueError, OverflowError, OSError):
        return created_at
