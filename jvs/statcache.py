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

The file is binary (``CACHE_SUFFIX``): a header line (format, algorithm), then one entry
per file, its path and a line break followed by its fixed-width record (the packed stat
key, then the content hash as ASCII hex), and a fixed-width trailer with the entry count,
the hash width and the checksum (xxh3-128) of everything before it. Entries are in *walk
order* (``walk_key``), the order in which a snapshot's walk meets the files, so a snapshot
reads the cache front to back beside its walk (``CacheCursor``) and writes the next one the
same way (``CacheWriter``): neither holds an entry per file, at a million files or ten.
Other commands load it whole (``StatCache``): slicing bytes, no JSON (at 100,000 files a
JSON load took 0.18-0.39 s). A cache edited or damaged by anything but jvs fails its
checksum or its shape and is not trusted at all (it is an empty cache), so a forged record
cannot make a snapshot record, or a restore overlook, content the file does not hold.
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
_VERSION = 4  # 3: the same records, in two blocks (records, then paths), in any order
CACHE_PREFIX = "stat-"
CACHE_SUFFIX = ".cache"
_LEGACY_SUFFIX = ".json"  # version 2 (JSON); removed when a newer cache is written
# size, mtime_ns, ctime_ns, ino (as integrity.Stat begins); the hash (ASCII hex) follows
_KEY = struct.Struct(STAT_KEY_FORMAT)
_TIMES = struct.Struct("<qq")  # mtime_ns, ctime_ns at offset 8
KEY_SIZE = _KEY.size  # a record: the packed key, then the hash
_READ_SIZE = 1 << 20

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


def stat_cache_path(repo: Repo, worktree: str) -> Path:
    """Where *worktree*'s stat cache on this host lives."""
    return repo.cache_dir / os.uname().nodename / cache_file_name(worktree)


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
    def __init__(self, path: Path, algo: str, entries: dict[str, Row] | None = None,
                 in_order: bool = False) -> None:
        self.path = path
        self.algo = algo
        self._entries: dict[str, Row] = entries or {}
        self._fresh: dict[str, Row] = {}
        self._settled: set[str] = set()
        self._dirty = False  # an entry of the file was forgotten
        self._on_disk = entries is not None  # loaded from a valid cache file
        self._in_order = in_order  # the entries are in walk order (as loaded from the file)
        self.started_ns = time.time_ns()

    @classmethod
    def load(cls, repo: Repo, worktree: str, algo: str) -> StatCache:
        """The cache of *worktree* on this host (empty if missing or unreadable)."""
        path = stat_cache_path(repo, worktree)
        found = read_cache_file(path)  # a missing, unreadable or tampered cache: empty
        if found is not None and found.algo == algo:
            return cls(path, algo, found.entries, found.in_order)
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
        in_order = self._in_order
        for k, v in self._fresh.items():
            if max(times(v, 8)) < horizon or k in settled:
                old = entries.get(k)
                if old != v:
                    in_order = in_order and old is not None  # a new key goes to the end
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
            fsio.write_bytes_atomic(self.path, encode_cache(self.algo, entries, in_order),
                                    durable=False)
        except (OSError, ValueError):
            return  # a cache that cannot be written only costs time next run
        self._on_disk = self._in_order = True
        legacy = self.path.with_name(self.path.name[:-len(CACHE_SUFFIX)] + _LEGACY_SUFFIX)
        try:
            legacy.unlink()
        except OSError:
            pass


def walk_key(relpath: str) -> bytes:
    """*relpath*'s place in walk order: the order of a walk that lists each directory's
    names sorted by their bytes plus ``/`` for a directory and ``:`` for anything else
    (``jvs.engines.copy``). For files that is the order of ``relpath + ":"``, which is
    also how the manifest sorts its file records (SPEC §5) unless a name holds a ``:``."""
    return relpath.encode("utf-8", "surrogateescape") + b":"


@dataclass(frozen=True)
class CacheFile:
    algo: str
    entries: dict[str, Row]
    in_order: bool = True  # in walk order (version 4); a version 3 file is in any order


