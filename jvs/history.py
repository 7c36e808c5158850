"""Listing and filtering snapshots for ``jvs history``."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from jvs.catalog import load_descriptors
from jvs.descriptor import Descriptor
from jvs.repo import Repo
from jvs.worktree import WorktreeConfig, load_worktree_config


@dataclass(frozen=True)
class History:
    worktree: WorktreeConfig | None
    snapshots: list[Descriptor]  # newest first


def lineage(by_id: dict[str, Descriptor], start: str | None) -> list[str]:
    """IDs from *start* back through its parents (stops at a missing parent or a cycle)."""
    out, seen = [], set()
    while start and start in by_id and start not in seen:
        seen.add(start)
        out.append(start)
        start = by_id[start].parent_id
    return out


def match_tags(snapshots: list[Descriptor], pattern: str) -> list[Descriptor]:
    """Exact tag; else a glob if *pattern* has wildcards; else tags starting with it."""
    exact = [d for d in snapshots if pattern in d.tags]
    if exact:
        return exact
    if any(c in pattern for c in "*?["):
        return [d for d in snapshots if any(fnmatch.fnmatchcase(t, pattern) for t in d.tags)]
    return [d for d in snapshots if any(t.startswith(pattern) for t in d.tags)]


def history(repo: Repo, worktree: str | None, *, all_snapshots: bool = False,
            tag: str | None = None, grep: str | None = None,
            limit: int | None = None) -> History:
    """The snapshots of *worktree* (those it made, plus the ancestors of its head), or of
    the whole repository with *all_snapshots* or outside any worktree. Rescue snapshots
    appear only with *all_snapshots*."""
    descriptors = load_descriptors(repo)
    wt = load_worktree_config(repo, worktree) if worktree else None
    if wt is not None and not all_snapshots:
        by_id = {d.snapshot_id: d for d in descriptors}
        keep = set(lineage(by_id, wt.head_snapshot_id)) | set(lineage(by_id, wt.latest_snapshot_id))
        selected = [d for d in descriptors
                    if (d.worktree_name == wt.name and not d.is_rescue) or d.snapshot_id in keep]
    else:
        selected = list(descriptors)
    if tag:
        selected = match_tags(selected, tag)
    if grep:
        needle = grep.casefold()
        selected = [d for d in selected if needle in d.note.casefold()]
    selected.sort(key=lambda d: d.snapshot_id, reverse=True)
    if limit is not None and limit >= 0:
        selected = selected[:limit]
    return History(wt, selected)
