"""Creating a snapshot (SPEC §6), one function per protocol step.

intent → materialise into ``snapshots/<id>.tmp`` → hash + manifest → fsync → descriptor to
a temp name → rename the payload into place → rename the descriptor into place (the
commit point) → update the worktree config → append audit → drop the intent.

A crash before the commit point leaves no snapshot (only leftovers ``doctor`` removes); a
crash after it leaves a complete snapshot whose worktree config ``doctor`` advances.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from jvs import fsio
from jvs.audit import append_audit, recently_recorded
from jvs.crashpoints import crashpoint, profile_step
from jvs.descriptor import (
    Descriptor,
    parse_descriptor,
    publish_descriptor,
    read_descriptor,
    write_descriptor_tmp,
)
from jvs.engines import CloneResult, Engine, choose_engine
from jvs.engines.copy import WalkSink
from jvs.errors import JvsError, io_error
from jvs.ids import new_snapshot_id, rfc3339_utc
from jvs.ignore import IGNORE_FILE, IgnoreRules
from jvs.integrity import (
    HashStats,
    ScannedEntry,
    ScanResult,
    entries_of,
    manifest_bytes,
    root_hash,
    scan,
    scan_parallel,
)
from jvs.intents import Intent, SnapshotIntent, drop_intent, write_intent
from jvs.lock import assert_lock_still_held, worktree_lock
from jvs.names import validate_tag
from jvs.progress import SILENT, counts, metered
from jvs.progress import Progress as Counts
from jvs.publish import fsync_payload, publish_payload, write_manifest
from jvs.repo import Repo
from jvs.resolve import check_new_tags
from jvs.statcache import RACY_WINDOW_NS, StatCache, stat_cache_path
from jvs.trash import drop_ignored, empty_trash
from jvs.worktree import (
    WorktreeConfig,
    load_worktree_config,
    save_worktree_config,
    worktree_payload,
)

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class SnapshotResult:
    descriptor: Descriptor
    was_detached: bool
    previous_latest: str | None
    stats: HashStats
    skipped_special: tuple[str, ...] = field(default=())
    ignored: tuple[str, ...] = field(default=())  # left out by .jvsignore (top-most paths)
    audit_error: str | None = None  # published, but its audit record could not be written

    def to_json(self) -> dict:
        """``jvs snapshot --json``: the snapshot, and what taking it cost."""
        return {**self.descriptor.to_summary_json(),
                "stats": {"files_hashed": self.stats.files_hashed,
                          "bytes_hashed": self.stats.bytes_hashed},
                "was_detached": self.was_detached,
                "ignored": list(self.ignored)}


def normalise_paths(worktree_dir: Path, paths: list[str],
                    ignore: IgnoreRules | None = None) -> tuple[str, ...]:
    """Partial-snapshot paths as clean relative paths that exist inside the worktree and
    are not ignored by its ``.jvsignore``."""
    out: list[str] = []
    for raw in paths:
        p = PurePosixPath(raw.replace(os.sep, "/"))
        if p.is_absolute():
            try:
                p = PurePosixPath(Path(raw).resolve().relative_to(worktree_dir.resolve()))
            except ValueError:
                raise JvsError("E_PATH_ESCAPE", f"{raw} is outside the worktree") from None
        if any(part == ".." for part in p.parts) or str(p) in ("", "."):
            raise JvsError("E_PATH_ESCAPE", f"partial path {raw!r} must stay inside the worktree")
        target = worktree_dir / p
        if not os.path.lexists(target):
            raise JvsError("E_NOT_FOUND", f"partial path {raw!r} does not exist in the worktree")
        fsio.ensure_inside(worktree_dir, target.parent)
        if ignore and ignore.ignored(str(p), target.is_dir() and not target.is_symlink()):
            raise JvsError("E_USAGE", f"partial path {raw!r} is ignored by {IGNORE_FILE}",
                           hint=f"remove its pattern from {IGNORE_FILE} to snapshot it")
        out.append(str(p))
    # A path inside another listed path adds nothing.
    unique = sorted(set(out))
    return tuple(p for p in unique
                 if not any(p != q and p.startswith(q + "/") for q in unique))


def create_snapshot(repo: Repo, worktree: str, *, note: str = "", tags: list[str] = (),
                    paths: list[str] = (), progress: Progress | None = None) -> SnapshotResult:
    """Snapshot *worktree*. When this returns, the snapshot is published (or, on an error,
    nothing of it is left) and nothing of the command runs on."""
    tags = tuple(dict.fromkeys(validate_tag(t) for t in tags))
    check_new_tags(repo, tags)
    profile_step("snapshot:start")
    with worktree_lock(repo, worktree, "snapshot"):
        profile_step("snapshot:locked")
        from jvs.recovery import settle_worktree

        # A crashed operation on this worktree is finished (or refused) first: a snapshot
        # must never capture a restore half-moved.
        settle_worktree(repo, worktree, "snapshot")
        wt = load_worktree_config(repo, worktree)
        source = worktree_payload(repo, worktree)
        ignore = IgnoreRules.load(source)
        partial = normalise_paths(source, list(paths), ignore) if paths else ()
        config = repo.config()
        engine = choose_engine(repo.root, config.engine).engine
        snapshot_id = new_snapshot_id()
        intent = write_intent(repo, SnapshotIntent(snapshot_id, worktree, wt.head_snapshot_id,
                                                   wt.created_at))
        crashpoint("snapshot:after_intent")
        try:
            descriptor, built = _stage_and_commit(
                repo, wt, source, ignore, partial, engine, config.payload_hash_algo,
                snapshot_id, note, tags, progress)
        except BaseException:
            # A host that lost the lock (docs/cluster.md) may find its staging cleaned by
            # whoever took the lock: say that, rather than the error it caused here.
            assert_lock_still_held(repo, "snapshot")
            roll_back_snapshot(repo, snapshot_id)
            drop_intent(intent)
            raise
        crashpoint("snapshot:after_commit")
        try:
            audit_error = _after_commit(repo, wt, snapshot_id, note, tags, descriptor,
                                        worktree)
        except BaseException:
            built.discard()  # published: its worktree is moved by doctor (the intent)
            raise
        drop_intent(intent)
        built.save_cache()
        profile_step("snapshot:saved_stat_cache")
        empty_trash(repo)  # ignored paths an engine cloned anyway: O(what was ignored)
        return SnapshotResult(descriptor, wt.detached, wt.latest_snapshot_id, built.stats,
                              tuple(built.skipped_special),
                              tuple(p for p in built.ignored if _in_partial(p, partial)),
                              audit_error)


def _after_commit(repo: Repo, wt: WorktreeConfig, snapshot_id: str, note: str,
                  tags: tuple[str, ...], descriptor: Descriptor, worktree: str) -> str | None:
    """Move the worktree to the published snapshot and append its audit record; the
    audit record's error, if it could not be written."""
    update_worktree(repo, wt, snapshot_id)
    crashpoint("snapshot:after_worktree_update")
    audit_error = None
    try:
        append_audit(repo, "snapshot", snapshot_id, note, worktree=worktree,
                     tags=list(tags) or None, engine=descriptor.engine)
    except OSError as exc:
        # Published and HEAD already: say so rather than fail (doctor --strict finds the
        # missing record and audit_repair appends it).
        audit_error = str(exc)
    crashpoint("snapshot:after_audit")
    return audit_error


