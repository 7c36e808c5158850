"""What differs between two states: a snapshot's manifest, or a worktree as it is now.

``status``, ``diff`` and the rescue check of ``restore`` all compare manifest entries
here. A worktree's entries come from the stat cache where a file's stat is unchanged, so
these comparisons read only files that changed since they were last hashed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jvs import fsio
from jvs.descriptor import Descriptor
from jvs.errors import JvsError
from jvs.ignore import IgnoreRules
from jvs.integrity import (
    READY_MARKER,
    Entry,
    HashStats,
    ScannedEntry,
    ScanResult,
    compute_payload,
    encode_manifest,
    encoded_records,
    entries_of,
    hash_file,
    iter_scan,
    parse_manifest,
    read_trusted_bytes,
    record_bytes,
    walk_worktree,
)
from jvs.repo import Repo
from jvs.statcache import StatCache


@dataclass(frozen=True)
class Change:
    """One entry that differs; the fields are named as in ``--json`` output."""

    path: str  # relative to the worktree's root, "/"-separated
    change: str  # "added" | "removed" | "modified" | "mode" | "type"
    type: str  # entry type on the newer side (or the older one if removed)
    size_delta: int = 0

    @property
    def relpath(self) -> str:
        """Deprecated: the older name of :attr:`path`."""
        return self.path

    @property
    def kind(self) -> str:
        """Deprecated: the older name of :attr:`type`."""
        return self.type

    def to_json(self) -> dict:
        return {"path": self.path, "change": self.change, "type": self.type,
                "size_delta": self.size_delta}


@dataclass(frozen=True)
class Changes(Sequence[Change]):
    """The changes between two states, sorted by path: a sequence of :class:`Change`
    (``len``, indexing, iteration); empty (and falsy) when the states are equal."""

    items: list[Change] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # int -> Change, slice -> list[Change]
        return self.items[index]

    def __iter__(self) -> Iterator[Change]:
        return iter(self.items)

    @property
    def clean(self) -> bool:
        return not self.items

    def count(self, change: str) -> int:  # type: ignore[override]
        """How many changes are of this *change* kind ("added", "modified", ...)."""
        return sum(1 for c in self.items if c.change == change)

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.items]


def compare(old: list[Entry], new: list[Entry]) -> Changes:
    """What changed from *old* to *new*, in path order. One pass over the older side and
    a dict of the newer: at 100,000 entries, sorting every path and matching each one
    through two dicts took three times as long."""
    b = {e.relpath: e for e in new}
    pop = b.pop
    found: list[tuple[str, str, Entry | None, Entry | None]] = []
    for x in old:
        y = pop(x.relpath, None)
        if y is None:
            found.append((x.relpath, "removed", x, None))
        elif x.hash != y.hash or x.size != y.size or x.mode != y.mode or x.kind != y.kind:
            found.append((x.relpath, "", x, y))
    found += [(rel, "added", None, y) for rel, y in b.items()]
    found.sort(key=lambda item: item[0])
    items: list[Change] = []
    for rel, change, x, y in found:
        if change == "added":
            items.append(Change(rel, "added", y.kind, y.size))
        elif change == "removed":
            items.append(Change(rel, "removed", x.kind, -x.size))
        elif x.kind != y.kind:
            items.append(Change(rel, "type", y.kind, y.size - x.size))
        elif x.hash != y.hash or x.size != y.size:
            items.append(Change(rel, "modified", y.kind, y.size - x.size))
        else:
            items.append(Change(rel, "mode", y.kind))
    return Changes(items)


def is_under(relpath: str, paths: tuple[str, ...]) -> bool:
    """Whether *relpath* is one of *paths* or inside one (all worktree-relative)."""
    return any(relpath == p or relpath.startswith(p + "/") for p in paths)


def under(changes: Changes, paths: tuple[str, ...]) -> Changes:
    """The *changes* at or below *paths* (all of them when *paths* is empty)."""
    if not paths:
        return changes
    return Changes([c for c in changes.items if is_under(c.relpath, paths)])


def visible(entries: list[Entry], ignore: IgnoreRules | None) -> list[Entry]:
    """*entries* without the paths *ignore* matches: comparisons with a worktree leave
    out what its ``.jvsignore`` keeps out of snapshots."""
    if not ignore:
        return entries
    return [e for e in entries if not ignore.ignored(e.relpath, e.kind == "dir")]


def snapshot_entries(repo: Repo, desc: Descriptor) -> list[Entry]:
    """A snapshot's entries from its manifest, rebuilt from the payload if the manifest
    is missing or untrusted (and then checked against the descriptor's root hash)."""
    return list(parse_manifest(snapshot_manifest(repo, desc)))


def snapshot_manifest(repo: Repo, desc: Descriptor) -> bytes:
    """A snapshot's records text, as :func:`snapshot_entries` finds it."""
    manifest = read_trusted_bytes(repo.manifest_path(desc.snapshot_id), desc.payload_root_hash)
    if manifest is not None:
        return manifest
    manifest, digest = compute_payload(repo.payload_dir(desc.snapshot_id), desc.payload_hash_algo,
                                       ready_marker=desc.has_ready_marker)
    if digest != desc.payload_root_hash:
        raise JvsError("E_PAYLOAD_HASH_MISMATCH",
                       f"payload of {desc.snapshot_id} does not match its descriptor",
                       hint=f"run 'jvs verify {desc.snapshot_id}'")
    try:  # a cache of the payload (SPEC §1): the next reader need not hash it again
        repo.manifests_dir.mkdir(exist_ok=True)
        fsio.write_bytes_atomic(repo.manifest_path(desc.snapshot_id),
                                encode_manifest(manifest), durable=False)
    except OSError:
        pass
    return manifest


def differing(old: bytes, new: list[Entry] | bytes) -> tuple[list[Entry], list[Entry]]:
    """The entries of two states that are not recorded identically on both sides: *old*
    a manifest's records text, *new* entries or another records text. Equal records are
    equal entries and make no change, so ``compare`` (and any filter by path applied
    before it) gives the same result on these as on all entries; a 100,000-file worktree
    with one change then parses two records of its head's manifest instead of all."""
    # Each record of *new* is crossed off as the same line of *old* goes by: no set of
    # either side, and the lines of *old* are never all held at once (a third of the
    # memory of a restore of 100,000 files was these sets and lists).
    if isinstance(new, bytes):
        unmatched: dict = dict.fromkeys(_lines(new), True)
    else:
        unmatched = dict(zip(encoded_records(new), new, strict=True))
    pop = unmatched.pop
    gone = b"\n".join(line for line in _lines(old) if pop(line, None) is None)
    if isinstance(new, bytes):
        return list(parse_manifest(gone)), list(parse_manifest(b"\n".join(unmatched)))
    return list(parse_manifest(gone)), list(unmatched.values())


def _lines(text: bytes) -> Iterator[bytes]:
    """The non-empty lines of *text*, one at a time."""
    return (m[0] for m in re.finditer(rb"[^\n]+", text))


def without_go_marker(entries: list[Entry], head: Descriptor | None) -> list[Entry]:
    """A worktree's entries, compared with a *head* the Go implementation wrote: its fork
    copies the snapshot's publish marker (a root ``.READY``) into the new worktree, where
    it is no change of the user's. Against a head of ours it is a file like any other."""
    if head is None or not head.has_ready_marker:
        return entries
    return [e for e in entries if not (e.relpath == READY_MARKER and e.kind == "file")]


def worktree_entries(repo: Repo, worktree: str, payload: Path, algo: str,
                     stats: HashStats | None = None,
                     within: tuple[str, ...] = ()) -> list[Entry]:
    """The worktree's entries as a snapshot taken now would record them (ignored paths
    left out), using (and refreshing) the stat cache."""
    cache = StatCache.load(repo, worktree, algo)
    # One streaming pass: each stat is used as it is read and not kept.
    scanned = walk_worktree(payload, ScanResult(), ignore=IgnoreRules.load(payload))
    if within:
        scanned = (e for e in scanned
                   if any(e.relpath == p or e.relpath.startswith(p + "/")
                          or p.startswith(e.relpath + "/") for p in within))
    lookup = cache.lookup
    files: set[str] = set()
    missed: dict[str, os.stat_result] = {}  # files read now: their hashes are remembered

    def known(e: ScannedEntry) -> str | None:
        files.add(e.relpath)
        digest = lookup(e.relpath, e.st)
        if digest is None:
            missed[e.relpath] = e.st
        return digest

    entries = entries_of(payload, scanned, algo, stats or HashStats(), known)
    if missed:
        for entry in entries:
            st = missed.get(entry.relpath) if entry.kind == "file" else None
            if st is not None:
                cache.remember(entry.relpath, st, entry.hash)
    cache.save(keep=None if within else files)
    return entries


def worktree_differing(repo: Repo, worktree: str, payload: Path, head: Descriptor,
                       stats: HashStats) -> tuple[list[Entry], list[Entry]] | None:
    """``differing(head's manifest, worktree_entries(...))`` in one pass that holds no
    entry per file (``walk_against`` with one snapshot); None when that pass does not
    apply: the caller then compares the usual way."""
    walked = walk_against(repo, worktree, payload, (head,), stats)
    return None if walked is None else walked.sides[0]


@dataclass
class WalkedAgainst:
    """The worktree compared in one pass with snapshots: per snapshot, its entries and
    the worktree's that are not recorded alike (as ``differing`` gives them); the
    top-most ignored paths; the number of records of each snapshot's manifest."""

    sides: list[tuple[list[Entry], list[Entry]]]
    ignored: list[str]
    records: list[int]


UNKNOWN = "?"  # the hash of a file not read (never equal to a real one)


def walk_against(repo: Repo, worktree: str, payload: Path, snapshots: tuple[Descriptor, ...],
                 stats: HashStats, *, hash_unknown: bool = True,
                 keep: Callable[[Entry, os.stat_result], None] | None = None
                 ) -> WalkedAgainst | None:
    """The worktree walked once in walk order beside its stat cache and the manifests of
    *snapshots* (all of one hash algorithm), each read front to back (see
    ``jvs.records``): no entry per file is held, only those not recorded alike. What
    changed in the stat cache is saved by one merge pass at the end (nothing is written
    when nothing changed). Without *hash_unknown*, a file the cache cannot vouch for is
    not read: its hash is ``UNKNOWN``. *keep* is told every directory and every entry
    that differs from any of the snapshots, with its lstat.

    None when this pass does not apply (a worktree on FUSE or a network, listed in
    parallel instead; a partial snapshot or one of the Go implementation; snapshots of
    different algorithms) or a manifest turned out untrusted: the caller then compares
    the usual way. A name with ``:`` may put a record out of walk order: it is then kept
    on both sides and paired up by ``compare``."""
    from jvs.mountinfo import on_local_filesystem
    from jvs.records import HeadRecords
    from jvs.statcache import (
        KEY_SIZE,
        RACY_WINDOW_NS,
        CacheCursor,
        packed_key,
        stat_cache_path,
    )

    if not on_local_filesystem(payload) or len({s.payload_hash_algo for s in snapshots}) != 1 \
            or any(s.has_ready_marker or s.partial_paths for s in snapshots):
        return None
    algo = snapshots[0].payload_hash_algo
    try:
        sides = [HeadRecords(repo.manifest_path(s.snapshot_id), s.payload_root_hash,
                             keep_others=True) for s in snapshots]
    except OSError:
        return None
    cache = CacheCursor(stat_cache_path(repo, worktree), algo)
    horizon = time.time_ns() - RACY_WINDOW_NS
    news: list[list[Entry]] = [[] for _ in sides]
    differ: list[list[bytes]] = [[] for _ in sides]  # their records of what changed
    links: list[tuple[Entry, os.stat_result]] = []
    found = ScanResult()

    def compared(entry: Entry, st: os.stat_result, saved: list[bytes | None],
                 record: bytes | None = None) -> None:
        """Note where *entry* (*record*: its record) is not recorded as each snapshot
        (*saved*: its records)."""
        if record is None:
            record = record_bytes(*entry)
        differs = False
        for i, theirs in enumerate(saved):
            if theirs != record:
                differs = True
                news[i].append(entry)
                if theirs is not None:
                    differ[i].append(theirs)
        if keep is not None and (differs or entry.kind == "dir"):
            keep(entry, st)

    # Per file (most of them unchanged, and this is most of what status costs): its walk
    # key is made once, the cache and each manifest are stepped by it, and its record is
    # made once and compared; an Entry only for a file that differs.
    by_key = cache.by_key
    pack = packed_key
    one = sides[0] if len(sides) == 1 else None
    try:
        for e in iter_scan(payload, found, ignore=IgnoreRules.load(payload),
                           walk_order=True, hardlinks=False):
            kind, rel, st = e
            if kind == "file":
                want = rel.encode("utf-8", "surrogateescape") + b":"
                row = cache.row_at(want) if by_key else cache.row(rel)
                if row is not None and row[:KEY_SIZE] == pack(st):
                    digest = row[KEY_SIZE:].decode("ascii")
                elif not hash_unknown:
                    digest = UNKNOWN
                else:
                    digest = hash_file(os.path.join(payload, rel), algo, stats)
                    if max(st.st_mtime_ns, st.st_ctime_ns) < horizon:
                        cache.set(rel, pack(st) + digest.encode("ascii"))
                    elif row is not None:
                        cache.drop(rel)
                mode = st.st_mode & 0o7777
                record = record_bytes("file", rel, mode, st.st_size, digest)
                if one is not None:
                    theirs = one.match(want, record)
                    if theirs == record and keep is None:
                        continue  # recorded alike: nothing to note
                    saved = [theirs]
                else:
                    saved = [side.match(want, record) for side in sides]
                compared(Entry("file", rel, mode, st.st_size, digest), st, saved, record)
                continue
            (entry,) = entries_of(payload, [e], algo, stats)
            if kind != "dir":
                links.append((entry, st))  # symlinks: the manifests' last records
                continue
            compared(entry, st, [side.dirs.pop(rel, None) for side in sides])
        trusted = all(side.trusted() for side in sides)
    except BaseException:
        cache.close()
        raise
    if not trusted:
        cache.close()
        return None
    cache.save()
    for entry, st in links:
        compared(entry, st, [side.symlinks.pop(entry.relpath, None) for side in sides])
    out = []
    for i, side in enumerate(sides):
        old = list(parse_manifest(b"\n".join([*differ[i], *side.passed, *side.dirs.values(),
                                              *side.symlinks.values()])))
        out.append((old, news[i]))
    return WalkedAgainst(out, found.ignored, [side.count for side in sides])
