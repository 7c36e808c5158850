"""Payload hashing and manifests (SPEC §5).

One record per entry below a payload root: ``<type>:<relpath>:<meta>:<hash>``; the records
sorted by their UTF-8 bytes, each followed by ``\\n``, are the manifest, and its SHA-256 is
the ``payload_root_hash``. Content hashes use the descriptor's ``payload_hash_algo``.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import re
import stat
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from jvs.errors import JvsError
from jvs.ignore import IgnoreRules

READY_MARKER = ".READY"  # the Go implementation's publish marker at a snapshot root
_CHUNK = 1 << 20


@dataclass
class HashStats:
    """What hashing cost; reported by ``snapshot --json`` so users (and tests) can see
    that unchanged files were not read."""

    files_hashed: int = 0
    bytes_hashed: int = 0


# Tuples: a scan or manifest holds one of these per file. An instance dict each made a
# 2,048-file snapshot ~20 ms slower; a NamedTuple is also built in 40% of the time of a
# frozen slotted dataclass, which counts at 100,000 entries per scan.
class Entry(NamedTuple):
    kind: str  # "dir" | "file" | "symlink"
    relpath: str
    mode: int
    size: int
    hash: str

    def record(self) -> str:
        meta = f"mode={self.mode:04o}"
        if self.kind == "file":
            meta += f",size={self.size}"
        return f"{self.kind}:{self.relpath}:{meta}:{self.hash}"

    @classmethod
    def parse(cls, record: str) -> Entry:
        kind, _, rest = record.partition(":")
        relpath, meta, digest = rest.rsplit(":", 2)
        fields = dict(part.split("=", 1) for part in meta.split(","))
        return cls(kind, relpath, int(fields["mode"], 8), int(fields.get("size", 0)), digest)


_MODE_TEXT: dict[int, str] = {}  # mode -> "mode=0644": a worktree has a handful of modes


def encoded_records(entries: Iterable[Entry]) -> list[bytes]:
    """Each entry's ``record()`` as UTF-8 bytes, in the order given: the same text, made
    in 40% of the time (one formatting of each mode; no method call per entry), which
    counts in ``status`` and the manifest of a 100,000-file worktree."""
    return [record_bytes(*e) for e in entries]


def record_bytes(kind: str, rel: str, mode: int, size: int, digest: str) -> bytes:
    """One entry's ``record()`` as UTF-8 bytes (each mode formatted once)."""
    meta = _MODE_TEXT.get(mode)
    if meta is None:
        meta = _MODE_TEXT[mode] = f"mode={mode:04o}"
    text = f"file:{rel}:{meta},size={size}:{digest}" if kind == "file" \
        else f"{kind}:{rel}:{meta}:{digest}"
    return text.encode("utf-8", "surrogateescape")


# size, mtime_ns, ctime_ns, ino: an entry's key in the stat cache (jvs.statcache packs it
# with this format); a Stat is that key, then st_mode and st_dev.
STAT_KEY_FORMAT = "<QqqQ"
_STAT = struct.Struct(STAT_KEY_FORMAT + "QQ")


class Stat(bytes):
    """The fields of an lstat that a worktree read or a copy's listing keeps for each
    entry, under their ``os.stat_result`` names, packed in 48 bytes: ~90 bytes an entry
    instead of ~290 as a tuple of ints, or ~800 as the stat itself (20 and 70 MB at
    100,000 files). Its first bytes are the entry's key in the stat cache, so checking it
    against the cache is a slice, not four attribute reads."""

    __slots__ = ()

    @classmethod
    def of(cls, st: os.stat_result) -> Stat:
        return cls(_STAT.pack(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                              st.st_mode, st.st_dev))

    st_size = property(lambda self: _STAT.unpack(self)[0])
    st_mtime_ns = property(lambda self: _STAT.unpack(self)[1])
    st_ctime_ns = property(lambda self: _STAT.unpack(self)[2])
    st_ino = property(lambda self: _STAT.unpack(self)[3])
    st_mode = property(lambda self: _STAT.unpack(self)[4])
    st_dev = property(lambda self: _STAT.unpack(self)[5])


