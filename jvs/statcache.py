"""The per-worktree stat cache: (size, mtime_ns, ctime_ns, ino) → content hash.

It lets a snapshot, ``status`` and ``diff`` skip reading files whose stat has not changed.
It is only an optimisation: deleting it changes no result, only the time taken. It is kept
per host (``.jvs/cache/<host>/``) because several hosts mounting one repository may see
different inode or ctime values and must never trust each other's entries.

Two guards keep it honest:
- *racily clean* entries: file timestamps come from a coarse clock (a kernel tick, or
  another host's clock on a shared volume), so a file modified shortly before it was
  hashed could be modified again without its stat changing; entries whose mtime or ctime
  is within ``RACY_WINDOW_NS`` of the moment this run started are therefore not kept
  (they are simply hashed again next time);
- writes during a clone: callers pass the stat taken before and after the clone, and an
  entry is used or stored only when both agree.

The file is binary and read whole (``CACHE_SUFFIX``): a header line (format, algorithm,
entry count, hash width), a line with the checksum (xxh3-128) of the rest, then the
fixed-width stat records of every entry and their paths, one a line. Loading and saving
are then slicing and joining bytes (each entry is kept as its record) instead of a JSON
parse: at 100,000 files a load took 0.18-0.39 s and a save 0.2-0.47 s as JSON, and take
0.10 s and 0.02 s now (machine at load average 6). A cache edited or damaged by anything
but jvs fails its checksum or its shape and is not trusted at all (it is an empty cache),
so a forged record cannot make a snapshot record, or a restore overlook, content the file
does not hold.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from jvs import fsio
from jvs.integrity import STAT_KEY_FORMAT, Stat
from jvs.repo import Repo

RACY_WINDOW_NS = 100_000_000
# On a filesystem only this host writes, timestamps come from one clock whose ticks are at
# most a few milliseconds apart: a shorter window is enough.
LOCAL_RACY_WINDOW_NS = 20_000_000
_MAGIC = b"jvs-statcache"
_VERSION = 3
CACHE_PREFIX = "stat-"
CACHE_SUFFIX = ".cache"
_LEGACY_SUFFIX = ".json"  # version 2 (JSON); removed when a version 3 cache is written
# size, mtime_ns, ctime_ns, ino (as integrity.Stat begins); the hash (ASCII hex) follows
_KEY = struct.Struct(STAT_KEY_FORMAT)
_TIMES = struct.Struct("<qq")  # mtime_ns, ctime_ns at offset 8

# One entry: its record in the file (the packed stat key, then the content hash as ASCII
# hex). Bytes, not a tuple of five objects: a cache holds one per file of the worktree
# (~100 bytes each instead of ~270), and loading or saving it is slicing and joining.
Row = bytes


def cache_file_name(worktree: str) -> str:
    return f"{CACHE_PREFIX}{worktree}{CACHE_SUFFIX}"


def worktree_of_cache_file(name: str) -> str | None:
    """The worktree a file in ``.jvs/cache/<host>/`` caches, or None if it is no stat cache
    of this version (a version 2 one, ``stat-<name>.json``, is removed by the next save)."""
    if name.startswith(CACHE_PREFIX) and name.endswith(CACHE_SUFFIX) \
            and len(name) > len(CACHE_PREFIX) + len(CACHE_SUFFIX):
        return name[len(CACHE_PREFIX):-len(CACHE_SUFFIX)]
    return None


def drop_cache_files(repo: Repo, worktree: str) -> None:
    """Remove *worktree*'s stat cache on every host (the worktree is gone)."""
    for host_dir in repo.cache_dir.glob("*"):
        for suffix in (CACHE_SUFFIX, _LEGACY_SUFFIX):
            (host_dir / f"{CACHE_PREFIX}{worktree}{suffix}").unlink(missing_ok=True)


def racy_window_ns(path: Path) -> int:
    """The racily-clean window for files under *path*: short on a local filesystem,
    ``RACY_WINDOW_NS`` on anything else (JuiceFS, NFS: several hosts' clocks)."""
    from jvs.mountinfo import on_local_filesystem

    return LOCAL_RACY_WINDOW_NS if on_local_filesystem(path) else RACY_WINDOW_NS


