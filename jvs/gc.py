"""Garbage collection (SPEC §9): ``gc plan`` decides, ``gc run --plan-id`` deletes.

What is never collected (the *protected* set), whatever the policy says:
- every worktree's head and latest, and all their ancestors (SPEC §9);
- pinned snapshots (``gc pin``; an expired pin no longer protects);
- tagged snapshots (unless ``--no-keep-tagged``);
- snapshots younger than 24 hours;
- any snapshot named by an intent (an operation in flight, or one that crashed and that
  ``doctor`` has not finished yet);
- rescue snapshots younger than the rescue expiry (``gc.rescue_days``, default 7 days).
On top of that the retention policy keeps, per worktree name, the newest ``keep_last``
snapshots, the newest snapshot of each of the ``keep_daily`` most recent days (UTC) and
``keep_weekly`` most recent ISO weeks that have snapshots, and everything younger than
``keep_days`` days. What is left are the candidates.

Only heads and latests keep their ancestors: a policy, a tag or a pin keeps that snapshot
alone, so a retention policy can thin an abandoned branch (a worktree that was removed,
the old line left behind by a snapshot taken while detached). A kept snapshot whose
parent was collected keeps a ``parent_id`` that no longer resolves; collected IDs are
recorded in ``gc/collected`` so ``doctor --strict`` knows such a parent was collected on
purpose and not lost.

A plan is the policy plus its candidate set; its ID is a hash of both, so the same policy
over the same repository yields the same ID. ``gc run`` recomputes the candidates under the
repository lock and refuses (E_GC_PLAN_MISMATCH) if they changed since the plan.

The run has two phases, so a crash never leaves a half-visible snapshot:
1. for each candidate, a tombstone ``gc/tombstones/<id>.json`` is written, then its
   descriptor is removed: from that moment the snapshot is no longer published;
2. payload and manifest of every tombstoned snapshot are deleted, then the tombstone.
A run killed between or inside the phases is completed by the next ``gc run`` (or by
``doctor --repair clean_tmp``); a tombstone whose descriptor still exists was never
acted on and is simply dropped.

For tests and dry runs, the clock can be set with ``JVS_GC_NOW`` (unix seconds or an
RFC 3339 time) or the hidden ``--now`` option of ``gc plan`` / ``gc run``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jvs import fsio
from jvs.crashpoints import crashpoint
from jvs.descriptor import Descriptor
from jvs.errors import JvsError
from jvs.ids import is_snapshot_id, parse_rfc3339, rfc3339_utc
from jvs.repo import Repo

MIN_AGE_S = 24 * 3600
DAY_S = 24 * 3600
DEFAULT_RETENTION = {"keep_last": 10}
_SNAPSHOT_ID_IN_TEXT = re.compile(r"\d{13}-[0-9a-f]{8}")


@dataclass(frozen=True)
class Policy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_days: int = 0
    keep_tagged: bool = True
    rescue_days: float = 7.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> Policy:
        known = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**known)


def policy_from(config_gc: dict, *, keep_last: int | None = None,
                keep_daily: int | None = None, keep_weekly: int | None = None,
                keep_days: int | None = None, keep_tagged: bool | None = None) -> Policy:
    """The effective policy: retention given on the command line replaces the configured
    retention as a whole (``gc plan --keep-daily 7`` means exactly that); without any,
    ``.jvs/config.json`` key ``gc`` applies, and without that, keep the last 10."""
    cli = {"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
           "keep_days": keep_days}
    given = {k: v for k, v in cli.items() if v is not None}
    for k, v in given.items():
        if v < 0:
            raise JvsError("E_USAGE", f"--{k.replace('_', '-')} must not be negative")
    configured = {k: config_gc[k] for k in cli if k in config_gc}
    retention = given or configured or DEFAULT_RETENTION
    tagged = keep_tagged if keep_tagged is not None else bool(config_gc.get("keep_tagged", True))
    return Policy(**{k: int(v) for k, v in retention.items()}, keep_tagged=tagged,
                  rescue_days=float(config_gc.get("rescue_days", 7)))


def gc_now(explicit: str | None = None) -> float:
    """Now, unless the clock is set by ``--now`` or ``JVS_GC_NOW`` (tests, dry runs)."""
    text = explicit if explicit else os.environ.get("JVS_GC_NOW", "")
    text = text.strip()
    if not text:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise JvsError("E_USAGE", f"cannot read the time {text!r}",
                       hint="unix seconds or RFC 3339, e.g. 2026-01-31T12:00:00Z") from None


# ------------------------------------------------------------------------------- pins

@dataclass(frozen=True)
class Pin:
    snapshot_id: str
    reason: str
    created_at: str
    expires_at: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and parse_rfc3339(self.expires_at) <= now

    def to_json(self) -> dict:
        return {"snapshot_id": self.snapshot_id, "reason": self.reason,
                "created_at": self.created_at, "expires_at": self.expires_at}


def pins_dir(repo: Repo) -> Path:
    return repo.jvs_dir / "gc" / "pins"


def list_pins(repo: Repo) -> list[Pin]:
    out = []
    try:
        names = sorted(os.listdir(pins_dir(repo)))
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".json") or not is_snapshot_id(name[:-5]):
            continue
        try:
            obj = fsio.read_json(pins_dir(repo) / name)
            out.append(Pin(name[:-5], str(obj.get("reason", "")), str(obj.get("created_at", "")),
                           obj.get("expires_at") or None))
        except (OSError, ValueError, AttributeError):
            # An unreadable pin still protects its snapshot: its name says which.
            out.append(Pin(name[:-5], "(unreadable pin file)", ""))
    return out


def parse_expiry(text: str, now: float) -> str:
    """``30d``, ``12h``, ``90m``, ``2w``, a date or an RFC 3339 time → RFC 3339 UTC."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if m:
        seconds = int(m.group(1)) * {"m": 60, "h": 3600, "d": DAY_S, "w": 7 * DAY_S}[m.group(2)]
        return rfc3339_utc(int((now + seconds) * 1e9))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            text = text.strip() + "T00:00:00Z"
        return rfc3339_utc(int(parse_rfc3339(text) * 1e9))
    except ValueError:
        raise JvsError("E_USAGE", f"cannot read the expiry {text!r}",
                       hint="e.g. 30d, 12h, 2w, 2026-12-31 or 2026-12-31T18:00:00Z") from None


