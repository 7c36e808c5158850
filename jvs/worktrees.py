"""Worktree operations (SPEC §4): create, fork, rename, remove, list, path.

A worktree is its config (``.jvs/worktrees/<name>/config.json``) and its payload dir
(``main/`` or ``worktrees/<name>/``). Names are checked (SPEC §2) before any path is
built from them, and every payload path is checked to resolve inside the repository, so
a worktree dir replaced by a symlink to elsewhere is refused before anything is touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from jvs import fsio
from jvs.audit import append_audit, recently_recorded
from jvs.crashpoints import crashpoint
from jvs.descriptor import Descriptor, read_descriptor
from jvs.engines import choose_engine
from jvs.errors import JvsError, io_error
from jvs.ids import rfc3339_utc
from jvs.integrity import READY_MARKER
from jvs.intents import Intent, WorktreeIntent, drop_intent, update_intent, write_intent
from jvs.lock import assert_lock_still_held, repo_lock, worktree_lock
from jvs.names import validate_worktree_name
from jvs.progress import counts
from jvs.recovery import settle_worktree
from jvs.repo import Repo
from jvs.restore import checked_worktree_dir
from jvs.statcache import drop_cache_files
from jvs.trash import empty_trash, trash_dir
from jvs.unsaved import find_unsaved
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


@dataclass(frozen=True)
class CreatedWorktree(WorktreeInfo):
    """``jvs worktree create`` and ``jvs fork``: the new worktree, in HEAD state at the
    snapshot it was made from (none: created empty)."""

    @property
    def source_snapshot_id(self) -> str | None:
        return self.config.head_snapshot_id

    def to_json(self) -> dict:
        return {**super().to_json(), "source_snapshot_id": self.source_snapshot_id}


@dataclass(frozen=True)
class RenamedWorktree(WorktreeInfo):
    """``jvs worktree rename OLD NEW``: the worktree under its new name."""

    old_name: str

    def to_json(self) -> dict:
        return {**super().to_json(), "old_name": self.old_name}


@dataclass(frozen=True)
class WorktreePath:
    """``jvs worktree path NAME``: where worktree *name*'s files are."""

    name: str
    path: Path

    def to_json(self) -> dict:
        return {"name": self.name, "path": str(self.path)}


def create(repo: Repo, name: str, from_ref: str | None = None, *,
           current: str | None = None) -> CreatedWorktree:
    """A new worktree *name*: empty, or holding snapshot *from_ref* (resolved from the
    point of view of worktree *current*, for ``HEAD``)."""
    from jvs.resolve import resolve

    name = validate_worktree_name(name)
    with worktree_lock(repo, name, "worktree create"):
        settle_worktree(repo, name, "worktree create")
        source = None
        if from_ref is not None:
            source = read_descriptor(repo, resolve(repo, from_ref, current).snapshot_id)
        return _create_locked(repo, WorktreeIntent(
            "worktree_create", name, snapshot_id=source.snapshot_id if source else None,
            created_at=rfc3339_utc(), reason=f"from {from_ref}" if from_ref else "empty"),
            source)


def fork(repo: Repo, ref: str | None, name: str, *, current: str | None,
         progress=None) -> CreatedWorktree:
    """A new worktree *name* at snapshot *ref*, or at the head of worktree *current*
    (its HEAD state: unsaved changes there are not carried over)."""
    from jvs.resolve import resolve

    name = validate_worktree_name(name)
    with worktree_lock(repo, name, "fork"):
        settle_worktree(repo, name, "fork")
        if ref is None:
            if current is None:
                raise JvsError("E_NOT_FOUND", "fork needs a snapshot reference outside a "
                               "worktree", hint="jvs fork REF NAME")
            head = load_worktree_config(repo, current).head_snapshot_id
            if head is None:
                raise JvsError("E_NOT_FOUND", f"worktree {current!r} has no snapshots to fork",
                               hint="take one with 'jvs snapshot' first")
            sid = head
        else:
            sid = resolve(repo, ref, current).snapshot_id
        source = read_descriptor(repo, sid)
        if progress:
            progress(f"cloning {sid}")
        return _create_locked(repo, WorktreeIntent(
            "fork", name, snapshot_id=sid, created_at=rfc3339_utc(), source_worktree=current,
            reason=f"from {sid}"), source, progress)


