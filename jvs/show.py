"""``jvs show REF``: one snapshot — its descriptor, what changed against its parent, and
its size (from the manifest: no payload file is read when the manifest is trusted)."""

from __future__ import annotations

from dataclasses import dataclass

from jvs.changes import Changes, snapshot_entries
from jvs.descriptor import Descriptor, read_descriptor
from jvs.errors import JvsError
from jvs.repo import Repo


@dataclass(frozen=True)
class Contents:
    """What a snapshot's payload holds (its manifest's entries)."""

    files: int
    dirs: int
    symlinks: int
    bytes: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Shown:
    descriptor: Descriptor
    checksum_valid: bool
    contents: Contents
    # "none" (a first snapshot), "published", "collected" (gc took it) or "missing"
    parent_state: str
    changes: Changes | None  # against the parent; None when the parent is not published
    heads_of: tuple[str, ...]  # worktrees whose head it is
    latest_of: tuple[str, ...]  # worktrees whose newest snapshot it is

    def to_json(self) -> dict:
        from jvs.diff import Diff
        from jvs.integrity import HashStats

        summary = None
        if self.changes is not None:
            summary = Diff(None, self.descriptor, None, self.changes, HashStats()) \
                .summary().to_json()
        return {
            "descriptor": self.descriptor.raw if self.descriptor.raw is not None
            else self.descriptor.to_json(),
            "checksum_valid": self.checksum_valid,
            "contents": self.contents.to_json(),
            "parent_state": self.parent_state,
            "changes": None if self.changes is None
            else [c.to_json() for c in self.changes.items],
            "summary": summary,
            "head_of": list(self.heads_of),
            "latest_of": list(self.latest_of),
        }


def show(repo: Repo, ref: str, worktree: str | None = None) -> Shown:
    """The snapshot *ref* names, described. A descriptor that fails its checksum is shown
    (``checksum_valid`` false) but its payload is not compared: E_DESCRIPTOR_CORRUPT is for
    commands that act on a snapshot, ``show`` only looks."""
    from jvs.resolve import resolve
    from jvs.worktree import list_worktree_names, load_worktree_config

    desc = read_descriptor(repo, resolve(repo, ref, worktree).snapshot_id, verify=False)
    valid = desc.checksum_valid()
    entries = snapshot_entries(repo, desc) if valid else []
    contents = Contents(sum(1 for e in entries if e.kind == "file"),
                        sum(1 for e in entries if e.kind == "dir"),
                        sum(1 for e in entries if e.kind == "symlink"),
                        sum(e.size for e in entries if e.kind == "file"))
    parent_state, changes = "none", None
    if desc.parent_id is not None:
        parent_state, changes = _against_parent(repo, desc, valid)
    heads, latests = [], []
    for name in list_worktree_names(repo):
        try:
            wt = load_worktree_config(repo, name)
        except JvsError:
            continue
        if wt.head_snapshot_id == desc.snapshot_id:
            heads.append(name)
        if wt.latest_snapshot_id == desc.snapshot_id:
            latests.append(name)
    return Shown(desc, valid, contents, parent_state, changes, tuple(heads), tuple(latests))


def _against_parent(repo: Repo, desc: Descriptor, valid: bool) -> tuple[str, Changes | None]:
    if repo.descriptor_path(desc.parent_id).exists():
        if not valid:
            return "published", None
        from jvs.diff import diff

        return "published", diff(repo, None, desc.parent_id, desc.snapshot_id).changes
    from jvs.gc import load_tombstones

    return ("collected" if desc.parent_id in load_tombstones(repo) else "missing"), None