def pin(repo: Repo, snapshot_id: str, reason: str = "", expires: str | None = None) -> Pin:
    from jvs.audit import append_audit
    from jvs.lock import repo_lock

    now = gc_now()
    record = Pin(snapshot_id, reason, rfc3339_utc(),
                 parse_expiry(expires, now) if expires else None)
    with repo_lock(repo, "gc pin"):
        pins_dir(repo).mkdir(parents=True, exist_ok=True)
        fsio.write_json_atomic(pins_dir(repo) / f"{snapshot_id}.json", record.to_json())
        append_audit(repo, "gc pin", snapshot_id, reason, expires_at=record.expires_at)
    return record


def unpin(repo: Repo, snapshot_id: str) -> None:
    from jvs.audit import append_audit
    from jvs.lock import repo_lock

    path = pins_dir(repo) / f"{snapshot_id}.json"
    with repo_lock(repo, "gc unpin"):
        if not path.exists():
            raise JvsError("E_NOT_FOUND", f"snapshot {snapshot_id} is not pinned",
                           hint="see 'jvs gc pins'")
        path.unlink()
        fsio.fsync_dir(path.parent)
        append_audit(repo, "gc unpin", snapshot_id)


# --------------------------------------------------------------------------- planning

@dataclass(frozen=True)
class Selection:
    candidates: list[str]
    kept: dict[str, str]  # snapshot ID -> the first reason it is kept


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: str
    policy: Policy
    candidates: tuple[str, ...]
    deletable_bytes_estimate: int = 0
    kept_reasons: dict = field(default_factory=dict)  # reason -> count

    def to_json(self) -> dict:
        return {"plan_id": self.plan_id, "created_at": self.created_at,
                "policy": self.policy.to_json(), "candidates": list(self.candidates),
                "deletable_bytes_estimate": self.deletable_bytes_estimate,
                "deletable_bytes_estimate_kind": "apparent",
                "kept_reasons": dict(self.kept_reasons)}

    @classmethod
    def from_json(cls, obj: dict) -> Plan:
        return cls(obj["plan_id"], obj.get("created_at", ""), Policy.from_json(obj["policy"]),
                   tuple(obj["candidates"]), int(obj.get("deletable_bytes_estimate", 0)),
                   dict(obj.get("kept_reasons") or {}))


