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
from jvs.intents import Intent, intent_is_live, list_intents
from jvs.repo import CONTROL_DIRS, Repo

REPAIRS = ("clean_tmp", "clean_intents", "advance_head", "rebuild_index", "audit_repair",
           "finish_restore")
RUNTIME_REPAIRS = ("finish_restore", "advance_head", "clean_tmp", "clean_intents",
                   "rebuild_index")
# The order repairs run in: those that need an intent before the intents are cleaned.
_REPAIR_ORDER = ("finish_restore", "advance_head", "clean_tmp", "clean_intents",
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
    subject: str | None = None  # what the repair acts on (a snapshot ID, an intent path)

    def to_json(self) -> dict:
        return {"check": self.check, "severity": self.severity,
                "error_class": self.error_class, "message": self.message, "path": self.path,
                "repair": self.repair}


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    repaired: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {"healthy": self.healthy, "findings": [f.to_json() for f in self.findings],
                "in_flight": self.in_flight, "repaired": self.repaired,
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
    tombstones: set[str]


def read_state(repo: Repo, *, locked: bool) -> State:
    from jvs.catalog import gc_paused
    from jvs.gc import list_tombstones
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
        live_ids.update(re.findall(r"\d{13}-[0-9a-f]{8}", json.dumps(intent.record)))
    return State(descriptors, unreadable, raw, intents, live, live_ids,
                 set(list_tombstones(repo)))


# ------------------------------------------------------------------------------- checks

def check_layout(repo: Repo) -> list[Finding]:
    out = []
    for sub in CONTROL_DIRS:
        path = repo.jvs_dir / sub
        if not path.is_dir():
            out.append(Finding("missing_control_dir", "warning", "E_NOT_FOUND",
                               f"control directory .jvs/{sub} is missing", str(path),
                               "clean_tmp"))
    for name in ("repo_id", "config.json"):
        if not (repo.jvs_dir / name).is_file():
            out.append(Finding("missing_control_file", "error", "E_NOT_FOUND",
                               f".jvs/{name} is missing", str(repo.jvs_dir / name)))
    return out


def check_intents(repo: Repo, state: State, report: Report) -> list[Finding]:
    out = []
    live = {i.path for i in state.live}
    for intent in state.intents:
        op = intent.record.get("operation", "?")
        who = f"pid {intent.record.get('pid', '?')} on {intent.record.get('host', '?')}"
        if intent.path in live:
            report.in_flight.append(f"{op} ({who}, since {intent.record.get('started_at')})")
            continue
        if op == "restore":
            out.append(Finding("unfinished_restore", "error", "E_UNSAVED",
                               f"a restore of worktree {intent.record.get('worktree')!r} to "
                               f"{intent.record.get('target_id')} crashed ({who})",
                               str(intent.path), "finish_restore", str(intent.path)))
        else:
            out.append(Finding("abandoned_intent", "warning", "E_BUSY",
                               f"the {op} of {who} was interrupted; its intent remains",
                               str(intent.path), "clean_intents", str(intent.path)))
    return out


def _leftover_files(repo: Repo) -> list[Path]:
    """Temporary files of atomic writes (``.<name>.<hex>.part``) under ``.jvs/``, outside
    snapshot payloads (which are user data, whatever their names)."""
    out = []
    for dirpath, dirs, files in os.walk(repo.jvs_dir):
        here = Path(dirpath)
        if here == repo.snapshots_dir or here.parent == repo.jvs_dir / "restore" \
                or here == repo.jvs_dir / "restore":
            dirs[:] = []  # payloads and a restore's staged content are not ours to judge
        for name in files:
            if _PART_FILE.fullmatch(name):
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
    for name in sorted(snap_names):
        if name in state.raw:
            continue  # published: the common case, tested first at 20,000 snapshots
        path = repo.snapshots_dir / name
        if name.endswith(".tmp") and is_snapshot_id(name[:-4]):
            if name[:-4] in state.live_ids:
                continue
            out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                               f"staging directory of an unfinished snapshot {name[:-4]}",
                               str(path), "clean_tmp", name[:-4]))
        elif is_snapshot_id(name) and name not in state.raw:
            if name in state.tombstones:
                out.append(Finding("gc_unfinished", "warning", "E_GC_PLAN_MISMATCH",
                                   f"gc unpublished {name} but did not delete its payload",
                                   str(path), "clean_tmp", name))
            elif name not in state.live_ids:
                out.append(Finding("orphan_payload", "warning", "E_PARTIAL_SNAPSHOT",
                                   f"payload {name} has no descriptor (never published)",
                                   str(path), "clean_tmp", name))
    try:
        desc_names = os.listdir(repo.descriptors_dir)
    except FileNotFoundError:
        desc_names = []
    for name in sorted(desc_names):
        if name.endswith(".json.tmp") and is_snapshot_id(name[:-9]) \
                and name[:-9] not in state.live_ids:
            out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                               f"temporary descriptor of an unfinished snapshot {name[:-9]}",
                               str(repo.descriptors_dir / name), "clean_tmp", name[:-9]))
    try:
        manifest_names = os.listdir(repo.manifests_dir)
    except FileNotFoundError:
        manifest_names = []
    for name in sorted(manifest_names):
        if name not in state.raw and is_snapshot_id(name) and name not in state.live_ids \
                and not os.path.lexists(repo.payload_dir(name)):
            out.append(Finding("orphan_manifest", "warning", "E_PARTIAL_SNAPSHOT",
                               f"manifest {name} has no snapshot", str(repo.manifests_dir / name),
                               "clean_tmp", name))
    for sid in sorted(state.tombstones):
        if sid not in snap_names:
            out.append(Finding("gc_unfinished", "warning", "E_GC_PLAN_MISMATCH",
                               f"gc tombstone of {sid} remains", None, "clean_tmp", sid))
    if not state.live:
        for path in _leftover_files(repo):
            out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                               "temporary file of an interrupted write", str(path),
                               "clean_tmp", str(path)))
    restore_dir = repo.jvs_dir / "restore"
    if restore_dir.is_dir():
        pending = {str(i.record.get("worktree")) for i in state.intents
                   if i.record.get("operation") == "restore"}
        for name in sorted(os.listdir(restore_dir)):
            if name == "@trash":
                # Emptied in the background after each restore; only old items are left over.
                trash = restore_dir / name
                old = [n for n in os.listdir(trash) if _older_than(trash / n, _PART_MIN_AGE_S)]
                if old:
                    out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                                       f"restore trash holds {len(old)} item(s) not yet "
                                       "deleted", str(trash), "clean_tmp", "trash"))
                continue
            if name not in pending:
                out.append(Finding("orphan_tmp", "warning", "E_PARTIAL_SNAPSHOT",
                                   f"leftover restore work directory of worktree {name!r}",
                                   str(restore_dir / name), "clean_tmp", f"restore:{name}"))
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
        ahead = snapshot_after_latest(state, wt)
        if ahead is not None:
            out.append(Finding("head_behind", "warning", "E_LINEAGE_BROKEN",
                               f"worktree {name!r}: snapshot {ahead} was published but the "
                               "worktree was not moved to it (crash after the commit point)",
                               str(path), "advance_head", f"{name}:{ahead}"))
    others = repo.root / "worktrees"
    if others.is_dir():
        for name in sorted(os.listdir(others)):
            if (others / name).is_dir() and name not in names:
                out.append(Finding("worktree_without_config", "warning", "E_NOT_FOUND",
                                   f"directory worktrees/{name} is not a registered worktree",
                                   str(others / name)))
    return out