@dataclass
class Staged:
    """A staged payload with its manifest written: what the clone kept, what it cost,
    what was left out, and how to put the next stat cache in place."""

    clone: CloneResult
    root_hash: str
    stats: HashStats
    skipped_special: list[str]
    ignored: list[str]
    save_cache: Callable[[], None]
    discard: Callable[[], None] = lambda: None


def _stage_and_commit(repo: Repo, wt: WorktreeConfig, source: Path, ignore: IgnoreRules,
                      partial: tuple[str, ...], engine: Engine, algo: str, snapshot_id: str,
                      note: str, tags: tuple[str, ...], progress: Progress | None):
    """The protocol up to its commit point: materialise, hash, fsync, descriptor, publish.
    Raises before the commit point with nothing published (the caller rolls back)."""
    staged = repo.snapshots_dir / f"{snapshot_id}.tmp"
    if progress:
        progress(f"materialising with {engine.name}")
    if engine.capabilities.walks_files and not partial:
        built = walk_into(repo, wt, engine, source, staged, ignore, algo, snapshot_id,
                          progress)
    else:
        built = clone_and_scan(repo, wt, engine, source, staged, ignore, partial, algo,
                               snapshot_id, progress)
    try:
        crashpoint("snapshot:after_hash")

        fsync_payload(staged)
        crashpoint("snapshot:after_fsync")

        degraded = list(built.clone.degraded)
        degraded += [f"special-file:{p}" for p in built.skipped_special
                     if _in_partial(p, partial)]
        descriptor = Descriptor(
            snapshot_id=snapshot_id,
            parent_id=wt.head_snapshot_id,
            worktree_name=wt.name,
            created_at=rfc3339_utc(),
            note=note,
            tags=tags,
            engine=built.clone.engine,
            payload_hash_algo=algo,
            payload_root_hash=built.root_hash,
            partial_paths=partial,
            degraded=tuple(degraded),
        ).sealed()
        tmp_descriptor = write_descriptor_tmp(repo, descriptor)
        crashpoint("snapshot:after_descriptor_tmp")

        assert_lock_still_held(repo, "snapshot")
        publish_payload(repo, staged, snapshot_id)
        crashpoint("snapshot:after_publish_payload")

        publish_descriptor(repo, tmp_descriptor, snapshot_id)  # the commit point
    except BaseException:
        built.discard()
        raise
    return descriptor, built