def encode_cache(algo: str, entries: dict[str, Row], in_order: bool = False) -> list[bytes]:
    """The file's bytes, as the pieces to write one after the other; *in_order*: the
    entries are in walk order already (else they are sorted)."""
    items = entries.items() if in_order else \
        sorted(entries.items(), key=lambda item: walk_key(item[0]))
    body = bytearray(_header(algo))
    width = None
    for path, row in items:
        if "\n" in path:
            continue  # cannot be an entry (no snapshot records such a name either)
        if width is None:
            width = len(row) - _KEY.size
        elif len(row) != _KEY.size + width:
            raise ValueError("stat cache entries of different hash widths")
        body += path.encode("utf-8", "surrogateescape")
        body += b"\n"
        body += row
    count = sum(1 for path in entries if "\n" not in path)
    return [bytes(body), _trailer(count, width or 0, _checksum(body))]


def _header(algo: str) -> bytes:
    return b"%s %d %s\n" % (_MAGIC, _VERSION, algo.encode("ascii"))


def _trailer(count: int, width: int, checksum: bytes) -> bytes:
    """``END <count> <hash width> <checksum>``: fixed width, so a reader finds it from the
    end of the file."""
    return b"END %020d %04d %s\n" % (count, width, checksum)


def _parse_trailer(trailer: bytes) -> tuple[int, int, bytes]:
    """(count, width, checksum) of a version 4 trailer; ValueError if it is none."""
    end, count, width, checksum = trailer.rstrip(b"\n").split(b" ")
    if end != b"END" or len(trailer) != _TRAILER_SIZE or len(checksum) != 32:
        raise ValueError("no stat cache trailer")
    return int(count), int(width), checksum


_TRAILER_SIZE = len(b"END %020d %04d %s\n" % (0, 0, b"0" * 32))


