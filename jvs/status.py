"""``jvs status``: the worktree against its head snapshot."""

from __future__ import annotations

from dataclasses import dataclass, replace

from jvs.changes import (
    Changes,
    compare,
    differing,
    snapshot_manifest,
    under,
    visible,
    without_go_marker,
    worktree_differing,
    worktree_entries,
)
from jvs.descriptor import read_descriptor
from jvs.ignore import IgnoreRules
from jvs.integrity import HashStats
from jvs.intents import Intent, RestoreIntent, intents_of
from jvs.repo import Repo
from jvs.worktree import WorktreeConfig, load_worktree_config, worktree_payload


@dataclass(frozen=True)
class Status:
    worktree: WorktreeConfig
    changes: Changes
    stats: HashStats
    interrupted: Intent | None = None  # a restore of this worktree that crashed
    paths: tuple[str, ...] = ()  # only changes at or below these (worktree-relative)

    def to_json(self) -> dict:
        wt = self.worktree
        interrupted = None
        if self.interrupted is not None:
            rec = self.interrupted.record
            interrupted = {"target_id": rec.target_id, "phase": rec.phase,
                           "started_at": self.interrupted.started_at,
                           "rescue_id": rec.rescue_id}
        return {
            "worktree": wt.name,
            "paths": list(self.paths),
            "head_snapshot_id": wt.head_snapshot_id,
            "latest_snapshot_id": wt.latest_snapshot_id,
            "detached": wt.detached,
            "clean": self.changes.clean,
            "changes": self.changes.to_json(),
            "interrupted_restore": interrupted,
        }


def worktree_status(repo: Repo, worktree: str, paths: tuple[str, ...] = ()) -> Status:
    """The worktree against its head snapshot; with *paths* (worktree-relative), only
    what lies at or below them is compared, and only there are files read."""
    found = intents_of(repo, RestoreIntent, worktree=worktree)
    st = _status(repo, worktree, tuple(paths))
    return replace(st, interrupted=found[0]) if found else st


def _status(repo: Repo, worktree: str, paths: tuple[str, ...]) -> Status:
    wt = load_worktree_config(repo, worktree)
    payload = worktree_payload(repo, worktree)
    stats = HashStats()
    if wt.head_snapshot_id is None:
        algo = repo.config().payload_hash_algo
        new = worktree_entries(repo, worktree, payload, algo, stats, paths)
        return Status(wt, under(compare([], new), paths), stats, paths=paths)
    head = read_descriptor(repo, wt.head_snapshot_id)
    within = head.partial_paths or paths  # a partial head says nothing elsewhere
    found = None if within else worktree_differing(repo, worktree, payload, head, stats)
    if found is not None:
        old, new = found
    else:
        stats = HashStats()
        new = without_go_marker(
            worktree_entries(repo, worktree, payload, head.payload_hash_algo, stats, within),
            head)
        old, new = differing(snapshot_manifest(repo, head), new)
    return Status(wt, under(compare(visible(old, IgnoreRules.load(payload)), new), paths), stats,
                  paths=paths)