def _create_locked(repo: Repo, rec: WorktreeIntent, source: Descriptor | None,
                   progress=None) -> CreatedWorktree:
    """intent → stage the payload (a clone of *source*, or an empty dir) → rename it into
    place → config (the commit point: the config makes it a worktree) → audit → drop the
    intent. A crash before the rename leaves only staging (rolled back); after it, the
    worktree is finished from the intent (finish_worktree_operation)."""
    name = rec.name
    if name == "main" or repo.worktree_config_path(name).exists():
        raise JvsError("E_NAME_INVALID", f"worktree {name!r} already exists",
                       hint="pick another name, or see 'jvs worktree list'")
    target = repo.worktree_dir(name)
    (repo.root / "worktrees").mkdir(exist_ok=True)
    fsio.ensure_inside(repo.root, target.parent)
    if os.path.lexists(target):
        raise JvsError("E_NAME_INVALID", f"{target} already exists (not a worktree)",
                       hint="move it away or pick another name")
    if source is not None and source.is_partial:
        raise JvsError("E_PARTIAL_SNAPSHOT",
                       f"snapshot {source.snapshot_id} is partial "
                       f"({', '.join(source.partial_paths)}); a worktree starts from a full "
                       "snapshot",
                       hint="fork from a full snapshot, then 'jvs restore' the partial one")
    intent = write_intent(repo, rec)
    try:
        staged = _stage(repo, source, name, progress)
        crashpoint("worktree:after_stage")
        # Staging can take long enough for a JuiceFS session (and the lock) to expire.
        assert_lock_still_held(repo, rec.operation)
        fsio.rename_noreplace(staged, target)
    except BaseException:
        _remove_staging(repo, name)
        drop_intent(intent)
        raise
    fsio.fsync_dir(target.parent)
    crashpoint("worktree:after_payload")
    _finish_create(repo, rec)
    drop_intent(intent)
    return CreatedWorktree(load_worktree_config(repo, name), target)


def _finish_create(repo: Repo, rec: WorktreeIntent) -> None:
    """The steps after the payload is in place; each is skipped if already done."""
    if not repo.worktree_config_path(rec.name).exists():
        sid = rec.snapshot_id
        save_worktree_config(repo, WorktreeConfig(
            name=rec.name, created_at=rec.created_at or rfc3339_utc(), base_snapshot_id=sid,
            head_snapshot_id=sid, latest_snapshot_id=sid))
    _remove_staging(repo, rec.name)
    operation = "fork" if rec.operation == "fork" else "worktree_create"
    if not recently_recorded(repo, operation, rec.name):
        append_audit(repo, operation, rec.name, rec.reason or "", snapshot=rec.snapshot_id,
                     source_worktree=rec.source_worktree)


def _stage(repo: Repo, source: Descriptor | None, name: str, progress=None) -> Path:
    """The new worktree's payload, made next to where it will be (same filesystem). An
    engine that copies file by file counts them for a listener, against the totals of the
    snapshot's manifest; a metadata clone is one step, shown by its stage name."""
    from jvs.progress import SILENT
    from jvs.restore import checked_target_payload, clone_snapshot, work_dir

    work = work_dir(repo, name)  # the worktree does not exist yet: no restore uses it
    if os.path.lexists(work):
        fsio.remove_tree(work)
    work.mkdir(parents=True)
    staged = work / "payload"
    if source is None:
        staged.mkdir()
        return staged
    payload = checked_target_payload(repo, source)
    engine = choose_engine(repo.root, repo.config().engine).engine
    meter = counts(progress)
    try:
        if meter is not SILENT and engine.capabilities.walks_files:
            from jvs.changes import snapshot_entries

            files = [e for e in snapshot_entries(repo, source) if e.kind == "file"]
            meter.start(len(files), sum(e.size for e in files))
            engine.clone(payload, staged, meter=meter)
        else:
            clone_snapshot(engine, payload, staged)
    except OSError as exc:
        raise io_error(exc, f"{engine.name} could not clone {source.snapshot_id}") from exc
    marker = staged / READY_MARKER
    if source.has_ready_marker and os.path.lexists(marker) and not os.path.isdir(marker):
        os.unlink(marker)
    # The new worktree's files are not flushed, as a restore's are not (docs/guarantees.md):
    # the snapshot it came from is durable, so a power loss costs at most a restore. On the
    # copy engine the flush was most of a fork (2 GiB: 2-4 s on top of the copy).
    return staged


