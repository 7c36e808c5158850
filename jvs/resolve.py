"""The one snapshot-reference resolver (SPEC §2).

Every command that takes a snapshot reference (restore, fork, ``worktree create --from``,
diff, verify, the view's lookups) resolves it here, in this order:

1. ``HEAD`` (the current worktree's head) and ``latest`` (its newest snapshot; outside a
   worktree, the repository's newest);
2. an exact snapshot ID;
3. an exact tag (the newest snapshot carrying it);
4. a unique prefix of a snapshot ID or of its short form (the 8-hex suffix), at least
   ``MIN_ID_PREFIX`` characters;
5. an exact note (the newest snapshot with it);
6. a unique note prefix of at least ``MIN_NOTE_PREFIX`` characters (several snapshots
   sharing one identical note count as one: the newest wins, as for an exact note).

Any of them may be followed by git's ancestry suffixes: ``~N`` (N parents back), ``~``
and ``^`` (one parent back), combined as in ``exp1^^`` or ``baseline~2^``. Tags and IDs
cannot hold ``~`` or ``^``; a note can, so a reference whose base names nothing is tried
whole as a note before it is reported missing.

A step that matches several different snapshots is an error listing them (E_AMBIGUOUS);
nothing matching is E_NOT_FOUND with "did you mean" hints from tags and notes, or, for the
ID of a snapshot gc collected, with when and by which plan it went. ``HEAD~N`` walks
through collected snapshots (their tombstones keep the parent link), so N counts the
lineage as it was; landing on a collected one is E_NOT_FOUND naming it.
"""

from __future__ import annotations

import difflib
import re

from jvs.catalog import load_descriptors
from jvs.descriptor import Descriptor, read_descriptor
from jvs.errors import JvsError
from jvs.ids import is_snapshot_id, short_id
from jvs.repo import Repo

# A prefix shorter than this is never taken for an ID (git's rule too): "cafe" or "add"
# are more likely the start of a note than a snapshot the user half-remembers.
MIN_ID_PREFIX = 4
# A note prefix shorter than this never resolves: "e" or "ex" would pick whichever snapshot
# happens to be the only one whose note starts so, and change meaning with the next one.
MIN_NOTE_PREFIX = 3
HEAD = "HEAD"
LATEST = "latest"
# ``REF~N``, ``REF~`` and ``REF^``, any number of them, at the end of a reference.
_ANCESTRY_RE = re.compile(r"(?:~\d*|\^)+\Z")
_STEP_RE = re.compile(r"~(\d*)|\^")
_ID_PREFIX_RE = re.compile(r"[0-9a-f-]+")
_MAX_LISTED = 10
# "Did you mean" compares the reference with every tag but only the notes of the newest
# snapshots: difflib over 20,000 notes took 0.4 s, and a note meant is rarely that old.
_MAX_HINT_WORDS = 2000
# HEAD~N reads N descriptor files; further back, one listing of the catalog is cheaper.
_MAX_FILE_WALK = 32


def resolve(repo: Repo, ref: str, worktree: str | None = None) -> Descriptor:
    """The snapshot *ref* names. The descriptor is read without verifying its checksum;
    a command that acts on the snapshot verifies it (``read_descriptor(verify=True)``)."""
    ref = ref.strip()
    if not ref:
        raise JvsError("E_NOT_FOUND", "empty snapshot reference")
    base, back = split_ancestry(ref)
    if not back and base == ref:
        return _resolve_base(repo, ref, worktree)
    try:
        start = _resolve_base(repo, base, worktree)
    except JvsError as exc:
        if exc.code != "E_NOT_FOUND":
            raise
        try:
            return _resolve_base(repo, ref, worktree)  # a note that holds "~" or "^"
        except JvsError:
            raise exc from None
    return walk_back(repo, start, back, ref)


