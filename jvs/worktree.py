"""Worktree records (SPEC §4): ``.jvs/worktrees/<name>/config.json`` and payload paths."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from jvs import fsio
from jvs.errors import JvsError
from jvs.names import validate_worktree_name
from jvs.repo import Repo


@dataclass(frozen=True)
class WorktreeConfig:
    name: str
    created_at: str
    base_snapshot_id: str | None = None
    head_snapshot_id: str | None = None
    latest_snapshot_id: str | None = None
    label: str | None = None

    @property
    def detached(self) -> bool:
        return self.head_snapshot_id != self.latest_snapshot_id

    def to_json(self) -> dict:
        out = {"name": self.name, "created_at": self.created_at}
        for key in ("base_snapshot_id", "head_snapshot_id", "latest_snapshot_id", "label"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, obj: dict) -> WorktreeConfig:
        return cls(
            name=obj["name"],
            created_at=obj.get("created_at", ""),
            base_snapshot_id=obj.get("base_snapshot_id") or None,
            head_snapshot_id=obj.get("head_snapshot_id") or None,
            latest_snapshot_id=obj.get("latest_snapshot_id") or None,
            label=obj.get("label") or None,
        )

    def moved_to(self, snapshot_id: str, *, new_latest: bool) -> WorktreeConfig:
        """The config after the payload moved to *snapshot_id*."""
        return replace(
            self,
            head_snapshot_id=snapshot_id,
            latest_snapshot_id=snapshot_id if new_latest else self.latest_snapshot_id,
            base_snapshot_id=self.base_snapshot_id or snapshot_id,
        )


def load_worktree_config(repo: Repo, name: str) -> WorktreeConfig:
    validate_worktree_name(name)
    path = repo.worktree_config_path(name)
    if path.parent.exists():
        fsio.ensure_inside(repo.jvs_dir, path.parent)
    try:
        config = WorktreeConfig.from_json(fsio.read_json_fresh(path))
    except FileNotFoundError:
        raise JvsError("E_NOT_FOUND", f"no worktree named {name!r}",
                       hint="see 'jvs worktree list'") from None
    except (ValueError, KeyError) as exc:
        raise JvsError("E_DESCRIPTOR_CORRUPT",
                       f"worktree config of {name!r} is corrupt: {exc}") from None
    # The directory name is the worktree's identity; a `name` field saying otherwise
    # must never make a command write another worktree's config.
    return config if config.name == name else replace(config, name=name)


def save_worktree_config(repo: Repo, config: WorktreeConfig) -> None:
    path = repo.worktree_config_path(config.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fsio.ensure_inside(repo.jvs_dir, path.parent)
    fsio.write_json_atomic(path, config.to_json())


def list_worktree_names(repo: Repo) -> list[str]:
    base = repo.jvs_dir / "worktrees"
    try:
        names = [e.name for e in os.scandir(base) if (Path(e.path) / "config.json").is_file()]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda n: (n != "main", n))


def worktree_payload(repo: Repo, name: str) -> Path:
    """The payload directory of worktree *name*, refused if it resolves outside the repo."""
    validate_worktree_name(name)
    path = repo.worktree_dir(name)
    fsio.ensure_inside(repo.root, path)
    return path


def worktree_relpaths(repo: Repo, worktree: str, started: str, paths: tuple[str, ...] | list[str],
                      *, whole: str | None = None) -> tuple[str, ...]:
    """PATHs as a user gives them (relative to the directory the command *started* in
    when that is inside the worktree, else to the worktree's root) as paths relative to
    the worktree's root. The root itself is refused with *whole* as the hint (a command
    for which it means "everything" passes ``whole=None`` and gets ``()`` back)."""
    root = os.path.realpath(repo.worktree_dir(worktree))
    started = os.path.realpath(started)
    base = started if started == root or started.startswith(root + os.sep) else root
    out: list[str] = []
    for raw in paths:
        full = os.path.normpath(os.path.join(base, raw))
        if full != root and not full.startswith(root + os.sep):
            raise JvsError("E_PATH_ESCAPE", f"{raw!r} is outside worktree {worktree!r}",
                           hint=f"give paths inside {root}")
        if full == root:
            if whole is None:
                return ()  # the whole worktree: no filter
            raise JvsError("E_USAGE", f"{raw!r} is the whole worktree", hint=whole)
        out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return tuple(dict.fromkeys(out))