def _remove_staging(repo: Repo, name: str) -> None:
    from jvs.restore import work_dir

    work = work_dir(repo, name)
    if os.path.lexists(work):
        fsio.ensure_inside(repo.jvs_dir, work)
        fsio.remove_tree(work)


def rename(repo: Repo, old: str, new: str) -> RenamedWorktree:
    """Rename worktree *old* to *new* (never ``main``, either way). Its snapshots keep
    the name they were taken under."""
    old, new = validate_worktree_name(old), validate_worktree_name(new)
    if "main" in (old, new):
        raise JvsError("E_NAME_INVALID", "the main worktree cannot be renamed, nor can "
                       "another worktree take its name")
    with repo_lock(repo, "worktree rename"):
        settle_worktree(repo, old, "worktree rename")
        settle_worktree(repo, new, "worktree rename")
        load_worktree_config(repo, old)
        checked_worktree_dir(repo, old)
        if repo.worktree_config_path(new).exists() or os.path.lexists(repo.worktree_dir(new)):
            raise JvsError("E_NAME_INVALID", f"worktree {new!r} already exists")
        assert_lock_still_held(repo, "worktree rename")
        rec = WorktreeIntent("worktree_rename", old, new_name=new,
                             reason=f"renamed from {old}")
        intent = write_intent(repo, rec)
        _finish_rename(repo, rec)
        drop_intent(intent)
        return RenamedWorktree(load_worktree_config(repo, new), repo.worktree_dir(new), old)


def _finish_rename(repo: Repo, rec: WorktreeIntent) -> None:
    """New config, payload rename, old config removed: at every moment the payload dir has
    a config naming it. Every step is skipped if already done, so this also finishes a
    rename that crashed anywhere."""
    old, new = rec.name, rec.new_name
    old_config = repo.worktree_config_path(old)
    if not repo.worktree_config_path(new).exists():
        config = load_worktree_config(repo, old)
        save_worktree_config(repo, replace(config, name=new))
    src, dst = repo.worktree_dir(old), repo.worktree_dir(new)
    if os.path.lexists(src) and not os.path.lexists(dst):
        fsio.rename_noreplace(src, dst)
        fsio.fsync_dir(src.parent)
    if os.path.lexists(old_config.parent):
        fsio.remove_tree(old_config.parent)
    _drop_stat_cache(repo, old)
    if not recently_recorded(repo, "worktree_rename", new):
        append_audit(repo, "worktree_rename", new, rec.reason or "", old_name=old)


@dataclass(frozen=True)
class RemoveResult:
    """``jvs worktree remove``: the worktree removed (its config as it was), and where its
    unsaved work went."""

    worktree: WorktreeConfig
    path: Path
    forced: bool = False
    rescue: Descriptor | None = None  # where the unsaved work went (--force)
    unsaved: int = 0  # unsaved changes found (kept in the rescue, or discarded)
    discarded: bool = False  # --discard-unsaved: whatever was unsaved is gone

    def to_json(self) -> dict:
        return {"name": self.worktree.name, "removed": True, "forced": self.forced,
                "path": str(self.path), "head_snapshot_id": self.worktree.head_snapshot_id,
                "rescue_id": self.rescue.snapshot_id if self.rescue else None,
                "unsaved_changes": self.unsaved, "discarded_unsaved": self.discarded}


PREPARE, RESCUE = "prepare", "rescue"  # a forced remove's phases, as its intent has them