def split_ancestry(ref: str) -> tuple[str, int]:
    """(base, how many parents back) of *ref*: ``exp1~2^`` is ("exp1", 3); a reference
    without an ancestry suffix is (ref, 0)."""
    suffix = _ANCESTRY_RE.search(ref)
    if suffix is None or suffix.start() == 0:
        return ref, 0
    back = sum(int(m.group(1) or 1) if m.group(0).startswith("~") else 1
               for m in _STEP_RE.finditer(suffix.group(0)))
    return ref[:suffix.start()], back


def _resolve_base(repo: Repo, ref: str, worktree: str | None) -> Descriptor:
    if ref == HEAD:
        return resolve_head(repo, worktree)
    if ref == LATEST:
        return resolve_latest(repo, worktree)
    if is_snapshot_id(ref) and repo.descriptor_path(ref).exists():
        return read_descriptor(repo, ref, verify=False)
    try:
        return confirmed(repo, resolve_among(load_descriptors(repo), ref),
                         lambda snapshots: resolve_among(snapshots, ref))
    except JvsError as exc:
        # Only when nothing published matches: is it a snapshot gc collected?
        stone = _collected_match(repo, ref) if exc.code == "E_NOT_FOUND" else None
        if stone is None:
            raise
        raise collected_error(stone.snapshot_id, stone) from None


def resolve_latest(repo: Repo, worktree: str | None) -> Descriptor:
    """``latest``: the newest snapshot of *worktree* (its ``latest_snapshot_id``, which a
    restore does not move); outside a worktree, the newest snapshot that is not a rescue."""
    if worktree is None:
        snapshots = [d for d in load_descriptors(repo) if not d.is_rescue]
        if not snapshots:
            raise JvsError("E_NOT_FOUND", "the repository has no snapshots yet",
                           hint="take one with 'jvs snapshot'")
        return snapshots[-1]
    from jvs.worktree import load_worktree_config

    sid = load_worktree_config(repo, worktree).latest_snapshot_id
    if sid is None:
        raise JvsError("E_NOT_FOUND", f"worktree {worktree!r} has no snapshots yet",
                       hint="take one with 'jvs snapshot'")
    return read_descriptor(repo, sid, verify=False)


def check_new_tag(snapshots: list[Descriptor], tag: str) -> None:
    """Refuse (E_USAGE) a new *tag* that reads as a reference to an existing snapshot:
    its ID, its short form or an ID prefix of at least ``MIN_ID_PREFIX`` characters.
    Tags are looked up before ID prefixes, so such a tag would silently take that
    reference over (a script's ``jvs restore fa855057`` would land elsewhere)."""
    if len(tag) < MIN_ID_PREFIX or not _ID_PREFIX_RE.fullmatch(tag):
        return
    shadowed = [d for d in snapshots
                if d.snapshot_id.startswith(tag) or short_id(d.snapshot_id).startswith(tag)]
    if shadowed:
        what = describe(shadowed[-1])
        more = f" (and {len(shadowed) - 1} more)" if len(shadowed) > 1 else ""
        raise JvsError("E_USAGE",
                       f"tag {tag!r} would shadow snapshot {what}{more}: a tag is looked up "
                       "before an ID prefix", hint="choose a tag that is not hex digits")


def check_new_tags(repo: Repo, tags: tuple[str, ...] | list[str]) -> None:
    """``check_new_tag`` for each of *tags*; the snapshot list is read only when one of
    them could read as an ID prefix (hex digits and dashes), which most tags cannot."""
    suspects = [t for t in tags
                if len(t) >= MIN_ID_PREFIX and _ID_PREFIX_RE.fullmatch(t) is not None]
    if suspects:
        snapshots = load_descriptors(repo)
        for tag in suspects:
            check_new_tag(snapshots, tag)


