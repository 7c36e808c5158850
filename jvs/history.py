"""Listing and filtering snapshots for ``jvs history``.

Snapshots gc collected are hidden unless asked for (``collected=True``): everything
``history`` lists by default can be restored, which is what scripts that walk it expect.
With ``collected=True`` their tombstones are listed too, in their place in time."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from jvs.catalog import gc_paused, load_descriptors
from jvs.descriptor import Descriptor
from jvs.gc import Tombstone, load_tombstones
from jvs.ids import parse_rfc3339
from jvs.repo import Repo
from jvs.worktree import WorktreeConfig, load_worktree_config


@dataclass(frozen=True)
class History(Sequence[Descriptor]):
    """``jvs history``: a sequence of the listed snapshots, newest first (``len``,
    indexing, iteration), with the worktree they were listed for."""

    worktree: WorktreeConfig | None
    snapshots: list[Descriptor]  # newest first
    collected: list[Tombstone] = field(default_factory=list)  # newest first; when asked
    listed_collected: bool = False  # collected=True was asked for

    def __len__(self) -> int:
        return len(self.snapshots)

    def __getitem__(self, index):  # int -> Descriptor, slice -> list[Descriptor]
        return self.snapshots[index]

    def __iter__(self) -> Iterator[Descriptor]:
        return iter(self.snapshots)

    def to_json(self) -> dict:
        wt = self.worktree
        head = wt.head_snapshot_id if wt else None
        latest = wt.latest_snapshot_id if wt else None
        with gc_paused():  # one dict per snapshot
            records = [d.to_summary_json(head=head, latest=latest) for d in self.snapshots]
        data = {
            "worktree": wt.name if wt else None,
            "head_snapshot_id": head,
            "latest_snapshot_id": latest,
            "detached": bool(wt and wt.detached),
            "snapshots": records,
        }
        if self.listed_collected:
            data["collected"] = [t.to_json() for t in self.collected]
        return data


def lineage(by_id: dict[str, Descriptor | Tombstone], start: str | None) -> list[str]:
    """IDs from *start* back through its parents (stops at a missing parent or a cycle)."""
    out, seen = [], set()
    while start and start in by_id and start not in seen:
        seen.add(start)
        out.append(start)
        start = by_id[start].parent_id
    return out


def match_tags(snapshots: list, pattern: str) -> list:
    """Exact tag; else a glob if *pattern* has wildcards; else tags starting with it."""
    exact = [d for d in snapshots if pattern in d.tags]
    if exact:
        return exact
    if any(c in pattern for c in "*?["):
        return [d for d in snapshots if any(fnmatch.fnmatchcase(t, pattern) for t in d.tags)]
    return [d for d in snapshots if any(t.startswith(pattern) for t in d.tags)]


def history(repo: Repo, worktree: str | None, *, all_snapshots: bool = False,
            tag: str | None = None, grep: str | None = None,
            limit: int | None = None, collected: bool = False,
            since: float | None = None, until: float | None = None,
            reverse: bool = False) -> History:
    """The snapshots of *worktree* (those it made, plus the ancestors of its head), or of
    the whole repository with *all_snapshots* or outside any worktree. Rescue snapshots
    appear only with *all_snapshots*; collected ones only with *collected*. The lineage
    is followed through collected snapshots (their tombstones keep the parent link).
    *since*/*until* (seconds since the epoch, both inclusive) keep the snapshots created
    in that span; *limit* then keeps the newest, and *reverse* lists them oldest first
    (as git's ``--reverse``, after the limit)."""
    descriptors = load_descriptors(repo)
    published = {d.snapshot_id: d for d in descriptors}
    stones: dict[str, Tombstone] = {}
    wt = load_worktree_config(repo, worktree) if worktree else None
    if wt is not None and not all_snapshots:
        chain: dict[str, Descriptor | Tombstone] = dict(published)
        keep = set(lineage(chain, wt.head_snapshot_id)) \
            | set(lineage(chain, wt.latest_snapshot_id))
        if collected or _lineage_reaches_a_gap(chain, keep):
            stones = _collected(repo, published)
            chain.update(stones)
            keep = set(lineage(chain, wt.head_snapshot_id)) \
                | set(lineage(chain, wt.latest_snapshot_id))
        selected = [d for d in descriptors
                    if (d.worktree_name == wt.name and not d.is_rescue) or d.snapshot_id in keep]
        gone = [t for t in stones.values()
                if (t.worktree_name == wt.name and t.kind != "rescue") or t.snapshot_id in keep]
    else:
        selected = list(descriptors)
        if collected:
            stones = _collected(repo, published)
        gone = list(stones.values())
    if not collected:
        gone = []
    if tag:
        selected = match_tags(selected, tag)
        gone = match_tags(gone, tag)
    if grep:
        needle = grep.casefold()
        selected = [d for d in selected if needle in d.note.casefold()]
        gone = [t for t in gone if needle in t.note.casefold()]
    if since is not None or until is not None:
        selected = [d for d in selected if _within(d.snapshot_id, d.created_at, since, until)]
        gone = [t for t in gone if _within(t.snapshot_id, t.created_at, since, until)]
    selected.sort(key=lambda d: d.snapshot_id, reverse=True)
    gone.sort(key=lambda t: t.snapshot_id, reverse=True)
    if limit is not None and limit >= 0:
        # The limit counts entries as listed: snapshots and collected ones in time order.
        merged = sorted([d.snapshot_id for d in selected] + [t.snapshot_id for t in gone],
                        reverse=True)[:limit]
        shown = set(merged)
        selected = [d for d in selected if d.snapshot_id in shown]
        gone = [t for t in gone if t.snapshot_id in shown]
    if reverse:
        selected.reverse()
        gone.reverse()
    return History(wt, selected, gone, listed_collected=collected)


def _within(snapshot_id: str, created_at: str, since: float | None,
            until: float | None) -> bool:
    """Whether the snapshot was created (its ``created_at``, as history shows it) in
    [since, until]. Its ID starts with the millisecond the snapshot began (SPEC §2), at or
    before ``created_at``: that settles most snapshots without parsing a timestamp (an ID
    after *until*, or at or after *since* with no *until*); the rest are parsed."""
    ms = int(snapshot_id[:13])
    if until is not None and ms > until * 1000:
        return False
    if until is None and ms >= since * 1000:
        return True
    try:
        created = parse_rfc3339(created_at)
    except ValueError:
        created = ms / 1000  # a collected snapshot's record without its time
    return (since is None or created >= since) and (until is None or created <= until)


def _collected(repo: Repo, published: dict[str, Descriptor]) -> dict[str, Tombstone]:
    """Tombstones of snapshots really gone (a killed run's stale ones are not)."""
    return {sid: t for sid, t in load_tombstones(repo).items() if sid not in published}


def _lineage_reaches_a_gap(chain: dict, ids: set[str]) -> bool:
    """Does a walked lineage stop at a parent that is not published (maybe collected)?"""
    return any(chain[sid].parent_id and chain[sid].parent_id not in chain for sid in ids)
