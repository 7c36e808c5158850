"""Restoring a worktree to a snapshot (SPEC §6), one function per protocol step.

intent → stage the target (engine clone into ``.jvs/restore/<worktree>/target``) →
move the worktree's current entries out (into the rescue or the discard side dir) →
publish the rescue snapshot → move the staged entries in → update the worktree config →
append audit → clean up, drop the intent.

Why this shape:
- The worktree directory itself is never replaced, only its entries are renamed, so its
  inode survives and a shell (or any process) whose cwd is the worktree keeps working.
- Every step that touches the worktree is a rename on one filesystem: cheap on every
  engine, and the unsaved content becomes the rescue snapshot's payload by moving, never
  by copying.
- The intent records the phase. Until the first entry moves, a crash leaves the old
  content in full (roll-forward starts over). From then on, ``finish_restore`` rolls
  forward: it finishes the move out, publishes the rescue, finishes the move in. Every
  entry is at all times either in the worktree, in the staged target, or in a side dir
  named by the worktree, so nothing is ever lost and nothing stays half-done.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from jvs import fsio
from jvs.audit import append_audit
from jvs.changes import Changes, compare, snapshot_entries, visible, without_go_marker
from jvs.crashpoints import crashpoint, profile_step
from jvs.descriptor import Descriptor, publish_descriptor, read_descriptor, write_descriptor_tmp
from jvs.engines import choose_engine
from jvs.errors import JvsError
from jvs.ids import new_snapshot_id, rfc3339_utc, short_id
from jvs.ignore import IgnoreRules
from jvs.integrity import (
    READY_MARKER,
    Entry,
    HashStats,
    ScanResult,
    entries_of,
    manifest_bytes,
    read_trusted_manifest,
    root_hash,
    scan,
)
from jvs.intents import Intent, RestoreIntent, drop_intent, intents_of, update_intent, write_intent
from jvs.lock import assert_lock_still_held, repo_lock
from jvs.names import validate_worktree_name
from jvs.repo import Repo
from jvs.statcache import StatCache, racy_window_ns
from jvs.worktree import (
    WorktreeConfig,
    load_worktree_config,
    save_worktree_config,
    worktree_payload,
)

Progress = Callable[[str], None]

# Phases recorded in the intent, in order. Before MOVING_OUT the worktree is untouched.
PREPARE, MOVING_OUT, MOVING_IN, AUDITED = "prepare", "moving_out", "moving_in", "audited"
_ORDER = [PREPARE, MOVING_OUT, MOVING_IN, AUDITED]


@dataclass(frozen=True)
class RestoreResult:
    worktree: WorktreeConfig  # the config after the restore
    target: Descriptor
    previous_head: str | None
    rescue: Descriptor | None = None  # where the unsaved work went
    trash: Path | None = None  # the replaced content, to delete (see empty_trash)
    restored_at_ns: int = 0  # when the new content began to move in (for after_restore)
    discarded: bool = False  # discard_unsaved: whatever was unsaved is gone (not counted)
    unsaved: int = 0  # unsaved changes found and rescued
    unchanged: bool = False  # already there and clean: nothing was moved
    finished: tuple[str, ...] = ()  # crashed restores rolled forward first
    not_restored: tuple[str, ...] = ()  # the snapshot's paths that .jvsignore now ignores
    ignore_rules: str = ""  # the .jvsignore the restore ran under: its paths were not replaced

    @property
    def detached(self) -> bool:
        return self.worktree.detached


@dataclass(frozen=True)
class Unsaved:
    """How the worktree differs from what its snapshots saved, plus what the check hashed
    (so a rescue built from the same files need not read them again)."""

    changes: Changes
    algo: str
    known: dict[str, tuple[tuple[int, int, int], str]]  # relpath → ((size, mtime, ino), hash)
    ignored: list[str] = field(default_factory=list)  # the worktree's ignored paths

    @property
    def clean(self) -> bool:
        return self.changes.clean


# --------------------------------------------------------------------------- public API

def restore(repo: Repo, worktree: str, ref: str, *, discard_unsaved: bool = False,
            progress: Progress | None = None) -> RestoreResult:
    """Make *worktree* hold snapshot *ref* (``HEAD``: the worktree's latest snapshot).

    Unsaved work first becomes a rescue snapshot unless *discard_unsaved*. When this
    returns, the replaced content is deleted and nothing of the command runs on."""
    from jvs.resolve import resolve

    worktree = validate_worktree_name(worktree)
    profile_step("restore:start")
    with repo_lock(repo, "restore"):
        profile_step("restore:locked")
        from jvs.recovery import settle_worktree

        settle_worktree(repo, worktree, "restore")
        finished = finish_pending_restore(repo, worktree)
        wt = load_worktree_config(repo, worktree)
        if ref.strip() == "HEAD":
            if wt.latest_snapshot_id is None:
                raise JvsError("E_NOT_FOUND", f"worktree {worktree!r} has no snapshots yet",
                               hint="take one with 'jvs snapshot'")
            target_id = wt.latest_snapshot_id
        else:
            target_id = resolve(repo, ref, worktree).snapshot_id
        result = restore_locked(repo, worktree, target_id, discard_unsaved=discard_unsaved,
                                progress=progress)
        if finished:
            result = replace(result, finished=tuple(finished))
    after_restore(repo, result)
    return result


def restore_locked(repo: Repo, worktree: str, target_id: str, *, discard_unsaved: bool,
                   progress: Progress | None = None) -> RestoreResult:
    """The protocol; the caller holds the repository lock and no restore of *worktree* is
    pending."""
    target = read_descriptor(repo, target_id, verify=True)
    checked_target_payload(repo, target)  # before anything else: a missing payload
    wt = load_worktree_config(repo, worktree)
    payload = checked_worktree_dir(repo, worktree)
    units = check_partial_paths(payload, target)
    ignore = IgnoreRules.load(payload)
    profile_step("restore:read_target")

    staged = work_dir(repo, worktree) / "target"
    staging = None
    if not discard_unsaved and (target_id != wt.head_snapshot_id or units) \
            and choose_engine(repo.root, repo.config().engine).engine.name != "copy":
        # Stage the target while the worktree is checked: staging touches nothing in the
        # worktree, and a crash leaves only a work dir with no intent, which the next
        # command (or doctor) removes. Not with the copy engine: its staging takes seconds
        # against the check's milliseconds, and it writes file data that the rescue's
        # syncfs (make_rescue_durable) would then have to flush too.
        from jvs.snapshot import in_thread

        staging = in_thread(stage_target, repo, target, staged, ignore)
    if discard_unsaved:
        unsaved = None  # nothing to keep: no need to read a single file
        ignored = scan(payload, ignore=ignore).ignored if ignore else []
    else:
        if progress:
            progress("checking for unsaved work")
        try:
            unsaved = find_unsaved(repo, wt, payload, units, ignore)
        except BaseException:
            if staging is not None:
                _wait_quietly(staging)
                remove_work_dir(repo, worktree)
            raise
        ignored = unsaved.ignored
        profile_step("restore:checked_unsaved")
        if unsaved.clean and target_id == wt.head_snapshot_id and not units:
            append_audit(repo, "restore", target_id, "already there", worktree=worktree)
            return RestoreResult(wt, target, wt.head_snapshot_id, unchanged=True)

    rescue_id = None if unsaved is None or unsaved.clean else new_snapshot_id()
    intent = write_intent(repo, RestoreIntent(
        worktree=worktree, target_id=target_id, phase=PREPARE, rescue_id=rescue_id,
        previous_head=wt.head_snapshot_id, discard=discard_unsaved, paths=tuple(units),
        unsaved=len(unsaved.changes.items) if unsaved else 0,
        ignore_rules=ignore.text if ignore else None))
    crashpoint("restore:after_intent")
    if rescue_id:
        make_rescue_durable(payload)
        profile_step("restore:synced_rescue")

    if progress:
        progress("staging the snapshot")
    try:
        not_restored = staging() if staging is not None \
            else stage_target(repo, target, staged, ignore)
        check_ignored_fit(staged, [p for p in ignored if _under(p, units) or not units])
    except BaseException:
        # Nothing in the worktree moved: forget this restore entirely, so a failed
        # attempt (disk full, engine error, Ctrl-C) is not replayed by the next command.
        remove_work_dir(repo, worktree)
        drop_intent(intent)
        raise
    crashpoint("restore:after_stage")

    result = roll_forward(repo, intent, unsaved=unsaved, fresh=True)
    return replace(result, not_restored=tuple(not_restored))


def finish_restore(repo: Repo, intent: Intent) -> RestoreResult:
    """Finish a restore that crashed, moving its worktree to the new content.

    The caller holds the repository lock (``jvs doctor --repair finish_restore`` does, and
    so does every jvs command that finishes a pending restore before its own work)."""
    rec = intent.record
    if forget_untouched_restore(repo, intent):
        # The worktree was never touched: the restore did not happen, and nothing of it
        # remains (re-running it is the user's call: they may have worked since).
        wt = load_worktree_config(repo, rec.worktree)
        return RestoreResult(wt, read_descriptor(repo, rec.target_id, verify=False),
                             wt.head_snapshot_id, unchanged=True)
    return roll_forward(repo, intent, unsaved=None, fresh=False)


def forget_untouched_restore(repo: Repo, intent: Intent) -> bool:
    """Drop a crashed restore that had not yet touched the worktree (and its staging);
    False if it had: then only finishing it is safe."""
    rec = intent.record
    if _phase_index(rec) >= _ORDER.index(MOVING_OUT):
        return False
    remove_work_dir(repo, validate_worktree_name(rec.worktree))
    drop_intent(intent)
    return True


def pending_restore(repo: Repo, worktree: str) -> Intent | None:
    found = intents_of(repo, RestoreIntent, worktree=worktree)
    return found[0] if found else None


def finish_pending_restore(repo: Repo, worktree: str) -> list[str]:
    """Roll forward a crashed restore of *worktree*, if any (caller holds the lock).
    Returns the IDs it restored to. Leftover work dirs with no intent are removed."""
    intent = pending_restore(repo, worktree)
    if intent is None:
        remove_work_dir(repo, worktree, only_leftovers=True)
        return []
    result = finish_restore(repo, intent)
    return [result.target.snapshot_id]


# ---------------------------------------------------------------------------- the steps

def work_dir(repo: Repo, worktree: str) -> Path:
    """Where a restore of *worktree* keeps its staged target and side dirs: under
    ``.jvs/`` (same filesystem as the worktrees, never a payload), one per worktree, so
    a crashed restore's leftovers are found by name."""
    return repo.jvs_dir / "restore" / validate_worktree_name(worktree)


def remove_work_dir(repo: Repo, worktree: str, *, only_leftovers: bool = False) -> None:
    path = work_dir(repo, worktree)
    if not os.path.lexists(path):
        return
    if only_leftovers and any(os.path.lexists(path / side) for side in ("rescue", "ignored")):
        # A rescue payload or held ignored paths with no intent cannot happen through jvs
        # (the intent is dropped last); they are a user's files: keep them for a human.
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


def check_partial_paths(payload: Path, target: Descriptor) -> tuple[str, ...]:
    """The paths a partial snapshot overlays (empty: the whole worktree), checked to stay
    inside the worktree with real directories above them."""
    units = []
    for raw in target.partial_paths:
        p = PurePosixPath(raw)
        if p.is_absolute() or any(part in ("..", ".", "") for part in p.parts) or not p.parts:
            raise JvsError("E_PARTIAL_SNAPSHOT",
                           f"snapshot {target.snapshot_id} has a bad partial path {raw!r}")
        for depth in range(1, len(p.parts)):
            parent = payload.joinpath(*p.parts[:depth])
            if os.path.lexists(parent) and (os.path.islink(parent) or not parent.is_dir()):
                raise JvsError("E_PARTIAL_SNAPSHOT",
                               f"cannot overlay {raw!r}: {parent} is not a directory",
                               hint="move it away, or restore a full snapshot")
        units.append(str(p))
    return tuple(units)


def saved_entries(repo: Repo, head: Descriptor) -> list[Entry]:
    """What the worktree held when *head* was taken, as far as snapshots saved it: a
    partial head is overlaid on its nearest full ancestor."""
    partials: list[Descriptor] = []
    desc: Descriptor | None = head
    while desc is not None and desc.is_partial:
        partials.append(desc)
        try:
            desc = read_descriptor(repo, desc.parent_id, verify=False) if desc.parent_id \
                else None
        except JvsError:
            desc = None
    merged = {e.relpath: e for e in snapshot_entries(repo, desc)} if desc else {}
    for part in reversed(partials):
        merged = {rel: e for rel, e in merged.items() if not _under(rel, part.partial_paths)}
        merged.update({e.relpath: e for e in snapshot_entries(repo, part)})
    return list(merged.values())


def find_unsaved(repo: Repo, wt: WorktreeConfig, payload: Path,
                 units: tuple[str, ...] = (), ignore: IgnoreRules | None = None) -> Unsaved:
    """Compare the worktree (only *units* if given) with what its head saved. A worktree
    with no head snapshot and any file counts as unsaved. Reads only files whose stat
    changed since they were last hashed (the stat cache). Paths *ignore* matches count
    on neither side: a restore leaves them where they are."""
    head = read_descriptor(repo, wt.head_snapshot_id, verify=False) \
        if wt.head_snapshot_id else None
    algo = head.payload_hash_algo if head else repo.config().payload_hash_algo
    cache = StatCache.load(repo, wt.name, algo)
    scanned = scan(payload, ignore=ignore)
    profile_step("restore:scanned_worktree")
    if units:
        scanned.entries = [e for e in scanned.entries if _under(e.relpath, units)]
    new = entries_of(payload, scanned, algo, HashStats(),
                     lambda e: cache.lookup(e.relpath, e.st))
    known = {}
    stats_of = {e.relpath: e.st for e in scanned.entries}
    for entry in new:
        if entry.kind == "file":
            st = stats_of[entry.relpath]
            cache.remember(entry.relpath, st, entry.hash)
            known[entry.relpath] = ((st.st_size, st.st_mtime_ns, st.st_ino), entry.hash)
    cache.save(keep=None if units else set(known))
    profile_step("restore:hashed_worktree")
    old = visible(saved_entries(repo, head), ignore) if head else []
    new = without_go_marker(new, head)
    if not units:
        changes = compare(old, new)
    else:
        # An overlay destroys only what is at its paths: a file the user deleted there
        # leaves nothing to rescue (and an empty partial rescue would mean "everything").
        old = [e for e in old if _under(e.relpath, units)]
        changes = Changes([c for c in compare(old, new).items if c.change != "removed"])
    return Unsaved(changes, algo, known, scanned.ignored)


def stage_target(repo: Repo, target: Descriptor, staged: Path,
                 ignore: IgnoreRules | None = None) -> list[str]:
    """Materialise the target snapshot next to the worktree with the repository's engine,
    before anything in the worktree moves. Like ``git checkout``, the restored files are
    not fsynced: the snapshot stays the durable copy, and a process crash (SIGKILL) loses
    nothing the page cache holds. The snapshot's paths that the worktree's *ignore*
    rules match are left out (a snapshot taken before the rule may have them): a restore
    never touches an ignored path. Returns those paths."""
    source = checked_target_payload(repo, target)
    if os.path.lexists(staged.parent):
        fsio.remove_tree(staged.parent)
    staged.parent.mkdir(parents=True)
    engine = choose_engine(repo.root, repo.config().engine).engine
    try:
        clone_snapshot(engine, source, staged, ignore or None)
    except JvsError:
        raise
    except OSError as exc:
        raise JvsError("E_ENGINE", f"{engine.name} could not stage the snapshot: {exc}",
                       hint="the worktree was not touched") from exc
    marker = staged / READY_MARKER  # the Go implementation's publish marker, not payload
    if target.has_ready_marker and os.path.lexists(marker) and not os.path.isdir(marker):
        os.unlink(marker)
    if not ignore:
        return []
    left_out = ignored_in_snapshot(repo, target, ignore)
    # An engine may clone some of them anyway (juicefs-clone leaves out only top-level
    # ones): those go to the trash.
    drop_ignored(repo, staged, [p for p in left_out if os.path.lexists(staged / p)],
                 "restore")
    return left_out


def clone_snapshot(engine, source: Path, dst: Path, ignore: IgnoreRules | None = None) -> None:
    """Clone a snapshot's payload for a restore or a fork. What the engine could not keep
    is not asked for where that costs work (``juicefs-clone`` walks the source for it):
    these callers have no ``degraded`` to record it in, and the snapshot's own descriptor
    already names what its clone lost."""
    if engine.name == "juicefs-clone":
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


def check_ignored_fit(staged: Path, ignored: list[str]) -> None:
    """Refuse, before anything moves, a restore that would put a file or symlink where
    the worktree has a directory holding ignored paths: they could not be put back, and
    ignored paths are in no snapshot."""
    for rel in ignored:
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts)):
            above = staged.joinpath(*parts[:depth])
            if os.path.lexists(above) and (os.path.islink(above) or not above.is_dir()):
                raise JvsError("E_UNSAVED",
                               f"the snapshot has a file at {'/'.join(parts[:depth])} where "
                               f"the worktree has ignored content ({rel})",
                               hint="move the ignored content elsewhere, or delete it, and "
                                    "restore again")