def resolve_among(snapshots: list[Descriptor], ref: str) -> Descriptor:
    """Steps 2-6 of the resolver over *snapshots* (oldest first): the view resolves over
    the snapshots it serves, every command over every published one."""
    ref = ref.strip()
    if not ref:
        raise JvsError("E_NOT_FOUND", "empty snapshot reference")
    exact = [d for d in snapshots if d.snapshot_id == ref] if is_snapshot_id(ref) else []
    if exact:
        return exact[0]
    tagged = [d for d in snapshots if ref in d.tags]
    if tagged:
        return tagged[-1]
    if len(ref) >= MIN_ID_PREFIX and _ID_PREFIX_RE.fullmatch(ref):
        by_id = [d for d in snapshots
                 if d.snapshot_id.startswith(ref) or short_id(d.snapshot_id).startswith(ref)]
        if len(by_id) == 1:
            return by_id[0]
        if by_id:
            raise _ambiguous(ref, "snapshot IDs", by_id)
    noted = [d for d in snapshots if d.note == ref or d.note.strip() == ref]
    if noted:
        return noted[-1]
    prefixed = [d for d in snapshots if d.note.startswith(ref)] \
        if len(ref) >= MIN_NOTE_PREFIX else []
    if prefixed:
        notes = {d.note for d in prefixed}
        if len(notes) == 1:
            return prefixed[-1]
        newest_per_note = list({d.note: d for d in prefixed}.values())
        raise _ambiguous(ref, "notes", newest_per_note)
    raise _not_found(ref, snapshots)


def latest_with_tag(repo: Repo, tag: str) -> Descriptor:
    """``--latest-tag T``: the tag rule made explicit (the newest snapshot carrying T)."""
    def newest(snapshots: list[Descriptor]) -> Descriptor:
        tagged = [d for d in snapshots if tag in d.tags]
        if not tagged:
            raise _not_found(tag, snapshots, what="tag")
        return tagged[-1]

    return confirmed(repo, newest(load_descriptors(repo)), newest)


def confirmed(repo: Repo, found: Descriptor, again) -> Descriptor:
    """*found* (picked from the index) if its descriptor file says the same; else the
    index is stale or forged (SPEC §1: caches are never authoritative) and *again* picks
    from the descriptor files themselves."""
    try:
        real = read_descriptor(repo, found.snapshot_id, verify=False)
    except JvsError:
        real = None
    if real is not None and real.to_json() == found.to_json():
        return found
    from jvs.descriptor import list_snapshot_ids

    snapshots = []
    for sid in list_snapshot_ids(repo):
        try:
            snapshots.append(read_descriptor(repo, sid, verify=False))
        except JvsError:
            continue
    return again(snapshots)


def resolve_head(repo: Repo, worktree: str | None, back: int = 0) -> Descriptor:
    """``HEAD~back`` of *worktree*: its head snapshot, then *back* parents further."""
    from jvs.worktree import load_worktree_config

    name = "HEAD" if back == 0 else f"HEAD~{back}"
    if worktree is None:
        raise JvsError("E_NOT_FOUND", f"{name} needs a worktree",
                       hint="run the command inside a worktree, or use -C")
    wt = load_worktree_config(repo, worktree)
    sid = wt.head_snapshot_id
    if sid is None:
        raise JvsError("E_NOT_FOUND", f"worktree {worktree!r} has no snapshots yet",
                       hint="take one with 'jvs snapshot'")
    return walk_back(repo, read_descriptor(repo, sid, verify=False), back, name)


def walk_back(repo: Repo, start: Descriptor, back: int, name: str) -> Descriptor:
    """The snapshot *back* parents before *start* (*name*: the reference, for errors).
    Walks through collected snapshots (their tombstones keep the parent link); landing
    on one is E_NOT_FOUND naming it."""
    by_id = {d.snapshot_id: d for d in load_descriptors(repo)} \
        if back > _MAX_FILE_WALK else None
    tombstones = None  # read once, the first time the walk meets a collected snapshot
    current, parent = start, start.parent_id  # *current* is a Descriptor or a Tombstone
    for step in range(back):
        if parent is None:
            raise JvsError("E_NOT_FOUND",
                           f"{name}: the lineage of {short_id(start.snapshot_id)} "
                           f"({start.worktree_name!r}) is only {step} snapshot(s) deep",
                           hint="see 'jvs history'")
        child = current.snapshot_id
        try:
            if by_id is None:
                current = read_descriptor(repo, parent, verify=False)
            elif parent in by_id:
                current = by_id[parent]
            else:
                raise JvsError("E_NOT_FOUND", f"no snapshot {parent}")
        except JvsError as exc:
            if tombstones is None:
                from jvs.gc import load_tombstones

                tombstones = load_tombstones(repo)
            if parent not in tombstones:
                raise JvsError("E_LINEAGE_BROKEN",
                               f"{name}: parent {parent} of {child} is missing "
                               f"({exc.message})", hint="run 'jvs doctor --strict'") from None
            current = tombstones[parent]
        parent = current.parent_id
    if not isinstance(current, Descriptor):
        raise collected_error(f"{name} ({current.snapshot_id})", current)
    return current


