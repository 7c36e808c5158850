"""``jvs verify`` (SPEC §9): is a snapshot still exactly what was published?

Three layers are checked, outermost first:
- the descriptor's checksum (note, tags, parent, root hash... anything edited by hand);
- the payload: every file is read and hashed again, and the manifest rebuilt from the
  payload must hash to the descriptor's ``payload_root_hash``;
- the stored manifest: when the payload differs, the stored manifest (trusted only if it
  still hashes to the root hash) names the files that were added, removed or changed. A
  stored manifest that no longer matches an intact payload is reported too (it is a
  rebuildable copy, so this is a warning).

Readers never take the repository lock: verify can run while snapshots are being taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jvs.changes import Change, compare, differing
from jvs.descriptor import Descriptor, list_snapshot_ids, read_descriptor
from jvs.errors import JvsError
from jvs.integrity import (
    HashStats,
    ScanResult,
    iter_entries,
    iter_scan,
    read_trusted_bytes,
)
from jvs.progress import counts
from jvs.records import ManifestBuilder, stored_root_hash
from jvs.repo import Repo

SEVERITY_OK = "ok"
SEVERITY_WARNING = "warning"
SEVERITY_CRITICAL = "critical"


@dataclass(frozen=True)
class VerifyResult:
    snapshot_id: str
    checksum_valid: bool
    payload_hash_valid: bool
    manifest_valid: bool | None  # None: no stored manifest (e.g. written by another tool)
    problems: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    bytes_hashed: int = 0

    @property
    def tamper_detected(self) -> bool:
        return not (self.checksum_valid and self.payload_hash_valid) \
            or self.manifest_valid is False

    @property
    def severity(self) -> str:
        if not (self.checksum_valid and self.payload_hash_valid):
            return SEVERITY_CRITICAL
        if self.manifest_valid is False:
            return SEVERITY_WARNING
        return SEVERITY_OK

    def to_json(self) -> dict:
        return {
            "snapshot_id": self.snapshot_id,
            "checksum_valid": self.checksum_valid,
            "payload_hash_valid": self.payload_hash_valid,
            "manifest_valid": self.manifest_valid,
            "tamper_detected": self.tamper_detected,
            "severity": self.severity,
            "problems": list(self.problems),
            "changes": [c.to_json() for c in self.changes],
        }


@dataclass(frozen=True)
class VerifyReport:
    results: list[VerifyResult]
    audit_problems: list[str] = field(default_factory=list)
    audit_checked: bool = False
    stats: HashStats = field(default_factory=HashStats)  # what verifying read
    collected: list[str] = field(default_factory=list)  # by a gc run while verify ran

    @property
    def ok(self) -> bool:
        return not self.audit_problems and not any(r.tamper_detected for r in self.results)

    def error(self) -> JvsError | None:
        """The error the command exits with, or None when everything is intact."""
        bad = [r for r in self.results if r.tamper_detected]
        if any(not r.checksum_valid for r in bad):
            code = "E_DESCRIPTOR_CORRUPT"
        elif any(not r.payload_hash_valid for r in bad):
            code = "E_PAYLOAD_HASH_MISMATCH"
        elif bad:
            code = "E_PAYLOAD_HASH_MISMATCH"
        elif self.audit_problems:
            return JvsError("E_AUDIT_CHAIN_BROKEN",
                            f"audit log chain is broken ({len(self.audit_problems)} problem(s))",
                            hint="'jvs doctor --strict' explains; 'jvs doctor --repair "
                            "audit_repair' re-chains the records that remain")
        else:
            return None
        return JvsError(code, f"{len(bad)} of {len(self.results)} snapshot(s) TAMPERED",
                        hint="restore from a good snapshot; 'jvs doctor --strict' lists "
                        "every problem")

    def to_json(self) -> dict:
        """``jvs verify --json``."""
        data = {
            "ok": self.ok,
            "snapshots": [r.to_json() for r in self.results],
            "bytes_hashed": self.stats.bytes_hashed,
        }
        if self.audit_checked:
            data["audit_chain_valid"] = not self.audit_problems
            data["audit_problems"] = list(self.audit_problems)
            data["collected_while_verifying"] = list(self.collected)
        error = self.error()
        if error is not None:
            data["error"] = {"code": error.code, "message": error.message}
        return data


def verify_snapshot(repo: Repo, snapshot_id: str, stats: HashStats | None = None) -> VerifyResult:
    """Check one published snapshot's descriptor, payload and manifest."""
    stats = stats if stats is not None else HashStats()
    try:
        desc = read_descriptor(repo, snapshot_id, verify=False)
    except JvsError as exc:
        return VerifyResult(snapshot_id, False, False, None, (exc.message,))
    problems: list[str] = []
    checksum_valid = desc.checksum_valid()
    if not checksum_valid:
        problems.append("descriptor checksum does not match its content (edited or corrupt)")
    before = stats.bytes_hashed
    payload_valid, manifest_valid, changes, more = check_payload(repo, desc, stats)
    problems += more
    return VerifyResult(snapshot_id, checksum_valid, payload_valid, manifest_valid,
                        tuple(problems), tuple(changes), stats.bytes_hashed - before)


