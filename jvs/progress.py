"""How long-running library calls report how far they are, for whoever listens.

A listener is called with a stage name (``progress("hashing")``), which is all the
older hook (``Callable[[str], None]``) takes; one that also has ``start``, ``advance``
and ``done`` gets counts: ``start(total_files, total_bytes)`` once a step knows its size,
``advance(files, bytes)`` per batch (never per file with formatting), ``done()`` at the
end; *unit* names what ``total_files`` counts when it is not files (verify counts
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
