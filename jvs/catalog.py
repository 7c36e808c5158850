"""Reading the set of published snapshots: every command that lists, filters or resolves
snapshots goes through here, so an index can make it fast in one place."""

from __future__ import annotations

from jvs.descriptor import Descriptor, list_snapshot_ids, parse_descriptor
from jvs.errors import JvsError
from jvs.repo import Repo


def load_descriptors(repo: Repo) -> list[Descriptor]:
    """Every published descriptor, oldest first. Checksums are not verified here (listing
    must stay fast); commands that act on a snapshot verify it before use. A descriptor
    that cannot be parsed at all is left out (``doctor`` and ``verify`` report it)."""
    out = []
    for sid in list_snapshot_ids(repo):
        try:
            desc = parse_descriptor(repo.descriptor_path(sid).read_bytes())
        except (FileNotFoundError, JvsError):
            continue
        if desc.snapshot_id == sid:
            out.append(desc)
    return out
