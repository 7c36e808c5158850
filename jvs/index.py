"""``.jvs/index.sqlite``: a rebuildable cache of descriptors, so that listing 20,000
snapshots does not open 20,000 files.

The descriptors are the truth; the index is never trusted over them. Every read starts with
one ``os.listdir`` of ``descriptors/`` and compares the published IDs with the IDs the
index holds: descriptors that appeared are read and added, rows whose descriptor vanished
(collected by ``gc``) are dropped. Because that listing is taken on every read, a host on a
shared JuiceFS volume never answers from a stale index, whichever host wrote it.

A descriptor's name is its identity, so a set comparison finds every snapshot that
appeared or went. The one change in place is a relabel (``jvs tag``, ``jvs note``: the
descriptor is replaced atomically, with a new checksum), and the relabelling command
updates its row itself, under the repository lock (``record_rewrite``). A reader's refresh
that read descriptor files before a relabel must not store what it read after it: every
relabel changes the index's ``generation``, and a refresh stores only if the generation is
still the one it started from. ``doctor`` compares every row with its file and
``doctor --repair rebuild_index`` rebuilds it; deleting the file only costs one slow read.

Writing the index is best effort: readers (``history``, the view) refresh it without the
repository lock, and an index that is locked, read-only or corrupt is bypassed (and a
corrupt one replaced), never an error.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from jvs.descriptor import Descriptor, parse_descriptor
from jvs.errors import JvsError
from jvs.names import SNAPSHOT_ID_RE
from jvs.repo import Repo

INDEX_VERSION = "3"
_BUSY_TIMEOUT_S = 0.5
# Descriptor fields stored in one text column, joined by _SEP (one column converts ~4x
# faster than fourteen). List fields are JSON text; None and empty are "".
_FIELDS = ("parent_id", "worktree_name", "created_at", "note", "tags", "engine",
           "payload_hash_algo", "payload_root_hash", "descriptor_checksum", "integrity_state",
           "partial_paths", "restored_from", "kind", "degraded")
_LISTS = ("tags", "partial_paths", "degraded")
_SEP = "\x1f"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, canonical INTEGER, "
           "raw BLOB, fields TEXT)")
_SELECT = ("SELECT id, canonical, CASE WHEN canonical THEN NULL ELSE raw END, fields "
           "FROM snapshots ORDER BY id")


def index_path(repo: Repo) -> Path:
    return repo.jvs_dir / "index.sqlite"


# Names are joined with "/", the one character a file name cannot hold.
_DESCRIPTOR_NAME = re.compile(rf"(?:^|/)({SNAPSHOT_ID_RE.pattern})\.json(?=/|$)")


def published_ids(repo: Repo) -> set[str]:
    """IDs whose descriptor exists: one listdir, the freshness check of the index."""
    try:
        names = os.listdir(repo.descriptors_dir)
    except FileNotFoundError:
        return set()
    # One regex pass over all the names: 20,000 separate matches cost three times more.
    return set(_DESCRIPTOR_NAME.findall("/".join(names)))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    # DELETE journal (not WAL): WAL needs shared memory, which hosts sharing a volume lack.
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")  # a cache: a torn write is detected and rebuilt
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    row = conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
    if row is not None and row[0] != INDEX_VERSION:
        conn.execute("DROP TABLE IF EXISTS snapshots")
        # A reader of an index it could not use expects no generation (see _store).
        conn.execute("DELETE FROM meta WHERE key='generation'")
    conn.execute(_SCHEMA)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (INDEX_VERSION,))
    return conn


def _query(path: Path, sql: str) -> list[tuple] | None:
    """Rows of a read-only query, or None if there is no usable index."""
    return _query_at_generation(path, sql)[0]


def _query_at_generation(path: Path, sql: str) -> tuple[list[tuple] | None, str | None]:
    """(rows of a read-only query or None if there is no usable index, the index's
    generation when they were read), in one read transaction."""
    if not path.exists():
        return None, None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S)
        try:
            conn.execute("BEGIN")
            version = conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            if version is None or version[0] != INDEX_VERSION:
                return None, None
            rows = conn.execute(sql).fetchall()
            return rows, _generation(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None, None


def _generation(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    return row[0] if row else None


def _read_descriptor_file(repo: Repo, sid: str) -> bytes | None:
    try:
        return repo.descriptor_path(sid).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _row_of(sid: str, data: bytes, desc: Descriptor | None = None) -> tuple:
    """The index row of a descriptor file (*desc*: *data* already parsed). *canonical*
    means the fields alone rebuild the descriptor exactly (no unknown fields, nothing
    absent that ``to_json`` would add, no separator inside a value), so a listing can skip
    parsing the JSON; other descriptors (e.g. Go-written ones) are parsed from ``raw``."""
    if desc is None:
        try:
            desc = parse_descriptor(data)
        except JvsError:
            return (sid, 0, data, None)
    values = []
    for name in _FIELDS:
        value = getattr(desc, name)
        if name in _LISTS:
            value = json.dumps(list(value)) if value else ""
        values.append(value or "")
    fields = _SEP.join(values)
    # An explicit "kind": "snapshot" in the file is not rebuilt from the fields (an
    # ordinary snapshot's file has no "kind"), so such a file is kept raw.
    canonical = int(desc.snapshot_id == sid and not desc.extra and desc.to_json() == desc.raw
                    and (desc.raw or {}).get("kind") != "snapshot"
                    and fields.count(_SEP) == len(_FIELDS) - 1)
    return (sid, canonical, data, fields)


def _store(path: Path, added: list[tuple], removed: Iterable[str], *,
           rebuild: bool, generation: str | None = None, check: bool = False) -> bool:
    """Apply changes to the index file; False if it could not be written, or (with
    *check*) if a relabel changed its *generation* since the caller read it."""
    try:
        conn = _connect(path)
    except sqlite3.OperationalError:
        return False  # locked by another reader's refresh: leave it to them
    except sqlite3.DatabaseError:
        # Not a database at all (torn or overwritten): replace it.
        try:
            path.unlink(missing_ok=True)
            conn = _connect(path)
        except (OSError, sqlite3.Error):
            return False
    except (OSError, sqlite3.Error):
        return False
    try:
        conn.execute("BEGIN IMMEDIATE")
        if check and _generation(conn) != generation:
            conn.execute("ROLLBACK")
            return False  # what the caller read may predate a relabel: the next read redoes it
        if rebuild:
            conn.execute("DELETE FROM snapshots")
        conn.executemany("DELETE FROM snapshots WHERE id=?", ((sid,) for sid in removed))
        conn.executemany("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)", added)
        conn.execute("COMMIT")
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _descriptor_of(row: tuple) -> Descriptor | None:
    sid, canonical, raw, fields = row
    if not canonical:
        if raw is None:
            return None
        try:
            desc = parse_descriptor(raw)
        except JvsError:
            return None
        return desc if desc.snapshot_id == sid else None
    (parent_id, worktree_name, created_at, note, tags, engine, algo, root, checksum, state,
     partial, restored_from, kind, degraded) = fields.split(_SEP)
    desc = object.__new__(Descriptor)
    # Canonical rows rebuild the descriptor exactly (checked when the row was written), so
    # raw=None is equivalent: its checksum is computed over to_json().
    desc.__dict__.update(
        snapshot_id=sid, worktree_name=worktree_name, created_at=created_at, engine=engine,
        payload_hash_algo=algo, payload_root_hash=root, parent_id=parent_id or None,
        note=note, tags=tuple(json.loads(tags)) if tags else (),
        descriptor_checksum=checksum, integrity_state=state,
        partial_paths=tuple(json.loads(partial)) if partial else (),
        restored_from=restored_from or None, kind=kind or "snapshot",
        degraded=tuple(json.loads(degraded)) if degraded else (), extra={}, raw=None)
    return desc


def load_descriptors(repo: Repo) -> list[Descriptor]:
    """Every published, parseable descriptor, oldest first: from the index where it is
    current, reading only descriptors it does not hold yet and dropping vanished ones."""
    path = index_path(repo)
    ids = published_ids(repo)
    rows, generation = _query_at_generation(path, _SELECT)
    rebuild = rows is None
    rows = rows or []
    present = {row[0] for row in rows}
    stale = present - ids
    added = []
    for sid in sorted(ids - present):
        data = _read_descriptor_file(repo, sid)
        if data is not None:
            added.append(_row_of(sid, data))
    if rebuild or stale or added:
        _store(path, added, stale, rebuild=rebuild, generation=generation, check=True)
    out = []
    for row in rows:
        if row[0] in stale:
            continue
        desc = _descriptor_of(row)
        if desc is not None:
            out.append(desc)
    if added:
        out += [d for d in map(_descriptor_of, added) if d is not None]
        out.sort(key=lambda d: d.snapshot_id)
    return out


# How long a relabel waits for readers' refreshes (each a short transaction) before it
# gives up on updating the index and removes it instead.
_REWRITE_TIMEOUT_S = 5.0


def record_rewrite(repo: Repo, sid: str, data: bytes) -> None:
    """After a relabel replaced the descriptor of *sid* with *data* (the caller holds the
    repository lock): its row, and a new generation so that no refresh that started
    earlier stores what it read. If the index cannot be written, it is removed (the next
    reader rebuilds it): a row older than its descriptor must not stay."""
    path = index_path(repo)
    if not path.exists():
        return  # the next reader builds it from the files
    try:
        conn = sqlite3.connect(path, timeout=_REWRITE_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                         _row_of(sid, data))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)",
                         (os.urandom(8).hex(),))
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error:
        path.unlink(missing_ok=True)


def rebuild_index(repo: Repo) -> int:
    """Rebuild the index from the descriptors alone; the number of snapshots indexed."""
    path = index_path(repo)
    added = []
    for sid in sorted(published_ids(repo)):
        data = _read_descriptor_file(repo, sid)
        if data is not None:
            added.append(_row_of(sid, data))
    path.unlink(missing_ok=True)
    if not _store(path, added, (), rebuild=True):
        raise JvsError("E_IO", f"cannot write {path}")
    return len(added)


def index_discrepancies(repo: Repo, files: dict[str, bytes] | None = None,
                        parsed: dict[str, Descriptor] | None = None) -> list[str]:
    """Rows of the index that differ from their descriptor file (empty: the index agrees,
    or there is no index). Reads every descriptor (unless *files* already holds them, and
    *parsed* those of them that parse): for ``doctor``, not for listing."""
    path = index_path(repo)
    rows = _query(path, "SELECT * FROM snapshots")
    if rows is None:
        return ["index is unreadable"] if path.exists() else []
    ids = published_ids(repo)
    out = []
    for row in rows:
        sid = row[0]
        if sid not in ids:
            continue
        data = files.get(sid) if files is not None else _read_descriptor_file(repo, sid)
        desc = parsed.get(sid) if parsed is not None else None
        if data is not None and tuple(row) != _row_of(sid, data, desc):
            out.append(f"{sid}: index row differs from the descriptor")
    return out


# Apparent payload sizes, filled lazily by ``gc plan`` (a snapshot never changes, so a
# size once computed stays right; rows of collected snapshots are merely unused).
_SIZES_SCHEMA = "CREATE TABLE IF NOT EXISTS sizes (id TEXT PRIMARY KEY, bytes INTEGER)"


def cached_sizes(repo: Repo) -> dict[str, int]:
    path = index_path(repo)
    if not path.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S)
        try:
            return dict(conn.execute("SELECT id, bytes FROM sizes"))
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def store_sizes(repo: Repo, sizes: dict[str, int]) -> None:
    """Best effort, like every index write."""
    if not sizes:
        return
    try:
        conn = sqlite3.connect(index_path(repo), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(_SIZES_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO sizes VALUES (?, ?)", sizes.items())
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error:
        pass