class ScannedEntry(NamedTuple):
    """An entry found by :func:`scan`, with its lstat."""

    kind: str
    relpath: str
    st: os.stat_result


@dataclass
class ScanResult:
    entries: list[ScannedEntry] = field(default_factory=list)
    skipped_special: list[str] = field(default_factory=list)
    hardlinked: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # by .jvsignore; nothing below is walked
    # Files whose manifest entry is known without their stat (the copy engine's listing:
    # linked from the head snapshot); they are not in ``entries``.
    linked: list[Entry] = field(default_factory=list)

    def files(self) -> dict[str, os.stat_result]:
        return {e.relpath: e.st for e in self.entries if e.kind == "file"}

    def file_paths(self) -> set[str]:
        """Every regular file listed, linked ones included."""
        paths = {e.relpath for e in self.entries if e.kind == "file"}
        paths.update(e.relpath for e in self.linked)
        return paths


def hasher(algo: str):
    if algo == "xxh3-128":
        import xxhash

        return xxhash.xxh3_128()
    if algo == "sha256":
        return hashlib.sha256()
    raise JvsError("E_DESCRIPTOR_CORRUPT", f"unknown payload hash algorithm {algo!r}")


def hash_bytes(algo: str, data: bytes) -> str:
    h = hasher(algo)
    h.update(data)
    return h.hexdigest()


_buffers = threading.local()


def read_buffer() -> bytearray:
    """This thread's buffer of ``_CHUNK`` bytes for reading files, made once: one made
    per file cost a 1 MiB zero-fill for every 1 KiB file (and with big blocks mapped
    on their own, jvs.libc, a mapping and 256 page faults: verify took 65 s instead of
    3 at 100,000 files)."""
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(_CHUNK)
    return buf


def hash_file(path: Path | str, algo: str, stats: HashStats | None = None) -> str:
    h = hasher(algo)
    total = 0
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:  # O_NOATIME needs ownership
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        buf = read_buffer()
        view = memoryview(buf)
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            h.update(view[:n])
            total += n
    finally:
        os.close(fd)
    if stats is not None:
        stats.files_hashed += 1
        stats.bytes_hashed += total
    return h.hexdigest()


def relpath_text(rel: bytes) -> str:
    return rel.decode("utf-8", "surrogateescape")


def scan(root: Path, *, ready_marker: bool = False,
         ignore: IgnoreRules | None = None) -> ScanResult:
    """Walk *root* without following symlinks. FIFOs, sockets and devices are never
    opened: they are listed in ``skipped_special`` (SPEC §5: jvs skips them and records
    them in ``degraded``). With *ready_marker* (the payload of a snapshot the Go
    implementation wrote), a root ``.READY`` is its publish marker, not payload. Paths
    the *ignore* rules match are listed in ``ignored`` and not entered."""
    result = ScanResult()
    result.entries = list(iter_scan(root, result, ready_marker=ready_marker, ignore=ignore))
    return result


