"""A snapshot's manifest read front to back beside a walk in walk order, and a new one
made beside a walk.

A manifest's file records are sorted by ``relpath + ":"`` and the rest of the record
(SPEC §5), which is the walk order of files (``jvs.statcache.walk_key``) unless a name
holds a ``:``; its directory records come before them and its symlink records after. So a
walk can ask for each file's record as it meets the file, and the manifest is read once,
a batch at a time, at any size. Every record is hashed on the way: ``trusted`` says, once
all is read, whether the manifest is the one the descriptor's root hash names, and a
caller uses what it read only then (or starts over without it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from jvs import fsio
from jvs.integrity import (
    Entry,
    StoredManifestWriter,
    encode_manifest,
    iter_stored_records,
    record_bytes,
)
from jvs.statcache import walk_key

_SPILL_STEP = 1 << 20
_BATCH = 4096


class HeadRecords:
    """The records of a manifest, for a walk that asks for its files in walk order.

    ``get(rel)``/``file_record(rel)`` move forward to *rel*'s file record. With
    *keep_others*, what the walk did not ask for is kept: the file records passed over
    (``passed``: files not in the walk, or asked for out of order), and the directory and
    symlink records by path (``dirs``, ``symlinks``), for a comparison with the walk."""

    def __init__(self, manifest_path: Path, payload_root_hash: str, *,
                 keep_others: bool = False) -> None:
        self._expected = payload_root_hash
        self._records = HashedRecords(manifest_path)
        self._damaged = False  # a line that is no record
        self._keep = keep_others
        self.passed: list[bytes] = []
        self.dirs: dict[str, bytes] = {}
        self.symlinks: dict[str, bytes] = {}
        self._record: bytes | None = None  # the file record the cursor stands on
        self._key: bytes | None = None  # its walk key, once asked for (None: not yet)
        self._matched = False
        self._advance()

    @property
    def count(self) -> int:
        """Records read so far (all of them once ``trusted`` returned)."""
        return self._records.count

    def _advance(self) -> None:
        """Step to the next file record (a walk asks for nearly every one in turn: this
        is kept to a few operations; its walk key is taken only when compared)."""
        if self._keep and self._record is not None and not self._matched:
            self.passed.append(self._record)
        self._matched = False
        self._key = None
        records = self._records
        while True:
            if records.pos < len(records.batch):
                record = records.batch[records.pos]
                records.pos += 1
            else:
                record = records.next()
                if record is None:
                    self._record = None
                    return
            if record.startswith(b"file:"):
                self._record = record
                return
            if self._keep and record:
                try:
                    kind, _, rest = record.partition(b":")
                    rel = rest[:rest.rindex(b":", 0, rest.rindex(b":"))]
                except ValueError:  # not a record: the manifest is damaged, and not trusted
                    self._damaged = True
                    self._record = None
                    return
                into = self.dirs if kind == b"dir" else self.symlinks
                into[rel.decode("utf-8", "surrogateescape")] = record

    def _current_key(self) -> bytes | None:
        """The walk key of the record the cursor stands on (None at the end)."""
        record = self._record
        if record is not None and self._key is None:
            try:
                self._key = record[5:record.rindex(b":", 5, record.rindex(b":")) + 1]
            except ValueError:  # not a record: the manifest is damaged, and not trusted
                self._damaged = True
                self._record = None
        return self._key

    def file_record(self, rel: str) -> bytes | None:
        """The record of the file *rel*; None if there is none (or *rel* comes out of walk
        order)."""
        return self.match(walk_key(rel))

    def match(self, want: bytes, record: bytes | None = None) -> bytes | None:
        """The record of the file whose walk key is *want* (see ``file_record``); given
        the walk's own *record* of the file, one comparison finds it when the two are
        the same (a file that did not change)."""
        if self._matched:
            if self._key == want:
                return self._record  # asked again
            self._advance()  # (the last file asked for: the walk is past it)
        if record is not None and self._record == record:
            self._matched = True
            self._key = want  # (the walk's record is of the file *want*)
            return record
        while (key := self._current_key()) is not None and key < want:
            self._advance()
        if self._key != want or self._record is None:
            return None
        self._matched = True
        return self._record

    def get(self, rel: str) -> tuple[int, int, str] | None:
        """(mode, size, hash) of the file *rel* (see ``file_record``)."""
        record = self.file_record(rel)
        if record is None:
            return None
        meta, digest = record[len(walk_key(rel)) + 5:].rsplit(b":", 1)
        mode, _, size = meta.partition(b",")
        try:
            return int(mode[5:], 8), int(size[5:]), digest.decode("ascii")
        except ValueError:
            return None  # not a record jvs writes: nothing to link

    def trusted(self) -> bool:
        """Read the rest; whether the whole manifest hashes to the root hash."""
        if self._matched:
            self._advance()
        while self._keep and self._current_key() is not None:
            self._advance()
        return not self._damaged and self._records.root_hash() == self._expected


class HashedRecords:
    """A stored manifest's records one at a time (``next``), read a batch at a time and
    each batch hashed as it is read, so ``root_hash`` can tell once the rest is read
    whether they were the manifest its descriptor names."""

    def __init__(self, path: Path) -> None:
        self._batches = iter_stored_records(path)
        self._sha = hashlib.sha256()
        self.batch: list[bytes] = []  # the batch read last, and the next record's place in
        self.pos = 0  # it (a reader that takes records in a loop may step through these)
        self._damaged = False
        self.count = 0  # records read so far

    def _load(self) -> bool:
        try:
            self.batch = next(self._batches)
        except StopIteration:
            return False
        except (OSError, ValueError):
            self._damaged = True  # missing, unreadable or damaged
            return False
        self.pos = 0
        self.count += len(self.batch)
        self._sha.update(_block(self.batch))
        return True

    def next(self) -> bytes | None:
        """The next record; None at the end (or where the file could not be read)."""
        while self.pos == len(self.batch):
            if not self._load():
                return None
        record = self.batch[self.pos]
        self.pos += 1
        return record

    def root_hash(self) -> str | None:
        """Read the rest; the hash of all the records, None if the file could not be read."""
        while self._load():
            pass
        return None if self._damaged else self._sha.hexdigest()


def _block(batch: list[bytes]) -> bytes:
    """A batch of records as the manifest text holds them (each followed by a line break)."""
    return b"\n".join(batch) + b"\n" if batch else b""


class ManifestBuilder:
    """A manifest's records as a walk makes them, in walk order, sorted at the end: file
    records go to an unnamed temporary file (in walk order, which is their sorted order
    unless a name holds a ``:``; then they are sorted at the end); the few directory and
    symlink records are kept and sorted at the end."""

    def __init__(self, spill_dir: Path | None = None) -> None:
        """*spill_dir*: where the temporary file is made (the system's temporary
        directory by default)."""
        self._dirs: list[bytes] = []
        self._symlinks: list[bytes] = []
        # Unnamed (O_TMPFILE): nothing of it outlives the process, crash or not.
        import tempfile  # (here: status and diff, which make no manifest, need not load it)

        self._spill = tempfile.TemporaryFile(dir=spill_dir, buffering=0)
        self._pending = bytearray()
        self._last = b""
        self._in_order = True

    def add(self, entry: Entry) -> None:
        record = record_bytes(*entry)
        if entry.kind == "file":
            self.add_file(record)
        elif entry.kind == "dir":
            self._dirs.append(record)
        else:
            self._symlinks.append(record)

    def add_dir(self, record: bytes) -> None:
        self._dirs.append(record)

    def add_symlink(self, record: bytes) -> None:
        self._symlinks.append(record)

    def add_file(self, record: bytes) -> None:
        if record <= self._last:
            self._in_order = False
        self._last = record
        self._pending += record
        self._pending += b"\n"
        if len(self._pending) >= _SPILL_STEP:
            self._flush()

    def _flush(self) -> None:
        view = memoryview(self._pending)
        while view:  # a raw file: a write may take only part of it
            view = view[self._spill.write(view):]
        view.release()
        self._pending.clear()

    def _files(self):
        self._flush()
        self._spill.seek(0)
        if not self._in_order:  # a name with a ":" (SPEC §5 sorts whole records)
            records = self._spill.read().split(b"\n")
            records.pop()
            records.sort()
            for i in range(0, len(records), _BATCH):
                yield records[i:i + _BATCH]
            return
        rest = b""
        while chunk := self._spill.read(_SPILL_STEP):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield lines

    def batches(self):
        """The records in their sorted order (SPEC §5), batch by batch."""
        self._dirs.sort()
        yield self._dirs
        yield from self._files()
        self._symlinks.sort()
        yield self._symlinks

    def root_hash(self) -> str:
        digest = hashlib.sha256()
        for batch in self.batches():
            digest.update(_block(batch))
        return digest.hexdigest()

    def text(self) -> bytes:
        """The whole manifest text (for a comparison that needs it: a tampered payload)."""
        return b"".join(_block(batch) for batch in self.batches())

    def write(self, path: Path) -> str:
        """Write the stored manifest to *path*; its root hash."""
        out = StoredManifestWriter()
        for batch in self.batches():
            out.feed(batch)
        pieces = out.finish()
        if pieces is None:  # hashes jvs cannot store packed: the text as it is
            pieces = [encode_manifest(self.text())]
        fsio.write_bytes_atomic(path, pieces, durable=False)
        return out.root_hash()

    def close(self) -> None:
        self._spill.close()


def stored_root_hash(manifest_path: Path) -> str | None:
    """The root hash of a stored manifest's records, read a batch at a time; None if it is
    missing or damaged."""
    return HashedRecords(manifest_path).root_hash()


def differing_records(old: tuple[Path, str], new: tuple[Path, str]
                      ) -> tuple[list[bytes], list[bytes]] | None:
    """The records of two stored manifests (each a path and the root hash it must have)
    that the other one does not hold, found by merging the two sorted streams a batch at
    a time: memory for what differs, not for every record. None if either manifest is
    missing, damaged or not the one its root hash names."""
    sides = [HashedRecords(path) for path, _ in (old, new)]
    gone: list[bytes] = []
    added: list[bytes] = []
    a, b = sides[0].next(), sides[1].next()
    while a is not None or b is not None:
        if b is None or (a is not None and a < b):
            gone.append(a)
            a = sides[0].next()
        elif a is None or b < a:
            added.append(b)
            b = sides[1].next()
        else:
            a, b = sides[0].next(), sides[1].next()
    if any(side.root_hash() != root for side, (_, root) in zip(sides, (old, new), strict=True)):
        return None
    return gone, added
