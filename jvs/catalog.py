"""Reading the set of published snapshots: every command that lists, filters or resolves
snapshots goes through here, so the index (``jvs/index.py``) makes it fast in one place."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from jvs import index
from jvs.descriptor import Descriptor
from jvs.repo import Repo


def load_descriptors(repo: Repo) -> list[Descriptor]:
    """Every published descriptor, oldest first. Checksums are not verified here (listing
    must stay fast); commands that act on a snapshot verify it before use. A descriptor
    that cannot be parsed at all is left out (``doctor`` and ``verify`` report it).

    Backed by ``.jvs/index.sqlite``, which is checked against one listing of
    ``descriptors/`` on every call, so the answer is never staler than the directory."""
    with gc_paused():
        return index.load_descriptors(repo)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for building or rendering tens of thousands of
    small acyclic objects (a listing), where the collector's repeated passes over them
    cost a third of ``history --json`` at 20,000 snapshots and reclaim nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