def iter_scan(root: Path, result: ScanResult, *, ready_marker: bool = False,
              ignore: IgnoreRules | None = None, walk_order: bool = False,
              hardlinks: bool = True) -> Iterator[ScannedEntry]:
    """:func:`scan` as a stream: the entries are yielded in the same order, one at a
    time (a caller that needs each stat only once keeps none of them: 45 MB at 100,000
    files), and what is not an entry lands in *result* (whose ``entries`` stay empty).
    With *walk_order*, each directory's names are taken as a snapshot's walk takes them
    (``jvs.statcache.walk_key``): files then come in the order of the stat cache and of
    a manifest's file records. Without *hardlinks*, files linked more than once are not
    looked for (``hardlinked`` stays empty): in a snapshot's payload nearly every file is
    linked from the next snapshot's, and remembering each would hold one entry per file."""
    if ignore is not None and not ignore:
        ignore = None
    seen_inodes: dict[tuple[int, int], str] = {}
    S_ISREG, S_ISDIR, S_ISLNK = stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK  # noqa: N806
    order = _walk_order if walk_order else _name_order
    # Names decoded and entries made by C calls, not os.fsdecode and the NamedTuple's
    # __new__ (Python functions): a fifth of a walk's time.
    encoding = sys.getfilesystemencoding()
    made = tuple.__new__

    def walk(dir_path: bytes, prefix: str) -> Iterator[ScannedEntry]:
        with os.scandir(dir_path) as it:
            items = sorted(it, key=order)
        for item in items:
            name = item.name.decode(encoding, "surrogateescape")
            if ignore is not None and ignore.match(prefix + name,
                                                   item.is_dir(follow_symlinks=False)):
                result.ignored.append(prefix + name)
                continue
            if "\n" in name or "\r" in name:
                refuse_name(prefix, name)
            if ready_marker and not prefix and name == READY_MARKER:
                continue
            rel = prefix + name
            st = item.stat(follow_symlinks=False)
            mode = st.st_mode
            if S_ISREG(mode):
                yield made(ScannedEntry, ("file", rel, st))
                if hardlinks and st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen_inodes:
                        result.hardlinked.append(rel)
                    else:
                        seen_inodes[key] = rel
            elif S_ISDIR(mode):
                yield made(ScannedEntry, ("dir", rel, st))
                yield from walk(item.path, rel + "/")
            elif S_ISLNK(mode):
                yield made(ScannedEntry, ("symlink", rel, st))
            else:
                result.skipped_special.append(rel)

    return walk(os.fsencode(root), "")


def _name_order(entry: os.DirEntry) -> bytes:
    return entry.name


def _walk_order(entry: os.DirEntry) -> bytes:
    return entry.name + (b"/" if entry.is_dir(follow_symlinks=False) else b":")


# A stat through FUSE (JuiceFS) waits ~50-100 us for its reply: with several in flight a
# 10,000-file walk took 0.23 s instead of 0.35-0.53 s (4 threads; 8 and 16 no better).
# On a local filesystem a walk is CPU-bound and threads only add contention.
PARALLEL_SCAN_THREADS = 4
_STAT_CHUNK = 128  # names stat-ed per task: a flat folder of 10,000 files is spread too