def walk_into(repo: Repo, wt: WorktreeConfig, engine: Engine, source: Path, staged: Path,
              ignore: IgnoreRules, algo: str, snapshot_id: str,
              progress: Progress | None) -> Staged:
    """Materialise with a walking engine (copy, reflink-copy), building the manifest and
    the next stat cache as it goes (``jvs.snapshot_walk``): nothing is listed twice and
    nothing is kept per file. The copy engine links the files the stat cache vouches for
    from the head snapshot; if the head's manifest then turns out not to be the one its
    descriptor names, the snapshot is taken again without linking."""
    from jvs.snapshot_walk import WalkedSnapshot

    head = head_to_link_from(repo, wt, algo) \
        if engine.capabilities.links_unchanged_files else None
    cache_path = stat_cache_path(repo, wt.name)
    horizon = time.time_ns() - RACY_WINDOW_NS
    meter = counts(progress)
    for attempt in range(3):
        walk = WalkedSnapshot(algo, cache_path, repo.snapshots_dir, horizon, head)
        profile_step("snapshot:loaded_stat_cache")
        try:
            if progress:
                progress("hashing")
            meter.start(0, 0)  # counted as the walk goes: one walk, no total beforehand
            clone = materialise(engine, source, staged, (), walk, ignore,
                                meter=None if meter is SILENT else meter)
            crashpoint("snapshot:after_materialise")
            if not walk.head_trusted():
                walk.discard()
                fsio.remove_tree(staged)
                head = None
                continue
            root = walk.write_manifest(repo.manifest_path(snapshot_id))
        except VanishedDuringClone:
            # A program replaced a file by rename (an editor's save) while the engine
            # cloned the tree: start over; a file that is gone is simply not in it.
            walk.discard()
            if attempt == 2:
                raise
            continue
        except BaseException:
            walk.discard()
            raise
        return Staged(clone, root, walk.stats, walk.skipped_special, walk.ignored,
                      walk.save_cache, walk.discard)
    raise JvsError("E_ENGINE", "the worktree kept changing while the snapshot was taken",
                   hint="retry")


