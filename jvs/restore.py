"""Restoring a worktree to a snapshot (SPEC §6): in place, and it costs what changed.

read the worktree (a stat walk; only files whose stat changed are read) → plan the steps
from the worktree to the target (jvs.plan) → intent, with the plan → stage each changed
entry of the target with the engine, and the rescue's base → [rescue: unsaved work moved
into it, published] → swap each changed entry: the worktree's out to the side, the staged
one in → worktree config → audit → clean up, drop the intent → stat cache.

Why this shape:
- Unchanged files and directories are never moved, copied, renamed or read: on every
  engine and layout, a one-file change costs a stat walk and one clone.
- The worktree directory itself is never replaced, only entries in it: its inode
  survives, and a shell whose cwd is the worktree keeps working.
- Unsaved work becomes a rescue snapshot before anything is replaced, by moving it (see
  jvs.rescue), never by copying the tree.
- The intent records the phase and the plan. Before RESCUE the worktree is untouched (a
  crash: the restore is forgotten). From then on, roll_forward finishes it from the plan,
  every step skipped if already done, and only if the worktree is as the crash left it
  (else E_UNSAVED: work done after a crash is never moved).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from jvs import fsio
from jvs.audit import append_audit
from jvs.changes import differing, snapshot_entries, snapshot_manifest, visible
from jvs.crashpoints import crashpoint, profile_step
from jvs.descriptor import Descriptor, read_descriptor
from jvs.engines import choose_engine
from jvs.errors import JvsError, io_error
from jvs.ids import new_snapshot_id
from jvs.ignore import IgnoreRules
from jvs.integrity import READY_MARKER, Entry, read_trusted_manifest, scan
from jvs.intents import Intent, RestoreIntent, drop_intent, intents_of, update_intent, write_intent
from jvs.lock import assert_lock_still_held, worktree_lock
from jvs.names import validate_worktree_name
from jvs.plan import ADD, MODE, REPLACE, Step, covered, holding_dirs, plan, subtree
from jvs.progress import SILENT, batched, counts
from jvs.progress import Progress as Counts
from jvs.repo import Repo
from jvs.rescue import (
    MOVE,
    Transfer,
    build_base,
    carry_out,
    make_parents,
    plan_rescue,
    publish_rescue,
    rename_even_read_only,
    rescue_manifest,
    writable,
)
from jvs.statcache import CachePatch, StatCache, racy_window_ns, stat_cache_path
from jvs.trash import empty_trash, move_to_trash
from jvs.unsaved import (
    WorktreeState,
    fingerprint_now,
    fingerprint_read,
    identity,
    read_thin,
    read_worktree,
    under,
    unsaved_work,
)
from jvs.worktree import (
    WorktreeConfig,
    load_worktree_config,
    save_worktree_config,
    worktree_payload,
)

Progress = Callable[[str], None]
CONFLICTS = "jvs-restore-conflicts"  # where work written into moving entries is kept
PATH_MAX = 4096


class Phase(StrEnum):
    """Where a restore is, as its intent records it."""

    PREPARE = "prepare"  # staging; the worktree is untouched
    RESCUE = "rescue"  # unsaved work is moving into the rescue
    SWAP = "swap"  # changed entries are being swapped
    DONE = "done"  # config and audit written: only clean-up is left


@dataclass(frozen=True)
class RestoreResult:
    worktree: WorktreeConfig  # the config after the restore
    target: Descriptor
    previous_head: str | None
    rescue: Descriptor | None = None  # where the unsaved work went
    discarded: bool = False  # discard_unsaved: whatever was unsaved is gone (not counted)
    unsaved: int = 0  # unsaved changes found and rescued
    unchanged: bool = False  # already there and clean: nothing was moved
    finished: tuple[str, ...] = ()  # crashed restores finished first (what was done)
    not_restored: tuple[str, ...] = ()  # the snapshot's paths that .jvsignore now ignores
    changed: int = 0  # entries the restore replaced, added, removed or re-moded
    conflicts: tuple[str, ...] = ()  # written during the restore, kept in CONFLICTS
    paths: tuple[str, ...] = ()  # only these were restored (restore REF -- PATH...)

    @property
    def detached(self) -> bool:
        return self.worktree.detached

    def to_json(self) -> dict:
        """``jvs restore --json``."""
        wt = self.worktree
        return {
            "worktree": wt.name,
            "snapshot_id": self.target.snapshot_id,
            "short_id": self.target.short_id,
            "previous_head": self.previous_head,
            "head_snapshot_id": wt.head_snapshot_id,
            "latest_snapshot_id": wt.latest_snapshot_id,
            "detached": wt.detached,
            "rescue_id": self.rescue.snapshot_id if self.rescue else None,
            "unsaved_changes": self.unsaved,
            "discarded_unsaved": self.discarded,
            "partial_paths": list(self.target.partial_paths),
            "unchanged": self.unchanged,
            "finished_interrupted": list(self.finished),
            "not_restored": list(self.not_restored),
            "paths": list(self.paths),
            "changed_entries": self.changed,
            "conflicts": list(self.conflicts),
        }


# --------------------------------------------------------------------------- public API

def restore(repo: Repo, worktree: str, ref: str, *, discard_unsaved: bool = False,
            paths: tuple[str, ...] = (), progress: Progress | None = None,
            verify_payload: bool = False) -> RestoreResult:
    """Make *worktree* hold snapshot *ref* (``HEAD``: the worktree's latest snapshot), or
    only its *paths*. Unsaved work first becomes a rescue snapshot unless
    *discard_unsaved*. The target's descriptor checksum is always checked first; with
    *verify_payload* its whole payload is hashed too, before anything changes. When this
    returns, the restore is complete and nothing of it runs on."""
    from jvs.recovery import settle_worktree
    from jvs.resolve import resolve

    worktree = validate_worktree_name(worktree)
    profile_step("restore:start")
    with worktree_lock(repo, worktree, "restore"):
        profile_step("restore:locked")
        finished = settle_worktree(repo, worktree, "restore")
        finished += finish_pending_restore(repo, worktree)
        wt = load_worktree_config(repo, worktree)
        if ref.strip() == "HEAD":
            if wt.latest_snapshot_id is None:
                raise JvsError("E_NOT_FOUND", f"worktree {worktree!r} has no snapshots yet",
                               hint="take one with 'jvs snapshot'")
            target_id = wt.latest_snapshot_id
        else:
            target_id = resolve(repo, ref, worktree).snapshot_id
        if verify_payload:
            check_payload_first(repo, target_id, progress)
        result = restore_locked(repo, worktree, target_id, discard_unsaved=discard_unsaved,
                                paths=paths, progress=progress)
        return replace(result, finished=tuple(finished))


def check_payload_first(repo: Repo, target_id: str, progress: Progress | None) -> None:
    """Refuse, with verify's own error class, unless the snapshot is exactly what was
    published: ``restore --verify``."""
    from jvs.verify import VerifyReport, verify_snapshot

    if progress:
        progress(f"verifying {target_id}")
    result = verify_snapshot(repo, target_id)
    error = VerifyReport([result]).error() if not (result.checksum_valid and
                                                    result.payload_hash_valid) else None
    if error is not None:
        raise JvsError(error.code, f"snapshot {target_id} is TAMPERED: "
                       f"{'; '.join(result.problems)}; nothing was changed",
                       hint=f"'jvs verify {target_id}' names the files; restore another "
                            "snapshot")


def restore_locked(repo: Repo, worktree: str, target_id: str, *, discard_unsaved: bool,
                   paths: tuple[str, ...] = (), progress: Progress | None = None
                   ) -> RestoreResult:
    """The protocol; the caller holds the lock and no restore of *worktree* is pending."""
    target = read_descriptor(repo, target_id, verify=True)  # its checksum, first
    checked_target_payload(repo, target)
    wt = load_worktree_config(repo, worktree)
    payload = checked_worktree_dir(repo, worktree)
    units = restored_paths(payload, target, paths)
    ignore = IgnoreRules.load(payload)
    algo = target.payload_hash_algo
    profile_step("restore:read_target")

    if progress:
        progress("checking the worktree")
    thin = None if units else read_thin(repo, wt, payload, target, ignore, discard_unsaved)
    if thin is not None:
        state, theirs, mine, unsaved, target_count = thin
        ours, wanted = anchored(state, mine, theirs, ignore, ())
        profile_step("restore:read_worktree")
    else:
        cache = StatCache.load(repo, worktree, algo)
        state = read_worktree(payload, algo, cache, ignore, units,
                              hash_unknown=not discard_unsaved)
        # What the read found is saved now and the cache let go of (20 MB at 100,000
        # files) before the comparisons below, the restore's peak; what the restore
        # writes is recorded at its end, into the cache as saved here.
        cache.save(keep=None if units else set(state.stats))
        del cache
        profile_step("restore:read_worktree")
        target_text = snapshot_manifest(repo, target)
        target_count = target_text.count(b"\n")
        ours, wanted = differing_parts(state, target_text, ignore, units)
        del target_text  # 7 MB at 100,000 files: not held while the head's is read
    missing = [u for u in units if paths and u not in wanted]
    if missing:
        raise JvsError("E_NOT_FOUND", f"{missing[0]} is not in snapshot {target_id}"
                       + (" (or .jvsignore ignores it)" if ignore else ""),
                       hint="'jvs diff' or the view shows what it holds; nothing was changed")
    held = holding_dirs(state.ignored)
    steps = plan(ours, wanted, held=held, units=units)
    if thin is None:
        unsaved = None
        if not discard_unsaved:
            unsaved = unsaved_work(repo, wt, _state_in(state, wt, repo, payload, ignore, units),
                                   ignore, units)
    profile_step("restore:planned")
    head_after = wt.head_snapshot_id if paths else target_id
    if not steps and head_after == wt.head_snapshot_id and (unsaved is None or unsaved.clean):
        append_audit(repo, "restore", target_id, "already there", worktree=worktree,
                     paths=list(paths) or None)
        return RestoreResult(wt, target, wt.head_snapshot_id, unchanged=True, paths=paths)
    check_movable(payload, state, steps)
    engine = choose_engine(repo.root, repo.config().engine).engine

    rescue_id = transfers = base = None
    if unsaved is not None and not unsaved.clean:
        base = rescue_base(repo, wt)
        base_entries = _entries_under(base, units, repo)
        transfers = plan_rescue(base_entries, _state_in(state, wt, repo, payload, ignore,
                                                        units, base), steps, units, held)
        rescue_id = new_snapshot_id()
        check_path_lengths(repo, rescue_id, transfers)
    steps = recognisable(state, steps, moved_by(transfers or ()))
    rec = RestoreIntent(
        worktree=worktree, target_id=target_id, phase=Phase.PREPARE.value,
        previous_head=wt.head_snapshot_id, rescue_id=rescue_id, discard=discard_unsaved,
        paths=tuple(paths), unsaved=len(unsaved.changes.items) if unsaved else 0,
        ignore_rules=ignore.text if ignore else None,
        steps=tuple(s.to_json() for s in steps),
        transfers=tuple(t.to_json() for t in transfers or ()),
        rescue_base=base.snapshot_id if base else None)
    intent = write_intent(repo, rec)
    crashpoint("restore:after_intent")

    if progress:
        progress(f"staging {sum(s.action in (ADD, REPLACE) for s in steps)} changed entries")
    try:
        stage(repo, engine, target, steps, work_dir(repo, worktree),
              target_count, meter=counts(progress), entries=wanted)
        if base is not None or rescue_id:
            build_base(repo, engine, base, work_dir(repo, worktree) / "rescue", units)
    except BaseException:
        # Nothing in the worktree moved: forget this restore entirely, so a failed
        # attempt (disk full, engine error, Ctrl-C) is not replayed by the next command.
        remove_work_dir(repo, worktree)
        drop_intent(intent)
        raise
    crashpoint("restore:after_stage")
    known = {r: (identity(state.stats[r]), e.hash) for r, e in state.entries.items()
             if e.kind == "file"} if transfers else None
    # From here on only the stats are read (conflicts, the stat cache): the entries go
    # (20 MB at 100,000 files) before the cache is loaded again to record the restore.
    state.entries.clear()
    # A thin read holds only what the restore touches: the cache is patched, not
    # rewritten from it.
    cache = CachePatch(stat_cache_path(repo, worktree), algo) if thin is not None \
        else StatCache.load(repo, worktree, algo)
    result = roll_forward(repo, intent, fresh=True, known=known, cache=cache, state=state,
                          wanted=wanted)
    not_restored = ignored_in_snapshot(repo, target, ignore) if ignore else []
    return replace(result, not_restored=tuple(p for p in not_restored
                                              if not units or under(p, units)))


def finish_restore(repo: Repo, intent: Intent) -> RestoreResult:
    """Finish a restore that crashed (the caller holds the lock: ``jvs doctor --repair
    finish_restore``, or the next restore of that worktree). One that had not touched the
    worktree is forgotten; otherwise it is finished, if the worktree is as the crash left
    it (E_UNSAVED if not)."""
    rec: RestoreIntent = intent.record
    if forget_untouched_restore(repo, intent):
        wt = load_worktree_config(repo, rec.worktree)
        return RestoreResult(wt, read_descriptor(repo, rec.target_id, verify=False),
                             wt.head_snapshot_id, unchanged=True)
    return roll_forward(repo, intent, fresh=False)


def forget_untouched_restore(repo: Repo, intent: Intent) -> bool:
    """Drop a crashed restore that had not yet touched the worktree (and its staging);
    False if it had: then only finishing it is safe."""
    rec: RestoreIntent = intent.record
    if rec.phase != Phase.PREPARE.value:
        return False
    remove_work_dir(repo, validate_worktree_name(rec.worktree))
    drop_intent(intent)
    return True


def pending_restore(repo: Repo, worktree: str) -> Intent | None:
    found = intents_of(repo, RestoreIntent, worktree=worktree)
    return found[0] if found else None


def finish_pending_restore(repo: Repo, worktree: str) -> list[str]:
    """Finish a crashed restore of *worktree*, if any (caller holds the lock). Returns
    what was done, for the user."""
    intent = pending_restore(repo, worktree)
    if intent is None:
        return []
    result = finish_restore(repo, intent)
    if result.unchanged:
        return [f"forgot a restore to {result.target.snapshot_id} that crashed before it "
                "changed anything"]
    rescue = f"; unsaved work kept as rescue {result.rescue.snapshot_id}" \
        if result.rescue else ""
    return [f"finished an interrupted restore to {result.target.snapshot_id}{rescue}"]


# ---------------------------------------------------------------------------- the steps

def work_dir(repo: Repo, worktree: str) -> Path:
    """Where a restore of *worktree* keeps what it stages (``target/<n>`` for step n, the
    rescue being built, ``old/<n>`` for what step n moved out): under ``.jvs/`` (same
    filesystem as the worktrees, never a payload), one per worktree. Numbered names keep
    these paths short whatever the depth of the worktree's."""
    return repo.jvs_dir / "restore" / validate_worktree_name(worktree)


def remove_work_dir(repo: Repo, worktree: str, *, only_leftovers: bool = False) -> None:
    path = work_dir(repo, worktree)
    if not os.path.lexists(path):
        return
    if only_leftovers and os.path.lexists(path / "rescue"):
        # A rescue being built with no intent cannot happen through jvs (the intent is
        # dropped last): it may hold a user's files. Kept for a human; doctor reports it.
        return
    fsio.ensure_inside(repo.jvs_dir, path)
    fsio.remove_tree(path)


def checked_target_payload(repo: Repo, target: Descriptor) -> Path:
    source = repo.payload_dir(target.snapshot_id)
    if not source.is_dir() or source.is_symlink():
        raise JvsError("E_PAYLOAD_HASH_MISMATCH",
                       f"payload of snapshot {target.snapshot_id} is missing",
                       hint=f"run 'jvs verify {target.snapshot_id}' and 'jvs doctor --strict'")
    fsio.ensure_inside(repo.jvs_dir, source)
    return source


def checked_worktree_dir(repo: Repo, worktree: str) -> Path:
    """The worktree's payload dir, refused if it is a symlink (restoring through one would
    rewrite another directory) or on another filesystem than ``.jvs`` (moves would copy)."""
    path = repo.worktree_dir(worktree)
    if os.path.islink(path):
        fsio.ensure_inside(repo.root, path)
        raise JvsError("E_PATH_ESCAPE", f"worktree directory {path} is a symlink",
                       hint="replace it with a real directory")
    path = worktree_payload(repo, worktree)
    if not path.exists():
        path.mkdir(parents=True)
    if os.stat(path).st_dev != os.stat(repo.jvs_dir).st_dev:
        raise JvsError("E_ENGINE", f"worktree {path} is on another filesystem than "
                       f"{repo.jvs_dir}", hint="a restore moves entries by rename; keep the "
                       "repository on one filesystem")
    return path


def restored_paths(payload: Path, target: Descriptor, paths: tuple[str, ...]) -> tuple[str, ...]:
    """What the restore replaces (empty: the whole worktree): a partial snapshot's paths,
    or the *paths* asked for, checked to stay inside the worktree with real directories
    above them."""
    if paths and target.is_partial:
        outside = [p for p in paths if not under(p, target.partial_paths)]
        if outside:
            raise JvsError("E_PARTIAL_SNAPSHOT",
                           f"snapshot {target.snapshot_id} holds only "
                           f"{', '.join(target.partial_paths)}, not {outside[0]}")
    units = []
    for raw in paths or target.partial_paths:
        parts = raw.replace(os.sep, "/").rstrip("/").split("/")
        if raw.startswith("/") or any(part in ("..", ".", "") for part in parts):
            raise JvsError("E_PATH_ESCAPE" if paths else "E_PARTIAL_SNAPSHOT",
                           f"path {raw!r} must be relative and stay inside the worktree")
        for depth in range(1, len(parts)):
            parent = payload.joinpath(*parts[:depth])
            if os.path.lexists(parent) and (os.path.islink(parent) or not parent.is_dir()):
                raise JvsError("E_PARTIAL_SNAPSHOT",
                               f"cannot restore {raw!r}: {parent} is not a directory",
                               hint="move it away, or restore the whole snapshot")
        units.append("/".join(parts))
    # "a" covers "a/b": keep the top-most of overlapping paths, so no step is planned twice.
    return tuple(u for u in sorted(set(units))
                 if not any(covered(u, [other]) for other in units if other != u))


def rescue_base(repo: Repo, wt: WorktreeConfig) -> Descriptor | None:
    """The snapshot the rescue is cloned from: the head, or its nearest full ancestor if
    the head is partial (a partial payload holds only its paths)."""
    desc = read_descriptor(repo, wt.head_snapshot_id, verify=False) \
        if wt.head_snapshot_id else None
    while desc is not None and desc.is_partial:
        try:
            desc = read_descriptor(repo, desc.parent_id, verify=False) \
                if desc.parent_id else None
        except JvsError:
            desc = None
    return desc


def differing_parts(state: WorktreeState, target_text: bytes, ignore: IgnoreRules | None,
                    units: tuple[str, ...]) -> tuple[dict[str, Entry], dict[str, Entry]]:
    """The worktree as read and the target (only *units* and below, if given; the paths
    *ignore* matches left out), cut down to what ``plan`` needs to find every step: the
    entries not recorded identically on both sides, and the directories above them and
    the *units*, which are (so the worktree's entry is the target's too). Planning on
    these gives the steps that planning on every entry gives, since an entry recorded
    identically on both sides makes no step; at 100,000 files with one change, that is a
    few entries instead of two dicts of every one."""
    found = list(state.entries.values())
    theirs, mine = differing(target_text, found)
    del found
    return anchored(state, mine, theirs, ignore, units)


def anchored(state: WorktreeState, mine: list[Entry], theirs: list[Entry],
             ignore: IgnoreRules | None, units: tuple[str, ...]
             ) -> tuple[dict[str, Entry], dict[str, Entry]]:
    """``differing_parts`` from the differing entries of both sides (*mine*, the
    worktree's; *theirs*, the target's): with the directories above them, which *state*
    holds."""
    theirs = [e for e in visible(theirs, ignore) if not units or under(e.relpath, units)]
    ours = {e.relpath: e for e in mine}
    wanted = {e.relpath: e for e in theirs}
    anchors = set(units)
    for rel in [*ours, *wanted]:
        parent = rel.rpartition("/")[0]
        while parent and parent not in anchors and parent not in ours and parent not in wanted:
            anchors.add(parent)
            parent = parent.rpartition("/")[0]
    for rel in anchors:
        entry = state.entries.get(rel)
        if entry is not None and rel not in ours and rel not in wanted:
            ours[rel] = wanted[rel] = entry  # recorded identically on both sides
    return ours, wanted


def _entries_under(desc: Descriptor | None, units: tuple[str, ...], repo: Repo
                   ) -> dict[str, Entry]:
    if desc is None:
        return {}
    entries = snapshot_entries(repo, desc)
    return {e.relpath: e for e in entries if not units or under(e.relpath, units)}


def _state_in(state: WorktreeState, wt: WorktreeConfig, repo: Repo, payload: Path,
              ignore: IgnoreRules | None, units: tuple[str, ...],
              base: Descriptor | None = None) -> WorktreeState:
    """The worktree as read, with hashes in the algorithm of the snapshot it is compared
    with (the head's, or the rescue base's): read again only if that differs from the
    target's (a repository whose hash algorithm was changed)."""
    other = base if base is not None else (
        read_descriptor(repo, wt.head_snapshot_id, verify=False)
        if wt.head_snapshot_id else None)
    algo = other.payload_hash_algo if other else repo.config().payload_hash_algo
    if all(e.kind != "file" or len(e.hash) == _HASH_LEN[algo] for e in state.entries.values()):
        return state
    return read_worktree(payload, algo, StatCache.load(repo, wt.name, algo), ignore, units)


_HASH_LEN = {"xxh3-128": 32, "sha256": 64}


def check_movable(payload: Path, state: WorktreeState, steps: list[Step]) -> None:
    """Refuse, before anything moves, a restore that would have to move a mount point (or
    anything on another filesystem): rename cannot, and stopping half-way would leave the
    worktree stuck."""
    root_dev = os.lstat(payload).st_dev
    foreign = sorted(rel for rel, st in state.stats.items() if st.st_dev != root_dev)
    for step in steps:
        for rel in foreign:
            if covered(rel, [step.path]) or covered(step.path, [rel]):
                raise JvsError("E_BUSY",
                               f"{payload / rel} is a mount point (another filesystem) "
                               "inside the worktree; the restore would have to move it",
                               hint="unmount it (or move it out of the worktree) and restore "
                                    "again; nothing was changed")


def check_path_lengths(repo: Repo, rescue_id: str, transfers: list[Transfer]) -> None:
    """A rescue holds the worktree's paths under a longer prefix: refuse, before anything
    moves, one that would not fit the kernel's PATH_MAX."""
    longest = max((len(os.fsencode(t.path)) for t in transfers), default=0)
    prefix = max(len(os.fsencode(repo.payload_dir(rescue_id))),
                 len(os.fsencode(work_dir(repo, "x") / "rescue")) + 250)
    if prefix + 1 + longest >= PATH_MAX:
        raise JvsError("E_NAME_INVALID",
                       f"a path of {longest} bytes is too long to be kept in a rescue "
                       f"snapshot (PATH_MAX is {PATH_MAX})",
                       hint="shorten it, or restore with --discard-unsaved after saving it "
                            "elsewhere; nothing was changed")


# On JuiceFS, one entry cloned through the mount's control file costs ~2 ms and a whole
# tree cloned at once ~0.3 ms per entry, plus a rename per entry taken out of it: above
# this share of the target's entries, one clone of the whole target is cheaper
# (tools/bench restore, docs/restore.md).
WHOLE_TREE_SHARE = 0.25
WHOLE_TREE_MIN = 64


def stage(repo: Repo, engine, target: Descriptor, steps: list[Step], wdir: Path,
          total: int, *, meter: Counts = SILENT, entries: dict[str, Entry] | None = None
          ) -> None:
    """Materialise every entry the steps add or replace, from the target's payload, with
    the engine (a clone per entry: a metadata clone on JuiceFS, a reflink, or a copy), as
    ``target/<n>``; on JuiceFS, when most of the target's *total* entries are wanted, by
    one clone of the whole target that they are taken out of. Like ``git checkout``,
    restored files are not fsynced: the snapshot stays the durable copy."""
    if os.path.lexists(wdir):
        fsio.remove_tree(wdir)
    staged = wdir / "target"
    staged.mkdir(parents=True)
    source = repo.payload_dir(target.snapshot_id)
    wanted = [(n, s) for n, s in enumerate(steps) if s.action in (ADD, REPLACE)]
    if target.has_ready_marker and any(s.path == READY_MARKER for _, s in wanted):
        raise JvsError("E_DESCRIPTOR_CORRUPT", "a Go publish marker in a restore plan")
    try:
        if engine.capabilities.clones_trees_as_metadata and len(wanted) > WHOLE_TREE_MIN \
                and len(wanted) > WHOLE_TREE_SHARE * total:
            whole = wdir / "whole"  # garbage once taken from: trashed with the work dir
            clone_snapshot(engine, source, whole)
            for n, step in wanted:
                with writable((whole / step.path).parent):
                    rename_even_read_only(whole / step.path, staged / str(n))
            return
        if meter is not SILENT and entries is not None:  # the sizes, from the manifest
            wanted = batched(wanted, staged_sizes(entries, [s for _, s in wanted]), meter)
        for n, step in wanted:
            clone_snapshot(engine, source / step.path, staged / str(n))
    except OSError as exc:
        raise io_error(exc, f"{engine.name} could not stage the snapshot",
                       hint="the worktree was not touched") from exc


def staged_sizes(entries: dict[str, Entry], steps: list[Step]) -> list[tuple[int, int]]:
    """(files, bytes) that each step brings in, from the target's *entries*."""
    keys = sorted(entries)
    out = []
    for step in steps:
        files = [entries[r] for r in subtree(keys, step.path) if entries[r].kind == "file"]
        out.append((len(files), sum(e.size for e in files)))
    return out


def clone_snapshot(engine, source: Path, dst: Path, ignore: IgnoreRules | None = None) -> None:
    """Clone (part of) a snapshot's payload for a restore or a fork. What the engine could
    not keep is not asked for where that costs work (``juicefs-clone`` walks the source
    for it): these callers have no ``degraded`` to record it in, and the snapshot's own
    descriptor already names what its clone lost."""
    if engine.capabilities.reports_from_scan:
        engine.clone(source, dst, ignore, report=False)
    else:
        engine.clone(source, dst, ignore)


def ignored_in_snapshot(repo: Repo, target: Descriptor, ignore: IgnoreRules) -> list[str]:
    """The top-most paths of snapshot *target* that *ignore* matches, from its manifest
    (or a walk of its payload if the manifest cannot be trusted)."""
    entries = read_trusted_manifest(repo.manifest_path(target.snapshot_id),
                                    target.payload_root_hash)
    if entries is None:
        return scan(repo.payload_dir(target.snapshot_id), ready_marker=target.has_ready_marker,
                    ignore=ignore).ignored
    return sorted(e.relpath for e in entries
                  if ignore.match(e.relpath, e.kind == "dir")
                  and not ignore.parent_ignored(e.relpath))


def roll_forward(repo: Repo, intent: Intent, *, fresh: bool,
                 known: dict | None = None, cache: StatCache | CachePatch | None = None,
                 state: WorktreeState | None = None,
                 wanted: dict[str, Entry] | None = None) -> RestoreResult:
    """Run the restore from its recorded phase to the end. Every step is skipped if done,
    so a crash anywhere in here is finished by running this again. A roll-forward after a
    crash (not *fresh*) refuses with E_UNSAVED where the worktree is not as the crash
    left it."""
    rec: RestoreIntent = intent.record
    worktree = validate_worktree_name(rec.worktree)
    target = read_descriptor(repo, rec.target_id, verify=True)
    steps = [Step.from_json(s) for s in rec.steps]
    wdir = work_dir(repo, worktree)
    payload = checked_worktree_dir(repo, worktree)
    units = restored_paths(payload, target, tuple(rec.paths))
    phase = Phase(rec.phase)
    profile_step("restore:read_intent")

    rescue = None
    if phase in (Phase.PREPARE, Phase.RESCUE) and rec.rescue_id:
        if phase is Phase.PREPARE:
            # The first step that touches the worktree: never take it without the lock.
            assert_lock_still_held(repo, "restore")
            intent = update_intent(intent, replace(rec, phase=Phase.RESCUE.value))
        rescue = make_rescue(repo, rec, payload, wdir, units, known, resuming=not fresh)
        crashpoint("restore:after_rescue")
    elif rec.rescue_id:
        rescue = read_descriptor(repo, rec.rescue_id, verify=False)

    if phase in (Phase.PREPARE, Phase.RESCUE, Phase.SWAP):
        if phase is not Phase.SWAP:
            assert_lock_still_held(repo, "restore")
            intent = update_intent(intent, replace(rec, phase=Phase.SWAP.value))
        swap(payload, wdir, steps, resuming=not fresh,
             moved=moved_by(Transfer.from_json(t) for t in rec.transfers))
        fix_parent_modes(repo, target, payload, steps, wanted)
        crashpoint("restore:after_swap")
    conflicts = keep_conflicts(payload, wdir, steps, state) if fresh and state else []

    wt = load_worktree_config(repo, worktree)
    if phase is not Phase.DONE:
        if not rec.paths:
            wt = update_worktree(repo, wt, target.snapshot_id)
        crashpoint("restore:after_worktree_update")
        append_audit(repo, "restore", target.snapshot_id, f"worktree {worktree}",
                     worktree=worktree, previous_head=rec.previous_head,
                     rescue=rec.rescue_id, discard_unsaved=rec.discard or None,
                     paths=list(rec.paths) or None, changed=len(steps),
                     finished_after_crash=None if fresh else True)
        intent = update_intent(intent, replace(intent.record, phase=Phase.DONE.value))
        crashpoint("restore:after_audit")

    swapped_at = time.time_ns()
    clean_up(repo, worktree, intent)
    profile_step("restore:cleaned_up")
    if cache is not None and state is not None:
        remember_restored(cache, wanted or {e.relpath: e for e in
                                            snapshot_entries(repo, target)},
                          payload, steps, state, swapped_at)
        profile_step("restore:saved_stat_cache")
    return RestoreResult(wt, target, rec.previous_head, rescue=rescue, discarded=rec.discard,
                         unsaved=rec.unsaved, changed=len(steps), conflicts=tuple(conflicts),
                         paths=tuple(rec.paths))


def make_rescue(repo: Repo, rec: RestoreIntent, payload: Path, wdir: Path,
                units: tuple[str, ...], known: dict | None, *, resuming: bool) -> Descriptor:
    """Move the unsaved work into the rescue's base and publish it (see jvs.rescue)."""
    if repo.descriptor_path(rec.rescue_id).exists():
        return read_descriptor(repo, rec.rescue_id, verify=False)
    base = read_descriptor(repo, rec.rescue_base, verify=False) if rec.rescue_base else None
    transfers = [Transfer.from_json(t) for t in rec.transfers]
    rescue_dir = wdir / "rescue"
    if not os.path.isdir(repo.payload_dir(rec.rescue_id)):
        engine = choose_engine(repo.root, repo.config().engine).engine
        carry_out(payload, rescue_dir, transfers, engine, resuming=resuming)
        crashpoint("restore:after_move_to_rescue")
    source = rescue_dir if os.path.isdir(rescue_dir) else repo.payload_dir(rec.rescue_id)
    algo = base.payload_hash_algo if base else repo.config().payload_hash_algo
    manifest = rescue_manifest(_entries_under(base, units, repo), transfers, source, algo,
                               known)
    return publish_rescue(repo, rec.rescue_id, rescue_dir, manifest, algo=algo,
                          worktree=rec.worktree, parent_id=rec.previous_head,
                          target_id=rec.target_id, units=units)


def moved_by(transfers) -> tuple[str, ...]:
    """The worktree paths the rescue takes (moves) out of the worktree."""
    return tuple(t.path for t in transfers if t.action == MOVE)


def recognisable(state: WorktreeState, steps: list[Step], moved: tuple[str, ...]
                 ) -> list[Step]:
    """*steps*, each that moves an entry out with the fingerprint of what it should find
    there after the rescue took its part: what a roll-forward checks before it moves."""
    keys = sorted(state.stats)
    return [replace(s, before=fingerprint_read(state, keys, s.path, moved)) if s.moves_out
            else s for s in steps]


def swap(payload: Path, wdir: Path, steps: list[Step], *, resuming: bool,
         moved: tuple[str, ...] = ()) -> None:
    """Carry out the steps in the worktree. A replaced or removed entry goes to
    ``old/<n>``, a staged one comes in from ``target/<n>``: each step is done when its
    staged entry is gone (or, for a removal, the worktree's), so running this again
    finishes it. *resuming*, an entry that is not the one read before the crash is left
    alone: E_UNSAVED."""
    old = wdir / "old"
    old.mkdir(parents=True, exist_ok=True)
    staged = wdir / "target"
    for n, step in enumerate(steps):
        dst = payload / step.path
        here = staged / str(n)
        if step.action == MODE:
            if os.path.lexists(dst) and not os.path.islink(dst):
                os.chmod(dst, step.mode)
            continue
        if step.action in (ADD, REPLACE) and not os.path.lexists(here):
            continue  # moved in already
        # Fresh, something written at an added entry's path since the worktree was read
        # goes aside too (keep_conflicts keeps it); after a crash, it stops the restore.
        if (step.moves_out or not resuming) and os.path.lexists(dst) \
                and not os.path.lexists(old / str(n)):
            if resuming and step.before \
                    and fingerprint_now(payload, step.path, moved) != step.before:
                raise _changed_since_crash(step.path)
            with writable(dst.parent):
                rename_even_read_only(dst, old / str(n))
        if step.action in (ADD, REPLACE):
            if os.path.lexists(dst):
                raise _changed_since_crash(step.path)
            make_parents(payload, step.path, 0o755)
            with writable(dst.parent):
                rename_even_read_only(here, dst)
        if n == 0:
            crashpoint("restore:during_swap")


def fix_parent_modes(repo: Repo, target: Descriptor, payload: Path, steps: list[Step],
                     wanted: dict[str, Entry] | None = None) -> None:
    """The directories the swap went through get the target's modes back (one may have
    been made writable for a step, and a crash may have left it so)."""
    parents = {s.path.rpartition("/")[0] for s in steps} - {""}
    if not parents:
        return
    entries = wanted.values() if wanted is not None else snapshot_entries(repo, target)
    modes = {e.relpath: e.mode for e in entries if e.relpath in parents}
    for rel in parents:
        path = payload / rel
        if rel in modes and os.path.isdir(path) and not os.path.islink(path) \
                and stat.S_IMODE(os.lstat(path).st_mode) != modes[rel]:
            os.chmod(path, modes[rel])


def keep_conflicts(payload: Path, wdir: Path, steps: list[Step],
                   state: WorktreeState) -> list[str]:
    """Work written into the worktree while the restore ran, inside an entry it moved out
    (after the worktree was read): not the user's saved work, not in the rescue, so it is
    kept in the worktree under CONFLICTS rather than deleted with the replaced content."""
    kept = []
    old = wdir / "old"
    for n, step in enumerate(steps):
        moved = old / str(n)
        if step.action == MODE or not os.path.lexists(moved):
            continue
        found = [("", os.lstat(moved))]
        if stat.S_ISDIR(found[0][1].st_mode):
            found += [(e.relpath, e.st) for e in scan(moved).entries]
        for rel, st in found:
            full = f"{step.path}/{rel}" if rel else step.path
            seen = state.stats.get(full)
            if stat.S_ISDIR(st.st_mode) and seen is not None:
                continue
            if seen is not None and (identity(seen) == identity(st) if rel else
                                     (seen.st_ino, seen.st_size) == (st.st_ino, st.st_size)):
                continue
            if any(full.startswith(k + "/") for k in kept):
                continue
            dest = payload / CONFLICTS / full
            dest.parent.mkdir(parents=True, exist_ok=True)
            rename_even_read_only(moved / rel if rel else moved, dest)
            kept.append(full)
            if not rel:
                break
    return kept


def update_worktree(repo: Repo, wt: WorktreeConfig, target_id: str) -> WorktreeConfig:
    """head = the restored snapshot; latest stays (so an older target means DETACHED),
    except that a worktree with no snapshot of its own adopts the target as its latest."""
    new = wt.moved_to(target_id, new_latest=wt.latest_snapshot_id is None)
    save_worktree_config(repo, new)
    return new


def clean_up(repo: Repo, worktree: str, intent: Intent) -> None:
    """The replaced content goes to the trash by one rename (with the empty staging),
    the intent is dropped, and the trash emptied: O(what changed)."""
    wdir = work_dir(repo, worktree)
    if os.path.lexists(wdir):
        move_to_trash(repo, wdir, worktree)
    drop_intent(intent)
    empty_trash(repo)


def remember_restored(cache: StatCache | CachePatch, target_files: dict[str, Entry],
                      payload: Path, steps: list[Step], state: WorktreeState,
                      swapped_at: int) -> None:
    """Keep the stat cache exact: entries the restore did not touch keep their records
    (the read refreshed them; a ``CachePatch``, after a thin read, leaves every entry it
    is not told about as it is); what it wrote is recorded with the target's hashes and
    its stat after the swap, taken once the racily-clean window has passed (a write after
    that shows in the stat); what it removed is forgotten. The next snapshot then reads
    only what changed since."""
    written = [s for s in steps if s.action in (ADD, REPLACE)]
    gone = sorted(set(subtree_all(state, [s.path for s in steps if s.moves_out])))
    for rel in gone:
        cache.forget(rel)
    keep = set(state.stats) - set(gone)
    if written:
        target_keys = sorted(target_files)
        settle = swapped_at + racy_window_ns(payload) - time.time_ns()
        if settle > 0:
            time.sleep(settle / 1e9)
        for step in written:
            for rel in subtree(target_keys, step.path):
                keep.add(rel)
                entry = target_files[rel]
                if entry.kind != "file":
                    continue
                try:
                    st = os.lstat(payload / rel)
                except FileNotFoundError:
                    continue
                if st.st_size == entry.size and stat.S_ISREG(st.st_mode):
                    cache.remember(rel, st, entry.hash, settled=True)
    cache.save(keep=keep)


def subtree_all(state: WorktreeState, paths: list[str]) -> list[str]:
    keys = sorted(state.stats)
    out: list[str] = []
    for p in paths:
        out += subtree(keys, p)
    return out


# ------------------------------------------------------------------------------ helpers

def _changed_since_crash(rel: str) -> JvsError:
    return JvsError("E_UNSAVED", f"{rel} changed in the worktree after a restore crashed",
                    hint="the restore is left unfinished so that your change is not moved; "
                         "move the change elsewhere (or snapshot it in another worktree), "
                         "then run 'jvs doctor --repair finish_restore'")