def scan_parallel(root: Path, *, ready_marker: bool = False,
                  ignore: IgnoreRules | None = None,
                  threads: int = PARALLEL_SCAN_THREADS) -> ScanResult:
    """:func:`scan`, with the directory listings and stats of a network or FUSE
    filesystem issued from several threads: the same result, in the same order."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    if ignore is not None and not ignore:
        ignore = None
    fsdecode = os.fsdecode
    listed: dict[str, list[tuple[str, os.DirEntry | None]]] = {}  # prefix -> (rel, item)
    stats: dict[tuple[str, int], list[os.stat_result]] = {}  # (prefix, chunk) -> stats

    def list_dir(path: bytes, prefix: str) -> list[tuple[str, os.DirEntry | None]]:
        with os.scandir(path) as it:
            items = sorted(it, key=lambda e: e.name)
        out: list[tuple[str, os.DirEntry | None]] = []
        for item in items:
            name = fsdecode(item.name)
            if ignore is not None and ignore.match(prefix + name,
                                                   item.is_dir(follow_symlinks=False)):
                out.append((prefix + name, None))  # ignored: listed, not stat-ed
                continue
            if "\n" in name or "\r" in name:
                refuse_name(prefix, name)
            if ready_marker and not prefix and name == READY_MARKER:
                continue
            out.append((prefix + name, item))
        return out

    def stat_chunk(items: list[tuple[str, os.DirEntry | None]]) -> list[os.stat_result]:
        return [item.stat(follow_symlinks=False) if item is not None else None
                for _, item in items]

    with ThreadPoolExecutor(threads) as pool:
        pending = {pool.submit(list_dir, os.fsencode(root), ""): ("list", "", 0)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                what, prefix, chunk = pending.pop(future)
                if what == "list":
                    items = listed[prefix] = future.result()
                    for n in range(0, max(len(items), 1), _STAT_CHUNK):
                        task = pool.submit(stat_chunk, items[n:n + _STAT_CHUNK])
                        pending[task] = ("stat", prefix, n)
                    continue
                found = stats[(prefix, chunk)] = future.result()
                for (rel, item), st in zip(listed[prefix][chunk:chunk + _STAT_CHUNK], found,
                                           strict=True):
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        pending[pool.submit(list_dir, item.path, rel + "/")] = \
                            ("list", rel + "/", 0)

    result = ScanResult()
    seen_inodes: dict[tuple[int, int], str] = {}

    def emit(prefix: str) -> None:
        items = listed[prefix]
        for n in range(0, len(items), _STAT_CHUNK):
            for (rel, _), st in zip(items[n:n + _STAT_CHUNK], stats[(prefix, n)],
                                    strict=True):
                if st is None:
                    result.ignored.append(rel)
                    continue
                mode = st.st_mode
                if stat.S_ISREG(mode):
                    result.entries.append(ScannedEntry("file", rel, st))
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in seen_inodes:
                            result.hardlinked.append(rel)
                        else:
                            seen_inodes[key] = rel
                elif stat.S_ISDIR(mode):
                    result.entries.append(ScannedEntry("dir", rel, st))
                    emit(rel + "/")
                elif stat.S_ISLNK(mode):
                    result.entries.append(ScannedEntry("symlink", rel, st))
                else:
                    result.skipped_special.append(rel)

    emit("")
    return result


def walk_worktree(root: Path, result: ScanResult, *,
                  ignore: IgnoreRules | None = None) -> Iterator[ScannedEntry]:
    """A worktree's entries as :func:`iter_scan` streams them, from the walk that suits
    its filesystem: the streaming one on a local disk, :func:`scan_parallel` (listed at
    once) over FUSE or a network, where waiting for each stat's reply dominates."""
    from jvs.mountinfo import on_local_filesystem

    if on_local_filesystem(root):
        return iter_scan(root, result, ignore=ignore)
    found = scan_parallel(root, ignore=ignore)
    result.skipped_special += found.skipped_special
    result.hardlinked += found.hardlinked
    result.ignored += found.ignored
    return iter(found.entries)


def refuse_name(prefix: str, name: str) -> None:
    """A name with a line break cannot be a manifest record."""
    raise JvsError("E_NAME_INVALID",
                   f"file name with a line break cannot be recorded: {prefix}{name!r}",
                   hint="rename the file")


KnownHash = Callable[[ScannedEntry], "str | None"]


def entries_of(root: Path, scanned: ScanResult | Iterable[ScannedEntry], algo: str,
               stats: HashStats, known: KnownHash | None = None) -> list[Entry]:
    """Hash records for a scanned tree (a scan, or a stream of its entries); *known* may
    supply a file's content hash (from the stat cache) so the file is not read."""
    return list(iter_entries(root, scanned, algo, stats, known))


def iter_entries(root: Path, scanned: ScanResult | Iterable[ScannedEntry], algo: str,
                 stats: HashStats, known: KnownHash | None = None) -> Iterator[Entry]:
    """:func:`entries_of`, one entry at a time."""
    for e in scanned.entries if isinstance(scanned, ScanResult) else scanned:
        kind, rel, st = e.kind, e.relpath, e.st
        mode = stat.S_IMODE(st.st_mode)
        if kind == "file":
            digest = known(e) if known else None
            if digest is None:
                digest = hash_file(os.path.join(root, rel), algo, stats)
            yield Entry("file", rel, mode, st.st_size, digest)
        elif kind == "dir":
            digest = hash_bytes(algo, os.fsencode(rel.rpartition("/")[2]))
            yield Entry("dir", rel, mode, 0, digest)
        else:
            digest = hash_bytes(algo, os.fsencode(os.readlink(os.path.join(root, rel))))
            yield Entry("symlink", rel, mode, 0, digest)


