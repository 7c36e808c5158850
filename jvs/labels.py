"""Labels of a published snapshot: ``jvs tag add|remove|list`` and ``jvs note``.

Tags and the note are the only fields a published descriptor may change (SPEC §3 seals
every field with ``descriptor_checksum``, tags and note included, so a relabel writes a new
checksum). A relabel, under the repository lock held exclusively (it serialises with
``gc run``, which decides on tags):

1. resolve the reference and read the descriptor, verifying its checksum (a tampered
   descriptor is refused, never re-sealed);
2. replace the descriptor atomically (``descriptor.replace_descriptor``: temp, fsync,
   rename over, fsync the directory) — the commit point;
3. update its index row (``index.record_rewrite``);
4. append the audit record (``tag``, ``untag`` or ``note``, with the old and new values).

A crash before 2 changes nothing; after 2 the new labels are in force and the index
follows on the next read even if 3 did not happen (the index row then differs from the
file and ``resolve`` re-reads the file; ``doctor`` reports it, ``rebuild_index`` mends
it). The payload, its manifest and the snapshot's ID are untouched, so verify, restore
and the view (which re-reads a descriptor whose file identity changed) follow at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jvs.descriptor import Descriptor, read_descriptor, relabeled, replace_descriptor
from jvs.errors import JvsError
from jvs.names import validate_tag
from jvs.repo import Repo


@dataclass(frozen=True)
class Relabel:
    """What a relabel did: the descriptor before and after (equal when nothing changed)."""

    before: Descriptor
    after: Descriptor

    @property
    def changed(self) -> bool:
        return self.before.descriptor_checksum != self.after.descriptor_checksum

    @property
    def added_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.after.tags if t not in self.before.tags)

    @property
    def removed_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.before.tags if t not in self.after.tags)

    def to_json(self) -> dict:
        return {
            "snapshot_id": self.after.snapshot_id,
            "changed": self.changed,
            "tags": list(self.after.tags),
            "added_tags": list(self.added_tags),
            "removed_tags": list(self.removed_tags),
            "note": self.after.note,
            "previous_note": self.before.note,
            "descriptor_checksum": self.after.descriptor_checksum,
        }


@dataclass(frozen=True)
class TagInfo:
    """One tag of the repository: the snapshot it names (the newest carrying it) and every
    snapshot that carries it, oldest first."""

    tag: str
    snapshot_id: str
    snapshot_ids: tuple[str, ...]

    def to_json(self) -> dict:
        return {"tag": self.tag, "snapshot_id": self.snapshot_id,
                "count": len(self.snapshot_ids), "snapshot_ids": list(self.snapshot_ids)}


@dataclass(frozen=True)
class TagList(Sequence[TagInfo]):
    """``jvs tag list``: every tag of the repository, sorted by name."""

    tags: tuple[TagInfo, ...]

    def __len__(self) -> int:
        return len(self.tags)

    def __getitem__(self, i):
        return self.tags[i]

    def to_json(self) -> dict:
        return {"tags": [t.to_json() for t in self.tags]}


def add_tags(repo: Repo, ref: str, tags: list[str] | tuple[str, ...],
             worktree: str | None = None) -> Relabel:
    """Add *tags* to the snapshot *ref* names (tags it already carries are kept once)."""
    wanted = tuple(dict.fromkeys(validate_tag(t) for t in tags))
    if not wanted:
        raise JvsError("E_USAGE", "no tag given")

    def change(desc: Descriptor) -> Descriptor:
        from jvs.catalog import load_descriptors
        from jvs.resolve import check_new_tag

        new = [t for t in wanted if t not in desc.tags]
        if new:
            snapshots = load_descriptors(repo)
            for tag in new:
                check_new_tag(snapshots, tag)
        return relabeled(desc, tags=desc.tags + tuple(new)) if new else desc

    return _relabel(repo, ref, worktree, "tag", change)


def remove_tags(repo: Repo, ref: str, tags: list[str] | tuple[str, ...],
                worktree: str | None = None) -> Relabel:
    """Remove *tags* from the snapshot *ref* names; E_NOT_FOUND (and nothing removed) if
    it does not carry one of them."""
    unwanted = tuple(dict.fromkeys(tags))
    if not unwanted:
        raise JvsError("E_USAGE", "no tag given")

    def change(desc: Descriptor) -> Descriptor:
        from jvs.ids import short_id

        missing = [t for t in unwanted if t not in desc.tags]
        if missing:
            carried = ", ".join(desc.tags) if desc.tags else "none"
            raise JvsError("E_NOT_FOUND",
                           f"snapshot {short_id(desc.snapshot_id)} has no tag "
                           f"{', '.join(repr(t) for t in missing)} (its tags: {carried})",
                           hint="'jvs tag list' shows which snapshot carries each tag")
        return relabeled(desc, tags=tuple(t for t in desc.tags if t not in unwanted))

    return _relabel(repo, ref, worktree, "untag", change)


def set_note(repo: Repo, ref: str, note: str, worktree: str | None = None) -> Relabel:
    """Replace the note of the snapshot *ref* names (an empty *note* removes it); the
    note is checked and stored as a snapshot's is (trailing newlines dropped)."""
    from jvs.names import validate_note

    note = validate_note(note)

    def change(desc: Descriptor) -> Descriptor:
        return relabeled(desc, note=note) if note != desc.note else desc

    return _relabel(repo, ref, worktree, "note", change)


def list_tags(repo: Repo) -> TagList:
    """Every tag of the repository, sorted by name."""
    from jvs.catalog import load_descriptors

    carriers: dict[str, list[str]] = {}
    for desc in load_descriptors(repo):
        for tag in desc.tags:
            carriers.setdefault(tag, []).append(desc.snapshot_id)
    return TagList(tuple(TagInfo(tag, ids[-1], tuple(ids))
                         for tag, ids in sorted(carriers.items())))


def _relabel(repo: Repo, ref: str, worktree: str | None, operation: str,
             change) -> Relabel:
    from jvs.audit import append_audit
    from jvs.crashpoints import crashpoint
    from jvs.index import record_rewrite
    from jvs.lock import repo_lock
    from jvs.resolve import resolve

    with repo_lock(repo, operation):
        sid = resolve(repo, ref, worktree).snapshot_id
        before = read_descriptor(repo, sid, verify=True)
        after = change(before)
        if after is before:
            return Relabel(before, before)
        crashpoint(f"{operation}:before_replace")
        data = replace_descriptor(repo, after)
        crashpoint(f"{operation}:after_replace")
        record_rewrite(repo, sid, data)
        relabel = Relabel(before, after)
        details: dict = {"descriptor_checksum": after.descriptor_checksum}
        if operation == "note":
            details["previous_note"] = before.note
        else:
            details["tags"] = list(after.tags)
        append_audit(repo, operation, sid,
                     after.note if operation == "note" else
                     ", ".join(relabel.added_tags or relabel.removed_tags), **details)
        return relabel