def roll_forward(repo: Repo, intent: Intent, *, unsaved: Unsaved | None,
                 fresh: bool) -> RestoreResult:
    """Run the restore from its recorded phase to the end. Every step is idempotent, so a
    crash anywhere in here is finished by running this again. Only the phases that change
    what roll-forward must do are written down (each write is an fsync): MOVING_OUT (the
    worktree's entries are old content being moved out), MOVING_IN (they are new content
    being moved in), AUDITED (only clean-up is left)."""
    rec = intent.record
    worktree = validate_worktree_name(rec.worktree)
    target = read_descriptor(repo, rec.target_id, verify=True)
    rescue_id = rec.rescue_id
    units = tuple(rec.paths)
    wdir = work_dir(repo, worktree)
    staged, side = wdir / "target", wdir / ("rescue" if rescue_id else "old")
    held = wdir / "ignored"  # ignored paths from inside moving entries, until put back
    payload = checked_worktree_dir(repo, worktree)
    ignore = IgnoreRules(rec.ignore_rules or "")
    phase = _phase_index(rec)
    profile_step("restore:read_intent")

    rescue = None
    if phase <= _ORDER.index(MOVING_OUT):
        if phase < _ORDER.index(MOVING_OUT):
            # The first step that touches the worktree: never take it without the lock.
            assert_lock_still_held(repo, "restore")
            intent = update_intent(intent, replace(rec, phase=MOVING_OUT))
        # The rescue payload renamed into place means the move out was complete: moving
        # out again would make a second, empty rescue (and lose nothing only by luck).
        moved_out = bool(rescue_id) and os.path.isdir(repo.payload_dir(rescue_id)) \
            and not os.path.lexists(side)
        if ignore and not moved_out:
            hold_ignored(payload, held, ignore, units)
            crashpoint("restore:after_hold_ignored")
        if not moved_out:
            move_out(payload, side, units, ignore)
        crashpoint("restore:after_move_out")
        if rescue_id:
            rescue = publish_rescue(repo, rec, side, unsaved)
            crashpoint("restore:after_rescue")
    if rescue_id and rescue is None:
        rescue = read_descriptor(repo, rescue_id, verify=False)

    restored_at_ns = time.time_ns()  # nobody could write the restored files before this
    if phase <= _ORDER.index(MOVING_IN):
        if phase < _ORDER.index(MOVING_IN):
            intent = update_intent(intent, replace(rec, phase=MOVING_IN))
        move_in(staged, payload, units, wdir / "conflicts")
        crashpoint("restore:after_move_in")
        if ignore:
            put_back_ignored(held, payload, ignore, wdir / "conflicts")
            crashpoint("restore:after_put_back")

    wt = load_worktree_config(repo, worktree)
    discarded = rec.discard
    if phase < _ORDER.index(AUDITED):
        wt = update_worktree(repo, wt, target.snapshot_id)
        crashpoint("restore:after_worktree_update")
        append_audit(repo, "restore", target.snapshot_id, f"worktree {worktree}",
                     worktree=worktree, previous_head=rec.previous_head,
                     rescue=rescue_id, discard_unsaved=discarded or None,
                     partial=list(units) or None,
                     finished_after_crash=None if fresh else True)
        intent = update_intent(intent, replace(rec, phase=AUDITED))
        crashpoint("restore:after_audit")

    trash = clean_up(repo, worktree, intent)
    profile_step("restore:cleaned_up")
    return RestoreResult(wt, target, rec.previous_head, rescue=rescue,
                         discarded=discarded, unsaved=rec.unsaved,
                         trash=trash, restored_at_ns=restored_at_ns if fresh else 0,
                         ignore_rules=ignore.text)


