"""``jvs doctor`` (SPEC §9): find what a crash, a copy or a hand edit left behind, and
repair the runtime part of it.

Each check returns :class:`Finding` records (severity, SPEC error class, the repair that
fixes it, if any). Repairs run under the repository lock, touch only jvs-owned paths
under ``.jvs/``, and each appends an audit record. A file a user wrote in a worktree is
never looked at, whatever its name.

Liveness of intents: without the lock, an intent is live if its process may still run
(same host and the pid exists; another host's intents always count as live). With the
lock held (when repairing), every intent is abandoned: each operation that writes an
intent holds the repository lock for its whole protocol, and on JuiceFS that lock is
cluster-wide, so no operation can be running anywhere.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jvs import fsio
from jvs.descriptor import Descriptor, parse_descriptor
from jvs.errors import JvsError
from jvs.ids import is_snapshot_id
from jvs.intents import (
    Intent,
    RestoreIntent,
    SnapshotIntent,
    WorktreeIntent,
    intent_is_live,
    list_intents,
)
from jvs.repo import CONTROL_DIRS, REQUIRED_CONTROL_DIRS, Repo, check_control_plane
from jvs.statcache import read_cache_file, worktree_of_cache_file

REPAIRS = ("clean_tmp", "clean_intents", "advance_head", "rebuild_index", "audit_repair",
           "finish_restore")
RUNTIME_REPAIRS = ("finish_restore", "advance_head", "clean_tmp", "clean_intents",
                   "rebuild_index")
# The order repairs run in: operations are finished from their intents first, then what
# no intent accounts for is cleaned.
_REPAIR_ORDER = ("finish_restore", "advance_head", "clean_intents", "clean_tmp",
                 "rebuild_index", "audit_repair")
_PART_FILE = re.compile(r"\..+\.[0-9a-f]{8}\.part")
# Readers (status) refresh caches without the lock; their temp files are this young.
_PART_MIN_AGE_S = 60


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # "error" | "warning" | "info"
    error_class: str
    message: str
    path: str | None = None
    repair: str | None = None
    # What the repair acts on (none of it is in the JSON, which has ``path``):
    snapshot_id: str | None = None  # the snapshot a leftover belongs to
    worktree: str | None = None  # the worktree a leftover restore work directory is of
    intent: str | None = None  # the intent file of a crashed operation

    def to_json(self) -> dict:
        return {"check": self.check, "severity": self.severity,
                "error_class": self.error_class, "message": self.message, "path": self.path,
                "repair": self.repair}


@dataclass(frozen=True)
class Repaired:
    """One repair action that changed something, and what it changed (for humans)."""

    action: str
    items: tuple[str, ...]

    def to_json(self) -> dict:
        return {"action": self.action, "items": list(self.items)}


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    repaired: list[Repaired] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {"healthy": self.healthy, "findings": [f.to_json() for f in self.findings],
                "in_flight": self.in_flight,
                "repaired": [r.to_json() for r in self.repaired],
                "warnings": self.warnings}


@dataclass(frozen=True)
class State:
    """One reading of the control plane, shared by the checks."""

    descriptors: dict[str, Descriptor]
    unreadable: dict[str, str]  # snapshot ID -> why its descriptor cannot be used
    raw: dict[str, bytes]
    intents: list[Intent]
    live: list[Intent]
    live_ids: set[str]
    tombstones: set[str]  # collected by gc, payload or manifest not yet deleted
    locked: bool = False  # read under the repository lock: no operation can be running


def read_state(repo: Repo, *, locked: bool) -> State:
    from jvs.catalog import gc_paused
    from jvs.gc import unfinished_collections
    from jvs.index import published_ids

    descriptors: dict[str, Descriptor] = {}
    unreadable: dict[str, str] = {}
    raw: dict[str, bytes] = {}
    # Plain string paths: a Path per descriptor cost more than reading it, at 20,000.
    prefix = os.path.join(repo.descriptors_dir, "")
    with gc_paused():
        for sid in sorted(published_ids(repo)):
            try:
                with open(f"{prefix}{sid}.json", "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            raw[sid] = data
            try:
                desc = parse_descriptor(data)
            except JvsError:
                try:
                    parse_descriptor(data, repo.descriptor_path(sid))  # the message names it
                except JvsError as exc:
                    unreadable[sid] = exc.message
                continue
            if desc.snapshot_id != sid:
                unreadable[sid] = f"descriptor names another snapshot ({desc.snapshot_id})"
            elif not desc.checksum_valid():
                unreadable[sid] = "descriptor fails its checksum (edited or corrupt)"
                descriptors[sid] = desc  # still usable for lineage; verify reports it
            else:
                descriptors[sid] = desc
    intents = list_intents(repo)
    live = [] if locked else [i for i in intents if intent_is_live(i)]
    live_ids: set[str] = set()
    for intent in live:
        live_ids.update(re.findall(r"\d{13}-[0-9a-f]{8}", json.dumps(intent.raw)))
    return State(descriptors, unreadable, raw, intents, live, live_ids,
                 set(unfinished_collections(repo)), locked)


def _ids_in_intents(state: State) -> set[str]:
    """Snapshot IDs that an intent accounts for (its repair handles them)."""
    out: set[str] = set()
    for intent in state.intents:
        out.update(re.findall(r"\d{13}-[0-9a-f]{8}", json.dumps(intent.raw)))
    return out


# ------------------------------------------------------------------------------- checks

def check_layout(repo: Repo) -> list[Finding]:
    """Control directories a repository cannot do without (the others are made on first
    use), and its identity. ``config.json`` is optional: a repository the Go
    implementation wrote has none (its defaults apply)."""
    out = []
    for sub in REQUIRED_CONTROL_DIRS:
        path = repo.jvs_dir / sub
        if not path.is_dir():
            out.append(Finding("missing_control_dir", "warning", "E_NOT_FOUND",
                               f"control directory .jvs/{sub} is missing", str(path),
                               "clean_tmp"))
    if not (repo.jvs_dir / "repo_id").is_file():
        out.append(Finding("missing_control_file", "error", "E_NOT_FOUND",
                           ".jvs/repo_id is missing", str(repo.jvs_dir / "repo_id")))
    try:
        check_control_plane(repo.jvs_dir)
    except JvsError as exc:
        out.append(Finding("control_path_escape", "error", "E_PATH_ESCAPE", exc.message,
                           None))
    try:
        repo.config()
    except JvsError as exc:
        out.append(Finding("config_corrupt", "error", exc.code, exc.message,
                           str(repo.jvs_dir / "config.json")))
    known = {*CONTROL_DIRS, "format_version", "repo_id", "config.json", "restore",
             "index.sqlite", "index.sqlite-journal", "index.sqlite-wal", "index.sqlite-shm"}
    for name in sorted(os.listdir(repo.jvs_dir)):
        if name not in known and not _PART_FILE.fullmatch(name):
            out.append(Finding("unknown_entry", "info", "E_NOT_FOUND",
                               f".jvs/{name} is not part of the format (left untouched)",
                               str(repo.jvs_dir / name)))
    return out


def check_intents(repo: Repo, state: State, report: Report) -> list[Finding]:
    """Each crashed operation, with the repair that finishes it from its intent."""
    out = []
    live = {i.path for i in state.live}
    for intent in state.intents:
        if intent.path in live:
            report.in_flight.append(intent.describe())
            continue
        rec = intent.record
        where = str(intent.path)
        if rec is None:
            out.append(Finding("intent_unreadable", "error", "E_DESCRIPTOR_CORRUPT",
                               f"{intent.describe()}: nothing acts on it", where))
        elif isinstance(rec, RestoreIntent):
            out.append(Finding("unfinished_restore", "error", "E_UNSAVED",
                               f"a restore of worktree {rec.worktree!r} to {rec.target_id} "
                               f"crashed ({intent.who})", where, "finish_restore", intent=where))
        elif isinstance(rec, SnapshotIntent) and repo.descriptor_path(rec.snapshot_id).exists():
            out.append(Finding("unfinished_snapshot", "warning", "E_LINEAGE_BROKEN",
                               f"snapshot {rec.snapshot_id} of {rec.worktree!r} was published, "
                               f"then its command crashed ({intent.who}) before it moved the "
                               "worktree", where, "advance_head", intent=where))
        else:
            what = (f"snapshot {rec.snapshot_id} of {rec.worktree!r}"
                    if isinstance(rec, SnapshotIntent)
                    else f"{rec.operation} of worktree {rec.name!r}"
                    if isinstance(rec, WorktreeIntent) else intent.operation)
            out.append(Finding("abandoned_intent", "warning", "E_BUSY",
                               f"the {what} crashed ({intent.who})", where,
                               "clean_intents", intent=where))
    return out


def _leftover_files(repo: Repo, locked: bool) -> list[Path]:
    """Temporary files of atomic writes (``.<name>.<hex>.part``) under ``.jvs/``, outside
    snapshot payloads (which are user data, whatever their names). Only a writer holding
    the lock makes them, except in ``cache/`` (readers refresh caches without it): with the
    lock held, every one outside ``cache/`` is a leftover; otherwise only old ones are."""
    out = []
    for dirpath, dirs, files in os.walk(repo.jvs_dir):
        here = Path(dirpath)
        if here == repo.snapshots_dir or here.parent == repo.jvs_dir / "restore" \
                or here == repo.jvs_dir / "restore":
            dirs[:] = []  # payloads and a restore's staged content are not ours to judge
        in_cache = here == repo.cache_dir or repo.cache_dir in here.parents
        for name in files:
            if _PART_FILE.fullmatch(name):
                if locked and not in_cache:
                    out.append(here / name)
                    continue
                try:
                    age = time.time() - os.lstat(here / name).st_mtime
                except FileNotFoundError:
                    continue
                if age > _PART_MIN_AGE_S:  # younger: a write may be in progress
                    out.append(here / name)
    return out


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except FileNotFoundError:
        return False


def check_leftovers(repo: Repo, state: State) -> list[Finding]:
    """Staging dirs, temp descriptors, payloads and manifests nobody published."""
    out = []
    try:
        snap_names = os.listdir(repo.snapshots_dir)
    except FileNotFoundError:
        snap_names = []
    named = _ids_in_intents(state)
    for name in sorted(snap_names):
        if name in state.raw:
            continue  # published: the common case, tested first at 20,000 snapshots
        path = repo.snapshots_dir / name
        if name.endswith(".tmp"):
            # Staging of ours, whatever its name (the Go implementation's too); an
            # operation whose intent names it is finished from that intent instead.
            if name[:-4] in state.live_ids or name[:-4] in named:
                continue
            out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                               f"staging directory {name} of an unfinished snapshot",
                               str(path), "clean_tmp", snapshot_id=name[:-4]))
        elif is_snapshot_id(name):
            if name in state.tombstones:
                out.append(Finding("gc_unfinished", "warning", "E_GC_PLAN_MISMATCH",
                                   f"gc unpublished {name} but did not delete its payload",
                                   str(path), "clean_tmp", snapshot_id=name))
            elif name not in state.live_ids and name not in named:
                # No intent accounts for it: it may be the only copy of someone's work (a
                # rescue whose descriptor was lost, say). Reported, never deleted.
                out.append(Finding("orphan_payload", "error", "E_DESCRIPTOR_CORRUPT",
                                   f"payload {name} has no descriptor and no operation "
                                   "accounts for it; it may hold the only copy of data, so "
                                   "doctor leaves it alone (look inside; remove it by hand if "
                                   "it is not needed)", str(path)))
        else:
            out.append(Finding("unknown_entry", "info", "E_NOT_FOUND",
                               f".jvs/snapshots/{name} is not part of the format (left "
                               "untouched)", str(path)))
    try:
        desc_names = os.listdir(repo.descriptors_dir)
    except FileNotFoundError:
        desc_names = []
    for name in sorted(desc_names):
        sid = name.split(".", 1)[0]
        if name.endswith(".tmp"):
            if sid in state.live_ids or sid in named:
                continue
            out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                               f"temporary descriptor {name} of an unfinished snapshot",
                               str(repo.descriptors_dir / name), "clean_tmp",
                               snapshot_id=sid))
        elif not (name.endswith(".json") and is_snapshot_id(sid)) \
                and not _PART_FILE.fullmatch(name):
            out.append(Finding("unknown_entry", "info", "E_NOT_FOUND",
                               f".jvs/descriptors/{name} is not part of the format (left "
                               "untouched)", str(repo.descriptors_dir / name)))
    try:
        manifest_names = os.listdir(repo.manifests_dir)
    except FileNotFoundError:
        manifest_names = []
    for name in sorted(manifest_names):
        if name not in state.raw and is_snapshot_id(name) and name not in state.live_ids \
                and name not in named and name not in state.tombstones \
                and not os.path.lexists(repo.payload_dir(name)):
            out.append(Finding("orphan_manifest", "warning", "E_PARTIAL_SNAPSHOT",
                               f"manifest {name} has no snapshot", str(repo.manifests_dir / name),
                               "clean_tmp", snapshot_id=name))
    for sid in sorted(state.tombstones):
        if sid not in snap_names:
            out.append(Finding("gc_unfinished", "warning", "E_GC_PLAN_MISMATCH",
                               f"gc collected {sid} but did not delete its manifest",
                               str(repo.manifest_path(sid)), "clean_tmp", snapshot_id=sid))
    if not state.live:
        for path in _leftover_files(repo, state.locked):
            out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                               "temporary file of an interrupted write", str(path),
                               "clean_tmp"))
    restore_dir = repo.jvs_dir / "restore"
    if restore_dir.is_dir():
        pending = {i.record.worktree for i in state.intents
                   if isinstance(i.record, RestoreIntent)}
        for name in sorted(os.listdir(restore_dir)):
            if name == "@trash":
                # Emptied by the command that filled it; what is left was cut short.
                trash = restore_dir / name
                old = [n for n in os.listdir(trash)
                       if state.locked or _older_than(trash / n, _PART_MIN_AGE_S)]
                if old:
                    out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                                       f"restore trash holds {len(old)} item(s) not yet "
                                       "deleted", str(trash), "clean_tmp"))
                continue
            if name not in pending and not any(
                    isinstance(i.record, WorktreeIntent) and name in (i.record.name,
                                                                      i.record.new_name)
                    for i in state.intents):
                out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                                   f"leftover restore work directory of worktree {name!r}",
                                   str(restore_dir / name), "clean_tmp", worktree=name))
    return out


def check_descriptors(repo: Repo, state: State) -> list[Finding]:
    out = []
    for sid, why in sorted(state.unreadable.items()):
        out.append(Finding("descriptor_corrupt", "error", "E_DESCRIPTOR_CORRUPT",
                           f"{sid}: {why}", str(repo.descriptor_path(sid))))
    payloads = _payload_dirs(repo)
    for sid in sorted(state.raw):
        if sid not in payloads:
            out.append(Finding("payload_missing", "error", "E_PAYLOAD_HASH_MISMATCH",
                               f"snapshot {sid} is published but its payload is missing",
                               str(repo.payload_dir(sid))))
    return out


def _payload_dirs(repo: Repo) -> set[str]:
    """Names of the directories in ``snapshots/``: one listing (whose file types come
    free) instead of one stat per snapshot."""
    try:
        with os.scandir(repo.snapshots_dir) as entries:
            return {e.name for e in entries if e.is_dir()}
    except FileNotFoundError:
        return set()


def check_worktrees(repo: Repo, state: State) -> list[Finding]:
    from jvs.worktree import WorktreeConfig

    out = []
    base = repo.jvs_dir / "worktrees"
    names = sorted(n for n in os.listdir(base) if (base / n).is_dir()) if base.is_dir() else []
    for name in names:
        path = base / name / "config.json"
        try:
            wt = WorktreeConfig.from_json(fsio.read_json(path))
        except FileNotFoundError:
            out.append(Finding("worktree_config_missing", "error", "E_NOT_FOUND",
                               f"worktree {name!r} has no config.json", str(path)))
            continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            out.append(Finding("worktree_config_corrupt", "error", "E_DESCRIPTOR_CORRUPT",
                               f"worktree config of {name!r} is unreadable: {exc}", str(path)))
            continue
        if not repo.worktree_dir(name).is_dir():
            out.append(Finding("worktree_payload_missing", "error", "E_NOT_FOUND",
                               f"worktree {name!r} has no payload directory",
                               str(repo.worktree_dir(name))))
        for label, sid in (("head", wt.head_snapshot_id), ("latest", wt.latest_snapshot_id)):
            if sid and sid not in state.raw:
                out.append(Finding("head_missing", "error", "E_LINEAGE_BROKEN",
                                   f"worktree {name!r}: {label} {sid} is not a published "
                                   "snapshot", str(path)))
    others = repo.root / "worktrees"
    if others.is_dir():
        for name in sorted(os.listdir(others)):
            if (others / name).is_dir() and name not in names:
                out.append(Finding("worktree_without_config", "warning", "E_NOT_FOUND",
                                   f"directory worktrees/{name} is not a registered worktree",
                                   str(others / name)))
    return out


def check_lineage(repo: Repo, state: State) -> list[Finding]:
    from jvs.gc import collected_ids

    out = []
    descs = state.descriptors
    collected = collected_ids(repo)  # parents gc removed on purpose: their tombstones
    for sid, d in sorted(descs.items()):
        if d.parent_id and d.parent_id not in state.raw and d.parent_id not in collected:
            out.append(Finding("parent_missing", "error", "E_LINEAGE_BROKEN",
                               f"snapshot {sid}: parent {d.parent_id} does not exist",
                               str(repo.descriptor_path(sid))))
    done: set[str] = set()
    for sid in sorted(descs):
        path, on_path = [], set()
        cur = sid
        while cur in descs and cur not in done:
            if cur in on_path:
                out.append(Finding("lineage_cycle", "error", "E_LINEAGE_BROKEN",
                                   f"snapshot {cur} is its own ancestor (parent cycle)",
                                   str(repo.descriptor_path(cur))))
                break
            on_path.add(cur)
            path.append(cur)
            cur = descs[cur].parent_id
        done.update(path)
    return out


def _heads(repo: Repo) -> set[str]:
    from jvs.worktree import list_worktree_names, load_worktree_config

    heads = set()
    for name in list_worktree_names(repo):
        try:
            head = load_worktree_config(repo, name).head_snapshot_id
        except JvsError:
            continue  # check_worktrees reports it
        if head:
            heads.add(head)
    return heads


def check_payloads(repo: Repo, state: State, progress=None,
                   only: set[str] | None = None) -> list[Finding]:
    """Every published payload hashed against its descriptor (*only* those)."""
    from jvs.verify import HashStats, VerifyResult, check_payload, collected_meanwhile

    out = []
    payloads = _payload_dirs(repo)
    stats = HashStats()
    wanted = sorted(state.raw if only is None else only & set(state.raw))
    for i, sid in enumerate(wanted, 1):
        if progress:
            progress(f"verifying payloads ({i}/{len(wanted)})")
        if sid in state.unreadable or sid not in payloads:
            continue  # already reported
        # read_state parsed this descriptor and checked its checksum: only the payload is
        # left to verify (verify_snapshot would read and check the descriptor again).
        payload_valid, manifest_valid, _, problems = check_payload(
            repo, state.descriptors[sid], stats)
        result = VerifyResult(sid, True, payload_valid, manifest_valid, tuple(problems))
        if result.tamper_detected and not collected_meanwhile(repo, sid):
            severity = "error" if result.severity == "critical" else "warning"
            out.append(Finding("payload_mismatch", severity, "E_PAYLOAD_HASH_MISMATCH",
                               f"snapshot {sid}: " + "; ".join(result.problems),
                               str(repo.payload_dir(sid))))
    return out


def check_audit(repo: Repo) -> list[Finding]:
    from jvs.audit import check_chain

    return [Finding("audit_chain", "error", "E_AUDIT_CHAIN_BROKEN",
                    f"audit log line {p.line}: {p.message}", str(repo.audit_log), "audit_repair")
            for p in check_chain(repo)]


def check_caches(repo: Repo, state: State) -> list[Finding]:
    from jvs.index import index_discrepancies, index_path, load_descriptors
    from jvs.worktree import list_worktree_names

    out = []
    # Refresh first, as every reader does (an old-format or torn index is simply rebuilt);
    # what remains are rows whose content disagrees with their descriptor.
    load_descriptors(repo)
    problems = index_discrepancies(repo, state.raw, state.descriptors)
    if problems:
        out.append(Finding("index_stale", "info", "E_DESCRIPTOR_CORRUPT",
                           f"index disagrees with the descriptors ({problems[0]}"
                           + (f", and {len(problems) - 1} more)" if len(problems) > 1 else ")"),
                           str(index_path(repo)), "rebuild_index"))
    worktrees = set(list_worktree_names(repo))
    if repo.cache_dir.is_dir():
        for host in sorted(os.listdir(repo.cache_dir)):
            hostdir = repo.cache_dir / host
            if not hostdir.is_dir():
                continue
            for name in sorted(os.listdir(hostdir)):
                cached = worktree_of_cache_file(name)
                if cached is None:
                    continue
                path = hostdir / name
                if read_cache_file(path) is None:
                    out.append(Finding("stat_cache_corrupt", "info", "E_DESCRIPTOR_CORRUPT",
                                       "stat cache is unreadable (only costs time)",
                                       str(path), "rebuild_index"))
                elif cached not in worktrees:
                    out.append(Finding("stat_cache_orphan", "info", "E_NOT_FOUND",
                                       f"stat cache of a worktree that no longer exists "
                                       f"({cached})", str(path), "rebuild_index"))
    return out


def diagnose(repo: Repo, *, strict: bool = False, locked: bool = False,
             progress: Callable[[str], None] | None = None) -> Report:
    report = Report()
    state = read_state(repo, locked=locked)
    findings = check_layout(repo)
    findings += check_intents(repo, state, report)
    findings += check_leftovers(repo, state)
    findings += check_descriptors(repo, state)
    findings += check_worktrees(repo, state)
    findings += check_caches(repo, state)
    if strict:
        findings += check_lineage(repo, state)
        findings += check_payloads(repo, state, progress)
        findings += check_audit(repo)
    else:
        # At least what each worktree stands on: a tampered head is not "healthy".
        findings += check_payloads(repo, state, progress, only=_heads(repo))
    report.findings = findings
    return report


# ------------------------------------------------------------------------------ repairs

def repair(repo: Repo, actions: list[str], *, strict: bool = False,
           progress: Callable[[str], None] | None = None) -> Report:
    """Run *actions* under the repository lock, then diagnose again."""
    from jvs.lock import repo_lock

    unknown = [a for a in actions if a not in REPAIRS]
    if unknown:
        raise JvsError("E_USAGE", f"unknown repair {unknown[0]!r}",
                       hint=f"choose from {', '.join(REPAIRS)}")
    repaired: list[Repaired] = []
    warnings: list[str] = []
    def findings_to_repair() -> list[Finding]:
        found = diagnose(repo, locked=True).findings
        return found + check_audit(repo) if "audit_repair" in actions else found

    with repo_lock(repo, "doctor"):
        before = findings_to_repair()
        for action in _REPAIR_ORDER:
            if action not in actions:
                continue
            if repaired:
                before = findings_to_repair()  # earlier repairs changed things
            targets = [f for f in before if f.repair == action]
            if action == "rebuild_index" and not targets:
                from jvs.index import index_path

                if not index_path(repo).exists():  # e.g. a copy that left it out
                    targets = [Finding("index_missing", "info", "", "no index")]
            if not targets:
                continue
            done = _REPAIRERS[action](repo, targets, warnings)
            if done:
                from jvs.audit import append_audit

                append_audit(repo, "doctor", action, "repair", items=done[:100],
                             count=len(done))
                repaired.append(Repaired(action, tuple(done)))
        after = diagnose(repo, strict=strict, locked=True, progress=progress)
    after.repaired = repaired
    after.warnings = warnings
    return after


def _repair_finish(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    """Finish (or roll back) each crashed operation from what its intent recorded."""
    from jvs.recovery import finish

    done = []
    for f in targets:
        intent = next((i for i in list_intents(repo) if str(i.path) == f.intent), None)
        if intent is not None and intent.record is not None:
            done.append(finish(repo, intent))
    return done


def _repair_clean_tmp(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    from jvs.gc import finish_tombstones
    from jvs.trash import empty_trash, trash_dir

    done = []
    for f in targets:
        if f.check == "missing_control_dir":
            Path(f.path).mkdir(parents=True, exist_ok=True)
            done.append(f"created {f.path}")
        elif f.check == "gc_unfinished":
            continue  # below, all at once
        elif f.path == str(trash_dir(repo)):

            empty_trash(repo, claimed_too=True)
            done.append(f"emptied {f.path}")
        elif f.worktree is not None:
            from jvs.restore import remove_work_dir

            remove_work_dir(repo, f.worktree, only_leftovers=True)
            done.append(f"removed {f.path}")
        elif f.path:
            path = Path(f.path)
            fsio.ensure_inside(repo.jvs_dir, path.parent)  # only ever below .jvs/
            if os.path.lexists(path):
                fsio.remove_tree(path)
                done.append(f"removed {path}")
    if any(f.check == "gc_unfinished" for f in targets):
        done += [f"finished gc of {sid}" for sid in finish_tombstones(repo)]
    return done


def _repair_rebuild_index(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    from jvs.index import rebuild_index

    done = []
    for f in targets:
        if f.check in ("stat_cache_corrupt", "stat_cache_orphan") and f.path:
            Path(f.path).unlink(missing_ok=True)
            done.append(f"removed {f.path}")
    count = rebuild_index(repo)
    done.append(f"indexed {count} snapshot(s)")
    return done


def _repair_audit(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    """Re-chain the records that remain. What was removed or cut cannot be recovered;
    the log as it was is kept beside it for a human to examine."""
    from jvs.audit import record_hash, write_head
    from jvs.ids import rfc3339_utc

    log = repo.audit_log
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        data = b""  # removed whole (its head says there was one): start it again
    kept, dropped = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError
            kept.append(record)
        except ValueError:
            dropped += 1
    backup = log.with_name(f"audit.jsonl.before-repair-{rfc3339_utc().replace(':', '')}")
    fsio.write_bytes_atomic(backup, data)
    prev = ""
    lines = []
    for record in kept:
        record["prev_hash"] = prev
        record["record_hash"] = record_hash(record)
        prev = record["record_hash"]
        lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    fsio.write_bytes_atomic(log, b"".join(line + b"\n" for line in lines))
    write_head(repo, prev)
    warnings.append(f"audit log re-chained over the {len(kept)} record(s) present; "
                    f"{dropped} unreadable line(s) dropped. Records that were removed or "
                    "altered CANNOT be recovered: the chain now vouches only for what is "
                    f"left. The log as it was is kept in {backup}")
    return [f"re-chained {len(kept)} record(s), dropped {dropped}", f"backup {backup.name}"]


_REPAIRERS = {
    "finish_restore": _repair_finish,
    "advance_head": _repair_finish,
    "clean_tmp": _repair_clean_tmp,
    "clean_intents": _repair_finish,
    "rebuild_index": _repair_rebuild_index,
    "audit_repair": _repair_audit,
}