def describe(desc: Descriptor) -> str:
    """One line naming a snapshot for candidate lists: short ID, date, tags, note."""
    tags = f" [{', '.join(desc.tags)}]" if desc.tags else ""
    note = desc.note.splitlines()[0] if desc.note else ""
    kind = " (rescue)" if desc.is_rescue else ""
    return f"{short_id(desc.snapshot_id)}  {desc.created_at[:19].replace('T', ' ')}  " \
           f"{note}{tags}{kind}"


def _ambiguous(ref: str, what: str, candidates: list[Descriptor]) -> JvsError:
    newest = sorted(candidates, key=lambda d: d.snapshot_id, reverse=True)
    lines = [describe(d) for d in newest[:_MAX_LISTED]]
    if len(newest) > _MAX_LISTED:
        lines.append(f"... and {len(newest) - _MAX_LISTED} more")
    return JvsError("E_AMBIGUOUS",
                    f"{ref!r} matches {len(candidates)} {what}:\n  " + "\n  ".join(lines),
                    hint="give more of the ID, the full note, or a tag")


def collected_error(ref: str, stone) -> JvsError:
    """E_NOT_FOUND for a snapshot gc collected: when, and by which plan."""
    when = stone.collected_at[:19].replace("T", " ") + " UTC" if stone.collected_at \
        else "an earlier run"
    by = f"gc plan {stone.plan_id}" if stone.plan_id else "gc"
    note = f" ({stone.note.splitlines()[0]!r})" if stone.note else ""
    return JvsError("E_NOT_FOUND",
                    f"snapshot {ref}{note} was collected by {by} on {when}; its payload is "
                    "gone", hint="see 'jvs history --collected'; the newest kept snapshots "
                    "are in 'jvs history'")


def _collected_match(repo: Repo, ref: str):
    """The tombstone *ref* names by ID or unique ID prefix, if gc collected it."""
    from jvs.gc import load_tombstones

    stones = load_tombstones(repo)
    if ref in stones:
        return stones[ref]
    if len(ref) >= MIN_ID_PREFIX and _ID_PREFIX_RE.fullmatch(ref):
        hits = [t for sid, t in stones.items()
                if sid.startswith(ref) or short_id(sid).startswith(ref)]
        if len(hits) == 1:
            return hits[0]
    return None


def _not_found(ref: str, snapshots: list[Descriptor], what: str = "snapshot") -> JvsError:
    words: dict[str, None] = {}
    for d in reversed(snapshots):
        for t in d.tags:
            words.setdefault(t, None)
    notes = 0
    for d in reversed(snapshots):
        if d.note and notes < _MAX_HINT_WORDS:
            notes += 1
            words.setdefault(d.note.splitlines()[0], None)
    close = difflib.get_close_matches(ref, list(words), n=3, cutoff=0.6)
    hint = ("did you mean " + ", ".join(repr(c) for c in close) + "?") if close \
        else "see 'jvs history --all' for snapshots, tags and notes"
    message = f"no snapshot carries the tag {ref!r}" if what == "tag" \
        else f"no snapshot matches {ref!r}"
    return JvsError("E_NOT_FOUND", message, hint=hint)