def hold_ignored(payload: Path, held: Path, ignore: IgnoreRules,
                 units: tuple[str, ...]) -> None:
    """Move the ignored paths that lie inside entries about to move out (or inside the
    overlaid *units*) into *held*, so that they stay out of the rescue and can be put
    back. Ignored top-level entries (and ignored units) simply stay where they are.
    The worktree is scanned again here, not taken from the unsaved-work check: an ignored
    file created while the target was staged would otherwise move out with its parent
    (and be deleted with it under --discard-unsaved)."""
    for rel in scan(payload, ignore=ignore).ignored:
        if "/" not in rel or (units and not any(rel.startswith(u + "/") for u in units)):
            continue
        held.mkdir(parents=True, exist_ok=True)
        _make_parents(payload, held, rel)
        _rename(payload / rel, _free_name(held / rel))
    if held.exists():
        fsio.fsync_dir(held)


def put_back_ignored(held: Path, payload: Path, ignore: IgnoreRules,
                     conflicts: Path) -> None:
    """Put the held ignored paths back at their places in the restored worktree. The
    directories above them are created if the snapshot has none (check_ignored_fit made
    sure no file stands in the way)."""
    def visit(prefix: str) -> None:
        base = held / prefix if prefix else held
        for name in sorted(os.listdir(base)):
            rel = f"{prefix}/{name}" if prefix else name
            is_dir = os.path.isdir(held / rel) and not os.path.islink(held / rel)
            if ignore.match(rel, is_dir) or not is_dir:
                _move_into_place(held, payload, rel, conflicts)
            else:
                visit(rel)

    if held.exists():
        visit("")
        fsio.fsync_dir(payload)