def _created(desc: Descriptor) -> float | None:
    """Creation time in unix seconds. The ID starts with the creation time in ms (SPEC §2),
    which is much cheaper to read than 20,000 RFC 3339 strings; ``created_at`` is the
    fallback for an ID of another shape."""
    head = desc.snapshot_id[:13]
    if head.isdigit():
        return int(head) / 1000
    try:
        return parse_rfc3339(desc.created_at)
    except ValueError:
        return None


def ids_in_intents(repo: Repo) -> set[str]:
    """Every snapshot ID mentioned anywhere in an intent record (whatever its fields)."""
    from jvs.intents import list_intents

    out: set[str] = set()
    for intent in list_intents(repo):
        out.update(_SNAPSHOT_ID_IN_TEXT.findall(json.dumps(intent.raw)))
        out.update(_SNAPSHOT_ID_IN_TEXT.findall(intent.path.name))
    return out


def select(repo: Repo, policy: Policy, now: float,
           descriptors: list[Descriptor] | None = None) -> Selection:
    """Split the published snapshots into candidates and kept ones (with a reason)."""
    from jvs.catalog import load_descriptors
    from jvs.worktree import list_worktree_names, load_worktree_config

    descs = load_descriptors(repo) if descriptors is None else descriptors
    by_id = {d.snapshot_id: d for d in descs}
    roots: dict[str, str] = {}

    def keep(sid: str | None, reason: str) -> None:
        if sid and sid in by_id and sid not in roots:
            roots[sid] = reason

    for name in list_worktree_names(repo):
        wt = load_worktree_config(repo, name)  # unreadable: refuse, we cannot tell heads
        keep(wt.head_snapshot_id, "head")
        keep(wt.latest_snapshot_id, "latest")
    for p in list_pins(repo):
        if not p.expired(now):
            keep(p.snapshot_id, "pinned")
    for sid in ids_in_intents(repo):
        keep(sid, "in flight")
    groups: dict[str, list[Descriptor]] = {}
    for d in sorted(descs, key=lambda d: d.snapshot_id, reverse=True):  # newest first
        created = _created(d)
        if created is None or now - created < MIN_AGE_S:
            keep(d.snapshot_id, "younger than 24 h")
            continue
        if d.is_rescue:
            if now - created < policy.rescue_days * DAY_S:
                keep(d.snapshot_id, "rescue not expired")
            continue
        if policy.keep_tagged and d.tags:
            keep(d.snapshot_id, "tagged")
        if policy.keep_days and now - created < policy.keep_days * DAY_S:
            keep(d.snapshot_id, "keep-days")
        groups.setdefault(d.worktree_name, []).append(d)
    for group in groups.values():
        for d in group[:policy.keep_last]:
            keep(d.snapshot_id, "keep-last")
        _keep_buckets(group, policy.keep_daily, _day, keep, "keep-daily")
        _keep_buckets(group, policy.keep_weekly, _week, keep, "keep-weekly")
    kept = dict(roots)
    lineage: set[str] = set()
    for sid, reason in roots.items():  # heads and latests keep their whole lineage
        if reason not in ("head", "latest"):
            continue
        parent = by_id[sid].parent_id
        while parent and parent in by_id and parent not in lineage:
            lineage.add(parent)
            kept.setdefault(parent, "ancestor of a head or latest")
            parent = by_id[parent].parent_id
    candidates = sorted(sid for sid in by_id if sid not in kept)
    return Selection(candidates, kept)


def _day(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).strftime("%Y-%m-%d")


