"""How long-running library calls report how far they are, for whoever listens.

A listener is called with a stage name (``progress("hashing")``), which is all the
older hook (``Callable[[str], None]``) takes; one that also has ``start``, ``advance``
and ``done`` gets counts: ``start(total_files, total_bytes)`` once a step knows its size,
``advance(files, bytes)`` per batch (never per file with formatting), ``done()`` at the
end (``start(0, 0)``: the size is not known beforehand, as in a snapshot that counts
while it walks); *unit* names what ``total_files`` counts when it is not files (verify counts
snapshots). The library never renders anything: the CLI owns the terminal (jvs/cli/output.py).
Nobody listening costs one ``None`` test per batch."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    def __call__(self, stage: str) -> None: ...

    def start(self, total_files: int, total_bytes: int, *, unit: str = "files") -> None: ...

    def advance(self, files: int, bytes_done: int) -> None: ...

    def done(self) -> None: ...


class _Silent:
    """The no-op listener: what ``counts()`` gives when nobody wants counts."""

    def __call__(self, stage: str) -> None:
        pass

    def start(self, total_files: int, total_bytes: int, *, unit: str = "files") -> None:
        pass

    def advance(self, files: int, bytes_done: int) -> None:
        pass

    def done(self) -> None:
        pass


SILENT = _Silent()


def counts(listener) -> Progress:
    """*listener* if it takes counts, else the no-op (a bare stage callable or None)."""
    return listener if isinstance(listener, Progress) else SILENT


def metered(entries, listener: Progress, every: int = 256):
    """*entries* (scanned entries) as they are, telling *listener* per *every* files how
    many files and bytes went by. Only for a listener that counts: the caller passes the
    bare iterable otherwise, so nobody listening costs nothing per file."""
    files = nbytes = 0
    for e in entries:
        yield e
        if e.kind == "file":
            files += 1
            nbytes += e.st.st_size
            if files == every:
                listener.advance(files, nbytes)
                files = nbytes = 0
    listener.advance(files, nbytes)


def batched(items, weights, listener: Progress, every: int = 64):
    """*items* as they are, after telling *listener* the totals of *weights* (a
    ``(files, bytes)`` per item); then per *every* items, how many files and bytes went
    by. For work whose size is known up front (a restore's changed entries, from the
    manifest): the caller passes the bare items when nobody counts."""
    weights = list(weights)
    listener.start(sum(w[0] for w in weights), sum(w[1] for w in weights))
    files = nbytes = 0
    for n, (item, (f, b)) in enumerate(zip(items, weights, strict=True), 1):
        yield item
        files += f
        nbytes += b
        if n % every == 0:
            listener.advance(files, nbytes)
            files = nbytes = 0
    listener.advance(files, nbytes)


class FileTicker:
    """Counts for a walk that materialises files one by one (the copy engine's): one
    ``tick`` per file, one ``advance`` per *every* files or 64 MiB."""

    def __init__(self, listener: Progress, every: int = 256) -> None:
        self.listener = listener
        self.every = every
        self.files = self.nbytes = 0
        self.all_files = self.all_bytes = 0  # every file and byte ticked so far

    def tick(self, size: int) -> None:
        self.files += 1
        self.nbytes += size
        self.all_files += 1
        self.all_bytes += size
        if self.files >= self.every or self.nbytes >= 64 << 20:
            self.flush()

    def flush(self) -> None:
        if self.files or self.nbytes:
            self.listener.advance(self.files, self.nbytes)
        self.files = self.nbytes = 0