def move_out(payload: Path, side: Path, units: tuple[str, ...],
             ignore: IgnoreRules | None = None) -> None:
    """Move the worktree's current entries (or only the overlaid *units*) into *side*;
    ignored ones stay."""
    side.mkdir(parents=True, exist_ok=True)
    names = units or tuple(sorted(os.listdir(payload)))
    moved = 0
    for rel in names:
        src = payload / rel
        if not os.path.lexists(src):
            continue
        if ignore and ignore.ignored(rel, src.is_dir() and not src.is_symlink()):
            continue
        _make_parents(payload, side, rel)
        _rename_to_free_name(src, side / rel)
        moved += 1
        if moved == 1:
            crashpoint("restore:during_move_out")
    fsio.fsync_dir(side)
    fsio.fsync_dir(payload)


def move_in(staged: Path, payload: Path, units: tuple[str, ...], conflicts: Path) -> None:
    """Move the staged entries into the worktree. A name that reappeared in the worktree
    meanwhile (a user's file created after a crash) is moved aside, never overwritten."""
    if not staged.exists():
        return
    names = units or tuple(sorted(os.listdir(staged)))
    moved = 0
    for rel in names:
        src = staged / rel
        if not os.path.lexists(src):
            continue
        _move_into_place(staged, payload, rel, conflicts)
        moved += 1
        if moved == 1:
            crashpoint("restore:during_move_in")
    fsio.fsync_dir(payload)