def read_cache_file(path: Path) -> CacheFile | None:
    """A cache file's contents, or None if it is missing, unreadable, of another version,
    or fails its checksum."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, _, rest = data.partition(b"\n")
    try:
        magic, version, algo = header.split(b" ", 2)
        if magic != _MAGIC:
            return None
        if int(version) == 3:
            return _read_version_3(algo, rest)
        if int(version) != _VERSION:
            return None
        count, width, checksum = _parse_trailer(data[-_TRAILER_SIZE:])
        body_end = len(data) - _TRAILER_SIZE
        if checksum != _checksum(memoryview(data)[:body_end]) or width <= 0 < count:
            return None
        entries: dict[str, Row] = {}
        size = _KEY.size + width
        pos, find = len(header) + 1, data.find
        for _ in range(count):
            nl = find(b"\n", pos, body_end)
            if nl < 0 or nl + 1 + size > body_end:
                return None
            entries[data[pos:nl].decode("utf-8", "surrogateescape")] = data[nl + 1:nl + 1 + size]
            pos = nl + 1 + size
        if pos != body_end:
            return None
        return CacheFile(algo.decode("ascii"), entries)
    except ValueError:  # UnicodeDecodeError is one
        return None


def _read_version_3(algo: bytes, rest: bytes) -> CacheFile | None:
    """A version 3 cache (``<algo> <count> <width>`` in the header, a checksum line, the
    records, then the paths): read once after an upgrade, then rewritten as version 4."""
    algo, count, width = algo.split(b" ")
    count, width = int(count), int(width)
    checksum, _, body = rest.partition(b"\n")
    if checksum != _checksum(body):
        return None
    size = _KEY.size + width
    split = count * size
    if len(body) < split or width <= 0 < count:
        return None
    rows = [body[i:i + size] for i in range(0, split, size)]
    paths = body[split:].decode("utf-8", "surrogateescape").split("\n") if count else []
    return CacheFile(algo.decode("ascii"), dict(zip(paths, rows, strict=True)), in_order=False)


class CacheCursor:
    """The stat cache of a worktree read front to back, for a walk that asks for its files
    in walk order (a snapshot's, or ``status``'s): ``row(relpath)`` moves forward to
    *relpath*'s entry. At most one entry and one read buffer are held, whatever the number
    of files. A path asked for out of order is not found (the file is hashed: time, never
    a wrong answer). The whole file's checksum is checked before the first entry is used;
    a file that fails it, or of another version or algorithm, is an empty cache (a version
    3 file is loaded whole, once).

    The walk tells it what changed (``set``, ``drop``, each right after the ``row`` of
    that path); ``save`` then writes the next cache, only if anything changed: the entries
    the walk met and kept, the new ones, and none of those it passed (files no longer
    there). The cursor notes where in the file each change falls, so the next file is the
    old one's bytes copied between those places (at disk speed, checksummed on the way)
    with the changed entries written in: no entry is parsed again."""

    def __init__(self, path: Path, algo: str, *, patch: bool = False) -> None:
        """*patch*: no walk goes by; only what is ``set`` or ``dropped`` changes, every
        other entry stays (``CachePatch``)."""
        self.path = path
        self.algo = algo
        self._patch = patch
        self._file = None
        self._dict: dict[str, Row] | None = None
        self._met: set[str] = set()  # the entries asked for (only with a whole-file dict)
        self._key = self._row = None
        self._matched = False
        self._passed: set[bytes] = set()  # keys of the entries gone by unmatched
        self._changes: dict[str, Row | None] = {}
        # Where the changes fall in the file: (offset, bytes of the old entry replaced,
        # the new entry's bytes, its walk key, None for an entry passed), in file order;
        # None once a change came out of step (then save merges entry by entry).
        self._edits: list[tuple[int, int, bytes, bytes | None]] | None = []
        self._writer: CacheWriter | None = None  # with no file to read: the next one
        self._entries_delta = 0
        self._offset = self._entry_len = 0  # of the current entry in the file
        self._asked: bytes | None = None  # the walk key of the last row() asked for
        self._header_size = 0
        self.count = 0  # entries in the file
        try:
            self._open(path, algo)
        except (OSError, ValueError):
            self.close()
            self._dict = {}

    def _open(self, path: Path, algo: str) -> None:
        f = self._file = open(path, "rb", buffering=_READ_SIZE)
        header = f.readline()
        magic, version, found_algo = header.rstrip(b"\n").split(b" ", 2)
        if magic != _MAGIC or int(version) != _VERSION:
            self.close()
            found = read_cache_file(path)
            self._dict = found.entries if found is not None and found.algo == algo else {}
            return
        if found_algo.decode("ascii") != algo:
            raise ValueError("another algorithm's cache")
        size = os.fstat(f.fileno()).st_size
        f.seek(size - _TRAILER_SIZE)
        self.count, width, checksum = _parse_trailer(f.read(_TRAILER_SIZE))
        f.seek(0)
        digest, left = _hasher(), size - _TRAILER_SIZE
        while left:
            chunk = f.read(min(left, _READ_SIZE))
            if not chunk:
                raise ValueError("stat cache shorter than its trailer says")
            digest.update(chunk)
            left -= len(chunk)
        if digest.hexdigest().encode("ascii") != checksum:
            raise ValueError("stat cache checksum")
        self._header_size = len(header)
        self._size = _KEY.size + width
        self._readline, self._read = f.readline, f.read
        f.seek(self._header_size)
        self._left = self.count
        self._offset = self._header_size
        self._advance()

    def _advance(self) -> None:
        if self._key is not None and not self._matched and not self._patch:
            self._passed.add(self._key)
            self._edit(self._offset, self._entry_len, b"", -1)
        self._matched = False
        self._offset += self._entry_len
        if not self._left:
            self._key = self._row = None
            self._entry_len = 0
            return
        self._left -= 1
        self._key, self._row = self._read_entry()
        self._entry_len = len(self._key) + self._size  # the key's ":" is the line break

    def _read_entry(self) -> tuple[bytes, Row]:
        """The next entry of the file: (its walk key, its record)."""
        line = self._readline()
        row = self._read(self._size)
        if line[-1:] != b"\n" or len(row) != self._size:
            raise ValueError("stat cache entry cut short")  # the checksum makes this rare
        return line[:-1] + b":", row

    def _edit(self, offset: int, replaced: int, entry: bytes, delta: int,
              key: bytes | None = None) -> None:
        """*key*: the entry's walk key for a change the walk made (None for one passed)."""
        if self._edits is not None:
            self._edits.append((offset, replaced, entry, key))
            self._entries_delta += delta

    def _lost(self) -> None:
        """The file became unreadable half-way: an empty cache from here on, and the next
        save writes what the walk set (all it can vouch for)."""
        self.close()
        self._dict = {}
        self._met = set()

    def row(self, relpath: str) -> Row | None:
        """*relpath*'s record, or None if the cache holds none (or it was passed)."""
        if self._dict is not None:
            if self._dict:  # (an empty one keeps nothing: no need to know what was met)
                self._met.add(relpath)
            return self._dict.get(relpath)
        return self.row_at(walk_key(relpath))

    def row_at(self, want: bytes) -> Row | None:
        """The record of the path whose walk key is *want* (see ``row``); only while the
        file is read front to back (``by_key``), not from a whole-file dict."""
        try:
            while self._key is not None and self._key < want:
                self._advance()
        except (OSError, ValueError):
            self._lost()
            return None
        self._asked = want
        if self._key != want:
            return None
        self._matched = True
        return self._row

    @property
    def by_key(self) -> bool:
        """Whether ``row_at`` may be asked (the file is read front to back)."""
        return self._dict is None

    def lookup(self, relpath: str, st: os.stat_result | Stat) -> str | None:
        """The cached hash of *relpath* if its stat is still *st*."""
        row = self.row(relpath)
        if row is not None and row[:_KEY.size] == packed_key(st):
            return row[_KEY.size:].decode("ascii")
        return None

    def set(self, relpath: str, row: Row) -> None:
        """*relpath*'s record from now on (it was hashed)."""
        self._change(relpath, row)

    def drop(self, relpath: str) -> None:
        """*relpath* has no valid record (it changed and its hash is too young to keep)."""
        self._change(relpath, None)

    def _change(self, relpath: str, row: Row | None) -> None:
        """Note a change where it falls in the file (only that is kept, O(what changed)),
        or, with no file to read (none, or not trusted), stream the new entries straight
        into the next one; otherwise keep it by path for the merge."""
        if self._dict is not None and not self._dict and not self._patch:
            if row is not None:
                if self._writer is None:
                    self._writer = CacheWriter(self.path, self.algo)
                self._writer.add_key(walk_key(relpath), row)
            return
        if self._dict is None and self._edits is not None:
            key = walk_key(relpath)
            if key == self._asked and b"\n" not in key \
                    and (row is None or len(row) == self._size):
                self._asked = None  # one change per row() asked
                entry = b"" if row is None else key[:-1] + b"\n" + row
                if self._key == key:  # replaces the entry the cursor stands on
                    self._edit(self._offset, self._entry_len, entry, 0 if entry else -1,
                               key)
                    self._matched = True
                elif entry:  # a new entry, before the one the cursor stands on
                    self._edit(self._offset, 0, entry, 1, key)
                return
            self._changes.update(self._edited_changes())  # out of step: merge instead
            self._edits = None
        self._changes[relpath] = row

    def _edited_changes(self) -> dict[str, Row | None]:
        """The changes the edits hold, by path (for the merge)."""
        out: dict[str, Row | None] = {}
        for _, _, entry, key in self._edits or ():
            if key is not None:
                out[key[:-1].decode("utf-8", "surrogateescape")] = \
                    entry[len(key):] if entry else None
        return out

    def save(self) -> None:
        """Write the next cache if anything changed (see the class); a cache that cannot
        be written only costs time next run."""
        try:
            if self._dict is None:
                while self._key is not None:  # what the walk did not reach is gone too
                    self._advance()
                if self._edits is not None:
                    if self._edits:
                        self._write_edited()
                    return  # (no edits: the file holds exactly this already)
                rows = self._merged()
            elif not self._dict and not self._patch:
                # No file, or one not trusted: the new entries went straight into the next
                # one (written even if empty: a broken file is never kept).
                writer = self._writer or CacheWriter(self.path, self.algo)
                self._writer = None
                writer.commit()
                return
            else:
                kept = dict(self._dict) if self._patch else \
                    {rel: self._dict[rel] for rel in self._met if rel in self._dict}
                kept.update(self._changes)
                rows = sorted((walk_key(rel), row) for rel, row in kept.items()
                              if row is not None)
            writer = CacheWriter(self.path, self.algo)
            try:
                for key, row in rows:
                    writer.add_key(key, row)
            except BaseException:
                writer.abort()
                raise
            writer.commit()
        except (OSError, ValueError):
            pass
        finally:
            self.close()

    def _write_edited(self) -> None:
        """The next file: the old one's bytes between the edits, the edits' entries."""
        fd = self._file.fileno()
        out = fsio.AtomicWriter(self.path)
        digest = _hasher()

        def put(data: bytes) -> None:
            digest.update(data)
            out.write_all([data])

        def copy(start: int, end: int) -> None:
            while start < end:
                chunk = os.pread(fd, min(end - start, _READ_SIZE), start)
                if not chunk:
                    raise ValueError("stat cache shorter than it was")
                put(chunk)
                start += len(chunk)

        try:
            put(_header(self.algo))
            pos = self._header_size
            for offset, replaced, entry, _ in self._edits:
                copy(pos, offset)
                if entry:
                    put(entry)
                pos = offset + replaced
            copy(pos, self._offset)  # the end of the entries (the cursor ran to it)
            count = self.count + self._entries_delta
            out.write(_trailer(count, self._size - _KEY.size if count else 0,
                               digest.hexdigest().encode("ascii")))
            out.commit()
        except BaseException:
            out.abort()
            raise

    def _merged(self):
        """The file's entries met and kept, with the changes merged in, in walk order."""
        changes = sorted((walk_key(rel), row) for rel, row in self._changes.items())
        passed = self._passed
        self._file.seek(self._header_size)
        i = 0
        for _ in range(self.count):
            key, row = self._read_entry()
            while i < len(changes) and changes[i][0] < key:
                if changes[i][1] is not None:
                    yield changes[i]
                i += 1
            if i < len(changes) and changes[i][0] == key:
                if changes[i][1] is not None:
                    yield changes[i]
                i += 1
            elif key not in passed:
                yield key, row
        for key, row in changes[i:]:
            if row is not None:
                yield key, row

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        self._key = self._row = None


