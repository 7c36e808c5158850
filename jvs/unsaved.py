"""Unsaved work: how a worktree differs from what its snapshots saved.

A restore, ``worktree remove`` and ``status`` ask it. The worktree is read as a snapshot
taken now would record it, but a file is read only when its stat changed since it was last
hashed (the stat cache): proving that a worktree still equals its head costs a stat walk.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from jvs.changes import (
    UNKNOWN,
    Changes,
    compare,
    differing,
    snapshot_entries,
    snapshot_manifest,
    visible,
    walk_against,
    without_go_marker,
)
from jvs.descriptor import Descriptor, read_descriptor
from jvs.errors import JvsError
from jvs.ignore import IgnoreRules
from jvs.integrity import (
    Entry,
    HashStats,
    ScannedEntry,
    ScanResult,
    Stat,
    entries_of,
    scan,
    walk_worktree,
)
from jvs.repo import Repo
from jvs.statcache import StatCache
from jvs.worktree import WorktreeConfig

Identity = tuple[int, int, int]  # (st_ino, st_size, st_mtime_ns): survives a rename


def identity(st: os.stat_result) -> Identity:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class WorktreeState:
    """The worktree as read now: its entries (hashed, ignored paths left out), each
    entry's lstat, and the top-most ignored paths."""

    entries: dict[str, Entry]
    stats: dict[str, Stat]
    ignored: list[str] = field(default_factory=list)


def read_worktree(payload: Path, algo: str, cache: StatCache,
                  ignore: IgnoreRules | None = None, units: tuple[str, ...] = (),
                  stats: HashStats | None = None, *, hash_unknown: bool = True
                  ) -> WorktreeState:
    """Read the worktree (only *units* and what lies under them, if given), hashing only
    the files the stat cache cannot vouch for, and remember the fresh hashes in *cache*
    (the caller saves it). Without *hash_unknown* those files are not read either: their
    hash is ``UNKNOWN`` (a restore that discards unsaved work just replaces them)."""
    result = ScanResult()
    scanned = walk_worktree(payload, result, ignore=ignore)
    if units:
        scanned = (e for e in scanned if under(e.relpath, units))
    by_path: dict[str, Stat] = {}
    lookup, compact = cache.lookup, Stat.of

    def known(e: ScannedEntry) -> str | None:
        return lookup(e.relpath, e.st) or (None if hash_unknown else UNKNOWN)

    def kept(entries):
        # One pass: each full lstat is dropped once its entry is made; the compact one
        # is what the restore reads later.
        for e in entries:
            by_path[e.relpath] = compact(e.st)
            yield e

    found = entries_of(payload, kept(scanned), algo, stats or HashStats(), known)
    for entry in found:
        if entry.kind == "file" and entry.hash != UNKNOWN:
            cache.remember(entry.relpath, by_path[entry.relpath], entry.hash)
    return WorktreeState({e.relpath: e for e in found}, by_path, result.ignored)


def read_thin(repo: Repo, wt: WorktreeConfig, payload: Path, target: Descriptor,
              ignore: IgnoreRules | None, discard: bool
              ) -> tuple[WorktreeState, list[Entry], list[Entry], Unsaved | None, int] | None:
    """The worktree read for a restore to *target* in one pass against the target's
    manifest and (unless unsaved work is discarded) its head's (``walk_against``),
    holding only the entries that differ from either, and the directories: (that state;
    the target's and the worktree's entries not recorded alike; the unsaved changes; the
    target's record count). What a restore does with the worktree as read (planning,
    the checks before moving, conflicts, the stat cache) looks only at the entries it
    touches, which all differ from the target. None when the pass does not apply, or
    when there is unsaved work to rescue: the rescue plans on every entry, so the
    worktree is then read whole (``read_worktree``)."""
    if not wt.head_snapshot_id:
        return None
    head = read_descriptor(repo, wt.head_snapshot_id, verify=False)
    entries: dict[str, Entry] = {}
    stats: dict[str, Stat] = {}

    def keep(entry: Entry, st: os.stat_result) -> None:
        entries[entry.relpath] = entry
        stats[entry.relpath] = Stat.of(st)

    walked = walk_against(repo, wt.name, payload, (target,) if discard else (target, head),
                          HashStats(), hash_unknown=not discard, keep=keep)
    if walked is None:
        return None
    state = WorktreeState(entries, stats, walked.ignored)
    unsaved = None
    if not discard:
        old, new = walked.sides[1]
        unsaved = Unsaved(compare(visible(old, ignore), new), state)
        if not unsaved.clean:
            return None
    theirs, mine = walked.sides[0]
    return state, theirs, mine, unsaved, walked.records[0]


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
        merged = {rel: e for rel, e in merged.items() if not under(rel, part.partial_paths)}
        merged.update({e.relpath: e for e in snapshot_entries(repo, part)})
    return list(merged.values())