def _move_into_place(src_root: Path, payload: Path, rel: str, conflicts: Path) -> None:
    """Rename *rel* from *src_root* into the worktree, creating the directories above it;
    whatever is at that name already is moved into *conflicts*, never overwritten."""
    _make_parents(src_root, payload, rel)
    dst = payload / rel
    try:
        # The name is nearly always free: try first, rather than ask (on FUSE a lookup of
        # a missing name is a round trip that no cache answers).
        fsio.rename_noreplace(src_root / rel, dst)
        return
    except (FileExistsError, PermissionError):
        pass  # taken (see below), or a read-only directory (see _rename)
    if os.path.lexists(dst):
        conflicts.mkdir(parents=True, exist_ok=True)
        _make_parents(payload, conflicts, rel)
        _rename(dst, _free_name(conflicts / rel))
    _rename(src_root / rel, dst)


def publish_rescue(repo: Repo, rec: RestoreIntent, side: Path,
                   unsaved: Unsaved | None) -> Descriptor:
    """Publish the moved-out content as a rescue snapshot (kind ``rescue``, parent = the
    head it diverged from) with the care of a snapshot: manifest, durable payload,
    descriptor with checksum, payload rename, descriptor rename as the commit point.
    Idempotent: a rescue already published is returned as it is."""
    from jvs.snapshot import publish_payload

    rescue_id = str(rec.rescue_id)
    if repo.descriptor_path(rescue_id).exists():
        return read_descriptor(repo, rescue_id, verify=False)
    published = repo.payload_dir(rescue_id)
    source = side if side.exists() else published
    if not source.exists():
        raise JvsError("E_IO", f"rescue payload of {rescue_id} is missing")
    algo = unsaved.algo if unsaved else _head_algo(repo, rec)
    manifest, rehashed = hash_rescue(source, algo, unsaved)
    fsio.write_bytes_atomic(repo.manifest_path(rescue_id), manifest)
    if unsaved is None:
        fsync_tree(source)  # roll-forward after a crash: no earlier sync to rely on
    else:
        # The worktree was synced before the target was staged (make_rescue_durable);
        # only files changed since then, and the renames, are left to flush.
        for rel in rehashed:
            fsio.fsync_file(source / rel)
        fsio.fsync_dir(source)
    units = tuple(rec.paths)
    target_id = rec.target_id
    descriptor = Descriptor(
        snapshot_id=rescue_id,
        parent_id=rec.previous_head,
        worktree_name=rec.worktree,
        created_at=rfc3339_utc(),
        note=f"rescue: unsaved work before restore to {short_id(target_id)}",
        engine="move",
        payload_hash_algo=algo,
        payload_root_hash=root_hash(manifest),
        partial_paths=tuple(u for u in units if os.path.lexists(source / u)),
        kind="rescue",
    ).sealed()
    tmp = write_descriptor_tmp(repo, descriptor)
    if source == side:
        publish_payload(repo, side, rescue_id)
    publish_descriptor(repo, tmp, rescue_id)  # the rescue's commit point
    append_audit(repo, "rescue", rescue_id, f"unsaved work of worktree {rec.worktree}",
                 worktree=rec.worktree, restore_target=target_id)
    return descriptor