def clone_and_scan(repo: Repo, wt: WorktreeConfig, engine: Engine, source: Path,
                   staged: Path, ignore: IgnoreRules, partial: tuple[str, ...], algo: str,
                   snapshot_id: str, progress: Progress | None) -> Staged:
    """Materialise with an engine that clones trees (juicefs-clone), or only the *partial*
    paths, then scan the worktree and the staged copy and hash what the stat cache cannot
    vouch for."""
    cache = StatCache.load(repo, wt.name, algo)
    profile_step("snapshot:loaded_stat_cache")
    # juicefs-clone would walk the worktree during the clone to find what it cannot keep
    # (hardlinks, owners), competing with the clone for the same JuiceFS client; it
    # learns that from the scan below instead, taken anyway once the clone is done.
    scan_reports = engine.capabilities.reports_from_scan and not partial
    for attempt in range(3):
        try:
            clone = materialise(engine, source, staged, partial, None, ignore,
                                report=not scan_reports)
            break
        except VanishedDuringClone:
            if attempt == 2:
                raise
    crashpoint("snapshot:after_materialise")

    if progress:
        progress("hashing")
    after, staged_listed = scanned_trees(source, staged, ignore)
    profile_step("snapshot:scanned_worktree")
    if scan_reports:
        clone = engine.report_from_scan(clone, source, staged, os.lstat(source),
                                        ((e.relpath, e.st) for e in after.entries))
    root, stats = hash_payload(repo, snapshot_id, staged, cache, after, staged_listed(),
                               algo, ignore, meter=counts(progress))
    return Staged(clone, root, stats, after.skipped_special, after.ignored,
                  lambda: cache.save(keep=None if partial else after.file_paths()))


class VanishedDuringClone(JvsError):
    def __init__(self, path: str) -> None:
        super().__init__("E_ENGINE", f"{path} vanished while the snapshot was being taken",
                         hint="retry; a program is renaming files in the worktree")


def roll_back_snapshot(repo: Repo, snapshot_id: str) -> None:
    """Remove everything an unpublished snapshot *snapshot_id* wrote (staging, temporary
    descriptor, manifest, payload renamed into place without its descriptor). A published
    snapshot (its descriptor in place) is never touched."""
    if repo.descriptor_path(snapshot_id).exists():
        return
    for path in (repo.snapshots_dir / f"{snapshot_id}.tmp", repo.payload_dir(snapshot_id),
                 repo.descriptors_dir / f"{snapshot_id}.json.tmp",
                 repo.manifest_path(snapshot_id)):
        if os.path.lexists(path):
            fsio.remove_tree(path)


def finish_snapshot(repo: Repo, intent: Intent) -> str:
    """Finish a snapshot that crashed (the caller holds the lock), from what its intent
    recorded: published → move its worktree to it (if the worktree is still where the
    snapshot started) and write its audit record; payload in place with a sound
    temporary descriptor → publish it, then the same; otherwise → roll it back."""
    rec: SnapshotIntent = intent.record
    sid = rec.snapshot_id
    if not repo.descriptor_path(sid).exists() and not _publishable(repo, sid):
        roll_back_snapshot(repo, sid)
        drop_intent(intent)
        return f"rolled back the unfinished snapshot {sid} of {rec.worktree}"
    if not repo.descriptor_path(sid).exists():
        publish_descriptor(repo, repo.descriptors_dir / f"{sid}.json.tmp", sid)
    descriptor = read_descriptor(repo, sid, verify=False)
    moved = ""
    try:
        wt = load_worktree_config(repo, rec.worktree)
    except JvsError:
        wt = None
    if wt is not None and wt.created_at == (rec.worktree_created_at or wt.created_at):
        if wt.head_snapshot_id == rec.parent_id and wt.latest_snapshot_id != sid:
            update_worktree(repo, wt, sid)
            moved = f"; moved worktree {rec.worktree} to it"
    if not recently_recorded(repo, "snapshot", sid):
        append_audit(repo, "snapshot", sid, descriptor.note, worktree=rec.worktree,
                     tags=list(descriptor.tags) or None, engine=descriptor.engine,
                     finished_after_crash=True)
    drop_intent(intent)
    return f"finished snapshot {sid}{moved}"