def remove(repo: Repo, name: str, *, force: bool = False, discard_unsaved: bool = False,
           progress=None) -> RemoveResult:
    """Delete worktree *name*'s payload and config; its snapshots stay. Unsaved work is
    refused (E_UNSAVED) unless *force*; forced, it first becomes a rescue snapshot (as a
    restore's does: moved, not copied), unless *discard_unsaved* (which implies *force*).

    intent → [the rescue's base staged → phase ``rescue`` → unsaved work moved into it →
    the rescue published] → payload to the trash → config → audit → drop the intent. The
    rescue is published before anything is deleted; a crash before the first move is
    forgotten (nothing changed), one after it is finished (jvs.recovery)."""
    name = validate_worktree_name(name)
    force = force or discard_unsaved
    if name == "main":
        raise JvsError("E_NAME_INVALID", "the main worktree cannot be removed")
    # The repository lock, exclusively: no snapshot or restore of this worktree (they
    # hold it shared) can run, so the rescue is made without its worktree lock.
    with repo_lock(repo, "worktree remove"):
        settle_worktree(repo, name, "worktree remove")
        config = load_worktree_config(repo, name)
        payload = repo.worktree_dir(name)
        rec = WorktreeIntent("worktree_remove", name, snapshot_id=config.head_snapshot_id,
                             reason="forced" if force else "clean")
        known = base = None
        if os.path.lexists(payload):
            fsio.ensure_inside(repo.root, payload)
            if os.path.islink(payload):
                raise JvsError("E_PATH_ESCAPE", f"worktree directory {payload} is a symlink",
                               hint="remove the symlink by hand")
            if not discard_unsaved:
                if progress:
                    progress("checking for unsaved work")
                unsaved = find_unsaved(repo, config, worktree_payload(repo, name))
                if not unsaved.clean:
                    n = len(unsaved.changes.items)
                    if not force:
                        raise JvsError(
                            "E_UNSAVED", f"worktree {name!r} has {n} unsaved change(s): "
                            "--force removes it and keeps them as a rescue snapshot, "
                            "--force --discard-unsaved removes it and drops them",
                            hint=f"or snapshot them first (cd {payload} && jvs snapshot)")
                    rec, base, known = _plan_rescue(repo, config, unsaved, rec)
            # Scanning for unsaved work can outlast a JuiceFS session: check before deleting.
            assert_lock_still_held(repo, "worktree remove")
        intent = write_intent(repo, rec)
        rescue = None
        if rec.rescue_id:
            if progress:
                progress("keeping unsaved work as a rescue snapshot")
            rescue = _rescue_first(repo, intent, base, known)
        _finish_remove(repo, rec)
        drop_intent(intent)
        if progress:
            progress("deleting")
        empty_trash(repo, meter=counts(progress))
        return RemoveResult(config, payload, force, rescue, rec.unsaved, discard_unsaved)


def _plan_rescue(repo: Repo, config: WorktreeConfig, unsaved, rec: WorktreeIntent):
    """The rescue of a worktree about to be removed, as restore plans one (jvs.rescue):
    from a clone of the head (or its nearest full ancestor), every unsaved entry moved
    in, since all of the worktree is leaving. Returns the intent that records it, the
    base, and the hashes already read (so the rescue's manifest reads no file again)."""
    from jvs.changes import snapshot_entries
    from jvs.ids import new_snapshot_id
    from jvs.ignore import IgnoreRules
    from jvs.plan import holding_dirs, plan
    from jvs.rescue import plan_rescue
    from jvs.restore import check_path_lengths, rescue_base
    from jvs.statcache import StatCache
    from jvs.unsaved import identity, read_worktree

    payload = worktree_payload(repo, config.name)
    state = unsaved.worktree
    base = rescue_base(repo, config)
    algo = base.payload_hash_algo if base else repo.config().payload_hash_algo
    ignore = IgnoreRules.load(payload)
    if any(e.kind == "file" and len(e.hash) != len(_hash_of(algo))
           for e in state.entries.values()):  # the head's algorithm is not the base's
        state = read_worktree(payload, algo, StatCache.load(repo, config.name, algo), ignore)
    held = holding_dirs(state.ignored)
    leaving = plan(state.entries, {}, held=held)  # the removal, as a restore to nothing
    base_entries = {e.relpath: e for e in snapshot_entries(repo, base)} if base else {}
    transfers = plan_rescue(base_entries, state, leaving, (), held)
    rescue_id = new_snapshot_id()
    check_path_lengths(repo, rescue_id, transfers)
    known = {r: (identity(state.stats[r]), e.hash) for r, e in state.entries.items()
             if e.kind == "file"}
    return replace(rec, phase=PREPARE, rescue_id=rescue_id,
                   rescue_base=base.snapshot_id if base else None,
                   transfers=tuple(t.to_json() for t in transfers),
                   ignore_rules=ignore.text if ignore else None,
                   unsaved=len(unsaved.changes.items)), base, known


def _hash_of(algo: str) -> str:
    from jvs.integrity import hash_bytes

    return hash_bytes(algo, b"")


