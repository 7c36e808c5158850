"""Worktree operations (SPEC §4): create, fork, rename, remove, list, path.

A worktree is its config (``.jvs/worktrees/<name>/config.json``) and its payload dir
(``main/`` or ``worktrees/<name>/``). Names are checked (SPEC §2) before any path is
built from them, and every payload path is checked to resolve inside the repository, so
a worktree dir replaced by a symlink to elsewhere is refused before anything is touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jvs import fsio
from jvs.audit import append_audit
from jvs.crashpoints import crashpoint
from jvs.descriptor import Descriptor, read_descriptor
from jvs.engines import choose_engine
from jvs.errors import JvsError
from jvs.ids import rfc3339_utc
from jvs.integrity import READY_MARKER
from jvs.lock import assert_lock_still_held, repo_lock
from jvs.names import validate_worktree_name
from jvs.repo import Repo
from jvs.restore import checked_worktree_dir, find_unsaved, finish_pending_restore
from jvs.worktree import (
    WorktreeConfig,
    list_worktree_names,
    load_worktree_config,
    save_worktree_config,
    worktree_payload,
)


@dataclass(frozen=True)
class WorktreeInfo:
    config: WorktreeConfig
    path: Path

    def to_json(self) -> dict:
        return {**self.config.to_json(), "path": str(self.path),
                "head_snapshot_id": self.config.head_snapshot_id,
                "latest_snapshot_id": self.config.latest_snapshot_id,
                "detached": self.config.detached}


def create(repo: Repo, name: str, from_ref: str | None = None, *,
           current: str | None = None) -> WorktreeInfo:
    """A new worktree *name*: empty, or holding snapshot *from_ref* (resolved from the
    point of view of worktree *current*, for ``HEAD``)."""
    from jvs.resolve import resolve

    name = validate_worktree_name(name)
    with repo_lock(repo, "worktree create"):
        source = None
        if from_ref is not None:
            source = read_descriptor(repo, resolve(repo, from_ref, current).snapshot_id)
        info = _create_locked(repo, name, source, "worktree create")
        append_audit(repo, "worktree_create", name, f"from {from_ref}" if from_ref else "empty",
                     snapshot=source.snapshot_id if source else None)
        return info


def fork(repo: Repo, ref: str | None, name: str, *, current: str | None) -> WorktreeInfo:
    """A new worktree *name* at snapshot *ref*, or at the head of worktree *current*
    (its HEAD state: unsaved changes there are not carried over)."""
    from jvs.resolve import resolve

    name = validate_worktree_name(name)
    with repo_lock(repo, "fork"):
        if ref is None:
            if current is None:
                raise JvsError("E_NOT_FOUND", "fork needs a snapshot reference outside a "
                               "worktree", hint="jvs fork REF NAME")
            finish_pending_restore(repo, current)
            head = load_worktree_config(repo, current).head_snapshot_id
            if head is None:
                raise JvsError("E_NOT_FOUND", f"worktree {current!r} has no snapshots to fork",
                               hint="take one with 'jvs snapshot' first")
            sid = head
        else:
            sid = resolve(repo, ref, current).snapshot_id
        source = read_descriptor(repo, sid)
        info = _create_locked(repo, name, source, "fork")
        append_audit(repo, "fork", name, f"from {sid}", snapshot=sid, source_worktree=current)
        return info


def _create_locked(repo: Repo, name: str, source: Descriptor | None,
                   operation: str) -> WorktreeInfo:
    if name == "main" or repo.worktree_config_path(name).exists():
        raise JvsError("E_NAME_INVALID", f"worktree {name!r} already exists",
                       hint="pick another name, or see 'jvs worktree list'")
    target = repo.worktree_dir(name)
    (repo.root / "worktrees").mkdir(exist_ok=True)
    fsio.ensure_inside(repo.root, target.parent)
    if os.path.lexists(target):
        raise JvsError("E_NAME_INVALID", f"{target} already exists (not a worktree)",
                       hint="move it away or pick another name")
    sid = source.snapshot_id if source else None
    staged = None
    if source is not None:
        if source.is_partial:
            raise JvsError("E_PARTIAL_SNAPSHOT",
                           f"snapshot {sid} is partial ({', '.join(source.partial_paths)}); "
                           "a worktree starts from a full snapshot",
                           hint="fork from a full snapshot, then 'jvs restore' the partial one")
        staged = _stage(repo, source, name)
        crashpoint("worktree:after_stage")
    # Staging can take long enough for a JuiceFS session (and the lock) to expire; the
    # staged copy is left for the next attempt to replace, the worktree is not published.
    assert_lock_still_held(repo, operation)
    # Config first, then the payload appears by one rename: a crash leaves either no
    # worktree or a config whose payload dir is missing (recreated empty on next use).
    save_worktree_config(repo, WorktreeConfig(
        name=name, created_at=rfc3339_utc(), base_snapshot_id=sid, head_snapshot_id=sid,
        latest_snapshot_id=sid))
    if staged is not None:
        fsio.rename_noreplace(staged, target)
        fsio.remove_tree(staged.parent)
    else:
        target.mkdir()
    fsio.fsync_dir(target.parent)
    return WorktreeInfo(load_worktree_config(repo, name), target)


def _stage(repo: Repo, source: Descriptor, name: str) -> Path:
    from jvs.restore import checked_target_payload, clone_snapshot, work_dir

    payload = checked_target_payload(repo, source)
    work = work_dir(repo, name)  # the worktree does not exist yet: no restore uses it
    if os.path.lexists(work):
        fsio.remove_tree(work)
    work.mkdir(parents=True)
    staged = work / "payload"
    engine = choose_engine(repo.root, repo.config().engine).engine
    try:
        clone_snapshot(engine, payload, staged)
    except OSError as exc:
        fsio.remove_tree(work)
        raise JvsError("E_ENGINE", f"{engine.name} could not clone {source.snapshot_id}: "
                       f"{exc}") from exc
    marker = staged / READY_MARKER
    if os.path.lexists(marker) and not os.path.isdir(marker):
        os.unlink(marker)
    # The new worktree's files are not flushed, as a restore's are not (docs/guarantees.md):
    # the snapshot it came from is durable, so a power loss costs at most a restore. On the
    # copy engine the flush was most of a fork (2 GiB: 2-4 s on top of the copy).
    return staged


def rename(repo: Repo, old: str, new: str) -> WorktreeInfo:
    """Rename worktree *old* to *new* (never ``main``, either way). Its snapshots keep
    the name they were taken under."""
    old, new = validate_worktree_name(old), validate_worktree_name(new)
    if "main" in (old, new):
        raise JvsError("E_NAME_INVALID", "the main worktree cannot be renamed, nor can "
                       "another worktree take its name")
    with repo_lock(repo, "worktree rename"):
        config = load_worktree_config(repo, old)
        finish_pending_restore(repo, old)
        src = checked_worktree_dir(repo, old)
        if repo.worktree_config_path(new).exists() or os.path.lexists(repo.worktree_dir(new)):
            raise JvsError("E_NAME_INVALID", f"worktree {new!r} already exists")
        assert_lock_still_held(repo, "worktree rename")
        # New config, payload rename, old config: at every moment the payload dir has a
        # config naming it (a crash in between leaves an extra config 'doctor' reports).
        save_worktree_config(repo, WorktreeConfig(**{**config.__dict__, "name": new}))
        fsio.rename_noreplace(src, repo.worktree_dir(new))
        fsio.fsync_dir(src.parent)
        fsio.remove_tree(repo.worktree_config_path(old).parent)
        _drop_stat_cache(repo, old)
        append_audit(repo, "worktree_rename", new, f"renamed from {old}", old_name=old)
        return WorktreeInfo(load_worktree_config(repo, new), repo.worktree_dir(new))


def remove(repo: Repo, name: str, *, force: bool = False) -> WorktreeConfig:
    """Delete worktree *name*'s payload and config; its snapshots stay. Refuses unsaved
    work (E_UNSAVED) unless *force*."""
    name = validate_worktree_name(name)
    if name == "main":
        raise JvsError("E_NAME_INVALID", "the main worktree cannot be removed")
    with repo_lock(repo, "worktree remove"):
        config = load_worktree_config(repo, name)
        payload = repo.worktree_dir(name)
        if os.path.lexists(payload):
            fsio.ensure_inside(repo.root, payload)
            if os.path.islink(payload):
                raise JvsError("E_PATH_ESCAPE", f"worktree directory {payload} is a symlink",
                               hint="remove the symlink by hand")
            finish_pending_restore(repo, name)
            if not force:
                unsaved = find_unsaved(repo, config, worktree_payload(repo, name))
                if not unsaved.clean:
                    n = len(unsaved.changes.items)
                    raise JvsError("E_UNSAVED",
                                   f"worktree {name!r} has {n} unsaved change(s)",
                                   hint=f"snapshot them first (cd {payload} && jvs snapshot), "
                                   "or use --force to throw them away")
            # Scanning for unsaved work can outlast a JuiceFS session: check before deleting.
            assert_lock_still_held(repo, "worktree remove")
            # Payload first, config last: a crash in between leaves a config without
            # payload (harmless, removable again), never a payload without config.
            fsio.remove_tree(payload)
            fsio.fsync_dir(payload.parent)
        fsio.remove_tree(repo.worktree_config_path(name).parent)
        _drop_stat_cache(repo, name)
        append_audit(repo, "worktree_remove", name, "forced" if force else "clean",
                     head=config.head_snapshot_id)
        return config


def list_worktrees(repo: Repo) -> list[WorktreeInfo]:
    return [WorktreeInfo(load_worktree_config(repo, n), repo.worktree_dir(n))
            for n in list_worktree_names(repo)]


def path_of(repo: Repo, name: str) -> Path:
    load_worktree_config(repo, name)
    return worktree_payload(repo, name)


def _drop_stat_cache(repo: Repo, name: str) -> None:
    for host_dir in repo.cache_dir.glob("*"):
        (host_dir / f"stat-{name}.json").unlink(missing_ok=True)