def manifest_bytes(entries: list[Entry]) -> bytes:
    records = encoded_records(entries)
    records.sort()
    return b"\n".join(records) + b"\n" if records else b""


def root_hash(manifest: bytes) -> str:
    return hashlib.sha256(manifest).hexdigest()


def parse_manifest(data: bytes) -> Iterator[Entry]:
    # The records of a big worktree are parsed by the 100,000: the meta of the two shapes
    # SPEC §5 defines is split by hand (a third of Entry.parse's time), anything else by
    # Entry.parse.
    for line in data.split(b"\n"):
        if not line:
            continue
        text = line.decode("utf-8", "surrogateescape")
        kind, _, rest = text.partition(":")
        relpath, meta, digest = rest.rsplit(":", 2)
        mode, comma, size = meta.partition(",")
        if mode.startswith("mode=") and (not comma or size.startswith("size=")) \
                and (kind == "file") == bool(comma):
            yield Entry(kind, relpath, int(mode[5:], 8), int(size[5:]) if comma else 0, digest)
        else:
            yield Entry.parse(text)


def compute_payload(root: Path, algo: str, *, ready_marker: bool = False,
                    stats: HashStats | None = None) -> tuple[bytes, str]:
    """Manifest bytes and root hash of a tree, reading every file."""
    scanned = scan(root, ready_marker=ready_marker)
    manifest = manifest_bytes(entries_of(root, scanned, algo, stats or HashStats()))
    return manifest, root_hash(manifest)


# The stored form of a manifest (docs/format.md, "Stored form"): the records without their
# hashes, zlib-compressed, then every record's hash as raw bytes. Hex digests do not
# compress (zlib still spends ~16 bytes on 32 hex digits) and paths compress very well:
# 100,000 files in 500 directories take 77 bytes per entry as text, 24 as zlib of the
# text, 18 in this form (tools/bench_scale.py --files). Each manifest stands alone, so
# gc deletes one without touching any other.
STORED_MAGIC = b"jvs-manifest-z1"


def encode_manifest(manifest: bytes) -> bytes:
    """The stored form of *manifest* (the records text); the text itself when its hashes
    are not all lowercase hex of one width (then it cannot be rebuilt byte for byte)."""
    count = manifest.count(b"\n")
    if not count or not manifest.endswith(b"\n"):
        return manifest
    first = manifest[:manifest.index(b"\n")]
    width = len(first) - first.rindex(b":") - 1 if b":" in first else 0
    if not width or width % 2:
        return manifest
    # A record cannot hold a line break, so ":<hash>\n" matches only at a record's end;
    # a record whose hash has another width or is not lowercase hex does not match, and
    # the text is then stored as it is.
    tail = re.compile(rb":[0-9a-f]{%d}\n" % width)
    # One pass into two buffers (the records' texts, their hashes): lists of 100,000
    # pieces, which findall and sub build, were 30 MB of objects for a 7 MB manifest.
    texts, hexes = bytearray(), bytearray()
    view = memoryview(manifest)
    found = pos = 0
    for match in tail.finditer(manifest):
        start, end = match.span()
        texts += view[pos:start]
        texts += b"\n"
        hexes += view[start + 1:end - 1]
        pos = end
        found += 1
    del view
    if found != count:
        return manifest
    packed = zlib.compress(memoryview(texts)[:-1], 6)
    del texts
    header = b"%s %d %d %d\n" % (STORED_MAGIC, count, width, len(packed))
    return header + packed + binascii.unhexlify(hexes)