def _week(created: float) -> str:
    year, week, _ = datetime.fromtimestamp(created, tz=UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _keep_buckets(group: list[Descriptor], count: int, bucket_of, keep, reason: str) -> None:
    """Keep the newest snapshot of each of the *count* most recent buckets (newest first)."""
    if count <= 0:
        return
    seen: set[str] = set()
    for d in group:
        created = _created(d)
        if created is None:
            continue
        bucket = bucket_of(created)
        if bucket in seen:
            continue
        seen.add(bucket)
        keep(d.snapshot_id, reason)
        if len(seen) >= count:
            return


def apparent_size(repo: Repo, snapshot_id: str) -> int:
    """Bytes of a snapshot's files as their sizes say (from the manifest when present).
    Apparent: clones on JuiceFS or reflink filesystems may share these bytes."""
    try:
        data = repo.manifest_path(snapshot_id).read_bytes()
        return sum(int(m.group(1)) for m in re.finditer(rb",size=(\d+):", data))
    except OSError:
        pass
    total = 0
    for dirpath, _dirs, files in os.walk(repo.payload_dir(snapshot_id)):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def sizes_of(repo: Repo, snapshot_ids: list[str]) -> int:
    """Total apparent size, with sizes remembered in the index (snapshots never change)."""
    from jvs.index import cached_sizes, store_sizes

    known = cached_sizes(repo)
    fresh = {sid: apparent_size(repo, sid) for sid in snapshot_ids if sid not in known}
    store_sizes(repo, fresh)
    return sum(known.get(sid, 0) for sid in snapshot_ids) + sum(fresh.values())


def plan_id_of(policy: Policy, candidates: Iterable[str]) -> str:
    body = json.dumps({"policy": policy.to_json(), "candidates": sorted(candidates)},
                      sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()[:16]


def plans_dir(repo: Repo) -> Path:
    return repo.jvs_dir / "gc" / "plans"


def make_plan(repo: Repo, policy: Policy, now: float) -> Plan:
    """Compute and store a plan (a reader: no lock; the run re-checks everything)."""
    selection = select(repo, policy, now)
    reasons: dict[str, int] = {}
    for reason in selection.kept.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    plan = Plan(plan_id_of(policy, selection.candidates), rfc3339_utc(int(now * 1e9)), policy,
                tuple(selection.candidates), sizes_of(repo, selection.candidates), reasons)
    plans_dir(repo).mkdir(parents=True, exist_ok=True)
    fsio.write_json_atomic(plans_dir(repo) / f"{plan.plan_id}.json", plan.to_json())
    prune_old_plans(repo)
    return plan


PLAN_KEEP_S = 30 * DAY_S


def prune_old_plans(repo: Repo) -> None:
    """Plans are small but one is written per ``gc plan``; forget those a month old."""
    horizon = time.time() - PLAN_KEEP_S
    try:
        entries = list(os.scandir(plans_dir(repo)))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if entry.name.endswith(".json") and entry.stat().st_mtime < horizon:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass


def load_plan(repo: Repo, plan_id: str) -> Plan:
    plan_id = plan_id.strip()
    if not re.fullmatch(r"[0-9a-f]{16}", plan_id):
        raise JvsError("E_NOT_FOUND", f"{plan_id!r} is not a plan ID",
                       hint="copy the 'Plan ID:' line of 'jvs gc plan'")
    try:
        return Plan.from_json(fsio.read_json(plans_dir(repo) / f"{plan_id}.json"))
    except FileNotFoundError:
        raise JvsError("E_NOT_FOUND", f"no gc plan {plan_id}",
                       hint="make one with 'jvs gc plan'") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise JvsError("E_NOT_FOUND", f"gc plan {plan_id} is unreadable: {exc}") from None


# ------------------------------------------------------------------------------- running

@dataclass(frozen=True)
class RunResult:
    plan_id: str
    collected: tuple[str, ...]
    finished_from_earlier: tuple[str, ...]
    bytes_estimate: int


def tombstones_dir(repo: Repo) -> Path:
    return repo.jvs_dir / "gc" / "tombstones"


def list_tombstones(repo: Repo) -> list[str]:
    try:
        names = os.listdir(tombstones_dir(repo))
    except FileNotFoundError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json") and is_snapshot_id(n[:-5]))


def collected_path(repo: Repo) -> Path:
    return repo.jvs_dir / "gc" / "collected"


def record_collected(repo: Repo, snapshot_ids: list[str]) -> None:
    """Append the IDs about to be collected (one a line; the caller holds the lock)."""
    if not snapshot_ids:
        return
    collected_path(repo).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(collected_path(repo), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(f"{sid}\n" for sid in snapshot_ids).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def collected_ids(repo: Repo) -> set[str]:
    try:
        return set(collected_path(repo).read_text().split())
    except FileNotFoundError:
        return set()


def unpublish(repo: Repo, plan_id: str, snapshot_ids: list[str]) -> None:
    """Phase 1: tombstone, then remove the descriptor (the snapshot stops existing)."""
    from jvs.lock import assert_lock_still_held

    # A host that lost its JuiceFS session (and the lock) must not delete under another.
    assert_lock_still_held(repo, "gc run")
    tombstones_dir(repo).mkdir(parents=True, exist_ok=True)
    for sid in snapshot_ids:
        fsio.write_json_atomic(tombstones_dir(repo) / f"{sid}.json",
                               {"snapshot_id": sid, "plan_id": plan_id,
                                "unpublished_at": rfc3339_utc()})
        repo.descriptor_path(sid).unlink(missing_ok=True)
        crashpoint("gc:after_unpublish_one")
    fsio.fsync_dir(repo.descriptors_dir)


def finish_tombstones(repo: Repo) -> list[str]:
    """Phase 2 for every tombstone: delete payload and manifest of snapshots already
    unpublished. A tombstone whose descriptor is still there is dropped (never acted on).
    Returns the IDs whose deletion this call completed."""
    done = []
    for sid in list_tombstones(repo):
        stone = tombstones_dir(repo) / f"{sid}.json"
        if repo.descriptor_path(sid).exists():
            stone.unlink(missing_ok=True)
            continue
        payload = repo.payload_dir(sid)
        if os.path.lexists(payload):
            fsio.ensure_inside(repo.snapshots_dir, payload.parent)
            fsio.remove_tree(payload)
        repo.manifest_path(sid).unlink(missing_ok=True)
        stone.unlink(missing_ok=True)
        done.append(sid)
    if done:
        fsio.fsync_dir(repo.snapshots_dir)
    return done


def run_plan(repo: Repo, plan_id: str, now: float) -> RunResult:
    """``gc run --plan-id``: re-check the plan under the lock, then the two phases."""
    from jvs.audit import append_audit
    from jvs.descriptor import list_snapshot_ids
    from jvs.lock import repo_lock

    with repo_lock(repo, "gc"):
        plan = load_plan(repo, plan_id)
        earlier = finish_tombstones(repo)
        published = set(list_snapshot_ids(repo))
        expected = sorted(sid for sid in plan.candidates if sid in published)
        current = select(repo, plan.policy, now).candidates
        if current != expected:
            added = sorted(set(current) - set(expected))
            gone = sorted(set(expected) - set(current))
            detail = []
            if added:
                detail.append(f"{len(added)} new candidate(s) ({', '.join(added[:3])})")
            if gone:
                detail.append(f"{len(gone)} no longer collectable ({', '.join(gone[:3])})")
            raise JvsError("E_GC_PLAN_MISMATCH",
                           f"the repository changed since plan {plan.plan_id}: "
                           + "; ".join(detail),
                           hint="review a fresh 'jvs gc plan' and run its Plan ID")
        size = sum(apparent_size(repo, sid) for sid in current)
        unpublish(repo, plan.plan_id, current)
        crashpoint("gc:after_phase1")
        record_collected(repo, current)
        finish_tombstones(repo)
        append_audit(repo, "gc", plan.plan_id, f"collected {len(current)} snapshot(s)",
                     snapshots=current or None, completed_earlier=earlier or None,
                     bytes_estimate=size)
        return RunResult(plan.plan_id, tuple(current), tuple(earlier), size)
