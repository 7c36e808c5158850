"""jvs: snapshot-first versioning for whole working folders.

Importing this package stays cheap (the CLI's ``--version`` depends on it); the library
lives in submodules that are imported on use. ``jvs.open(path)`` is the entry point for
Python users; see :mod:`jvs.api`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

    from jvs.api import Repository

__version__ = "0.1.0"


def open(path: str | os.PathLike = ".", *,  # noqa: A001 - mirrors the CLI's verb, on purpose
         worktree: str | None = None) -> Repository:
    """Open the repository that contains *path* and return a :class:`jvs.api.Repository`
    seen from the worktree *path* lies in (or *worktree*)."""
    from jvs.api import Repository

    return Repository.open(path, worktree=worktree)


def init(parent: str | os.PathLike, name: str, *, hash_algo: str = "xxh3-128",
         template: str | None = None) -> Repository:
    """Create repository *name* in *parent* (``jvs init``); returns it seen from main."""
    from jvs.api import Repository

    return Repository.init(parent, name, hash_algo=hash_algo, template=template)