def decode_manifest(stored: bytes) -> bytes:
    """The records text of a stored manifest (the text itself, as older jvs and the Go
    implementation store it, is returned as it is). Raises ValueError on a damaged one."""
    if not stored.startswith(STORED_MAGIC + b" "):
        return stored
    header, _, rest = stored.partition(b"\n")
    try:
        _, count, width, packed_len = header.split(b" ")
        count, width, packed_len = int(count), int(width), int(packed_len)
        texts = zlib.decompress(rest[:packed_len])
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"damaged stored manifest: {exc}") from None
    digests = rest[packed_len:].hex().encode("ascii")
    if texts.count(b"\n") + 1 != count or len(digests) != count * width:
        raise ValueError("damaged stored manifest: record count")
    # Written into one buffer, record by record: a list of every record (and of every
    # record's text) first was ~30 MB of objects at 100,000 files, for a 7 MB result.
    out = bytearray()
    view, hexes = memoryview(texts), memoryview(digests)
    start = 0
    for i in range(count):
        end = texts.find(b"\n", start)
        if end < 0:
            end = len(texts)
        out += view[start:end]
        out += b":"
        out += hexes[i * width:(i + 1) * width]
        out += b"\n"
        start = end + 1
    del view, hexes
    return bytes(out)


class StoredManifestWriter:
    """The stored form of a manifest whose records arrive in their final (sorted) order,
    batch by batch, with its root hash: what ``encode_manifest`` makes of the whole text,
    byte for byte, holding only the compressed texts and the raw hashes (~20 bytes per
    record) instead of the text (~70). ``finish`` returns None when a record cannot be
    stored that way (its hash not lowercase hex of the first one's width): the caller then
    stores the text as it is."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._zlib = zlib.compressobj(6)
        self._packed: list[bytes] = []
        self._hashes = bytearray()
        self._count = 0
        self._width = 0
        self._tail: re.Pattern | None = None
        self.storable = True

    def feed(self, records: list[bytes]) -> None:
        if not records:
            return
        block = b"\n".join(records) + b"\n"
        self._sha.update(block)
        if not self.storable:
            return
        if self._tail is None:
            first = records[0]
            self._width = len(first) - first.rindex(b":") - 1 if b":" in first else 0
            if not self._width or self._width % 2:
                self.storable = False
                return
            self._tail = re.compile(rb":[0-9a-f]{%d}\n" % self._width)
        texts, hexes = bytearray(), bytearray()
        view = memoryview(block)
        found = pos = 0
        for match in self._tail.finditer(block):
            start, end = match.span()
            if self._count or found:
                texts += b"\n"
            texts += view[pos:start]
            hexes += view[start + 1:end - 1]
            pos = end
            found += 1
        view.release()
        if found != len(records):
            self.storable = False
            return
        self._packed.append(self._zlib.compress(texts))
        self._hashes += binascii.unhexlify(hexes)
        self._count += found

    def root_hash(self) -> str:
        return self._sha.hexdigest()

    def finish(self) -> list[bytes] | None:
        """The stored form's pieces, or None (see above); ``[]`` for no records."""
        if not self.storable:
            return None
        if not self._count:
            return [b""]
        self._packed.append(self._zlib.flush())
        packed_len = sum(len(p) for p in self._packed)
        header = b"%s %d %d %d\n" % (STORED_MAGIC, self._count, self._width, packed_len)
        return [header, *self._packed, self._hashes]