class CachePatch:
    """The stat cache changed in place for a few paths (what a restore wrote or removed),
    through ``StatCache``'s ``forget``/``remember``/``save``, without loading it: every
    other entry stays as it is, and the file is rewritten by one merge pass only if
    something changed."""

    def __init__(self, path: Path, algo: str) -> None:
        self._cursor = CacheCursor(path, algo, patch=True)

    def forget(self, relpath: str) -> None:
        self._cursor.drop(relpath)

    def remember(self, relpath: str, st: os.stat_result | Stat, digest: str, *,
                 settled: bool = False) -> None:
        """Record *digest* for *st*, only if *settled* (taken the racily-clean window
        after the file's last change); otherwise the entry is dropped."""
        if settled:
            self._cursor.set(relpath, packed_key(st) + digest.encode("ascii"))
        else:
            self._cursor.drop(relpath)

    def save(self, keep: set[str] | None = None) -> None:
        """Write the changes; *keep* is not used (the entries not changed all stay)."""
        self._cursor.save()


class CacheWriter:
    """A stat cache written entry by entry in walk order, to a temporary file that
    ``commit`` renames into place (``abort``, or a crash, leaves at most that ``.part``
    file, which ``doctor`` removes)."""

    def __init__(self, path: Path, algo: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._out = fsio.AtomicWriter(path)
        self._digest = _hasher()
        self._count = 0
        self._width: int | None = None
        self._last = b""
        self._write(_header(algo))

    def _write(self, data: bytes) -> None:
        self._digest.update(data)
        self._out.write(data)

    def add_key(self, key: bytes, row: Row) -> None:
        """*row* for the path whose ``walk_key`` is *key*; entries out of walk order are
        left out (the next walk would not find them)."""
        if key <= self._last or b"\n" in key:
            return
        width = len(row) - _KEY.size
        if self._width is None:
            self._width = width
        elif width != self._width:
            return
        self._last = key
        self._write(key[:-1] + b"\n" + row)
        self._count += 1

    def commit(self) -> None:
        try:
            self._out.write(_trailer(self._count, self._width or 0,
                                     self._digest.hexdigest().encode("ascii")))
            self._out.commit()
        except OSError:
            self._out.abort()
            return
        legacy = self.path.with_name(self.path.name[:-len(CACHE_SUFFIX)] + _LEGACY_SUFFIX)
        legacy.unlink(missing_ok=True)

    def abort(self) -> None:
        self._out.abort()


def _hasher():
    import xxhash

    return xxhash.xxh3_128()


def _checksum(*pieces: bytes) -> bytes:
    """The checksum of the pieces' concatenation."""
    digest = _hasher()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest().encode("ascii")
