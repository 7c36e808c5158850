"""The publish steps every protocol that makes a snapshot shares (SPEC §6): make the staged
payload durable, rename it into place, then rename its descriptor into place (the commit
point). A snapshot, a restore's rescue and a partial snapshot all end this way.
"""

from __future__ import annotations

import os
from pathlib import Path

from jvs import fsio
from jvs.errors import JvsError
from jvs.libc import last_errno, libc
from jvs.repo import Repo


def fsync_payload(staged: Path) -> None:
    """Make the staged payload (and the manifest written just before) durable. One
    ``syncfs`` of their filesystem replaces an fsync per file (thousands of journal
    commits on the copy engine) with a single flush."""
    fd = os.open(staged, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc().syncfs(fd) != 0:
            err = last_errno()
            raise JvsError("E_IO", f"syncfs failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def write_manifest(repo: Repo, snapshot_id: str, manifest: bytes) -> None:
    """The payload's records; made durable by the ``fsync_payload`` that follows on the
    same filesystem."""
    from jvs.integrity import encode_manifest

    fsio.write_bytes_atomic(repo.manifest_path(snapshot_id), encode_manifest(manifest),
                            durable=False)


def publish_payload(repo: Repo, staged: Path, snapshot_id: str) -> None:
    fsio.rename_noreplace(staged, repo.payload_dir(snapshot_id))
    fsio.fsync_dir(repo.snapshots_dir)
