"""``--dry-run``: what ``restore``, ``worktree remove`` and ``gc run`` would change, computed
by reading only. A preview takes no lock and writes nothing but caches (the stat cache,
as ``status`` does); the real command re-checks everything under its lock, so a preview
is exact for the repository as it was when it ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from jvs.changes import Change
from jvs.descriptor import Descriptor
from jvs.errors import JvsError
from jvs.repo import Repo

# What a restore does to an entry, from how the worktree differs from the target.
_ACTION = {"added": "delete", "removed": "create", "modified": "replace", "mode": "chmod",
           "type": "replace"}


@dataclass(frozen=True)
class RestorePreview:
    target: Descriptor
    worktree: str
    actions: tuple[tuple[str, str], ...]  # (action, worktree-relative path), sorted by path
    unsaved: tuple[Change, ...]  # the worktree against its head
    rescue: bool  # unsaved work would first become a rescue snapshot
    paths: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "dry_run": True,
            "worktree": self.worktree,
            "target_id": self.target.snapshot_id,
            "paths": list(self.paths),
            "changes": [{"action": a, "path": p} for a, p in self.actions],
            "unsaved_changes": [c.to_json() for c in self.unsaved],
            "would_rescue": self.rescue,
            "would_discard": bool(self.unsaved) and not self.rescue,
        }


def restore_preview(repo: Repo, worktree: str, ref: str, *, paths: tuple[str, ...] = (),
                    discard_unsaved: bool = False) -> RestorePreview:
    """What ``jvs restore REF [-- PATH...]`` would do now: the entries it would create,
    replace, chmod or delete (ignored paths are never touched, and a partial snapshot
    only replaces its own paths), and whether unsaved work would first become a rescue.
    ``HEAD`` means the worktree's latest snapshot, as for restore."""
    from jvs.diff import diff
    from jvs.resolve import resolve
    from jvs.status import worktree_status
    from jvs.worktree import load_worktree_config

    wt = load_worktree_config(repo, worktree)
    if ref.strip() == "HEAD":
        if wt.latest_snapshot_id is None:
            raise JvsError("E_NOT_FOUND", f"worktree {worktree!r} has no snapshots yet")
        ref = wt.latest_snapshot_id
    target = resolve(repo, ref, worktree)
    # From the target to the worktree: each difference is one entry the restore puts back.
    changes = diff(repo, worktree, target.snapshot_id, None, tuple(paths)).changes.items
    actions = tuple((_ACTION[c.change], c.relpath) for c in changes
                    if not (c.kind == "dir" and c.change == "modified"))
    unsaved = tuple(worktree_status(repo, worktree).changes.items) \
        if wt.head_snapshot_id else ()
    return RestorePreview(target, worktree, actions, unsaved,
                          bool(unsaved) and not discard_unsaved, tuple(paths))


@dataclass(frozen=True)
class RemovePreview:
    name: str
    path: str
    head_snapshot_id: str | None
    unsaved: int  # changes the worktree's snapshots do not hold
    refused: bool  # the removal would fail with E_UNSAVED (unsaved work, no --force)
    rescue: bool = False  # the unsaved work would be kept as a rescue snapshot (--force)

    def to_json(self) -> dict:
        return {"dry_run": True, "name": self.name, "path": self.path,
                "head_snapshot_id": self.head_snapshot_id, "unsaved_changes": self.unsaved,
                "would_refuse": self.refused, "would_rescue": self.rescue}


def remove_preview(repo: Repo, name: str, *, force: bool = False,
                   discard_unsaved: bool = False) -> RemovePreview:
    """What ``jvs worktree remove NAME [--force [--discard-unsaved]]`` would do now."""
    import os

    from jvs.names import validate_worktree_name
    from jvs.unsaved import find_unsaved
    from jvs.worktree import load_worktree_config, worktree_payload

    name = validate_worktree_name(name)
    if name == "main":
        raise JvsError("E_NAME_INVALID", "the main worktree cannot be removed")
    config = load_worktree_config(repo, name)
    payload = repo.worktree_dir(name)
    unsaved = 0
    if os.path.isdir(payload) and not os.path.islink(payload):
        unsaved = len(find_unsaved(repo, config, worktree_payload(repo, name)).changes.items)
    force = force or discard_unsaved
    return RemovePreview(name, str(payload), config.head_snapshot_id, unsaved,
                         unsaved > 0 and not force, unsaved > 0 and force and not discard_unsaved)


@dataclass(frozen=True)
class GcRunPreview:
    plan_id: str
    deleted: tuple[str, ...]  # what the run would delete
    mismatch: str | None  # why the run would fail (E_GC_PLAN_MISMATCH), if it would
    bytes_estimate: int

    def to_json(self) -> dict:
        return {"dry_run": True, "plan_id": self.plan_id, "would_delete": list(self.deleted),
                "would_fail": self.mismatch, "deleted_bytes_estimate": self.bytes_estimate}


def gc_run_preview(repo: Repo, plan_id: str, now: float) -> GcRunPreview:
    """What ``jvs gc run --plan-id ID`` would do now: the snapshots it would delete, or
    why it would refuse (the repository changed since the plan)."""
    from jvs.gc import load_plan, plan_drift
    from jvs.space import freed_by

    plan = load_plan(repo, plan_id)
    by_id, current, drift = plan_drift(repo, plan, now)
    if drift:
        return GcRunPreview(plan.plan_id, (), f"the repository changed since the plan: {drift}",
                            0)
    freed = freed_by(repo, [by_id[sid] for sid in current])
    return GcRunPreview(plan.plan_id, tuple(current), None, freed.estimate)