def _publishable(repo: Repo, snapshot_id: str) -> bool:
    """The payload was renamed into place (so it was complete and durable) and the
    temporary descriptor, written and fsynced before that rename, is sound."""
    if not repo.payload_dir(snapshot_id).is_dir():
        return False
    try:
        desc = parse_descriptor((repo.descriptors_dir / f"{snapshot_id}.json.tmp").read_bytes())
    except (OSError, JvsError):
        return False
    return desc.snapshot_id == snapshot_id and desc.checksum_valid()


def _in_partial(rel: str, partial: tuple[str, ...]) -> bool:
    return not partial or any(rel == p or rel.startswith(p + "/") for p in partial)


def head_to_link_from(repo: Repo, wt: WorktreeConfig,
                      algo: str) -> tuple[Path, Path, str] | None:
    """The worktree's head snapshot as a source of unchanged files (its payload, manifest
    and root hash), when its descriptor checks out with the same hash algorithm."""
    if not wt.head_snapshot_id:
        return None
    try:
        head = read_descriptor(repo, wt.head_snapshot_id)
    except JvsError:
        return None
    payload = repo.payload_dir(head.snapshot_id)
    if head.payload_hash_algo != algo or not payload.is_dir():
        return None
    return payload, repo.manifest_path(head.snapshot_id), head.payload_root_hash


def materialise(engine: Engine, source: Path, staged: Path, partial: tuple[str, ...],
                walk: WalkSink | None = None, ignore: IgnoreRules | None = None,
                report: bool = True, meter=None) -> CloneResult:
    """Clone the worktree (or only its *partial* paths) into the staging directory,
    leaving out what *ignore* matches as far as the engine can (hash_payload drops the
    rest). A walking engine given *walk* tells it each entry (``clone_walking``), and
    *meter* the files copied. Without *report* (whole worktree, an engine with
    ``report_from_scan``) the caller finds what the clone could not keep from its own
    scan."""
    if os.path.lexists(staged):
        fsio.remove_tree(staged)  # a leftover of a crashed run with the same ID
    ignore = ignore or None
    try:
        if walk is not None:
            return engine.clone_walking(source, staged, walk, ignore, meter=meter)
        if not partial:
            if not report:
                return engine.clone(source, staged, ignore, report=False)
            return engine.clone(source, staged, ignore)
        from jvs.engines.copy import _Degraded, copy_metadata

        degraded: dict[str, None] = {}
        staged.mkdir(mode=0o700)
        engine_name = engine.name
        for rel in partial:
            parts = PurePosixPath(rel).parts
            for depth in range(1, len(parts)):
                sub = Path(*parts[:depth])
                if not (staged / sub).exists():
                    (staged / sub).mkdir(mode=0o700)
            result = engine.clone(source / rel, staged / rel,
                                  ignore.below(rel) if ignore else None)
            engine_name = result.engine
            degraded.update(dict.fromkeys(result.degraded))
        # Parent directories get their real modes and mtimes, deepest first.
        meta = _Degraded()
        dirs = {Path(*PurePosixPath(rel).parts[:d]) for rel in partial
                for d in range(1, len(PurePosixPath(rel).parts))}
        for sub in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            copy_metadata(os.lstat(source / sub), str(source / sub), str(staged / sub), meta,
                          xattrs=False)
        copy_metadata(os.lstat(source), str(source), str(staged), meta, xattrs=False)
        degraded.update(dict.fromkeys(meta.items))
        return CloneResult(engine_name, tuple(degraded))
    except JvsError:
        raise
    except FileNotFoundError as exc:
        name = os.fsdecode(exc.filename or "")
        if name and _is_under(name, source):
            raise VanishedDuringClone(name) from exc
        raise io_error(exc, f"{engine.name} could not materialise the snapshot",
                       hint="nothing was published") from exc
    except OSError as exc:
        raise io_error(exc, f"{engine.name} could not materialise the snapshot",
                       hint="nothing was published") from exc


def _is_under(path: str, root: Path) -> bool:
    root_text = os.fspath(root)
    return path == root_text or path.startswith(root_text.rstrip("/") + "/")