def check_payload(repo: Repo, desc: Descriptor, stats: HashStats
                  ) -> tuple[bool, bool | None, list[Change], list[str]]:
    """(payload valid, manifest valid, changed files, problems) for one snapshot."""
    payload = repo.payload_dir(desc.snapshot_id)
    if not payload.is_dir():
        return False, None, [], [f"payload directory {payload} is missing"]
    fresh = ManifestBuilder()  # in the system's temporary directory: verify only reads .jvs/
    try:
        return _check_payload(repo, desc, stats, payload, fresh)
    finally:
        fresh.close()


def _check_payload(repo: Repo, desc: Descriptor, stats: HashStats, payload: Path,
                   fresh: ManifestBuilder) -> tuple[bool, bool | None, list[Change], list[str]]:
    # A stream in walk order: each entry goes to *fresh* (its file records to a temporary
    # file, in their sorted order) once it is made, and nothing is kept per file (a
    # million-file payload held ~840 MB as a list of entries and their records).
    try:
        found = ScanResult()
        scanned = iter_scan(payload, found, ready_marker=desc.has_ready_marker,
                            walk_order=True, hardlinks=False)
        for entry in iter_entries(payload, scanned, desc.payload_hash_algo, stats):
            fresh.add(entry)
        fresh_root = fresh.root_hash()
    except (OSError, JvsError) as exc:
        return False, None, [], [f"payload cannot be read: {exc}"]
    problems = [f"special file in payload: {p}" for p in found.skipped_special]
    payload_valid = fresh_root == desc.payload_root_hash and not problems
    manifest_path = repo.manifest_path(desc.snapshot_id)
    manifest_valid: bool | None = stored_root_hash(manifest_path) == desc.payload_root_hash
    if not manifest_valid and not manifest_path.exists():
        manifest_valid = None
    changes: list[Change] = []
    if not payload_valid:
        trusted = read_trusted_bytes(manifest_path, desc.payload_root_hash) \
            if manifest_valid else None
        if trusted is not None:
            # Identical records are no change: only the differing ones are parsed.
            changes = compare(*differing(trusted, fresh.text())).items
            problems.append(f"payload differs from the manifest in {len(changes)} path(s)")
        else:
            problems.append("payload does not match the descriptor's root hash (no "
                            "trusted manifest to name the files)")
    elif manifest_valid is False:
        problems.append("stored manifest does not match the (intact) payload")
    return payload_valid, manifest_valid, changes, problems


def verify_all(repo: Repo, *, stats: HashStats | None = None,
               progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Every published snapshot, then the audit chain."""
    from jvs.audit import check_chain

    stats = stats if stats is not None else HashStats()
    results = []
    collected = []
    ids = list_snapshot_ids(repo)
    meter = counts(progress)
    if progress:
        progress("verifying")
    meter.start(len(ids), 0, unit="snapshots")  # sizes are unknown until each is read
    for sid in ids:
        nbytes = stats.bytes_hashed
        result = verify_snapshot(repo, sid, stats)
        meter.advance(1, stats.bytes_hashed - nbytes)
        if result.tamper_detected and collected_meanwhile(repo, sid):
            collected.append(sid)
        else:
            results.append(result)
    audit = [f"line {p.line}: {p.message}" for p in check_chain(repo)]
    return VerifyReport(results, audit, audit_checked=True, stats=stats, collected=collected)


def collected_meanwhile(repo: Repo, snapshot_id: str) -> bool:
    """Whether a snapshot that read as damaged was being collected by a gc run (which
    records its tombstone, then unpublishes it, then deletes its payload): a reader that
    listed it before the run must not call it tampered."""
    from jvs.gc import load_tombstone

    return not repo.descriptor_path(snapshot_id).exists() \
        and load_tombstone(repo, snapshot_id) is not None


def resolve_for_verify(repo: Repo, ref: str, worktree: str | None) -> str:
    """The snapshot ID *ref* names, through the one resolver (exact ID if it is absent).
    An exact ID is taken as is, so a descriptor too corrupt to parse is still verified
    (and reported TAMPERED) rather than refused by the resolver."""
    from jvs.ids import is_snapshot_id

    if is_snapshot_id(ref.strip()) and repo.descriptor_path(ref.strip()).exists():
        return ref.strip()
    try:
        from jvs.resolve import resolve
    except ImportError:
        if repo.descriptor_path(ref.strip()).exists():
            return ref.strip()
        raise JvsError("E_NOT_FOUND", f"no snapshot {ref!r}") from None
    return resolve(repo, ref, worktree).snapshot_id


def verify_ref(repo: Repo, ref: str | None, worktree: str | None,
               stats: HashStats | None = None) -> VerifyReport:
    """``jvs verify [REF]``: REF, or the current worktree's head."""
    if ref is None:
        from jvs.worktree import load_worktree_config

        if worktree is None:
            raise JvsError("E_NOT_FOUND", "no snapshot given and not inside a worktree",
                           hint="name a snapshot, or use --all")
        head = load_worktree_config(repo, worktree).head_snapshot_id
        if head is None:
            raise JvsError("E_NOT_FOUND", f"worktree {worktree!r} has no snapshots yet")
        sid = head
    else:
        sid = resolve_for_verify(repo, ref, worktree)
    stats = stats if stats is not None else HashStats()
    return VerifyReport([verify_snapshot(repo, sid, stats)], stats=stats)
