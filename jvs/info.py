"""``jvs info``: the repository, its engine (and why), and the worktree it is seen from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jvs.errors import JvsError
from jvs.repo import FORMAT_VERSION, Repo


@dataclass(frozen=True)
class RepoInfo:
    repo_root: Path
    repo_id: str
    format_version: int
    engine: str | None  # None: no engine works here (engine_reason says why)
    engine_reason: str
    payload_hash_algo: str
    worktrees: tuple[str, ...]
    snapshot_count: int
    worktree: str | None  # the worktree it is seen from; None at the repository root
    head_snapshot_id: str | None = None
    latest_snapshot_id: str | None = None
    detached: bool = False

    def to_json(self) -> dict:
        data = {
            "repo_root": str(self.repo_root),
            "repo_id": self.repo_id,
            "format_version": self.format_version,
            "engine": self.engine,
            "engine_reason": self.engine_reason,
            "payload_hash_algo": self.payload_hash_algo,
            "worktrees": list(self.worktrees),
            "snapshot_count": self.snapshot_count,
            "worktree": self.worktree,
        }
        if self.worktree:
            data.update(head_snapshot_id=self.head_snapshot_id,
                        latest_snapshot_id=self.latest_snapshot_id, detached=self.detached)
        return data


def repository_info(repo: Repo, worktree: str | None) -> RepoInfo:
    from jvs.descriptor import list_snapshot_ids
    from jvs.engines import choose_engine
    from jvs.worktree import list_worktree_names, load_worktree_config

    config = repo.config()
    try:
        choice = choose_engine(repo.root, config.engine)
        engine, reason = choice.engine.name, choice.reason
    except JvsError as exc:
        if exc.code == "E_USAGE":  # JVS_SNAPSHOT_ENGINE names no engine
            raise
        engine, reason = None, exc.message
    head = latest = None
    detached = False
    if worktree:
        wt = load_worktree_config(repo, worktree)
        head, latest, detached = wt.head_snapshot_id, wt.latest_snapshot_id, wt.detached
    return RepoInfo(repo.root, repo.repo_id(), FORMAT_VERSION, engine, reason,
                    config.payload_hash_algo, tuple(list_worktree_names(repo)),
                    len(list_snapshot_ids(repo)), worktree, head, latest, detached)