def _rescue_first(repo: Repo, intent: Intent, base: Descriptor | None, known: dict
                  ) -> Descriptor:
    """Stage the rescue's base (a failure there changes nothing: the remove is dropped),
    then move the unsaved work into it and publish it."""
    from jvs.rescue import build_base
    from jvs.restore import remove_work_dir, work_dir

    rec: WorktreeIntent = intent.record
    engine = choose_engine(repo.root, repo.config().engine).engine
    try:
        work_dir(repo, rec.name).mkdir(parents=True, exist_ok=True)
        build_base(repo, engine, base, work_dir(repo, rec.name) / "rescue")
    except BaseException:
        remove_work_dir(repo, rec.name)
        drop_intent(intent)
        raise
    crashpoint("worktree:after_rescue_base")
    # The first step that touches the worktree: never take it without the lock.
    assert_lock_still_held(repo, "worktree remove")
    intent = update_intent(intent, replace(rec, phase=RESCUE))
    rescue = _make_rescue(repo, rec, known, resuming=False)
    crashpoint("worktree:after_rescue")
    return rescue


def _make_rescue(repo: Repo, rec: WorktreeIntent, known: dict | None, *, resuming: bool
                 ) -> Descriptor:
    """Move the unsaved work into the rescue's base and publish it; every step is skipped
    if done, so this also finishes one that crashed (*resuming*: a move whose entry
    changed since is refused, E_UNSAVED)."""
    from jvs.changes import snapshot_entries
    from jvs.rescue import Transfer, carry_out, publish_rescue, rescue_manifest
    from jvs.restore import work_dir

    if repo.descriptor_path(rec.rescue_id).exists():
        return read_descriptor(repo, rec.rescue_id, verify=False)
    base = read_descriptor(repo, rec.rescue_base, verify=False) if rec.rescue_base else None
    transfers = [Transfer.from_json(t) for t in rec.transfers]
    rescue_dir = work_dir(repo, rec.name) / "rescue"
    if not os.path.isdir(repo.payload_dir(rec.rescue_id)):
        engine = choose_engine(repo.root, repo.config().engine).engine
        carry_out(worktree_payload(repo, rec.name), rescue_dir, transfers, engine,
                  resuming=resuming)
        crashpoint("worktree:after_move_to_rescue")
    source = rescue_dir if os.path.isdir(rescue_dir) else repo.payload_dir(rec.rescue_id)
    algo = base.payload_hash_algo if base else repo.config().payload_hash_algo
    base_entries = {e.relpath: e for e in snapshot_entries(repo, base)} if base else {}
    manifest = rescue_manifest(base_entries, transfers, source, algo, known)
    return publish_rescue(repo, rec.rescue_id, rescue_dir, manifest, algo=algo,
                          worktree=rec.name, parent_id=rec.snapshot_id, target_id=None,
                          units=(), note=f"rescue: unsaved work of worktree {rec.name} "
                                         "when it was removed")


def _check_left_as_crashed(repo: Repo, rec: WorktreeIntent) -> None:
    """Before a crashed forced remove deletes what is left of the worktree: that must be
    exactly the rescue without what moved into it (plus ignored content). Anything else
    was written after the crash, and is not deleted: E_UNSAVED."""
    from jvs.changes import compare, snapshot_entries
    from jvs.ignore import IgnoreRules
    from jvs.plan import covered
    from jvs.rescue import MOVE, Transfer
    from jvs.statcache import StatCache
    from jvs.unsaved import read_worktree

    rescue = read_descriptor(repo, rec.rescue_id, verify=False)
    moved = [t.path for t in map(Transfer.from_json, rec.transfers) if t.action == MOVE]
    left = [e for e in snapshot_entries(repo, rescue) if not covered(e.relpath, moved)]
    algo = rescue.payload_hash_algo
    state = read_worktree(worktree_payload(repo, rec.name), algo,
                          StatCache.load(repo, rec.name, algo),
                          IgnoreRules(rec.ignore_rules or ""))
    changed = compare(left, list(state.entries.values())).items
    if changed:
        raise JvsError("E_UNSAVED",
                       f"worktree {rec.name!r} changed after its removal crashed "
                       f"({changed[0].relpath}{' and more' if len(changed) > 1 else ''}); "
                       "it is not deleted", hint=f"its unsaved work is safe in rescue "
                       f"{rec.rescue_id}; move the new change out of the worktree, then run "
                       "'jvs doctor --repair-runtime'")