def snapshot_after_latest(state: State, wt) -> str | None:
    """A published, non-rescue snapshot of *wt* whose parent is the worktree's head and
    which is newer than its latest: the snapshot protocol committed it, then crashed
    before moving the worktree."""
    found = None
    for sid, d in state.descriptors.items():
        if d.worktree_name != wt.name or d.is_rescue or sid in state.live_ids \
                or sid in state.unreadable:  # never move a worktree onto a bad snapshot
            continue
        if d.parent_id != wt.head_snapshot_id:
            continue
        if wt.latest_snapshot_id is not None and sid <= wt.latest_snapshot_id:
            continue
        if found is None or sid > found:
            found = sid
    return found


def check_lineage(repo: Repo, state: State) -> list[Finding]:
    from jvs.gc import collected_ids

    out = []
    descs = state.descriptors
    collected = collected_ids(repo)  # parents gc removed on purpose
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


def check_payloads(repo: Repo, state: State, progress=None) -> list[Finding]:
    from jvs.verify import HashStats, VerifyResult, check_payload

    out = []
    payloads = _payload_dirs(repo)
    stats = HashStats()
    for i, sid in enumerate(sorted(state.raw), 1):
        if progress:
            progress(f"verifying payloads ({i}/{len(state.raw)})")
        if sid in state.unreadable or sid not in payloads:
            continue  # already reported
        # read_state parsed this descriptor and checked its checksum: only the payload is
        # left to verify (verify_snapshot would read and check the descriptor again).
        payload_valid, manifest_valid, _, problems = check_payload(
            repo, state.descriptors[sid], stats)
        result = VerifyResult(sid, True, payload_valid, manifest_valid, tuple(problems))
        if result.tamper_detected:
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
                if not (name.startswith("stat-") and name.endswith(".json")):
                    continue
                path = hostdir / name
                try:
                    obj = json.loads(path.read_bytes())
                    ok = isinstance(obj, dict) and isinstance(obj.get("entries"), dict)
                except (OSError, ValueError):
                    ok = False
                if not ok:
                    out.append(Finding("stat_cache_corrupt", "info", "E_DESCRIPTOR_CORRUPT",
                                       "stat cache is unreadable (only costs time)",
                                       str(path), "rebuild_index", str(path)))
                elif name[5:-5] not in worktrees:
                    out.append(Finding("stat_cache_orphan", "info", "E_NOT_FOUND",
                                       f"stat cache of a worktree that no longer exists "
                                       f"({name[5:-5]})", str(path), "rebuild_index",
                                       str(path)))
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
    repaired: list[dict] = []
    warnings: list[str] = []
    def findings_to_repair() -> list[Finding]:
        found = diagnose(repo, locked=True).findings
        return found + check_audit(repo) if "audit_repair" in actions else found

    with repo_lock(repo, "doctor"):
        before = findings_to_repair()
        for action in _REPAIR_ORDER:
            if action not in actions:
                continue
            targets = [f for f in before if f.repair == action]
            if action == "rebuild_index" and not targets:
                from jvs.index import index_path

                if not index_path(repo).exists():  # e.g. a copy that left it out
                    targets = [Finding("index_missing", "info", "", "no index")]
            if not targets:
                continue
            if repaired and action != "rebuild_index":
                before = findings_to_repair()  # earlier repairs changed things
                targets = [f for f in before if f.repair == action]
                if not targets:
                    continue
            done = _REPAIRERS[action](repo, targets, warnings)
            if done:
                from jvs.audit import append_audit

                append_audit(repo, "doctor", action, "repair", items=done[:100],
                             count=len(done))
                repaired.append({"action": action, "items": done})
        after = diagnose(repo, strict=strict, locked=True, progress=progress)
    after.repaired = repaired
    after.warnings = warnings
    return after


