"""The repository: its layout on disk, discovery, ``init`` and the format check (SPEC §1).

A :class:`Repo` is a plain value naming the repository root; every other module takes one
explicitly. Nothing here caches state between calls.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jvs import fsio
from jvs.errors import JvsError

FORMAT_VERSION = 1
HASH_ALGOS = ("xxh3-128", "sha256")
ENGINES = ("juicefs-clone", "reflink-copy", "copy")
CONTROL_DIRS = ("worktrees", "snapshots", "descriptors", "manifests", "intents", "audit",
                "gc", "gc/pins", "locks", "cache")
# Without these a repository has no snapshots to speak of; the others are made on first use
# (a repository the Go implementation wrote has no manifests/, locks/, cache/ or gc/pins/).
REQUIRED_CONTROL_DIRS = ("worktrees", "snapshots", "descriptors")


@dataclass(frozen=True)
class RepoConfig:
    """``.jvs/config.json``: repository settings."""

    payload_hash_algo: str = "xxh3-128"
    engine: str | None = None  # None: detect per operation
    default_tags: tuple[str, ...] = ()
    gc: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # unknown keys survive a rewrite

    def to_json(self) -> dict:
        out = dict(self.extra)
        out["payload_hash_algo"] = self.payload_hash_algo
        out["engine"] = self.engine
        out["default_tags"] = list(self.default_tags)
        out["gc"] = dict(self.gc)
        return out

    @classmethod
    def from_json(cls, obj: dict) -> RepoConfig:
        known = {"payload_hash_algo", "engine", "default_tags", "gc"}
        return cls(
            payload_hash_algo=obj.get("payload_hash_algo") or "sha256",
            engine=obj.get("engine") or None,
            default_tags=tuple(obj.get("default_tags") or ()),
            gc=dict(obj.get("gc") or {}),
            extra={k: v for k, v in obj.items() if k not in known},
        )


@dataclass(frozen=True)
class Repo:
    """A repository root. Paths are derived, never stored."""

    root: Path

    @property
    def jvs_dir(self) -> Path:
        return self.root / ".jvs"

    @property
    def snapshots_dir(self) -> Path:
        return self.jvs_dir / "snapshots"

    @property
    def descriptors_dir(self) -> Path:
        return self.jvs_dir / "descriptors"

    @property
    def manifests_dir(self) -> Path:
        return self.jvs_dir / "manifests"

    @property
    def intents_dir(self) -> Path:
        return self.jvs_dir / "intents"

    @property
    def locks_dir(self) -> Path:
        return self.jvs_dir / "locks"

    @property
    def audit_log(self) -> Path:
        return self.jvs_dir / "audit" / "audit.jsonl"

    @property
    def cache_dir(self) -> Path:
        return self.jvs_dir / "cache"

    def payload_dir(self, snapshot_id: str) -> Path:
        return self.snapshots_dir / snapshot_id

    def descriptor_path(self, snapshot_id: str) -> Path:
        return self.descriptors_dir / f"{snapshot_id}.json"

    def manifest_path(self, snapshot_id: str) -> Path:
        return self.manifests_dir / snapshot_id

    def worktree_config_path(self, name: str) -> Path:
        return self.jvs_dir / "worktrees" / name / "config.json"

    def worktree_dir(self, name: str) -> Path:
        """Where worktree *name* keeps its payload (user data only)."""
        return self.root / "main" if name == "main" else self.root / "worktrees" / name

    def config(self) -> RepoConfig:
        """The repository's settings. A repository the Go implementation wrote has no
        ``config.json``: its settings are the defaults its format implies (sha256)."""
        path = self.jvs_dir / "config.json"
        try:
            obj = fsio.read_json(path)
        except FileNotFoundError:
            obj = {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad_config(path, f"is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise _bad_config(path, "is not a JSON object")
        try:
            return RepoConfig.from_json(obj)
        except (TypeError, ValueError) as exc:
            raise _bad_config(path, f"has a value of the wrong type ({exc})") from None

    def write_config(self, config: RepoConfig) -> None:
        fsio.write_json_atomic(self.jvs_dir / "config.json", config.to_json())

    def ensure_control_dirs(self) -> None:
        """Make the control directories a writer may need (a repository the Go
        implementation wrote lacks some; an older one may too)."""
        for sub in CONTROL_DIRS:
            path = self.jvs_dir / sub
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)

    def repo_id(self) -> str:
        return (self.jvs_dir / "repo_id").read_text().strip()


def _bad_config(path: Path, what: str) -> JvsError:
    return JvsError("E_DESCRIPTOR_CORRUPT", f"{path} {what}",
                    hint="fix it by hand (docs/format.md lists its keys), or move it away "
                         "to use the defaults; 'jvs doctor' reports it")


def check_control_plane(jvs_dir: Path) -> None:
    """Every control-plane path resolves inside the repository (SPEC §1): a symlink at
    ``.jvs/<entry>``, ``.jvs/restore/<x>``, ``.jvs/cache/<host>``, the audit log or a lock
    file would make jvs write, or delete, wherever it points (appending to the log and
    taking a lock open the file in place). Refused with E_PATH_ESCAPE; a few lstat calls.
    Files jvs replaces by rename (descriptors, configs, caches) replace a symlink, never
    write through it."""
    for parent in (jvs_dir, jvs_dir / "restore", jvs_dir / "cache", jvs_dir / "gc",
                   jvs_dir / "audit", jvs_dir / "locks"):
        try:
            names = os.listdir(parent)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            path = parent / name
            if os.path.islink(path):
                raise JvsError("E_PATH_ESCAPE",
                               f"{path} is a symlink (to {os.readlink(path)}): jvs keeps its "
                               "control files inside the repository only",
                               hint="remove the symlink (and move back what it pointed to, "
                                    "if anything of the repository is there)")


def check_format(jvs_dir: Path) -> None:
    text = ""
    try:
        text = (jvs_dir / "format_version").read_bytes().decode("utf-8", "replace").strip()
        version = int(text)
    except FileNotFoundError:
        raise JvsError("E_NOT_A_REPO", f"{jvs_dir} has no format_version") from None
    except ValueError:
        raise JvsError("E_FORMAT_UNSUPPORTED",
                       f"format_version is not a number: {text!r}") from None
    if version > FORMAT_VERSION:
        raise JvsError(
            "E_FORMAT_UNSUPPORTED",
            f"repository format_version {version} is newer than this jvs supports "
            f"({FORMAT_VERSION})",
            hint="upgrade jvs",
        )


@dataclass(frozen=True)
class Location:
    """Where a command was started: the repository and, if inside one, the worktree."""

    repo: Repo
    worktree: str | None


def discover(start: Path | str = ".") -> Location:
    """Walk up from *start* to the directory holding ``.jvs/`` and map the rest of the
    path to a worktree: ``main/...`` → main, ``worktrees/<n>/...`` → n."""
    start_path = Path(os.path.abspath(start))
    if not start_path.exists():
        raise JvsError("E_NOT_FOUND", f"{start_path} does not exist")
    # Prefer the logical path (as the user typed it) so a repo reached through a symlink
    # maps its worktrees correctly, then fall back to the real path.
    first_problem = None
    for candidate in dict.fromkeys([start_path, Path(os.path.realpath(start_path))]):
        for d in [candidate, *candidate.parents]:
            if (d / ".jvs").is_dir() and not (d / ".jvs").is_symlink():
                try:
                    check_format(d / ".jvs")
                except JvsError as exc:
                    # A `.jvs` without format_version may be user data (a worktree can
                    # hold anything): look further up for the repository it is in.
                    if exc.code != "E_NOT_A_REPO":
                        raise
                    first_problem = first_problem or exc
                    continue
                return Location(Repo(d), _worktree_of(d, candidate))
    if first_problem is not None:
        raise first_problem
    raise JvsError(
        "E_NOT_A_REPO",
        f"not inside a jvs repository: {start_path}",
        hint="run 'jvs init NAME' to create one, or use -C PATH",
    )


def _worktree_of(root: Path, path: Path) -> str | None:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    if parts[:1] == ("main",):
        return "main"
    if len(parts) >= 2 and parts[0] == "worktrees":
        return parts[1]
    return None


def init_repo(parent: Path, name: str, *, hash_algo: str = "xxh3-128",
              populate=None) -> Repo:
    """Create ``<parent>/<name>`` with an empty main worktree. Refuses an existing repo.

    *populate(main)*, if given, makes the main worktree's directory (which does not exist
    yet when it is called) before ``format_version`` is written: until then the directory
    is not a repository, so an import that fails or is killed leaves none half-made."""
    from jvs.names import validate_worktree_name

    validate_worktree_name(name)  # a repo name obeys the same charset as worktree names
    if hash_algo not in HASH_ALGOS:
        raise JvsError("E_USAGE", f"unknown hash algorithm {hash_algo!r}",
                       hint=f"choose one of {', '.join(HASH_ALGOS)}")
    root = Path(os.path.abspath(parent)) / name
    if (root / ".jvs").exists():
        raise JvsError("E_USAGE", f"{root} is already a jvs repository")
    for d in [root, *root.parents]:
        if d != root and (d / ".jvs").is_dir():
            raise JvsError("E_USAGE", f"{root} would be nested inside the repository {d}")
    if root.exists() and any(root.iterdir()):
        raise JvsError("E_USAGE", f"{root} exists and is not empty",
                       hint=f"to version what it holds: jvs init NEWNAME --from {root}")
    jvs_dir = root / ".jvs"
    jvs_dir.mkdir(parents=True)
    for sub in CONTROL_DIRS:
        (jvs_dir / sub).mkdir(parents=True, exist_ok=True)
    repo = Repo(root)
    fsio.write_bytes_atomic(jvs_dir / "repo_id", (str(uuid.uuid4()) + "\n").encode())
    repo.write_config(RepoConfig(payload_hash_algo=hash_algo))
    if populate is None:
        (root / "main").mkdir()
    else:
        populate(root / "main")
    from jvs.ids import rfc3339_utc
    from jvs.worktree import WorktreeConfig, save_worktree_config

    save_worktree_config(repo, WorktreeConfig(name="main", created_at=rfc3339_utc()))
    # format_version last: its presence is what makes the directory a repository.
    fsio.write_bytes_atomic(jvs_dir / "format_version", f"{FORMAT_VERSION}\n".encode())
    fsio.fsync_dir(root)
    return repo
