"""What the view serves: published snapshots, tags and worktree heads, refreshed cheaply.

A refresh lists ``descriptors/`` once (``jvs.descriptor.list_snapshot_ids``, the one
descriptor lister), reads only descriptors it has not seen, and re-checks a bounded slice
of the served ones, so a view over 20,000 snapshots stays fresh for the cost of one
``listdir`` and a few thousand ``stat`` calls. The server runs it in a worker thread: a slow
metadata engine (JuiceFS on a distant database) stalls only the request that needs the
catalog, never reads of snapshot contents.

What is served (SPEC §11):

- a snapshot whose descriptor parses, names itself and passes its checksum, and whose
  payload is a real directory. A descriptor that fails is remembered as bad with its
  file's identity (inode, size, mtime, ctime) so it is not re-read on every refresh, and
  is re-read once the file changes;
- a served descriptor is re-checked when its file changes (same identity test): on every
  lookup of its snapshot by name and, round-robin, on refreshes. One that no longer
  verifies stops being served, as does one whose payload went missing;
- a tag names the newest *served* snapshot carrying it: a tag only a bad or payload-less
  snapshot carries is not listed.

The published state is one immutable ``CatalogState`` swapped in by assignment, so the
event loop reads a consistent catalog while a worker thread builds the next one.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field

from jvs.descriptor import Descriptor, list_snapshot_ids, parse_descriptor
from jvs.errors import JvsError
from jvs.fsio import ensure_inside
from jvs.ids import parse_rfc3339
from jvs.repo import Repo
from jvs.resolve import resolve_among, split_ancestry
from jvs.worktree import list_worktree_names, load_worktree_config
from jvsfs.backing import SnapshotStore

# Served descriptors re-checked per refresh: all of them up to this many, else a rotating
# slice (a changed descriptor among 20,000 is noticed within ~3 s of browsing; a lookup of
# the snapshot by name checks it at once).
RECHECK_PER_REFRESH = 4096
LATEST = "latest"
_HEAD = re.compile(r"HEAD(?:~\d+)?")

FileIdentity = tuple[int, int, int, int]


def file_identity(st: os.stat_result) -> FileIdentity:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class CatalogState:
    """One consistent picture of what the view serves."""

    snapshots: dict[str, Descriptor] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)            # tag -> newest served id
    worktree_heads: dict[str, str] = field(default_factory=dict)  # worktree -> head id
    generation: int = 0

    @staticmethod
    def build(snapshots: dict[str, Descriptor], heads: dict[str, str],
              generation: int) -> CatalogState:
        tags: dict[str, str] = {}
        for sid in sorted(snapshots):  # IDs sort by creation time: newest wins
            for tag in snapshots[sid].tags:
                tags[tag] = sid
        return CatalogState(snapshots, tags, heads, generation)


class ViewCatalog:
    """The snapshots, tags and worktree heads of *repo* as the view shows them now.

    ``refresh()`` is throttled to one directory listing per *min_interval* seconds, so a
    burst of lookups in ``@snapshots`` costs one ``listdir``; it may run in any thread
    (one at a time). Everything else reads ``state`` and is cheap."""

    def __init__(self, repo: Repo, min_interval: float = 0.5) -> None:
        self.repo = repo
        self.min_interval = min_interval
        # The one path the view follows symlinks in, once, at mount: refused if it leads
        # out of the repository (SPEC §1); everything under it is reached without.
        self.store = SnapshotStore(os.fspath(ensure_inside(repo.root, repo.snapshots_dir)))
        self.state = CatalogState()
        self._identity: dict[str, FileIdentity] = {}  # served id -> its descriptor file
        self._bad: dict[str, FileIdentity] = {}  # id -> its file, not worth re-reading
        self._no_payload: dict[str, tuple[FileIdentity, Descriptor]] = {}
        self._resolved: tuple[int, dict[str, str | None]] = (-1, {})
        self._created_ns: dict[str, int] = {}
        self._recheck_from = 0
        self._last_refresh = -1e9
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    @property
    def snapshots(self) -> dict[str, Descriptor]:
        return self.state.snapshots

    @property
    def tags(self) -> dict[str, str]:
        return self.state.tags

    @property
    def worktree_heads(self) -> dict[str, str]:
        return self.state.worktree_heads

    @property
    def generation(self) -> int:
        return self.state.generation

    def sorted_ids(self) -> list[str]:
        return sorted(self.state.snapshots)

    def served(self, sid: str) -> Descriptor | None:
        return self.state.snapshots.get(sid)

    def created_ns(self, sid: str) -> int:
        """The creation time of *sid* in ns (its descriptor's ``created_at``)."""
        ns = self._created_ns.get(sid)
        if ns is None:
            desc = self.state.snapshots.get(sid)
            try:
                ns = int(parse_rfc3339(desc.created_at) * 1e9) if desc else 0
            except ValueError:
                ns = 0
            self._created_ns[sid] = ns
        return ns

    # ------------------------------------------------------------------ references

    def resolve(self, ref: str) -> str | None:
        """The served snapshot *ref* names, or None: the resolver of SPEC §2 (exact ID,
        tag, ID prefix, note, note prefix) over the served snapshots, except ``latest``:
        the newest served snapshot unless a tag or a note is exactly ``latest`` (a note
        that only starts with "latest" never takes it over). Answers are kept per catalog
        generation; the first one may be slow (the server asks in a worker thread)."""
        generation, answers = self._resolved
        state = self.state
        if generation != state.generation:
            answers = {}
            self._resolved = (state.generation, answers)
        if ref in answers:
            return answers[ref]
        if len(answers) > 10_000:  # names nobody will ask again (a script probing)
            answers.clear()
        answers[ref] = sid = self._resolve(state, ref)
        return sid

    def resolved_already(self, ref: str) -> bool:
        generation, answers = self._resolved
        return generation == self.state.generation and ref in answers

    @staticmethod
    def _resolve(state: CatalogState, ref: str) -> str | None:
        if _HEAD.fullmatch(ref) or ref.startswith("HEAD^"):
            return None  # the view belongs to no worktree: @worktrees/<name> is its HEAD
        base, back = split_ancestry(ref)
        if base != ref:  # REF~N, REF^ (SPEC §2): parents among the served snapshots
            sid = ViewCatalog._resolve_base(state, base)
            if sid is None:
                return ViewCatalog._resolve_base(state, ref)  # a note holding "~" or "^"
            for _ in range(back):
                parent = state.snapshots[sid].parent_id
                if parent is None or parent not in state.snapshots:
                    return None
                sid = parent
            return sid
        return ViewCatalog._resolve_base(state, ref)

    @staticmethod
    def _resolve_base(state: CatalogState, ref: str) -> str | None:
        if ref in state.snapshots:
            return ref
        if ref in state.tags:
            return state.tags[ref]
        ordered = [state.snapshots[sid] for sid in sorted(state.snapshots)]
        if ref == LATEST:
            noted = [d for d in ordered if d.note == LATEST]
            if noted:
                return noted[-1].snapshot_id
            return ordered[-1].snapshot_id if ordered else None
        try:
            return resolve_among(ordered, ref).snapshot_id
        except JvsError:
            return None

    # ------------------------------------------------------------------ refreshing

    def due(self) -> bool:
        return time.monotonic() - self._last_refresh >= self.min_interval

    def refresh(self, *, force: bool = False) -> bool:
        """Bring the catalog up to date; True when anything changed."""
        with self._lock:
            if not force and not self.due():
                return False
            self._last_refresh = time.monotonic()
            state = self.state
            snapshots = self._refresh_snapshots(state.snapshots)
            heads = self._worktree_heads()
            if snapshots is None and heads == state.worktree_heads:
                return False
            self.state = CatalogState.build(
                state.snapshots if snapshots is None else snapshots, heads,
                state.generation + 1)
            return True

    def recheck(self, sid: str) -> bool:
        """Whether *sid* is still served after checking its descriptor file and payload
        now (two ``stat`` calls; a changed file is read and verified again)."""
        if not self._lock.acquire(blocking=False):
            # A refresh is running (in a worker thread, maybe waiting on slow metadata):
            # answer from the state as it is rather than stall the event loop.
            return sid in self.state.snapshots
        try:
            state = self.state
            if sid not in state.snapshots:
                return False
            desc = self._still_good(sid, state.snapshots[sid])
            if desc is state.snapshots[sid]:
                return True
            snapshots = dict(state.snapshots)
            if desc is None:
                del snapshots[sid]
            else:
                snapshots[sid] = desc
            self.state = CatalogState.build(snapshots, state.worktree_heads,
                                            state.generation + 1)
            return desc is not None
        finally:
            self._lock.release()

    def _refresh_snapshots(self, served: dict[str, Descriptor]) -> dict[str, Descriptor] | None:
        """The new served set, or None when it did not change."""
        present = list_snapshot_ids(self.repo)
        present_set = set(present)
        out = {sid: desc for sid, desc in served.items() if sid in present_set}
        changed = len(out) != len(served)
        for sid in [s for s in self._identity if s not in present_set]:
            del self._identity[sid]
            self._created_ns.pop(sid, None)
        for sid in [s for s in self._bad if s not in present_set]:
            del self._bad[sid]
        for sid in [s for s in self._no_payload if s not in present_set]:
            del self._no_payload[sid]
        for sid in present:
            if sid not in out:
                desc = self._admit(sid)
                if desc is not None:
                    out[sid] = desc
                    changed = True
        # Re-check a slice of the snapshots served before this refresh.
        known = sorted(sid for sid in served if sid in out)
        if known:
            if len(known) <= RECHECK_PER_REFRESH:
                batch = known
            else:
                start = self._recheck_from % len(known)
                batch = (known[start:] + known[:start])[:RECHECK_PER_REFRESH]
                self._recheck_from = start + RECHECK_PER_REFRESH
            for sid in batch:
                desc = self._still_good(sid, out[sid])
                if desc is not out[sid]:
                    changed = True
                    if desc is None:
                        del out[sid]
                    else:
                        out[sid] = desc
        return out if changed else None

    def _descriptor_identity(self, sid: str) -> FileIdentity | None:
        try:
            return file_identity(os.stat(self.repo.descriptor_path(sid)))
        except OSError:
            return None

    def _admit(self, sid: str) -> Descriptor | None:
        """The descriptor of a snapshot not served yet, if it may be served now."""
        identity = self._descriptor_identity(sid)
        if identity is None:
            return None
        if self._bad.get(sid) == identity:
            return None
        waiting = self._no_payload.get(sid)
        if waiting is not None and waiting[0] == identity:
            desc = waiting[1]  # verified before; only its payload was missing
        else:
            desc = self._read_verified(sid)
            if desc is None:
                self._bad[sid] = identity
                return None
        if self.store.root_stat(sid) is None:
            self._no_payload[sid] = (identity, desc)  # one stat per refresh from now on
            return None
        self._no_payload.pop(sid, None)
        self._bad.pop(sid, None)
        self._identity[sid] = identity
        return desc

    def _still_good(self, sid: str, desc: Descriptor) -> Descriptor | None:
        """*desc* if its file is unchanged and its payload present; the re-read descriptor
        if the file changed and still verifies; else None (no longer served)."""
        identity = self._descriptor_identity(sid)
        if identity is None or self.store.root_stat(sid) is None:
            self._identity.pop(sid, None)
            return None
        if identity == self._identity.get(sid):
            return desc
        fresh = self._read_verified(sid)
        if fresh is None:
            self._identity.pop(sid, None)
            self._bad[sid] = identity
            return None
        self._identity[sid] = identity
        self._created_ns.pop(sid, None)
        return fresh

    def _read_verified(self, sid: str) -> Descriptor | None:
        path = self.repo.descriptor_path(sid)
        try:
            with open(path, "rb") as f:
                desc = parse_descriptor(f.read(), path)
        except (OSError, JvsError):
            return None
        if desc.snapshot_id != sid or not desc.checksum_valid():
            return None
        return desc

    def _worktree_heads(self) -> dict[str, str]:
        heads: dict[str, str] = {}
        for name in list_worktree_names(self.repo):
            try:
                head = load_worktree_config(self.repo, name).head_snapshot_id
            except JvsError:
                continue
            if head:
                heads[name] = head
        return heads
