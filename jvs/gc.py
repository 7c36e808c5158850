"""Garbage collection (SPEC §9): ``gc plan`` decides, ``gc run --plan-id`` deletes.

Retention applies along the lineage. Snapshots are complete payloads, not deltas, so
deleting an old one breaks no other: an ancestor is not protected for being an ancestor
(otherwise a linear history, the commonest there is, could never be pruned). What is never
collected (the *protected* set), whatever the policy says:
- every worktree's head and latest;
- pinned snapshots (``gc pin``; an expired pin no longer protects);
- tagged snapshots (unless ``--no-keep-tagged``);
- snapshots younger than 24 hours;
- any snapshot named by an intent (an operation in flight, or one that crashed and that
  ``doctor`` has not finished yet);
- rescue snapshots younger than the rescue expiry (``gc.rescue_days``, default 7 days).
On top of that the retention policy keeps, per worktree name, the newest ``keep_last``
snapshots, the newest snapshot of each of the ``keep_daily`` most recent calendar days and
``keep_weekly`` most recent ISO weeks that have snapshots (days and weeks in the local time
zone, as restic counts them), and everything younger than ``keep_days`` days. What is left
are the candidates.

A collected snapshot leaves a tombstone (its ID, parent, worktree, time, note, tags, and
the plan and time that collected it), so history, ``HEAD~N``, diff and doctor keep a
readable lineage: a parent link through a collected snapshot still resolves, and a
reference to one fails with E_NOT_FOUND saying when and by which plan it went. The
tombstones of one run are one file, ``gc/tombstones/<ms>-<plan>.jsonl``, written and
fsynced once before the first descriptor goes: a file per snapshot cost 1.5 ms of fsync
each on this machine's ext4 (30 s for 20,000), and more on JuiceFS.

A plan is the policy plus its candidate set; its ID is a hash of both, so the same policy
over the same repository yields the same ID. ``gc run`` recomputes the candidates under the
repository lock and refuses (E_GC_PLAN_MISMATCH) if they changed since the plan.

A run, step by step (a crash hook between steps):
1. ``record_tombstones``: the tombstones of every candidate, durable;
2. ``unpublish``: each descriptor is removed; from that moment the snapshot no longer
   exists for any reader (the view drops it, the resolver names its tombstone);
3. ``delete_payloads``: payload and manifest of each, the bytes actually freed.
A run killed anywhere is finished by the next ``gc run`` or by ``doctor --repair
clean_tmp``: a tombstoned snapshot whose descriptor is gone has its payload deleted; a
tombstone whose descriptor is still there was never acted on and is dropped (the snapshot
stays, and the next plan decides again).

For tests and dry runs, the clock can be set with ``JVS_GC_NOW`` (unix seconds or an
RFC 3339 time) or the hidden ``--now`` option of ``gc plan`` / ``gc run``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from jvs import fsio
from jvs.crashpoints import crashpoint
from jvs.descriptor import Descriptor
from jvs.errors import JvsError
from jvs.ids import is_snapshot_id, parse_rfc3339, rfc3339_utc
from jvs.progress import SILENT, Progress, counts
from jvs.repo import Repo
from jvs.space import Freed, freed_by

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


@dataclass(frozen=True)
class PinList(Sequence[Pin]):
    """``jvs gc pins``: the pins, and the time their expiry was judged at."""

    pins: tuple[Pin, ...]
    now: float

    def __len__(self) -> int:
        return len(self.pins)

    def __getitem__(self, i):
        return self.pins[i]

    def to_json(self) -> dict:
        return {"pins": [{**p.to_json(), "expired": p.expired(self.now)} for p in self.pins]}


@dataclass(frozen=True)
class Unpinned:
    """``jvs gc unpin``: the snapshot that no longer has a pin."""

    snapshot_id: str

    def to_json(self) -> dict:
        return {"snapshot_id": self.snapshot_id, "unpinned": True}


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
        when = parse_rfc3339(text)
    except ValueError:
        raise JvsError("E_USAGE", f"cannot read the expiry {text!r}",
                       hint="e.g. 30d, 12h, 2w, 2026-12-31 or 2026-12-31T18:00:00Z") from None
    if when <= now:
        # A pin that never protects is a mistake (a typo in the year, say), not a wish.
        raise JvsError("E_USAGE", f"the expiry {text!r} is in the past "
                       f"(it is {rfc3339_utc(int(now * 1e9))} now)",
                       hint="give a future time, or no --expires for a pin that never expires")
    return rfc3339_utc(int(when * 1e9))


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


def pin_list(repo: Repo, now: float | None = None) -> PinList:
    """Every pin, each judged expired or not at *now* (default: gc's clock)."""
    return PinList(tuple(list_pins(repo)), gc_now() if now is None else now)


def unpin(repo: Repo, snapshot_id: str) -> Unpinned:
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
    return Unpinned(snapshot_id)


# --------------------------------------------------------------------------- planning

@dataclass(frozen=True)
class Selection:
    candidates: list[str]
    kept: dict[str, str]  # snapshot ID -> the first reason it is kept


# Why a snapshot is kept, as the plan counts it; the Go implementation's two counters are
# read off these (its "lineage" is the live lineages' tips: heads and latests).
LINEAGE_REASONS = ("head", "latest")
PIN_REASONS = ("pinned",)


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: str
    policy: Policy
    candidates: tuple[str, ...]
    freed: Freed = field(default_factory=lambda: Freed(0, 0, 0, ()))
    kept_reasons: dict = field(default_factory=dict)  # reason -> count

    @property
    def deletable_bytes_estimate(self) -> int:
        return self.freed.estimate

    def to_json(self) -> dict:
        reasons = self.kept_reasons
        return {"plan_id": self.plan_id, "created_at": self.created_at,
                "policy": self.policy.to_json(), "candidates": list(self.candidates),
                "deletable_bytes_estimate": self.deletable_bytes_estimate,
                "deletable_bytes_estimate_kind": self.freed.kind,
                "freed": self.freed.to_json(),
                "kept_reasons": dict(reasons),
                # The Go implementation's field names, so scripts written for it keep working.
                "candidate_count": len(self.candidates),
                "to_delete": list(self.candidates),
                "protected_by_pin": sum(reasons.get(r, 0) for r in PIN_REASONS),
                "protected_by_lineage": sum(reasons.get(r, 0) for r in LINEAGE_REASONS)}

    @classmethod
    def from_json(cls, obj: dict) -> Plan:
        f = obj.get("freed") or {}
        freed = Freed(int(f.get("exact_bytes", obj.get("deletable_bytes_estimate", 0))),
                      int(f.get("upper_bound_bytes", 0)), int(f.get("apparent_bytes", 0)),
                      tuple(f.get("shared_below_files") or ()))
        return cls(obj["plan_id"], obj.get("created_at", ""), Policy.from_json(obj["policy"]),
                   tuple(obj["candidates"]), freed, dict(obj.get("kept_reasons") or {}))


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
        if created is None:
            keep(d.snapshot_id, "younger than 24 h")  # no time we can read: never collected
            continue
        if now - created < MIN_AGE_S:
            # Protected, and still counted by keep-last/-daily/-weekly (restic counts every
            # snapshot): "keep the last 5" keeps five, not five plus today's.
            keep(d.snapshot_id, "younger than 24 h")
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
    candidates = sorted(sid for sid in by_id if sid not in roots)
    return Selection(candidates, dict(roots))


def _day(created: float) -> str:
    """The local calendar day (restic's rule: a day is a date on the wall clock here)."""
    return datetime.fromtimestamp(created).strftime("%Y-%m-%d")


def _week(created: float) -> str:
    """The local ISO week (Monday to Sunday), as restic's ``--keep-weekly`` counts."""
    year, week, _ = datetime.fromtimestamp(created).isocalendar()
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


def plan_id_of(policy: Policy, candidates: Iterable[str]) -> str:
    body = json.dumps({"policy": policy.to_json(), "candidates": sorted(candidates)},
                      sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()[:16]


def plans_dir(repo: Repo) -> Path:
    return repo.jvs_dir / "gc" / "plans"


def make_plan(repo: Repo, policy: Policy, now: float) -> Plan:
    """Compute and store a plan (a reader: no lock; the run re-checks everything)."""
    from jvs.catalog import load_descriptors

    descriptors = load_descriptors(repo)
    selection = select(repo, policy, now, descriptors)
    reasons: dict[str, int] = {}
    for reason in selection.kept.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    by_id = {d.snapshot_id: d for d in descriptors}
    freed = freed_by(repo, [by_id[sid] for sid in selection.candidates])
    plan = Plan(plan_id_of(policy, selection.candidates), rfc3339_utc(int(now * 1e9)), policy,
                tuple(selection.candidates), freed, reasons)
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


# ---------------------------------------------------------------------------- tombstones

@dataclass(frozen=True)
class Tombstone:
    """What remains of a collected snapshot: enough for a readable lineage and to say
    when, and by which plan, it went."""

    snapshot_id: str
    plan_id: str
    collected_at: str
    parent_id: str | None = None
    worktree_name: str = ""
    created_at: str = ""
    note: str = ""
    tags: tuple[str, ...] = ()
    kind: str = "snapshot"  # or "rescue", as the descriptor's

    @classmethod
    def of(cls, desc: Descriptor, plan_id: str, collected_at: str) -> Tombstone:
        return cls(desc.snapshot_id, plan_id, collected_at, desc.parent_id, desc.worktree_name,
                   desc.created_at, desc.note, tuple(desc.tags), desc.kind)

    def to_json(self) -> dict:
        return {"snapshot_id": self.snapshot_id, "parent_id": self.parent_id,
                "worktree_name": self.worktree_name, "created_at": self.created_at,
                "note": self.note, "tags": list(self.tags), "kind": self.kind,
                "plan_id": self.plan_id, "collected_at": self.collected_at}

    @classmethod
    def from_json(cls, obj: dict) -> Tombstone:
        # ``unpublished_at``: the transient tombstones of earlier versions.
        return cls(str(obj["snapshot_id"]), str(obj.get("plan_id", "")),
                   str(obj.get("collected_at") or obj.get("unpublished_at") or ""),
                   obj.get("parent_id") or None, str(obj.get("worktree_name", "")),
                   str(obj.get("created_at", "")), str(obj.get("note", "")),
                   tuple(obj.get("tags") or ()), obj.get("kind") or "snapshot")


def tombstones_dir(repo: Repo) -> Path:
    return repo.jvs_dir / "gc" / "tombstones"


def _tombstone_files(repo: Repo) -> list[str]:
    try:
        names = os.listdir(tombstones_dir(repo))
    except FileNotFoundError:
        return []
    return sorted(n for n in names
                  if n.endswith(".jsonl") or (n.endswith(".json") and is_snapshot_id(n[:-5])))


def _read_tombstone_file(path: Path) -> list[Tombstone]:
    """The records of one file; a torn or foreign line is skipped (a file is only ever
    replaced whole, so that means someone edited it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in data.splitlines():
        try:
            obj = json.loads(line)
            if is_snapshot_id(str(obj.get("snapshot_id", ""))):
                out.append(Tombstone.from_json(obj))
        except (ValueError, AttributeError, KeyError):
            continue
    return out


def load_tombstones(repo: Repo) -> dict[str, Tombstone]:
    """Every tombstone by snapshot ID. A reader checks that the descriptor is gone before
    calling a snapshot collected: a run killed before it unpublished leaves a tombstone
    whose snapshot still exists."""
    out: dict[str, Tombstone] = {}
    for name in _tombstone_files(repo):
        for stone in _read_tombstone_file(tombstones_dir(repo) / name):
            out[stone.snapshot_id] = stone
    for sid in _legacy_collected(repo):
        out.setdefault(sid, Tombstone(sid, "", ""))
    return out


def load_tombstone(repo: Repo, snapshot_id: str) -> Tombstone | None:
    """The tombstone of *snapshot_id* if it was collected (its descriptor is gone)."""
    if repo.descriptor_path(snapshot_id).exists():
        return None
    return load_tombstones(repo).get(snapshot_id)


def list_tombstones(repo: Repo) -> list[str]:
    return sorted(load_tombstones(repo))


def collected_ids(repo: Repo) -> set[str]:
    """IDs gc collected on purpose (a kept snapshot's parent may be one of them)."""
    return set(load_tombstones(repo))


def _legacy_collected(repo: Repo) -> list[str]:
    """``gc/collected``: the bare list of collected IDs that earlier versions kept."""
    try:
        return (repo.jvs_dir / "gc" / "collected").read_text().split()
    except FileNotFoundError:
        return []


def unfinished_collections(repo: Repo) -> list[str]:
    """Tombstoned snapshots whose descriptor is gone but whose payload or manifest is still
    on disk: a run was killed after unpublishing them. Three directory listings, whatever
    the number of tombstones."""
    stones = set(load_tombstones(repo))
    if not stones:
        return []
    def listing(path: Path) -> set[str]:
        try:
            return set(os.listdir(path))
        except FileNotFoundError:
            return set()
    published = {n[:-5] for n in listing(repo.descriptors_dir) if n.endswith(".json")}
    on_disk = listing(repo.snapshots_dir) | listing(repo.manifests_dir)
    return sorted((stones & on_disk) - published)


# ------------------------------------------------------------------------------- running

@dataclass(frozen=True)
class RunResult:
    plan_id: str
    collected: tuple[str, ...]
    finished_from_earlier: tuple[str, ...]
    freed: Freed

    @property
    def bytes_estimate(self) -> int:
        return self.freed.estimate

    def to_json(self) -> dict:
        """``jvs gc run --json``."""
        return {"plan_id": self.plan_id, "deleted": list(self.collected),
                "finished_from_earlier": list(self.finished_from_earlier),
                "deleted_bytes_estimate": self.bytes_estimate,
                "freed": self.freed.to_json()}


def record_tombstones(repo: Repo, plan_id: str, snapshots: list[Descriptor],
                      now_ns: int | None = None) -> Path | None:
    """Step 1: one durable file with the tombstone of every snapshot about to go."""
    if not snapshots:
        return None
    stamp = rfc3339_utc(now_ns)
    tombstones_dir(repo).mkdir(parents=True, exist_ok=True)
    path = tombstones_dir(repo) / f"{int(time.time() * 1000):013d}-{plan_id}.jsonl"
    body = "".join(json.dumps(Tombstone.of(d, plan_id, stamp).to_json(), ensure_ascii=False,
                              sort_keys=True) + "\n" for d in snapshots)
    fsio.write_bytes_atomic(path, body.encode("utf-8"))
    return path


def unpublish(repo: Repo, snapshot_ids: list[str]) -> None:
    """Step 2: remove the descriptors; each snapshot stops existing for every reader."""
    from jvs.lock import assert_lock_still_held

    # A host that lost its JuiceFS session (and the lock) must not delete under another.
    assert_lock_still_held(repo, "gc run")
    descriptors = os.path.join(repo.descriptors_dir, "")
    for sid in snapshot_ids:
        try:
            os.unlink(f"{descriptors}{sid}.json")
        except FileNotFoundError:
            pass
        crashpoint("gc:after_unpublish_one")
    fsio.fsync_dir(repo.descriptors_dir)


def delete_payloads(repo: Repo, snapshot_ids: list[str], meter: Progress = SILENT) -> None:
    """Step 3: payload, then manifest, of snapshots already unpublished."""
    if not snapshot_ids:
        return
    # Every payload's parent is snapshots/: checked once (it resolved the realpath of
    # both for each snapshot, a dozen system calls each), and plain string paths.
    fsio.ensure_inside(repo.jvs_dir, repo.snapshots_dir)
    fsio.ensure_inside(repo.jvs_dir, repo.manifests_dir)
    payloads = os.path.join(repo.snapshots_dir, "")
    manifests = os.path.join(repo.manifests_dir, "")
    meter.start(len(snapshot_ids), 0, unit="snapshots")
    for sid in snapshot_ids:
        payload = payloads + sid
        if os.path.lexists(payload):
            fsio.remove_tree(Path(payload))
        try:
            os.unlink(manifests + sid)
        except FileNotFoundError:
            pass
        crashpoint("gc:after_delete_one")
        meter.advance(1, 0)
    fsio.fsync_dir(repo.snapshots_dir)
    fsio.fsync_dir(repo.manifests_dir)


def drop_stale_tombstones(repo: Repo) -> int:
    """Tombstones whose snapshot is still published were never acted on (a run killed
    before it unpublished them): rewrite their files without them. Returns how many."""
    published = set()
    try:
        published = {n[:-5] for n in os.listdir(repo.descriptors_dir) if n.endswith(".json")}
    except FileNotFoundError:
        pass
    dropped = 0
    for name in _tombstone_files(repo):
        path = tombstones_dir(repo) / name
        stones = _read_tombstone_file(path)
        keep = [t for t in stones if t.snapshot_id not in published]
        if len(keep) == len(stones):
            continue
        dropped += len(stones) - len(keep)
        if not keep:
            path.unlink(missing_ok=True)
            fsio.fsync_dir(path.parent)
        else:
            body = "".join(json.dumps(t.to_json(), ensure_ascii=False, sort_keys=True) + "\n"
                           for t in keep)
            fsio.write_bytes_atomic(path.with_suffix(".jsonl"), body.encode("utf-8"))
            if path.suffix != ".jsonl":
                path.unlink(missing_ok=True)
    return dropped


def finish_tombstones(repo: Repo) -> list[str]:
    """Finish what a killed run left (the caller holds the repository lock): delete the
    payloads of tombstoned snapshots already unpublished, drop tombstones never acted on.
    Returns the IDs whose deletion this call completed."""
    done = unfinished_collections(repo)
    delete_payloads(repo, done)
    drop_stale_tombstones(repo)
    return done


def plan_drift(repo: Repo, plan: Plan, now: float
               ) -> tuple[dict[str, Descriptor], list[str], str]:
    """The published snapshots by ID, what the plan's policy selects now, and how that
    differs from what the plan listed ("" if it does not): a run refuses a drifted plan."""
    from jvs.catalog import load_descriptors

    descriptors = load_descriptors(repo)
    by_id = {d.snapshot_id: d for d in descriptors}
    expected = sorted(sid for sid in plan.candidates if sid in by_id)
    current = select(repo, plan.policy, now, descriptors).candidates
    added = sorted(set(current) - set(expected))
    gone = sorted(set(expected) - set(current))
    drift = "; ".join(part for part in (
        f"{len(added)} new candidate(s) ({', '.join(added[:3])})" if added else "",
        f"{len(gone)} no longer collectable ({', '.join(gone[:3])})" if gone else "") if part)
    return by_id, current, drift


def run_plan(repo: Repo, plan_id: str, now: float, progress=None) -> RunResult:
    """``gc run --plan-id``: re-check the plan under the lock, then the three steps.
    *progress* (jvs/progress.py) hears the snapshots deleted."""
    from jvs.audit import append_audit
    from jvs.lock import repo_lock

    with repo_lock(repo, "gc"):
        plan = load_plan(repo, plan_id)
        earlier = finish_tombstones(repo)
        by_id, current, drift = plan_drift(repo, plan, now)
        if drift:
            raise JvsError("E_GC_PLAN_MISMATCH",
                           f"the repository changed since plan {plan.plan_id}: {drift}",
                           hint="review a fresh 'jvs gc plan' and run its Plan ID")
        victims = [by_id[sid] for sid in current]
        freed = freed_by(repo, victims)
        record_tombstones(repo, plan.plan_id, victims)
        crashpoint("gc:after_tombstones")
        unpublish(repo, current)
        crashpoint("gc:after_phase1")
        if progress:
            progress("deleting")
        delete_payloads(repo, current, counts(progress))
        crashpoint("gc:after_phase2")
        append_audit(repo, "gc", plan.plan_id, f"collected {len(current)} snapshot(s)",
                     snapshots=current or None, completed_earlier=earlier or None,
                     bytes_estimate=freed.estimate, bytes_kind=freed.kind)
        return RunResult(plan.plan_id, tuple(current), tuple(earlier), freed)
