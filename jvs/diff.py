"""``jvs diff [A [B]]``: what differs between two snapshots, or a snapshot and the
worktree (B missing), or the head and the worktree (both missing).

Snapshot sides come from their manifests, the worktree side from the stat cache (only
files whose stat changed are read). Mode-only changes count. When either snapshot is
partial, both sides are compared only within its paths (elsewhere a partial snapshot
says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from jvs.changes import (
    Changes,
    compare,
    differing,
    snapshot_manifest,
    visible,
    without_go_marker,
    worktree_entries,
)
from jvs.descriptor import Descriptor, read_descriptor
from jvs.errors import JvsError
from jvs.ignore import IgnoreRules
from jvs.integrity import Entry, HashStats
from jvs.repo import Repo
from jvs.worktree import load_worktree_config, worktree_payload

WORKTREE = "worktree"


@dataclass(frozen=True)
class DiffSummary:
    added: int
    removed: int
    modified: int
    mode: int
    type: int
    size_delta: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Diff:
    old: Descriptor | None  # None: an empty worktree with no snapshot yet
    new: Descriptor | None  # None: the worktree as it is now
    worktree: str | None
    changes: Changes
    stats: HashStats

    def summary(self) -> DiffSummary:
        c = self.changes
        return DiffSummary(c.count("added"), c.count("removed"), c.count("modified"),
                           c.count("mode"), c.count("type"),
                           sum(x.size_delta for x in c.items))

    def to_json(self) -> dict:
        return {
            "from": self.old.snapshot_id if self.old else None,
            "to": self.new.snapshot_id if self.new else WORKTREE,
            "worktree": self.worktree,
            "changes": [c.to_json() for c in self.changes.items],
            "summary": self.summary().to_json(),
            "stats": {"files_hashed": self.stats.files_hashed,
                      "bytes_hashed": self.stats.bytes_hashed},
        }


def diff(repo: Repo, worktree: str | None, a: str | None = None,
         b: str | None = None) -> Diff:
    """Changes from *a* (default: the worktree's head) to *b* (default: the worktree)."""
    from jvs.resolve import resolve

    old = _verified(repo, resolve(repo, a, worktree)) if a is not None else None
    new = _verified(repo, resolve(repo, b, worktree)) if b is not None else None
    if a is None:
        if worktree is None:
            raise JvsError("E_NOT_FOUND", "diff without a snapshot needs a worktree",
                           hint="run it inside a worktree, or give 'jvs diff A B'")
        head = load_worktree_config(repo, worktree).head_snapshot_id
        old = _verified(repo, read_descriptor(repo, head)) if head else None
    if new is None and worktree is None:
        raise JvsError("E_NOT_FOUND", "comparing with the worktree needs a worktree",
                       hint="run it inside a worktree, or give two snapshots")
    within = tuple(sorted({p for d in (old, new) if d is not None for p in d.partial_paths}))
    stats = HashStats()
    # Only the records that differ between the sides are parsed (see changes.differing).
    old_manifest = snapshot_manifest(repo, old) if old else b""
    if new is not None:
        old_entries, new_entries = differing(old_manifest, snapshot_manifest(repo, new))
    else:
        algo = old.payload_hash_algo if old else repo.config().payload_hash_algo
        payload = worktree_payload(repo, worktree)
        old_entries, new_entries = differing(old_manifest, without_go_marker(
            worktree_entries(repo, worktree, payload, algo, stats, within), old))
        # The worktree side leaves out ignored paths; so does the snapshot it is compared with.
        old_entries = visible(old_entries, IgnoreRules.load(payload))
    if within:
        old_entries, new_entries = _within(old_entries, within), _within(new_entries, within)
    return Diff(old, new, worktree, compare(old_entries, new_entries), stats)


def _verified(repo: Repo, desc: Descriptor) -> Descriptor:
    return read_descriptor(repo, desc.snapshot_id, verify=True)


def _within(entries: list[Entry], paths: tuple[str, ...]) -> list[Entry]:
    return [e for e in entries
            if any(e.relpath == p or e.relpath.startswith(p + "/") or p.startswith(e.relpath + "/")
                   for p in paths)]
