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

from jvs.changes import Changes, compare, snapshot_entries, visible, without_go_marker
from jvs.descriptor import Descriptor, read_descriptor
from jvs.errors import JvsError
from jvs.ignore import IgnoreRules
from jvs.integrity import Entry, HashStats, entries_of, scan
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
    stats: dict[str, os.stat_result]
    ignored: list[str] = field(default_factory=list)


UNKNOWN = "?"  # the hash of a file not read (never equal to a real one)


def read_worktree(payload: Path, algo: str, cache: StatCache,
                  ignore: IgnoreRules | None = None, units: tuple[str, ...] = (),
                  stats: HashStats | None = None, *, hash_unknown: bool = True
                  ) -> WorktreeState:
    """Read the worktree (only *units* and what lies under them, if given), hashing only
    the files the stat cache cannot vouch for, and remember the fresh hashes in *cache*
    (the caller saves it). Without *hash_unknown* those files are not read either: their
    hash is ``UNKNOWN`` (a restore that discards unsaved work just replaces them)."""
    scanned = scan(payload, ignore=ignore)
    if units:
        scanned.entries = [e for e in scanned.entries if under(e.relpath, units)]
    if hash_unknown:
        def known(e):
            return cache.lookup(e.relpath, e.st)
    else:
        def known(e):
            return cache.lookup(e.relpath, e.st) or UNKNOWN
    found = entries_of(payload, scanned, algo, stats or HashStats(), known)
    by_path = {e.relpath: e.st for e in scanned.entries}
    for entry in found:
        if entry.kind == "file" and entry.hash != UNKNOWN:
            cache.remember(entry.relpath, by_path[entry.relpath], entry.hash)
    return WorktreeState({e.relpath: e for e in found}, by_path, scanned.ignored)


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
    """How the worktree differs from its head: *changes*, and the two sides compared."""

    changes: Changes
    head: dict[str, Entry]
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
    old = visible(saved_entries(repo, head), ignore) if head else []
    new = without_go_marker(list(state.entries.values()), head)
    if units:
        # A restore of some paths destroys only what is at them: a file the user deleted
        # there leaves nothing to rescue.
        old = [e for e in old if under(e.relpath, units)]
        changes = Changes([c for c in compare(old, new).items if c.change != "removed"])
    else:
        changes = compare(old, new)
    return Unsaved(changes, {e.relpath: e for e in old}, state)


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
