"""``jvs status``: the worktree against its head snapshot."""

from __future__ import annotations

from dataclasses import dataclass, replace

from jvs.changes import (
    Changes,
    compare,
    differing,
    snapshot_manifest,
    visible,
    without_go_marker,
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


def worktree_status(repo: Repo, worktree: str) -> Status:
    found = intents_of(repo, RestoreIntent, worktree=worktree)
    st = _status(repo, worktree)
    return replace(st, interrupted=found[0]) if found else st


def _status(repo: Repo, worktree: str) -> Status:
    wt = load_worktree_config(repo, worktree)
    payload = worktree_payload(repo, worktree)
    stats = HashStats()
    if wt.head_snapshot_id is None:
        algo = repo.config().payload_hash_algo
        return Status(wt, compare([], worktree_entries(repo, worktree, payload, algo, stats)),
                      stats)
    head = read_descriptor(repo, wt.head_snapshot_id)
    within = head.partial_paths
    new = without_go_marker(
        worktree_entries(repo, worktree, payload, head.payload_hash_algo, stats, within), head)
    old, new = differing(snapshot_manifest(repo, head), new)
    return Status(wt, compare(visible(old, IgnoreRules.load(payload)), new), stats)
