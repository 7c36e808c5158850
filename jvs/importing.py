"""``jvs init NAME --from DIR``: version an existing folder. NAME/main gets DIR's content
through the engine (a metadata clone on JuiceFS, reflink on XFS/btrfs, a copy elsewhere;
``--move`` renames DIR instead, same filesystem only), and the import is the first
snapshot ("Initial import of DIR"). DIR is untouched unless ``--move``.

Order: the repository directory is made, DIR is cloned (or renamed) to its ``main/``,
and only then is ``format_version`` written (``init_repo(populate=...)``), so a failed or
killed import leaves no repository: a failure removes what it made (and renames DIR back
after ``--move``); a kill leaves a directory without ``format_version``, which ``jvs init``
refuses to reuse until it is removed. The snapshot is then taken as any other.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jvs.errors import JvsError
from jvs.repo import Repo

if TYPE_CHECKING:
    from jvs.snapshot import SnapshotResult


@dataclass(frozen=True)
class ImportResult:
    """``jvs init NAME --from DIR``: the new repository and how DIR got into it."""

    repo: Repo
    source: str
    how: str  # the engine that cloned, or "move"
    reason: str  # why that way
    snapshot: SnapshotResult  # the first snapshot, of the imported content

    def to_json(self) -> dict:
        """``jvs init --from --json``: the repository as plain init gives it, and the
        import under ``"import"``."""
        repo = self.repo
        return {"repo_root": str(repo.root), "repo_id": repo.repo_id(),
                "main": str(repo.worktree_dir("main")),
                "payload_hash_algo": repo.config().payload_hash_algo,
                "import": {"source": self.source, "how": self.how, "reason": self.reason,
                           "snapshot_id": self.snapshot.descriptor.snapshot_id}}


def import_folder(parent: Path, name: str, source: str | os.PathLike, *, move: bool = False,
                  hash_algo: str = "xxh3-128", progress=None) -> ImportResult:
    """Create the repository *parent*/*name* holding *source*'s content as its first
    snapshot; see the module docstring."""
    from jvs import fsio
    from jvs.audit import append_audit
    from jvs.lock import repo_lock
    from jvs.repo import init_repo
    from jvs.snapshot import create_snapshot

    src = Path(os.path.abspath(source))
    root = Path(os.path.abspath(parent)) / name
    _check_source(src, root)
    how: dict[str, str] = {}
    moved = []

    def populate(main: Path) -> None:
        if move:
            try:
                os.rename(src, main)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise JvsError("E_USAGE", f"--move: {src} is on another filesystem than "
                                   f"{root}", hint="leave out --move to clone or copy it") from None
                raise
            moved.append(main)
            how.update(how="move", reason="renamed (--move)")
            return
        engine, reason = _engine_for(src, root)
        result = engine.clone(src, main)
        how.update(how=result.engine, reason=reason)

    existed = root.exists()
    try:
        repo = init_repo(Path(parent), name, hash_algo=hash_algo, populate=populate)
    except BaseException:
        if moved and os.path.isdir(moved[0]) and not os.path.lexists(src):
            os.rename(moved[0], src)
        if not existed and root.exists() and not (root / ".jvs" / "format_version").exists():
            fsio.remove_tree(root)
        raise
    with repo_lock(repo, "init"):
        append_audit(repo, "init", repo.repo_id(), f"repository {name}", source=str(src),
                     moved=move or None)
    snap = create_snapshot(repo, "main", note=f"Initial import of {src}", progress=progress)
    return ImportResult(repo, str(src), how["how"], how["reason"], snap)


def _check_source(src: Path, root: Path) -> None:
    from jvs.repo import discover

    if not src.is_dir() or src.is_symlink():
        raise JvsError("E_NOT_FOUND", f"--from {src}: no such directory")
    real_src, real_root = os.path.realpath(src), os.path.realpath(root)
    if real_root == real_src or real_root.startswith(real_src + os.sep):
        raise JvsError("E_USAGE", f"the repository {root} would be inside {src}, which it "
                       "imports", hint="create the repository next to the folder")
    if (src / ".jvs").exists():
        raise JvsError("E_USAGE", f"{src} is already a jvs repository")
    try:
        found = discover(src)
    except JvsError:
        return
    raise JvsError("E_USAGE", f"{src} is inside the jvs repository {found.repo.root}",
                   hint="import a folder outside any repository")


def _engine_for(src: Path, root: Path):
    """The engine that would snapshot *root*, if it can reach *src*: clones and reflinks
    work within one filesystem only, so a folder on another one is copied (and we say so).
    """
    from jvs.engines import choose_engine
    from jvs.engines.copy import CopyEngine

    choice = choose_engine(root, None)
    if choice.engine.capabilities.shares_data_within_one_filesystem \
            and os.stat(src).st_dev != os.stat(root).st_dev:
        return CopyEngine(), f"copied: {src} is on another filesystem than the repository"
    return choice.engine, choice.reason