def _finish_remove(repo: Repo, rec: WorktreeIntent) -> None:
    """The payload goes to the trash by one rename (the worktree is there or gone, never
    half-deleted), then the config. Every step is skipped if already done."""
    payload = repo.worktree_dir(rec.name)
    # The config goes last, so a payload with no config is not one this removal moves.
    if os.path.lexists(payload) and repo.worktree_config_path(rec.name).exists():
        trash_dir(repo).mkdir(parents=True, exist_ok=True)
        fsio.rename_noreplace(payload, trash_dir(repo) / f"{rec.name}-{os.urandom(4).hex()}")
        fsio.fsync_dir(payload.parent)
    if os.path.lexists(repo.worktree_config_path(rec.name).parent):
        fsio.remove_tree(repo.worktree_config_path(rec.name).parent)
    if rec.rescue_id:
        from jvs.restore import remove_work_dir

        remove_work_dir(repo, rec.name)  # the rescue's staging, emptied by its publish
    _drop_stat_cache(repo, rec.name)
    if not recently_recorded(repo, "worktree_remove", rec.name):
        append_audit(repo, "worktree_remove", rec.name, rec.reason or "",
                     head=rec.snapshot_id, rescue=rec.rescue_id)


def _finish_crashed_remove(repo: Repo, rec: WorktreeIntent) -> str:
    """A remove with its payload and config still in place changed nothing, unless it
    was moving unsaved work into its rescue: then the rescue is finished and published,
    and the rest removed (only if nobody wrote in the worktree since the crash)."""
    from jvs.restore import remove_work_dir

    in_place = os.path.lexists(repo.worktree_dir(rec.name)) \
        and repo.worktree_config_path(rec.name).exists()
    if rec.rescue_id and not repo.descriptor_path(rec.rescue_id).exists():
        if rec.phase == PREPARE:  # only the rescue's base was staged
            remove_work_dir(repo, rec.name)
            return f"rolled back the removal of worktree {rec.name} (nothing was removed)"
        _make_rescue(repo, rec, None, resuming=True)
    if rec.rescue_id and in_place:
        _check_left_as_crashed(repo, rec)
    elif in_place:
        return f"rolled back the removal of worktree {rec.name} (nothing was removed)"
    _finish_remove(repo, rec)
    kept = f"; unsaved work kept as rescue {rec.rescue_id}" if rec.rescue_id else ""
    return f"finished removing worktree {rec.name}{kept}"


def finish_worktree_operation(repo: Repo, intent: Intent) -> str:
    """Finish a crashed create, fork, rename or remove from its intent (the caller holds
    the lock). A create whose payload never reached its place is rolled back (only
    staging existed); a remove whose payload is still in place is rolled back (nothing
    was removed); everything else is finished."""
    rec: WorktreeIntent = intent.record
    if rec.operation in ("worktree_create", "fork"):
        if os.path.lexists(repo.worktree_dir(rec.name)):
            _finish_create(repo, rec)
            done = f"finished creating worktree {rec.name}"
        else:
            _remove_staging(repo, rec.name)
            done = f"rolled back the creation of worktree {rec.name}"
    elif rec.operation == "worktree_rename":
        _finish_rename(repo, rec)
        done = f"finished renaming worktree {rec.name} to {rec.new_name}"
    elif rec.operation == "worktree_remove":
        done = _finish_crashed_remove(repo, rec)
    else:
        raise JvsError("E_BUSY", f"unknown worktree operation {rec.operation!r}")
    drop_intent(intent)
    return done


def list_worktrees(repo: Repo) -> list[WorktreeInfo]:
    return [WorktreeInfo(load_worktree_config(repo, n), repo.worktree_dir(n))
            for n in list_worktree_names(repo)]


@dataclass(frozen=True)
class WorktreeList(Sequence[WorktreeInfo]):
    """``jvs worktree list``: every worktree, and the one it was asked from."""

    current: str | None
    worktrees: tuple[WorktreeInfo, ...]

    def __len__(self) -> int:
        return len(self.worktrees)

    def __getitem__(self, i):
        return self.worktrees[i]

    def to_json(self) -> dict:
        return {"current": self.current, "worktrees": [i.to_json() for i in self.worktrees]}


def worktree_list(repo: Repo, current: str | None = None) -> WorktreeList:
    return WorktreeList(current, tuple(list_worktrees(repo)))


def worktree_path(repo: Repo, name: str) -> WorktreePath:
    """Where worktree *name*'s files are (E_NOT_FOUND for no such worktree)."""
    load_worktree_config(repo, name)
    return WorktreePath(name, worktree_payload(repo, name))


def _drop_stat_cache(repo: Repo, name: str) -> None:
    drop_cache_files(repo, name)
