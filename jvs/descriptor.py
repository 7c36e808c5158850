"""Snapshot descriptors (SPEC §3): the record whose presence publishes a snapshot."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from jvs import fsio
from jvs.canonical import canonical_json, sha256_hex
from jvs.errors import JvsError
from jvs.ids import is_snapshot_id, rfc3339_datetime, short_id
from jvs.repo import Repo

# Field order of the pretty-printed file; the checksum does not depend on it.
_FIELDS = (
    "snapshot_id", "parent_id", "worktree_name", "created_at", "note", "tags", "engine",
    "payload_hash_algo", "payload_root_hash", "descriptor_checksum", "integrity_state",
    "partial_paths", "restored_from", "kind", "degraded",
)
_OPTIONAL_EMPTY_OMITTED = ("parent_id", "note", "tags", "partial_paths", "restored_from",
                           "kind", "degraded")


@dataclass(frozen=True)
class Descriptor:
    snapshot_id: str
    worktree_name: str
    created_at: str
    engine: str
    payload_hash_algo: str
    payload_root_hash: str
    parent_id: str | None = None
    note: str = ""
    tags: tuple[str, ...] = ()
    descriptor_checksum: str = ""
    integrity_state: str = "verified"
    partial_paths: tuple[str, ...] = ()
    restored_from: str | None = None
    kind: str = "snapshot"  # or "rescue" (SPEC §6); the file omits "snapshot"
    degraded: tuple[str, ...] = ()
    # Fields written by other implementations survive a round trip and count in the checksum.
    extra: dict = field(default_factory=dict, compare=False, repr=False)
    # The parsed file as read; the checksum of a read descriptor is computed over this.
    raw: dict | None = field(default=None, compare=False, repr=False)

    @property
    def short_id(self) -> str:
        """The 8-hex suffix human output shows (SPEC §2)."""
        return short_id(self.snapshot_id)

    @property
    def created(self) -> datetime:
        """``created_at`` as an aware UTC datetime (microseconds: Python has no finer)."""
        return rfc3339_datetime(self.created_at)

    @property
    def is_rescue(self) -> bool:
        return self.kind == "rescue"

    @property
    def is_partial(self) -> bool:
        return bool(self.partial_paths)

    @property
    def has_ready_marker(self) -> bool:
        """Written by the Go implementation (no ``payload_hash_algo`` field): a root
        ``.READY`` in its payload is its publish marker, not payload (SPEC §1). In a
        snapshot of ours, a root ``.READY`` is a user's file like any other."""
        return self.raw is not None and "payload_hash_algo" not in self.raw

    def to_json(self) -> dict:
        values = {
            "snapshot_id": self.snapshot_id,
            "parent_id": self.parent_id,
            "worktree_name": self.worktree_name,
            "created_at": self.created_at,
            "note": self.note,
            "tags": list(self.tags),
            "engine": self.engine,
            "payload_hash_algo": self.payload_hash_algo,
            "payload_root_hash": self.payload_root_hash,
            "descriptor_checksum": self.descriptor_checksum,
            "integrity_state": self.integrity_state,
            "partial_paths": list(self.partial_paths),
            "restored_from": self.restored_from,
            # An ordinary snapshot's file has no "kind" (unless one that was read had it).
            "kind": None if self.kind == "snapshot" and "kind" not in (self.raw or ())
            else self.kind,
            "degraded": list(self.degraded),
        }
        out = {k: values[k] for k in _FIELDS
               if not (k in _OPTIONAL_EMPTY_OMITTED and not values[k])}
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    @classmethod
    def from_json(cls, obj: dict) -> Descriptor:
        try:
            known = set(_FIELDS)
            values = dict(
                snapshot_id=obj["snapshot_id"],
                worktree_name=obj.get("worktree_name", ""),
                created_at=obj["created_at"],
                engine=obj.get("engine", ""),
                # An absent field means the Go implementation's algorithm.
                payload_hash_algo=obj.get("payload_hash_algo") or "sha256",
                payload_root_hash=obj.get("payload_root_hash", ""),
                parent_id=obj.get("parent_id") or None,
                note=obj.get("note") or "",
                tags=tuple(obj.get("tags") or ()),
                descriptor_checksum=obj.get("descriptor_checksum", ""),
                integrity_state=obj.get("integrity_state", ""),
                partial_paths=tuple(obj.get("partial_paths") or ()),
                restored_from=obj.get("restored_from") or None,
                kind=obj.get("kind") or "snapshot",
                degraded=tuple(obj.get("degraded") or ()),
                extra={k: v for k, v in obj.items() if k not in known},
                raw=obj,
            )
            # Every field is given, so skip the frozen __init__ (one object.__setattr__ per
            # field): it was 40% of listing 20,000 snapshots.
            desc = object.__new__(cls)
            desc.__dict__.update(values)
            return desc
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed field {exc}") from None

    def to_summary_json(self, *, head: str | None = None,
                        latest: str | None = None) -> dict:
        """The snapshot as ``history``, ``snapshot`` and ``show`` print it with ``--json``
        (not the descriptor file: that is :meth:`to_json`). With *head* or *latest*,
        ``is_head`` and ``is_latest`` say whether it is the worktree's."""
        out = {
            "snapshot_id": self.snapshot_id,
            "short_id": short_id(self.snapshot_id),
            "parent_id": self.parent_id,
            "worktree_name": self.worktree_name,
            "created_at": self.created_at,
            "note": self.note,
            "tags": list(self.tags),
            "engine": self.engine,
            "kind": self.kind,
            "partial_paths": list(self.partial_paths),
            "degraded": list(self.degraded),
        }
        if head is not None or latest is not None:
            out["is_head"] = self.snapshot_id == head
            out["is_latest"] = self.snapshot_id == latest
        return out

    def computed_checksum(self) -> str:
        """SHA-256 of the canonical JSON with checksum and integrity_state blanked."""
        body = dict(self.raw if self.raw is not None else self.to_json())
        body["descriptor_checksum"] = ""
        body["integrity_state"] = ""
        return sha256_hex(canonical_json(body))

    def sealed(self) -> Descriptor:
        """This descriptor with its checksum filled in."""
        fresh = replace(self, raw=None, descriptor_checksum="")
        return replace(fresh, descriptor_checksum=fresh.computed_checksum())

    def checksum_valid(self) -> bool:
        return self.descriptor_checksum == self.computed_checksum()

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_descriptor(repo: Repo, snapshot_id: str, *, verify: bool = True) -> Descriptor:
    """Read a published descriptor; with *verify*, refuse one whose checksum fails."""
    if not is_snapshot_id(snapshot_id):
        raise JvsError("E_NOT_FOUND", f"{snapshot_id!r} is not a snapshot ID")
    path = repo.descriptor_path(snapshot_id)
    try:
        desc = parse_descriptor(path.read_bytes(), path)
    except FileNotFoundError:
        raise JvsError("E_NOT_FOUND", f"no snapshot {snapshot_id}") from None
    if desc.snapshot_id != snapshot_id:
        raise JvsError("E_DESCRIPTOR_CORRUPT",
                       f"descriptor {path.name} names another snapshot ({desc.snapshot_id})")
    if verify and not desc.checksum_valid():
        raise JvsError("E_DESCRIPTOR_CORRUPT",
                       f"descriptor of {snapshot_id} fails its checksum (tampered or corrupt)",
                       hint="run 'jvs verify' and 'jvs doctor --strict'")
    return desc