def fsync_tree(root: Path) -> None:
    """fsync every file and directory of a rescue payload. Per file rather than one
    ``syncfs``: the filesystem also holds the freshly staged target (maybe gigabytes of
    dirty pages) that a restore does not need on disk, while the user's files are mostly
    on disk already, so their fsyncs are cheap."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                fsio.fsync_file(Path(path))
        fsio.fsync_dir(Path(dirpath))


def make_rescue_durable(payload: Path) -> None:
    """Flush the worktree's content to disk before the target is staged: the rescue's
    files are the user's, often not yet on disk (an editor's save, or the previous
    restore, which does not fsync), and one ``syncfs`` now is far cheaper than an fsync
    per file later — or a ``syncfs`` later, which would also flush the freshly staged
    target that nobody needs on disk."""
    from jvs.snapshot import fsync_payload

    fsync_payload(payload)


def hash_rescue(root: Path, algo: str, unsaved: Unsaved | None) -> tuple[bytes, list[str]]:
    """The rescue's manifest. A file moved out unchanged since the unsaved-work check
    (same size, mtime and inode: a rename keeps them) reuses that check's hash."""
    scanned: ScanResult = scan(root)
    for rel in scanned.skipped_special:  # FIFOs and sockets are not payload (SPEC §5)
        os.unlink(root / rel)
    known = unsaved.known if unsaved else {}

    def lookup(e) -> str | None:
        row = known.get(e.relpath)
        if row and row[0] == (e.st.st_size, e.st.st_mtime_ns, e.st.st_ino):
            return row[1]
        return None

    rehashed: list[str] = []

    def lookup_noting(e) -> str | None:
        digest = lookup(e)
        if digest is None and e.kind == "file":
            rehashed.append(e.relpath)
        return digest

    entries = entries_of(root, scanned, algo, HashStats(), lookup_noting)
    return manifest_bytes(entries), rehashed