def packed_key(st: os.stat_result | Stat) -> bytes:
    """*st*'s key in the cache, as its rows begin with it."""
    if st.__class__ is Stat:
        return st[:_KEY.size]
    return _KEY.pack(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    def __init__(self, path: Path, algo: str, entries: dict[str, Row] | None = None) -> None:
        self.path = path
        self.algo = algo
        self._entries: dict[str, Row] = entries or {}
        self._fresh: dict[str, Row] = {}
        self._settled: set[str] = set()
        self._dirty = False  # an entry of the file was forgotten
        self._on_disk = entries is not None  # loaded from a valid cache file
        self.started_ns = time.time_ns()

    @classmethod
    def load(cls, repo: Repo, worktree: str, algo: str) -> StatCache:
        """The cache of *worktree* on this host (empty if missing or unreadable)."""
        path = repo.cache_dir / os.uname().nodename / cache_file_name(worktree)
        found = read_cache_file(path)  # a missing, unreadable or tampered cache: empty
        if found is not None and found.algo == algo:
            return cls(path, algo, found.entries)
        return cls(path, algo)

    def lookup(self, relpath: str, st: os.stat_result) -> str | None:
        row = self._entries.get(relpath)
        if row is not None and row[:_KEY.size] == packed_key(st):
            return row[_KEY.size:].decode("ascii")
        return None

    def remember(self, relpath: str, st: os.stat_result, digest: str, *,
                 settled: bool = False) -> None:
        """Record *digest* for the file whose stat is *st*. *settled*: the caller took
        *st* at least the racily-clean window after the file's last change (a restore
        waits for that before it records what it wrote), so the entry is safe to keep
        however recent that change was."""
        row = packed_key(st) + digest.encode("ascii")
        if not settled and self._entries.get(relpath) == row:
            self._fresh.pop(relpath, None)
            self._settled.discard(relpath)
            return  # the common case: a file the cache vouched for, still the same
        self._fresh[relpath] = row
        if settled:
            self._settled.add(relpath)
        else:
            self._settled.discard(relpath)

    def forget(self, relpath: str) -> None:
        if self._entries.pop(relpath, None) is not None:
            self._dirty = True
        self._fresh.pop(relpath, None)

    def save(self, keep: set[str] | None = None, horizon_ns: int | None = None) -> None:
        """Write the cache: the entries seen in this run (old ones still valid plus fresh
        ones), minus those too young to trust: changed less than the racily-clean window
        before this run started (or *horizon_ns*), unless remembered as settled."""
        horizon = self.started_ns - RACY_WINDOW_NS if horizon_ns is None else horizon_ns
        settled, times = self._settled, _TIMES.unpack_from
        # Entries read from the file passed this check when they were saved (the horizon
        # only moves on): only fresh ones are checked, so a run that changed a few files
        # costs a few checks, not one per file.
        entries = self._entries  # updated in place: no copy of 100,000 entries
        changed = self._dirty or not self._on_disk
        for k, v in self._fresh.items():
            if max(times(v, 8)) < horizon or k in settled:
                if entries.get(k) != v:
                    entries[k] = v
                    changed = True
            elif entries.pop(k, None) is not None:
                changed = True  # changed too recently: its old record is stale too
        if keep is not None:
            stale = entries.keys() - keep
            for k in stale:
                del entries[k]
            changed = changed or bool(stale)
        self._fresh, self._settled, self._dirty = {}, set(), False
        if not changed:
            return  # the file already holds exactly this (a write is a round trip on FUSE)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fsio.write_bytes_atomic(self.path, encode_cache(self.algo, entries), durable=False)
        except (OSError, ValueError):
            return  # a cache that cannot be written only costs time next run
        self._on_disk = True
        legacy = self.path.with_name(self.path.name[:-len(CACHE_SUFFIX)] + _LEGACY_SUFFIX)
        try:
            legacy.unlink()
        except OSError:
            pass


@dataclass(frozen=True)
class CacheFile:
    algo: str
    entries: dict[str, Row]


def encode_cache(algo: str, entries: dict[str, Row]) -> list[bytes]:
    """The file's bytes, as the pieces to write one after the other (joining them would
    copy the ~12 MB of a 100,000-file cache twice more, at the peak of a snapshot)."""
    width = len(next(iter(entries.values()))) - _KEY.size if entries else 0
    records = b"".join(entries.values())
    if len(records) != len(entries) * (_KEY.size + width):
        raise ValueError("stat cache entries of different hash widths")
    paths = "\n".join(entries).encode("utf-8", "surrogateescape")
    header = b"%s %d %s %d %d\n" % (_MAGIC, _VERSION, algo.encode("ascii"), len(entries), width)
    return [header, _checksum(records, paths) + b"\n", records, paths]


def read_cache_file(path: Path) -> CacheFile | None:
    """A cache file's contents, or None if it is missing, unreadable, of another version,
    or fails its checksum."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, _, rest = data.partition(b"\n")
    checksum, _, body = rest.partition(b"\n")
    try:
        magic, version, algo, count, width = header.split(b" ")
        count, width = int(count), int(width)
        if magic != _MAGIC or int(version) != _VERSION or checksum != _checksum(body):
            return None
        size = _KEY.size + width
        split = count * size
        if len(body) < split or width <= 0 < count:
            return None
        rows = [body[i:i + size] for i in range(0, split, size)]
        paths = body[split:].decode("utf-8", "surrogateescape").split("\n") if count else []
        return CacheFile(algo.decode("ascii"), dict(zip(paths, rows, strict=True)))
    except ValueError:  # UnicodeDecodeError is one
        return None


def _checksum(*pieces: bytes) -> bytes:
    """The checksum of the pieces' concatenation."""
    import xxhash

    digest = xxhash.xxh3_128()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest().encode("ascii")