def parse_descriptor(data: bytes, path: Path | None = None) -> Descriptor:
    try:
        obj = json.loads(data.decode("utf-8"))
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        return Descriptor.from_json(obj)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JvsError("E_DESCRIPTOR_CORRUPT",
                       f"descriptor {path or ''} is corrupt: {exc}") from None


def list_snapshot_ids(repo: Repo) -> list[str]:
    """IDs of every published snapshot (a descriptor file exists), oldest first."""
    try:
        names = os.listdir(repo.descriptors_dir)
    except FileNotFoundError:
        return []
    ids = [n[:-5] for n in names if n.endswith(".json") and is_snapshot_id(n[:-5])]
    ids.sort()
    return ids


def write_descriptor_tmp(repo: Repo, desc: Descriptor) -> Path:
    """Write the descriptor under a temporary name, fsynced; not yet published."""
    tmp = repo.descriptors_dir / f"{desc.snapshot_id}.json.tmp"
    tmp.unlink(missing_ok=True)
    fsio.write_bytes_new(tmp, desc.to_bytes())
    return tmp


def publish_descriptor(repo: Repo, tmp: Path, snapshot_id: str) -> None:
    """The commit point of a snapshot: the descriptor appears under its final name."""
    fsio.rename_noreplace(tmp, repo.descriptor_path(snapshot_id))
    fsio.fsync_dir(repo.descriptors_dir)


def relabeled(desc: Descriptor, *, tags: tuple[str, ...] | None = None,
              note: str | None = None) -> Descriptor:
    """*desc* with new *tags* and/or *note* and a new checksum; every other field is kept
    exactly as it was read (field order, timestamps as their original strings, fields of
    other implementations; a Go-written descriptor stays one: no field is added). Both are
    omitted when empty, as when a snapshot is written (and as the Go implementation does)."""
    body = dict(desc.raw if desc.raw is not None else desc.to_json())
    for key, value in (("tags", None if tags is None else list(tags)), ("note", note)):
        if value is None:
            continue
        if value:
            body[key] = value
        else:
            body.pop(key, None)
    ordered = {k: body[k] for k in _FIELDS if k in body}
    ordered.update((k, v) for k, v in body.items() if k not in ordered)
    ordered["descriptor_checksum"] = ""
    fresh = parse_descriptor(json.dumps(ordered).encode())
    ordered["descriptor_checksum"] = fresh.computed_checksum()
    return parse_descriptor(json.dumps(ordered).encode())


def descriptor_bytes(desc: Descriptor) -> bytes:
    """The file of *desc* as written: its fields as read (``raw``), pretty-printed."""
    body = desc.raw if desc.raw is not None else desc.to_json()
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def replace_descriptor(repo: Repo, desc: Descriptor) -> bytes:
    """Replace the published descriptor of *desc* atomically (the caller holds the
    repository lock): a temporary file, fsynced, renamed over the old one, the directory
    fsynced. A reader sees the old descriptor or the new one, each with a valid checksum;
    a crash leaves one of them and at most a ``.part`` file ``doctor`` removes."""
    data = descriptor_bytes(desc)
    fsio.write_bytes_atomic(repo.descriptor_path(desc.snapshot_id), data)
    return data