def iter_stored_records(manifest_path: Path) -> Iterator[list[bytes]]:
    """A stored manifest's records (without their line breaks), in order, batch by batch,
    reading it piece by piece: a manifest of any size costs a batch of memory. Raises
    OSError, or ValueError on a damaged one (not yet checked against any root hash)."""
    with open(manifest_path, "rb", buffering=0) as f:
        head = f.read(len(STORED_MAGIC) + 1)
        if head != STORED_MAGIC + b" ":
            yield from _iter_text_records(f, head)
            return
        header = head + f.readline()
        try:
            _, count, width, packed_len = header.split(b" ")
            count, width, packed_len = int(count), int(width), int(packed_len)
        except ValueError:
            raise ValueError("damaged stored manifest: header") from None
        packed = f.read(packed_len)
        if len(packed) != packed_len:
            raise ValueError("damaged stored manifest: cut short")
        unpack = zlib.decompressobj()

        def texts() -> Iterator[bytes]:
            data = packed
            try:
                while data:
                    out = unpack.decompress(data, _CHUNK)
                    data = unpack.unconsumed_tail
                    if out:
                        yield out
                out = unpack.flush()
            except zlib.error as exc:
                raise ValueError(f"damaged stored manifest: {exc}") from None
            if out:
                yield out
            if not unpack.eof:
                raise ValueError("damaged stored manifest: cut short")

        def with_hashes(lines: list[bytes]) -> list[bytes]:
            raw = f.read(len(lines) * (width // 2))
            if len(raw) != len(lines) * (width // 2):
                raise ValueError("damaged stored manifest: hashes cut short")
            hexes = raw.hex().encode("ascii")
            return [line + b":" + hexes[i * width:(i + 1) * width]
                    for i, line in enumerate(lines)]

        pending = b""
        seen = 0
        for chunk in texts():
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            seen += len(lines)
            if seen >= count:
                raise ValueError("damaged stored manifest: record count")
            if lines:
                yield with_hashes(lines)
        if count:
            yield with_hashes([pending])
        elif pending:
            raise ValueError("damaged stored manifest: record count")
        if f.read(1):
            raise ValueError("damaged stored manifest: trailing bytes")


def _iter_text_records(f, head: bytes) -> Iterator[list[bytes]]:
    """The records of a manifest stored as its text (older jvs, the Go implementation)."""
    pending = head
    while True:
        chunk = f.read(_CHUNK)
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if lines:
            yield lines
        if not chunk:
            if pending:
                raise ValueError("manifest text does not end with a line break")
            return


def read_manifest_file(manifest_path: Path) -> bytes | None:
    """A stored manifest's records text, or None if it is missing or damaged (not yet
    checked against any root hash)."""
    try:
        return decode_manifest(manifest_path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def read_trusted_bytes(manifest_path: Path, payload_root_hash: str) -> bytes | None:
    """The manifest's records text, or None if it is missing, damaged, or does not hash to
    the root hash (a manifest is only trusted after its own hash matches)."""
    data = read_manifest_file(manifest_path)
    if data is None or root_hash(data) != payload_root_hash:
        return None
    return data


def read_trusted_manifest(manifest_path: Path, payload_root_hash: str) -> list[Entry] | None:
    """The manifest's entries, or None if it is missing or does not hash to the root hash
    (a manifest is only trusted after its own hash matches)."""
    data = read_trusted_bytes(manifest_path, payload_root_hash)
    return None if data is None else list(parse_manifest(data))


def file_records(manifest: bytes) -> dict[str, tuple[int, int, str]]:
    """relpath → (mode, size, hash) of the files a manifest records; a lean parse for
    the 100,000s of records of a big worktree (no Entry per record)."""
    out: dict[str, tuple[int, int, str]] = {}
    modes: dict[bytes, int] = {}  # one int object per mode, not per file
    for line in manifest.split(b"\n"):
        if line.startswith(b"file:"):
            rest, meta, digest = line[5:].rsplit(b":", 2)
            mode, _, size = meta.partition(b",")
            value = modes.get(mode)
            if value is None:
                value = modes[mode] = int(mode[5:], 8)
            out[rest.decode("utf-8", "surrogateescape")] = (
                value, int(size[5:]), digest.decode("ascii"))
    return out
