"""``jvs diff [A [B]]``: what differs between two snapshots, or a snapshot and the
worktree (B missing), or the head and the worktree (both missing).

Snapshot sides come from their manifests, the worktree side from the stat cache (only
files whose stat changed are read). Mode-only changes count. When either snapshot is
partial, both sides are compared only within its paths (elsewhere a partial snapshot
says nothing).
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jvs.changes import (
    Changes,
    compare,
    differing,
    snapshot_manifest,
    under,
    visible,
    without_go_marker,
    worktree_differing,
    worktree_entries,
)
from jvs.descriptor import Descriptor, read_descriptor
from jvs.errors import JvsError
from jvs.ignore import IgnoreRules
from jvs.integrity import Entry, HashStats, parse_manifest
from jvs.repo import Repo
from jvs.worktree import load_worktree_config, worktree_payload

WORKTREE = "worktree"


@dataclass(frozen=True)
class DiffSummary:
    added: int
    removed: int
    modified: int
    mode: int
    type: int
    size_delta: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Diff:
    old: Descriptor | None  # None: an empty worktree with no snapshot yet
    new: Descriptor | None  # None: the worktree as it is now
    worktree: str | None
    changes: Changes
    stats: HashStats
    paths: tuple[str, ...] = ()  # only changes at or below these (worktree-relative)

    def summary(self) -> DiffSummary:
        c = self.changes
        return DiffSummary(c.count("added"), c.count("removed"), c.count("modified"),
                           c.count("mode"), c.count("type"),
                           sum(x.size_delta for x in c.items))

    def to_json(self) -> dict:
        return {
            "from": self.old.snapshot_id if self.old else None,
            "to": self.new.snapshot_id if self.new else WORKTREE,
            "worktree": self.worktree,
            "paths": list(self.paths),
            "changes": [c.to_json() for c in self.changes.items],
            "summary": self.summary().to_json(),
            "stats": {"files_hashed": self.stats.files_hashed,
                      "bytes_hashed": self.stats.bytes_hashed},
        }


def diff(repo: Repo, worktree: str | None, a: str | None = None,
         b: str | None = None, paths: tuple[str, ...] = ()) -> Diff:
    """Changes from *a* (default: the worktree's head) to *b* (default: the worktree);
    with *paths* (worktree-relative), only those at or below them (and on the worktree
    side only files there are read)."""
    from jvs.resolve import resolve

    old = _verified(repo, resolve(repo, a, worktree)) if a is not None else None
    new = _verified(repo, resolve(repo, b, worktree)) if b is not None else None
    if a is None:
        if worktree is None:
            raise JvsError("E_NOT_FOUND", "diff without a snapshot needs a worktree",
                           hint="run it inside a worktree, or give 'jvs diff A B'")
        head = load_worktree_config(repo, worktree).head_snapshot_id
        old = _verified(repo, read_descriptor(repo, head)) if head else None
    if new is None and worktree is None:
        raise JvsError("E_NOT_FOUND", "comparing with the worktree needs a worktree",
                       hint="run it inside a worktree, or give two snapshots")
    within = tuple(sorted({p for d in (old, new) if d is not None for p in d.partial_paths}))
    stats = HashStats()
    # Only the records that differ between the sides are parsed (see changes.differing),
    # found by streams that hold no record per entry where the manifests allow it.
    if new is not None:
        found = _snapshots_differing(repo, old, new)
        if found is None:
            old_manifest = snapshot_manifest(repo, old) if old else b""
            found = differing(old_manifest, snapshot_manifest(repo, new))
        old_entries, new_entries = found
    else:
        algo = old.payload_hash_algo if old else repo.config().payload_hash_algo
        payload = worktree_payload(repo, worktree)
        found = worktree_differing(repo, worktree, payload, old, stats) \
            if old is not None and not within and not paths else None
        if found is None:
            stats = HashStats()
            old_manifest = snapshot_manifest(repo, old) if old else b""
            found = differing(old_manifest, without_go_marker(
                worktree_entries(repo, worktree, payload, algo, stats,
                                 within or tuple(paths)), old))
        old_entries, new_entries = found
        # The worktree side leaves out ignored paths; so does the snapshot it is compared with.
        old_entries = visible(old_entries, IgnoreRules.load(payload))
    if within:
        old_entries, new_entries = _within(old_entries, within), _within(new_entries, within)
    changes = under(compare(old_entries, new_entries), tuple(paths))
    return Diff(old, new, worktree, changes, stats, tuple(paths))


def _snapshots_differing(repo: Repo, old: Descriptor | None,
                         new: Descriptor) -> tuple[list[Entry], list[Entry]] | None:
    """``differing`` of two snapshots' stored manifests, merged as streams; None when one
    is missing or untrusted (the caller rebuilds it the usual way)."""
    from jvs.records import differing_records

    if old is None:
        return None
    found = differing_records(
        (repo.manifest_path(old.snapshot_id), old.payload_root_hash),
        (repo.manifest_path(new.snapshot_id), new.payload_root_hash))
    if found is None:
        return None
    gone, added = found
    return (list(parse_manifest(b"\n".join(gone))), list(parse_manifest(b"\n".join(added))))


def _verified(repo: Repo, desc: Descriptor) -> Descriptor:
    return read_descriptor(repo, desc.snapshot_id, verify=True)


def _within(entries: list[Entry], paths: tuple[str, ...]) -> list[Entry]:
    return [e for e in entries
            if any(e.relpath == p or e.relpath.startswith(p + "/") or p.startswith(e.relpath + "/")
                   for p in paths)]


# A side larger than this is not diffed as text (difflib is quadratic in the worst case
# and a multi-GB log has no useful unified diff); it is reported with its sizes.
MAX_TEXT_DIFF_BYTES = 8 * 1024 * 1024
_BINARY_SNIFF = 8000  # git's rule: a NUL byte in the first 8,000 bytes means binary


@dataclass(frozen=True)
class Patch:
    """``jvs diff -p``: a diff and its unified text."""

    diff: Diff
    text: str

    def to_json(self) -> dict:
        return {**self.diff.to_json(), "patch": self.text}


def patched(repo: Repo, result: Diff, *, context: int = 3) -> Patch:
    """*result* with its whole unified diff (:func:`patch`)."""
    return Patch(result, "".join(patch(repo, result, context=context)))


def patch(repo: Repo, result: Diff, *, context: int = 3) -> Iterator[str]:
    """The unified diff of *result*, git-style, one line at a time (with its newline):
    text files line by line, symlinks as their target, binary files and files over
    ``MAX_TEXT_DIFF_BYTES`` as one line saying they differ, mode changes as
    ``old mode``/``new mode``. Snapshot sides are read from their payloads, the worktree
    side from the worktree."""
    old_root = repo.payload_dir(result.old.snapshot_id) if result.old else None
    new_root = repo.payload_dir(result.new.snapshot_id) if result.new is not None \
        else worktree_payload(repo, result.worktree)
    for change in result.changes.items:
        if change.kind == "dir" and change.change in ("added", "removed", "mode"):
            if change.change != "mode":
                continue  # its files, if any, have their own entries
        rel = change.relpath
        a = _side(old_root, rel) if change.change != "added" else None
        b = _side(new_root, rel) if change.change != "removed" else None
        yield f"diff --jvs a/{rel} b/{rel}\n"
        if a is None:
            yield f"new file mode {b.mode:06o}\n"
        elif b is None:
            yield f"deleted file mode {a.mode:06o}\n"
        elif a.mode != b.mode:
            yield f"old mode {a.mode:06o}\n"
            yield f"new mode {b.mode:06o}\n"
        if change.change == "mode":
            continue
        old_data = a.data if a else b""
        new_data = b.data if b else b""
        if (a and a.data is None) or (b and b.data is None):
            sizes = f"{a.size if a else 0} -> {b.size if b else 0} bytes"
            yield f"Files a/{rel} and b/{rel} differ ({sizes}; too large for a text diff)\n"
            continue
        if _binary(old_data) or _binary(new_data):
            yield (f"Binary files {'a/' + rel if a else '/dev/null'} and "
                   f"{'b/' + rel if b else '/dev/null'} differ\n")
            continue
        old_lines = old_data.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        new_lines = new_data.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        lines = difflib.unified_diff(old_lines, new_lines,
                                     "a/" + rel if a else "/dev/null",
                                     "b/" + rel if b else "/dev/null", n=context)
        for line in lines:
            if line.endswith("\n"):
                yield line
            else:
                yield line + "\n\\ No newline at end of file\n"


@dataclass(frozen=True)
class _Side:
    mode: int
    size: int
    data: bytes | None  # None: too large to diff as text


def _side(root: Path, rel: str) -> _Side | None:
    path = root / rel
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return _Side(st.st_mode, st.st_size, os.fsencode(os.readlink(path)))
    if stat.S_ISDIR(st.st_mode):
        return _Side(st.st_mode, 0, b"")
    if st.st_size > MAX_TEXT_DIFF_BYTES:
        return _Side(st.st_mode, st.st_size, None)
    with open(path, "rb") as f:
        return _Side(st.st_mode, st.st_size, f.read(MAX_TEXT_DIFF_BYTES + 1))


def _binary(data: bytes) -> bool:
    return b"\0" in data[:_BINARY_SNIFF]
