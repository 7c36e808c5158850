"""What the view serves: published snapshots, tags and worktree heads, refreshed cheaply.

A refresh lists ``descriptors/`` once and reads only descriptors it has not seen before, so
a view over 20,000 snapshots stays fresh for the cost of one ``listdir``. A descriptor that
fails its checksum (or cannot be parsed) is never served (SPEC §11); it is remembered as
bad so it is not re-read on every refresh, and re-read if its file changes.
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field

from jvs.descriptor import Descriptor, parse_descriptor
from jvs.errors import JvsError
from jvs.ids import is_snapshot_id
from jvs.repo import Repo

# Snapshot discriminators live in 23 bits (see inodes.py); a stable hash of the ID keeps a
# snapshot's inode numbers the same from mount to mount.
DISCRIMINATOR_BITS = 23
_DISC_SPACE = 1 << DISCRIMINATOR_BITS


@dataclass
class ViewCatalog:
    """The snapshots, tags and worktree heads of *repo* as the view shows them now.

    ``refresh()`` is throttled to one directory listing per *min_interval* seconds, so a
    burst of lookups in ``@snapshots`` costs one ``listdir``."""

    repo: Repo
    min_interval: float = 0.5
    snapshots: dict[str, Descriptor] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)          # tag -> newest snapshot id
    worktree_heads: dict[str, str] = field(default_factory=dict)  # worktree -> head id
    discriminators: dict[str, int] = field(default_factory=dict)  # snapshot id -> disc
    _bad: dict[str, float] = field(default_factory=dict)  # id -> mtime of the bad file
    _taken: set[int] = field(default_factory=set)
    _last_refresh: float = -1e9
    generation: int = 0  # bumped whenever the served set, tags or heads change

    def refresh(self, *, force: bool = False) -> bool:
        """Bring the catalog up to date; True when anything changed."""
        now = time.monotonic()
        if not force and now - self._last_refresh < self.min_interval:
            return False
        self._last_refresh = now
        changed = self._refresh_snapshots()
        changed |= self._refresh_worktrees()
        if changed:
            self.generation += 1
        return changed

    def _refresh_snapshots(self) -> bool:
        try:
            names = os.listdir(self.repo.descriptors_dir)
        except FileNotFoundError:
            names = []
        present = {n[:-5] for n in names if n.endswith(".json") and is_snapshot_id(n[:-5])}
        changed = False
        for gone in [sid for sid in self.snapshots if sid not in present]:
            del self.snapshots[gone]
            self._taken.discard(self.discriminators.pop(gone))
            changed = True
        for sid in [sid for sid in self._bad if sid not in present]:
            del self._bad[sid]
        for sid in sorted(present - self.snapshots.keys()):
            desc = self._read_verified(sid)
            if desc is not None:
                self.snapshots[sid] = desc
                self.discriminators[sid] = self._allocate_discriminator(sid)
                changed = True
        if changed:
            self._rebuild_tags()
        return changed

    def _read_verified(self, sid: str) -> Descriptor | None:
        path = self.repo.descriptor_path(sid)
        try:
            st = os.stat(path)
            if self._bad.get(sid) == st.st_mtime:
                return None
            with open(path, "rb") as f:
                desc = parse_descriptor(f.read(), path)
        except FileNotFoundError:
            return None
        except (OSError, JvsError):
            desc = None
        if desc is None or desc.snapshot_id != sid or not desc.checksum_valid():
            try:
                self._bad[sid] = os.stat(path).st_mtime
            except OSError:
                pass
            return None
        self._bad.pop(sid, None)
        return desc

    def _allocate_discriminator(self, sid: str) -> int:
        # 0 is never used, so no snapshot inode can fall in the synthetic range.
        disc = zlib.crc32(sid.encode()) % (_DISC_SPACE - 1) + 1
        while disc in self._taken:  # collisions are rare; probing keeps numbers unique
            disc = disc % (_DISC_SPACE - 1) + 1
        self._taken.add(disc)
        return disc

    def _rebuild_tags(self) -> None:
        tags: dict[str, str] = {}
        for sid in sorted(self.snapshots):  # IDs sort by creation time: newest wins
            for tag in self.snapshots[sid].tags:
                tags[tag] = sid
        self.tags = tags

    def _refresh_worktrees(self) -> bool:
        import json

        heads: dict[str, str] = {}
        base = self.repo.jvs_dir / "worktrees"
        try:
            names = sorted(os.listdir(base))
        except FileNotFoundError:
            names = []
        for name in names:
            try:
                with open(base / name / "config.json", "rb") as f:
                    head = json.loads(f.read()).get("head_snapshot_id")
            except (OSError, ValueError, AttributeError):
                continue
            if head:
                heads[name] = head
        if heads != self.worktree_heads:
            self.worktree_heads = heads
            return True
        return False

    def payload_dir(self, sid: str) -> str:
        return os.fspath(self.repo.payload_dir(sid))

    def sorted_ids(self) -> list[str]:
        return sorted(self.snapshots)