def scanned_trees(source: Path, staged: Path,
                  ignore: IgnoreRules | None) -> tuple[ScanResult, Callable[[], ScanResult]]:
    """The worktree after the clone, and a function that returns the staged copy's scan,
    taken in a thread meanwhile: on FUSE both scans mostly wait for replies (lstat
    releases the GIL), so with a core free they overlap."""
    from jvs.mountinfo import on_local_filesystem

    # Over FUSE (JuiceFS) a stat waits for a reply: several in flight hide that wait.
    walk = scan if on_local_filesystem(source) else scan_parallel
    staged_scan = in_thread(lambda: walk(staged, ignore=ignore))
    return walk(source, ignore=ignore), staged_scan


def hash_payload(repo: Repo, snapshot_id: str, staged: Path, cache: StatCache,
                 after: ScanResult, staged_scan: ScanResult, algo: str,
                 ignore: IgnoreRules | None = None,
                 meter: Counts = SILENT) -> tuple[str, HashStats]:
    """Hash the staged copy, reading only what the stat cache cannot vouch for; write
    ``manifests/<id>`` and return its root hash.

    *after* is the worktree's stat taken once the clone is done. A cache entry is used
    only when that stat equals the cached one: any write since the entry was made (during
    the clone included) changed the file's ctime, so an equal stat means the file held
    the cached content throughout. A fresh hash is remembered only when the staged copy
    carries the worktree file's current mtime and size (engines copy mtimes), i.e. the
    file did not change while it was being cloned. Special files and ignored paths an
    engine may have cloned are dropped, so the payload is exactly what the manifest
    records. *staged_scan* is the staged copy's scan (with the *ignore* rules). *meter*
    hears the files and bytes gone through."""
    post = after.files()
    stats = HashStats()
    lookup = cache.lookup
    vouched: set[str] = set()  # files whose cache entry matched: nothing new to remember

    def known(e: ScannedEntry) -> str | None:
        rel = e.relpath
        st = post.get(rel)
        if st is None or st.st_size != e.st.st_size:
            return None
        digest = lookup(rel, st)
        if digest is not None:
            vouched.add(rel)
        return digest

    profile_step("snapshot:scanned_staged")
    for rel in staged_scan.skipped_special:
        os.unlink(staged / rel)
    if staged_scan.ignored:
        drop_ignored(repo, staged, staged_scan.ignored, f"snapshot-{snapshot_id}")
    scanned, staged_files = staged_scan.entries, staged_scan.files()
    if meter is not SILENT:
        meter.start(len(staged_files), sum(st.st_size for st in staged_files.values()))
        scanned = metered(scanned, meter)
    entries = entries_of(staged, scanned, algo, stats, known)
    profile_step("snapshot:hashed")
    for entry in entries:
        if entry.kind != "file" or entry.relpath in vouched:
            continue  # the cache holds exactly this entry already
        st, copied = post.get(entry.relpath), staged_files.get(entry.relpath)
        if st is not None and copied is not None \
                and (st.st_mtime_ns, st.st_size) == (copied.st_mtime_ns, copied.st_size):
            cache.remember(entry.relpath, st, entry.hash)
    manifest = manifest_bytes(entries)
    del entries  # before the stored form is made: the peak of a big snapshot
    write_manifest(repo, snapshot_id, manifest)
    return root_hash(manifest), stats


def in_thread(func: Callable[..., T], *args) -> Callable[[], T]:
    """Start ``func(*args)`` in a thread; the returned function waits for it and returns
    its result, or raises its exception."""
    box: list = []

    def run() -> None:
        try:
            box.append((func(*args), None))
        except BaseException as exc:  # handed to the caller by wait()
            box.append((None, exc))

    # Not a daemon: if the caller fails before it waits, the interpreter still joins the
    # thread before exiting, so nothing of the command outlives it.
    thread = threading.Thread(target=run)
    thread.start()

    def wait() -> T:
        thread.join()
        value, exc = box[0]
        if exc is not None:
            raise exc
        return value

    return wait


def update_worktree(repo: Repo, wt: WorktreeConfig, snapshot_id: str) -> WorktreeConfig:
    new = wt.moved_to(snapshot_id, new_latest=True)
    save_worktree_config(repo, new)
    return new
