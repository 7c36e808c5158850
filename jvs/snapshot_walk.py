"""A snapshot built while a walking engine (copy, reflink-copy) copies the worktree.

The engine tells a ``WalkedSnapshot`` each entry as it is done, in walk order
(``jvs.engines.copy.WalkSink``). Three streams run beside the walk in that order, each read
or written front to back, so a snapshot of a million files holds no entry per file:

- the stat cache (``statcache.CacheCursor``), which vouches for unchanged files;
- the head snapshot's file records (``records.HeadRecords``), the copy engine's source of
  files it hard-links instead of copying (``copy.PreviousPayload``);
- the new manifest's records (``records.ManifestBuilder``); what changed in the stat cache
  is written by one merge pass over it at the end, if anything did.

The head's records are used before its manifest's hash has been checked (that needs all
of it): ``head_trusted`` checks it once the walk is done, and a snapshot whose head fails
it is taken again without linking anything (``jvs.snapshot``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jvs.engines.copy import PreviousPayload
from jvs.integrity import HashStats, hash_bytes, hash_file, record_bytes
from jvs.records import HeadRecords, ManifestBuilder
from jvs.statcache import KEY_SIZE, CacheCursor, packed_key


class WalkedSnapshot:
    """The ``WalkSink`` of a snapshot (see the module's docstring)."""

    def __init__(self, algo: str, cache_path: Path, spill_dir: Path, horizon_ns: int,
                 head: tuple[Path, Path, str] | None = None) -> None:
        """*head*: the head snapshot's payload, manifest and root hash, to link from;
        *horizon_ns*: files changed after it are too young for the stat cache."""
        self.algo = algo
        self.stats = HashStats()
        self.skipped_special: list[str] = []
        self.ignored: list[str] = []
        self._horizon = horizon_ns
        self._cache = CacheCursor(cache_path, algo)
        self._records = ManifestBuilder(spill_dir)
        self._head = None
        self._previous = None
        if head is not None:
            payload, manifest, root = head
            try:
                self._head = HeadRecords(manifest, root)
            except OSError:
                self._head = None
            else:
                self._previous = PreviousPayload(payload, self._head, self._cache.lookup)

    def cached(self, rel: str, st: os.stat_result) -> bool:
        return self._cache.lookup(rel, st) is not None

    def link(self, rel: str, st: os.stat_result, src: bytes, dst: bytes) -> bool:
        if self._previous is None:
            return False
        entry = self._previous.link(rel, st, src, dst)
        if entry is None:
            return False
        self._records.add_file(record_bytes(*entry))  # its cache entry vouched: it stays
        return True

    def file(self, rel: str, dst: bytes, source_st: os.stat_result,
             staged_st: os.stat_result, digest: str | None, nbytes: int) -> None:
        """A cached hash is used only if the source's stat after the copy equals the
        cached one (any write since the entry was made moved its ctime); a fresh one is
        remembered only if the copy carries the source's mtime and size (it did not change
        while copied) and the source's last change is older than the racy window."""
        row = self._cache.row(rel)
        fresh = True
        if digest is not None:
            self.stats.files_hashed += 1
            self.stats.bytes_hashed += nbytes
        elif row is not None and row[:KEY_SIZE] == packed_key(source_st) \
                and source_st.st_size == staged_st.st_size:
            digest = row[KEY_SIZE:].decode("ascii")
            fresh = False
        else:
            digest = hash_file(os.fsdecode(dst), self.algo, self.stats)
        self._records.add_file(record_bytes("file", rel, stat.S_IMODE(staged_st.st_mode),
                                            staged_st.st_size, digest))
        if not fresh:
            return  # its cache entry stays
        if (source_st.st_mtime_ns, source_st.st_size) == \
                (staged_st.st_mtime_ns, staged_st.st_size) \
                and max(source_st.st_mtime_ns, source_st.st_ctime_ns) < self._horizon:
            self._cache.set(rel, packed_key(source_st) + digest.encode("ascii"))
        elif row is not None:
            self._cache.drop(rel)

    def dir(self, rel: str, staged_st: os.stat_result) -> None:
        name = os.fsencode(rel.rpartition("/")[2])
        self._records.add_dir(record_bytes("dir", rel, stat.S_IMODE(staged_st.st_mode), 0,
                                           hash_bytes(self.algo, name)))

    def symlink(self, rel: str, target: bytes, staged_st: os.stat_result) -> None:
        self._records.add_symlink(record_bytes("symlink", rel,
                                               stat.S_IMODE(staged_st.st_mode), 0,
                                               hash_bytes(self.algo, target)))

    def special(self, rel: str) -> None:
        self.skipped_special.append(rel)

    def ignored_path(self, rel: str) -> None:
        self.ignored.append(rel)

    def head_trusted(self) -> bool:
        """Whether the head's records the walk used were its manifest's (see above)."""
        return self._head is None or self._head.trusted()

    def write_manifest(self, path: Path) -> str:
        """Write the manifest; its root hash."""
        return self._records.write(path)

    def save_cache(self) -> None:
        """Write the next stat cache if anything changed (the snapshot is published)."""
        self._records.close()
        self._cache.save()

    def discard(self) -> None:
        """Leave nothing of this walk behind (the snapshot failed, or is taken again)."""
        self._cache.close()
        self._records.close()