def remember_restored(repo: Repo, worktree: str, target: Descriptor, units: tuple[str, ...],
                      restored_at_ns: int, ignore: IgnoreRules | None = None) -> None:
    """Seed the stat cache with the restored files' hashes from the target's manifest, so
    the next status, snapshot or restore does not read them all again.

    Safe to run later (in the background): only files whose ctime is older than the
    moment the restored content began to move into the worktree (before which nobody
    could write it), minus the racily-clean window, are remembered — a file changed
    since then has a newer ctime, so its (wrong) manifest hash is never cached. The
    window is short on a local filesystem (one clock) and 100 ms on shared ones (other
    hosts' clocks): otherwise the files staged in the last 100 ms, most of them on a
    fast reflink restore, were read again by the next command. A top-level file moved
    in got a new ctime from the rename and is always hashed again.
    Paths the restore's *ignore* rules matched were not replaced (they may hold other
    content than the manifest says, with an old ctime): they are skipped, whatever the
    restored ``.jvsignore`` says now."""
    entries = read_trusted_manifest(repo.manifest_path(target.snapshot_id),
                                    target.payload_root_hash)
    if entries is None:
        return  # rebuilding a manifest reads the whole payload: not worth it here
    manifest = {e.relpath: e for e in entries if e.kind == "file"}
    cache = StatCache.load(repo, worktree, target.payload_hash_algo)
    payload = worktree_payload(repo, worktree)
    scanned = scan(payload, ignore=ignore)
    horizon = restored_at_ns - racy_window_ns(payload)
    seen = set()
    for e in scanned.entries:
        if e.kind != "file" or (units and not _under(e.relpath, units)):
            continue
        entry = manifest.get(e.relpath)
        if entry is not None and entry.size == e.st.st_size \
                and max(e.st.st_mtime_ns, e.st.st_ctime_ns) < horizon:
            cache.remember(e.relpath, e.st, entry.hash)
            seen.add(e.relpath)
    cache.save(keep=None if units else seen, horizon_ns=horizon)


def update_worktree(repo: Repo, wt: WorktreeConfig, target_id: str) -> WorktreeConfig:
    """head = the restored snapshot; latest stays (so an older target means DETACHED),
    except that a worktree with no snapshot of its own adopts the target as its latest."""
    new = wt.moved_to(target_id, new_latest=wt.latest_snapshot_id is None)
    save_worktree_config(repo, new)
    return new


def clean_up(repo: Repo, worktree: str, intent: Intent) -> Path | None:
    """Move the replaced content (and the empty staging dir) to the trash by one rename,
    then drop the intent. A rescue side dir is already published by now (renamed away)."""
    wdir = work_dir(repo, worktree)
    conflicts = wdir / "conflicts"
    if conflicts.exists():
        # Files a user created in the worktree between a crash and its roll-forward are
        # kept: moved to a visible place in the worktree rather than deleted.
        payload = repo.worktree_dir(worktree)
        keep = _free_name(payload / "jvs-restore-conflicts")
        import shutil

        shutil.move(str(conflicts), str(keep))
    trash = None
    if os.path.lexists(wdir):
        trash_dir(repo).mkdir(parents=True, exist_ok=True)
        trash = trash_dir(repo) / f"{worktree}-{os.urandom(4).hex()}"
        os.rename(wdir, trash)
    drop_intent(intent)
    return trash


