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

The file starts with a checksum of the rest (xxh3-128): a cache edited or damaged by
anything but jvs is not trusted at all (it is an empty cache), so a forged record cannot
make a snapshot record, or a restore overlook, content the file does not hold.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from jvs import fsio
from jvs.repo import Repo

RACY_WINDOW_NS = 100_000_000
# On a filesystem only this host writes, timestamps come from one clock whose ticks are at
# most a few milliseconds apart: a shorter window is enough.
LOCAL_RACY_WINDOW_NS = 20_000_000
LOCAL_FSTYPES = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs",
                           "bcachefs", "jfs", "reiserfs"})
_VERSION = 2

StatKey = tuple[int, int, int, int]


def racy_window_ns(path: Path) -> int:
    """The racily-clean window for files under *path*: short on a local filesystem,
    ``RACY_WINDOW_NS`` on anything else (JuiceFS, NFS: several hosts' clocks)."""
    from jvs.mountinfo import mount_of, parse_mountinfo, read_mountinfo

    mount = mount_of(os.path.realpath(path), parse_mountinfo(read_mountinfo()))
    return LOCAL_RACY_WINDOW_NS if mount and mount.fstype in LOCAL_FSTYPES \
        else RACY_WINDOW_NS


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    def __init__(self, path: Path, algo: str, entries: dict[str, list] | None = None) -> None:
        self.path = path
        self.algo = algo
        self._entries: dict[str, list] = entries or {}
        self._fresh: dict[str, list] = {}
        self._settled: set[str] = set()
        self._on_disk = entries is not None  # loaded from a valid cache file
        self.started_ns = time.time_ns()

    @classmethod
    def load(cls, repo: Repo, worktree: str, algo: str) -> StatCache:
        """The cache of *worktree* on this host (empty if missing or unreadable)."""
        path = repo.cache_dir / os.uname().nodename / f"stat-{worktree}.json"
        obj = read_cache_file(path)  # a missing, unreadable or tampered cache: empty
        if obj is not None and obj.get("version") == _VERSION and obj.get("algo") == algo:
            return cls(path, algo, obj["entries"])
        return cls(path, algo)

    def lookup(self, relpath: str, st: os.stat_result) -> str | None:
        row = self._entries.get(relpath)
        if row is not None and row[0] == st.st_size and row[1] == st.st_mtime_ns \
                and row[2] == st.st_ctime_ns and row[3] == st.st_ino:  # == stat_key(st)
            return row[4]
        return None

    def remember(self, relpath: str, st: os.stat_result, digest: str, *,
                 settled: bool = False) -> None:
        """Record *digest* for the file whose stat is *st*. *settled*: the caller took
        *st* at least the racily-clean window after the file's last change (a restore
        waits for that before it records what it wrote), so the entry is safe to keep
        however recent that change was."""
        self._fresh[relpath] = [*stat_key(st), digest]
        if settled:
            self._settled.add(relpath)
        else:
            self._settled.discard(relpath)

    def forget(self, relpath: str) -> None:
        self._entries.pop(relpath, None)
        self._fresh.pop(relpath, None)

    def save(self, keep: set[str] | None = None, horizon_ns: int | None = None) -> None:
        """Write the cache: the entries seen in this run (old ones still valid plus fresh
        ones), minus those too young to trust: changed less than the racily-clean window
        before this run started (or *horizon_ns*), unless remembered as settled."""
        horizon = self.started_ns - RACY_WINDOW_NS if horizon_ns is None else horizon_ns
        merged = {**self._entries, **self._fresh}
        if keep is not None:
            merged = {k: v for k, v in merged.items() if k in keep}
        safe = {k: v for k, v in merged.items()
                if max(v[1], v[2]) < horizon or k in self._settled}
        if safe == self._entries and self._on_disk:
            self._fresh = {}
            return  # the file already holds exactly this (a write is a round trip on FUSE)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"version": _VERSION, "algo": self.algo, "entries": safe},
                          separators=(",", ":")).encode()
        data = _checksum(body).encode() + b"\n" + body
        try:
            fsio.write_bytes_atomic(self.path, data, durable=False)
        except OSError:
            pass  # a cache that cannot be written only costs time next run
        else:
            self._on_disk = True
        self._entries, self._fresh, self._settled = safe, {}, set()


def read_cache_file(path: Path) -> dict | None:
    """A cache file's contents, or None if it is missing, unreadable, or fails its
    checksum."""
    try:
        checksum, _, body = path.read_bytes().partition(b"\n")
        if checksum.decode() != _checksum(body):
            return None
        obj = json.loads(body)
    except (OSError, ValueError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("entries"), dict):
        return None
    return obj


def _checksum(body: bytes) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(body)
