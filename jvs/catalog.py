"""Reading the set of published snapshots: every command that lists, filters or resolves
snapshots goes through here, so the index (``jvs/index.py``) makes it fast in one place."""

from __future__ import annotations

from jvs import index
from jvs.descriptor import Descriptor
from jvs.repo import Repo


def load_descriptors(repo: Repo) -> list[Descriptor]:
    """Every published descriptor, oldest first. Checksums are not verified here (listing
    must stay fast); commands that act on a snapshot verify it before use. A descriptor
    that cannot be parsed at all is left out (``doctor`` and ``verify`` report it).

    Backed by ``.jvs/index.sqlite``, which is checked against one listing of
    ``descriptors/`` on every call, so the answer is never staler than the directory."""
    return index.load_descriptors(repo)