@dataclass(frozen=True)
class Unsaved:
    """How the worktree differs from its head: *changes*, and the worktree as read."""

    changes: Changes
    worktree: WorktreeState

    @property
    def clean(self) -> bool:
        return self.changes.clean


def unsaved_work(repo: Repo, wt: WorktreeConfig, state: WorktreeState,
                 ignore: IgnoreRules | None = None, units: tuple[str, ...] = ()) -> Unsaved:
    """Compare the worktree as read (*state*) with what its head saved (only under
    *units*, if given). A worktree with no head snapshot and any file counts as unsaved.
    Paths *ignore* matches count on neither side."""
    head = read_descriptor(repo, wt.head_snapshot_id, verify=False) \
        if wt.head_snapshot_id else None
    new = without_go_marker(list(state.entries.values()), head)
    if head is not None and not head.is_partial:
        # Only the records that differ are parsed and compared (as ``status`` does): at
        # 100,000 files with one change, two records of the head's manifest, not all.
        old, new = differing(snapshot_manifest(repo, head), new)
        old = visible(old, ignore)
    else:
        old = visible(saved_entries(repo, head), ignore) if head else []
    if units:
        # A restore of some paths destroys only what is at them: a file the user deleted
        # there leaves nothing to rescue.
        old = [e for e in old if under(e.relpath, units)]
        changes = Changes([c for c in compare(old, new).items if c.change != "removed"])
    else:
        changes = compare(old, new)
    return Unsaved(changes, state)


def find_unsaved(repo: Repo, wt: WorktreeConfig, payload: Path) -> Unsaved:
    """Whether the worktree holds work its snapshots do not (``worktree remove``)."""
    head = read_descriptor(repo, wt.head_snapshot_id, verify=False) \
        if wt.head_snapshot_id else None
    algo = head.payload_hash_algo if head else repo.config().payload_hash_algo
    cache = StatCache.load(repo, wt.name, algo)
    ignore = IgnoreRules.load(payload)
    state = read_worktree(payload, algo, cache, ignore)
    cache.save(keep=set(state.stats))
    return unsaved_work(repo, wt, state, ignore)


ABSENT = "absent"  # the fingerprint of a path that should hold nothing


def fingerprint(items) -> str:
    """What a roll-forward recognises an entry by: the paths, kinds, sizes and mtimes of
    it and everything below it (*items*: ``(path below the entry, lstat)``), not inodes,
    so a repository copied with ``cp -a`` after a crash is still recognised, while an
    edit, a new file or a deletion made since is not."""
    import xxhash

    digest = xxhash.xxh3_64()
    for rel, st in sorted(items, key=lambda item: item[0]):
        if stat.S_ISDIR(st.st_mode):
            line = b"d\0" + os.fsencode(rel)
        else:
            kind = b"l" if stat.S_ISLNK(st.st_mode) else b"f"
            line = b"%s\0%s\0%d\0%d" % (kind, os.fsencode(rel), st.st_size, st.st_mtime_ns)
        digest.update(line + b"\n")
    return digest.hexdigest()


def fingerprint_read(state: WorktreeState, keys: list[str], rel: str,
                     leaving_out: tuple[str, ...] = ()) -> str:
    """The fingerprint of *rel* as the worktree read showed it (*keys*: its paths,
    sorted), without what lies at *leaving_out* (moved into the rescue)."""
    from jvs.plan import subtree

    if under(rel, leaving_out):
        return ABSENT
    return fingerprint((p[len(rel) + 1:], state.stats[p]) for p in subtree(keys, rel)
                       if not under(p, leaving_out))


def fingerprint_now(root: Path, rel: str, leaving_out: tuple[str, ...] = ()) -> str:
    """The fingerprint of what is at *rel* under *root* now (``ABSENT`` if nothing), read
    the same way as :func:`fingerprint_read`."""
    path = root / rel
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ABSENT
    if under(rel, leaving_out):
        return "present"  # something came back where nothing should be
    items = [("", st)]
    if stat.S_ISDIR(st.st_mode):
        items += [(e.relpath, e.st) for e in scan(path).entries
                  if not under(f"{rel}/{e.relpath}", leaving_out)]
    return fingerprint(items)


def under(rel: str, paths: tuple[str, ...]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in paths)