def trash_dir(repo: Repo) -> Path:
    """Replaced content waiting to be deleted. '@' cannot occur in a worktree name, so
    this never collides with a restore work dir."""
    return repo.jvs_dir / "restore" / "@trash"


def drop_ignored(repo: Repo, tree: Path, paths: list[str], label: str) -> None:
    """Move *paths* (ignored entries an engine cloned anyway) out of the staged *tree*
    into the trash: one rename each now, the deletion later (``empty_trash``)."""
    if not paths:
        return
    bin_ = trash_dir(repo) / f"{label}-{os.urandom(4).hex()}"
    bin_.mkdir(parents=True)
    for n, rel in enumerate(paths):
        os.rename(tree / rel, bin_ / str(n))


def empty_trash(repo: Repo) -> None:
    """Delete everything in the trash (safe to run at any time, by several processes).
    On a JuiceFS mount with ``juicefs rmr``, much faster than one unlink per file."""
    try:
        items = sorted(os.listdir(trash_dir(repo)))
    except FileNotFoundError:
        return
    if not items:
        return
    from jvs.engines.juicefs import remove_tree

    for name in items:
        remove_tree(trash_dir(repo) / name)


def after_restore(repo: Repo, result: RestoreResult) -> None:
    """The end of a restore: seed the stat cache with the restored files, delete the
    replaced content. Neither changes what the worktree holds."""
    try:
        if result.restored_at_ns and not result.unchanged:
            crashpoint("restore:seeding")
            remember_restored(repo, result.worktree.name, result.target,
                              result.target.partial_paths, result.restored_at_ns,
                              IgnoreRules(result.ignore_rules))
    except (OSError, JvsError):
        pass  # the stat cache is only an optimisation
    empty_trash(repo)


# ------------------------------------------------------------------------------ helpers

def _wait_quietly(wait: Callable[[], object]) -> None:
    try:
        wait()
    except BaseException:  # the error that made us stop matters more
        pass


def _phase_index(rec: RestoreIntent) -> int:
    try:
        return _ORDER.index(rec.phase)
    except ValueError:
        return 0


def _head_algo(repo: Repo, rec: RestoreIntent) -> str:
    head = rec.previous_head
    if head:
        try:
            return read_descriptor(repo, head, verify=False).payload_hash_algo
        except JvsError:
            pass
    return repo.config().payload_hash_algo


def _under(rel: str, paths: tuple[str, ...]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in paths)


def _make_parents(src_root: Path, dst_root: Path, rel: str) -> None:
    """Create the directories above *rel* in *dst_root*, with the modes they have in
    *src_root* (for partial overlays; a top-level entry has none)."""
    parts = PurePosixPath(rel).parts
    for depth in range(1, len(parts)):
        sub = Path(*parts[:depth])
        if os.path.isdir(dst_root / sub):
            continue
        mode = 0o755
        try:
            mode = stat.S_IMODE(os.lstat(src_root / sub).st_mode)
        except FileNotFoundError:
            pass
        os.mkdir(dst_root / sub, 0o700)
        os.chmod(dst_root / sub, mode | 0o700)


def _rename_to_free_name(src: Path, dst: Path) -> None:
    """Rename *src* to *dst*, or to a free ``.conflict-N`` name next to it if *dst* is
    taken. Tried first and asked after: a missing name costs a round trip on FUSE."""
    try:
        fsio.rename_noreplace(src, dst)
        return
    except (FileExistsError, PermissionError):
        pass  # taken, or a read-only directory (see _rename): the careful way
    _rename(src, _free_name(dst))


def _free_name(path: Path) -> Path:
    if not os.path.lexists(path):
        return path
    n = 1
    while os.path.lexists(path.with_name(f"{path.name}.conflict-{n}")):
        n += 1
    return path.with_name(f"{path.name}.conflict-{n}")


def _rename(src: Path, dst: Path) -> None:
    """rename(2), also for a read-only directory (moving a directory to another parent
    needs write permission on it to update its ``..``; snapshots keep modes exactly)."""
    try:
        fsio.rename_noreplace(src, dst)
    except PermissionError:
        st = os.lstat(src)
        if not stat.S_ISDIR(st.st_mode):
            raise
        os.chmod(src, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
        fsio.rename_noreplace(src, dst)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
