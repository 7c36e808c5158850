"""The trash (``.jvs/restore/@trash``): what an operation replaced or removed, moved out of
the way by one rename (so the operation's state changes at once) and deleted before the
command returns. Everything in it is garbage by construction, so it is safe to empty at
any time, by several processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from jvs.repo import Repo


def trash_dir(repo: Repo) -> Path:
    """'@' cannot occur in a worktree name, so this never collides with a restore work
    dir (``.jvs/restore/<worktree>``)."""
    return repo.jvs_dir / "restore" / "@trash"


def move_to_trash(repo: Repo, path: Path, label: str) -> Path:
    """Rename *path* into the trash under a fresh name; returns where it went."""
    from jvs import fsio

    trash_dir(repo).mkdir(parents=True, exist_ok=True)
    dest = trash_dir(repo) / f"{label}-{os.urandom(4).hex()}"
    fsio.rename_noreplace(path, dest)
    return dest


def drop_ignored(repo: Repo, tree: Path, paths: list[str], label: str) -> None:
    """Move *paths* (ignored entries an engine cloned anyway) out of the staged *tree*
    into the trash: one rename each now, the deletion with ``empty_trash``."""
    if not paths:
        return
    bin_ = trash_dir(repo) / f"{label}-{os.urandom(4).hex()}"
    bin_.mkdir(parents=True)
    for n, rel in enumerate(paths):
        os.rename(tree / rel, bin_ / str(n))


def empty_trash(repo: Repo) -> None:
    """Delete everything in the trash. On a JuiceFS mount with ``juicefs rmr``, much
    faster than one unlink per file."""
    try:
        items = sorted(os.listdir(trash_dir(repo)))
    except FileNotFoundError:
        return
    if not items:
        return
    from jvs.engines.juicefs import remove_tree

    for name in items:
        remove_tree(trash_dir(repo) / name)