def _repair_finish_restore(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    from jvs.restore import finish_restore

    done = []
    for f in targets:
        intent = next((i for i in list_intents(repo) if str(i.path) == f.subject), None)
        if intent is None:
            continue
        result = finish_restore(repo, intent)
        done.append(f"{intent.record.get('worktree')} -> {result.target.snapshot_id}")
    return done


def _repair_advance_head(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    from jvs.worktree import load_worktree_config, save_worktree_config

    done = []
    for f in targets:
        name, _, sid = (f.subject or "").partition(":")
        wt = load_worktree_config(repo, name)
        save_worktree_config(repo, wt.moved_to(sid, new_latest=True))
        done.append(f"{name} -> {sid}")
    return done


def _repair_clean_tmp(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    from jvs.gc import finish_tombstones

    done = []
    for f in targets:
        if f.check == "missing_control_dir":
            Path(f.path).mkdir(parents=True, exist_ok=True)
            done.append(f"created {f.path}")
        elif f.check == "gc_unfinished":
            continue  # below, all at once
        elif f.subject == "trash":
            from jvs.restore import empty_trash

            empty_trash(repo)
            done.append(f"emptied {f.path}")
        elif f.subject and f.subject.startswith("restore:"):
            from jvs.restore import remove_work_dir

            remove_work_dir(repo, f.subject.partition(":")[2], only_leftovers=True)
            done.append(f"removed {f.path}")
        elif f.path:
            path = Path(f.path)
            fsio.ensure_inside(repo.jvs_dir, path.parent)  # only ever below .jvs/
            if os.path.lexists(path):
                fsio.remove_tree(path)
                done.append(f"removed {path}")
            if f.check == "orphan_payload":
                repo.manifest_path(path.name).unlink(missing_ok=True)
    if any(f.check == "gc_unfinished" for f in targets):
        done += [f"finished gc of {sid}" for sid in finish_tombstones(repo)]
    return done


def _repair_clean_intents(repo: Repo, targets: list[Finding], warnings: list[str]) -> list[str]:
    done = []
    for f in targets:
        path = Path(f.subject or "")
        if path.parent == repo.intents_dir and path.exists():
            path.unlink()
            done.append(f"removed {path.name}")
    if done:
        fsio.fsync_dir(repo.intents_dir)
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
    from jvs.audit import record_hash
    from jvs.ids import rfc3339_utc

    log = repo.audit_log
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return []
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
    warnings.append(f"audit log re-chained over the {len(kept)} record(s) present; "
                    f"{dropped} unreadable line(s) dropped. Records that were removed or "
                    "altered CANNOT be recovered: the chain now vouches only for what is "
                    f"left. The log as it was is kept in {backup}")
    return [f"re-chained {len(kept)} record(s), dropped {dropped}", f"backup {backup.name}"]


_REPAIRERS = {
    "finish_restore": _repair_finish_restore,
    "advance_head": _repair_advance_head,
    "clean_tmp": _repair_clean_tmp,
    "clean_intents": _repair_clean_intents,
    "rebuild_index": _repair_rebuild_index,
    "audit_repair": _repair_audit,
}
