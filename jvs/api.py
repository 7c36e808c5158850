"""The Python API: everything a user can do with the ``jvs`` command, without a shell.

    import jvs

    repo = jvs.open("ml-experiments/main")          # like running jvs in that directory
    result = repo.snapshot("Exp1", tags=["exp1"])
    print(result.descriptor.snapshot_id)
    for d in repo.history(tag="exp*"):
        print(d.short_id, d.created, d.note)
    repo.restore("baseline")

A :class:`Repository` is a repository seen from one worktree (the one *path* is in, or
the one named with ``worktree=``), the way a shell command sees it from its working
directory. Each method calls the same library function the CLI command calls, so the
semantics, the locking, the audit records and the errors (:class:`jvs.errors.JvsError`
subclasses, one per SPEC error class) are the CLI's. The CLI is built on this module:
where a command does more than one library call (default tags, the note limit,
``--latest-tag``, doctor's repair actions, init and its audit record, info), the
composition is written here once and the command calls it. Methods return the
library's own result objects, whose fields are named as in the CLI's ``--json`` output
and whose ``to_json()`` is that output. Library modules are imported on first use, so
``import jvs`` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jvs.errors import JvsError
from jvs.names import MAX_NOTE_BYTES  # noqa: F401 - re-exported: the API's note limit

if TYPE_CHECKING:
    from jvs.descriptor import Descriptor
    from jvs.diff import Diff
    from jvs.doctor import Report
    from jvs.gc import Pin, PinList, Plan, RunResult, Unpinned
    from jvs.history import History
    from jvs.importing import ImportResult
    from jvs.info import RepoInfo
    from jvs.labels import Relabel, TagList
    from jvs.preview import RestorePreview
    from jvs.repo import Repo, RepoConfig
    from jvs.restore import RestoreResult
    from jvs.show import Shown
    from jvs.snapshot import SnapshotResult
    from jvs.space import RepoSpace
    from jvs.status import Status
    from jvs.verify import VerifyReport
    from jvs.worktrees import (
        CreatedWorktree,
        RemoveResult,
        RenamedWorktree,
        WorktreeList,
        WorktreePath,
    )

Progress = Callable[[str], None]


@dataclass(frozen=True)
class InitResult:
    """``jvs init``: the new repository, seen from main."""

    repository: Repository
    ignore_file: Path | None  # main/.jvsignore, when started from a template
    template: str | None = None

    def to_json(self) -> dict:
        repo = self.repository.repo
        return {"repo_root": str(repo.root), "repo_id": repo.repo_id(),
                "main": str(repo.worktree_dir("main")),
                "payload_hash_algo": repo.config().payload_hash_algo,
                "ignore_file": str(self.ignore_file) if self.ignore_file else None}


def init_repository(parent: str | os.PathLike, name: str, *, hash_algo: str = "xxh3-128",
                    template: str | None = None) -> InitResult:
    """``jvs init NAME [--template T]`` in *parent*: the repository, main's ``.jvsignore``
    from the template, and the audit record of the init."""
    from jvs import fsio
    from jvs.audit import append_audit
    from jvs.ignore import IGNORE_FILE, template_text
    from jvs.lock import repo_lock
    from jvs.repo import init_repo

    ignore_text = template_text(template) if template else None  # before creating anything
    repo = init_repo(Path(parent), name, hash_algo=hash_algo)
    ignore_file = None
    if ignore_text is not None:
        ignore_file = repo.worktree_dir("main") / IGNORE_FILE
        fsio.write_bytes_atomic(ignore_file, ignore_text.encode("utf-8", "surrogateescape"))
    with repo_lock(repo, "init"):
        append_audit(repo, "init", repo.repo_id(), f"repository {name}",
                     **({"template": template} if template else {}))
    return InitResult(Repository(repo, "main"), ignore_file, template)


def import_repository(parent: str | os.PathLike, name: str, source: str | os.PathLike, *,
                      move: bool = False, hash_algo: str = "xxh3-128",
                      progress: Progress | None = None) -> ImportResult:
    """``jvs init NAME --from DIR [--move]`` in *parent*: a repository whose main holds
    *source*'s content (cloned, reflinked or copied; renamed with *move*) as its first
    snapshot. ``Repository(result.repo, "main")`` works in it."""
    from jvs.importing import import_folder

    return import_folder(Path(parent), name, source, move=move, hash_algo=hash_algo,
                         progress=progress)


def _epoch(when: str | datetime | None) -> float | None:
    """A time the CLI would take as text, or a datetime, in seconds since the epoch."""
    if when is None or isinstance(when, datetime):
        return None if when is None else when.timestamp()
    from jvs.dates import parse_time

    return parse_time(when)


class Repository:
    """A jvs repository, seen from one worktree (or from none, at the repository root)."""

    def __init__(self, repo: Repo, worktree: str | None = None) -> None:
        self._repo = repo
        self.worktree_name = worktree

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | os.PathLike = ".", *, worktree: str | None = None) -> Repository:
        """The repository containing *path*; its worktree is the one *path* lies in, or
        *worktree*. E_NOT_A_REPO outside a repository, like the CLI."""
        from jvs.repo import discover

        loc = discover(Path(path))
        repository = cls(loc.repo, loc.worktree)
        return repository.at(worktree) if worktree else repository

    @classmethod
    def init(cls, parent: str | os.PathLike, name: str, *, hash_algo: str = "xxh3-128",
             template: str | None = None) -> Repository:
        """``jvs init NAME`` in *parent*: a new repository; returns it seen from main."""
        return init_repository(parent, name, hash_algo=hash_algo,
                               template=template).repository

    def at(self, worktree: str) -> Repository:
        """The same repository seen from *worktree* (``jvs -C <its path>``)."""
        from jvs.worktree import load_worktree_config

        load_worktree_config(self._repo, worktree)  # E_NOT_FOUND / E_NAME_INVALID
        return Repository(self._repo, worktree)

    # ------------------------------------------------------------------ where

    @property
    def repo(self) -> Repo:
        """The underlying :class:`jvs.repo.Repo` value, for the library's functions."""
        return self._repo

    @property
    def root(self) -> Path:
        return self._repo.root

    @property
    def path(self) -> Path:
        """The current worktree's folder."""
        return self.worktree_path().path

    def __repr__(self) -> str:
        return f"<jvs.Repository {str(self.root)!r} worktree={self.worktree_name!r}>"

    def _current(self) -> str:
        if self.worktree_name is None:
            raise JvsError("E_NOT_FOUND", "not inside a worktree",
                           hint="open a path inside a worktree, or use repo.at('main')")
        return self.worktree_name

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, note: str = "", *, tags: Iterable[str] = (),
                 paths: Iterable[str] = (), progress: Progress | None = None
                 ) -> SnapshotResult:
        """``jvs snapshot NOTE --tag T... --paths P...``; the configured default_tags are
        added, as on the command line. ``result.descriptor`` is the new snapshot."""
        from jvs.names import validate_note
        from jvs.snapshot import create_snapshot

        note = validate_note(note)
        tags = list(tags)
        tags += [t for t in self._repo.config().default_tags if t not in tags]
        return create_snapshot(self._repo, self._current(), note=note, tags=tags,
                               paths=list(paths), progress=progress)

    def history(self, *, all: bool = False, tag: str | None = None,  # noqa: A002
                grep: str | None = None, limit: int | None = None,
                collected: bool = False, since: str | datetime | None = None,
                until: str | datetime | None = None, reverse: bool = False) -> History:
        """``jvs history``: a sequence of snapshots newest first (also ``.snapshots``),
        ``.worktree`` its config; with *collected*, ``.collected`` the tombstones of
        snapshots gc collected. *since*/*until* (``--since``/``--until``, inclusive): an
        aware datetime, or the CLI's text ("2026-12-01", "yesterday", "3 days ago");
        *reverse* lists oldest first, after *limit*."""
        from jvs.history import history

        return history(self._repo, self.worktree_name, all_snapshots=all, tag=tag,
                       grep=grep, limit=limit, collected=collected,
                       since=_epoch(since), until=_epoch(until), reverse=reverse)

    def resolve(self, ref: str) -> Descriptor:
        """The snapshot *ref* names (HEAD, latest, ID, tag, short ID, note, note prefix;
        ``~N`` or ``^`` after any of them)."""
        from jvs.resolve import resolve

        return resolve(self._repo, ref, self.worktree_name)

    def show(self, ref: str) -> Shown:
        """``jvs show REF``: the descriptor, changes against the parent, contents."""
        from jvs.show import show

        return show(self._repo, ref, self.worktree_name)

    def add_tags(self, ref: str, *tags: str) -> Relabel:
        """``jvs tag add REF TAG...``."""
        from jvs.labels import add_tags

        return add_tags(self._repo, ref, list(tags), self.worktree_name)

    def remove_tags(self, ref: str, *tags: str) -> Relabel:
        """``jvs tag remove REF TAG...``."""
        from jvs.labels import remove_tags

        return remove_tags(self._repo, ref, list(tags), self.worktree_name)

    def tags(self) -> TagList:
        """``jvs tag list``: a sequence of TagInfo, sorted by tag."""
        from jvs.labels import list_tags

        return list_tags(self._repo)

    def set_note(self, ref: str, note: str) -> Relabel:
        """``jvs note REF TEXT``."""
        from jvs.labels import set_note

        return set_note(self._repo, ref, note, self.worktree_name)

    def status(self, *paths: str) -> Status:
        """``jvs status [PATH...]``: ``.changes`` (a sequence of changes; ``.clean``) against
        the head; *paths* are relative to the worktree's root."""
        from jvs.status import worktree_status

        return worktree_status(self._repo, self._current(), tuple(paths))

    def diff(self, a: str | None = None, b: str | None = None, *,
             paths: Iterable[str] = ()) -> Diff:
        """``jvs diff [A [B]] [-- PATH...]``: from A (default: head) to B (default: the
        worktree); *paths* are relative to the worktree's root."""
        from jvs.diff import diff

        return diff(self._repo, self.worktree_name, a, b, tuple(paths))

    def patch(self, a: str | None = None, b: str | None = None, *,
              paths: Iterable[str] = (), context: int = 3) -> str:
        """``jvs diff -p``: the unified content diff as text."""
        from jvs.diff import patched

        return patched(self._repo, self.diff(a, b, paths=paths), context=context).text

    def info(self) -> RepoInfo:
        """``jvs info``; ``.to_json()`` is ``jvs info --json``."""
        from jvs.info import repository_info

        return repository_info(self._repo, self.worktree_name)

    # ------------------------------------------------------------------ restore, worktrees

    def restore(self, ref: str | None = None, *, latest_tag: str | None = None,
                discard_unsaved: bool = False, paths: Iterable[str] = (),
                progress: Progress | None = None,
                verify_payload: bool = False) -> RestoreResult:
        """``jvs restore REF [-- PATH...]`` (or ``--latest-tag T``); *paths* are relative
        to the worktree's root. Unsaved work becomes a rescue snapshot
        (``result.rescue``) unless *discard_unsaved*. With *verify_payload* the whole
        snapshot is hashed first (``restore --verify``)."""
        from jvs.restore import restore

        return restore(self._repo, self._current(), self._restore_target(ref, latest_tag),
                       discard_unsaved=discard_unsaved, paths=tuple(paths),
                       progress=progress, verify_payload=verify_payload)

    def restore_preview(self, ref: str | None = None, *, latest_tag: str | None = None,
                        discard_unsaved: bool = False,
                        paths: Iterable[str] = ()) -> RestorePreview:
        """``jvs restore REF --dry-run``: what :meth:`restore` would do now (``.actions``,
        ``.unsaved``, ``.rescue``), changing nothing."""
        from jvs.preview import restore_preview

        return restore_preview(self._repo, self._current(),
                               self._restore_target(ref, latest_tag), paths=tuple(paths),
                               discard_unsaved=discard_unsaved)

    def _restore_target(self, ref: str | None, latest_tag: str | None) -> str:
        """The reference a restore goes to: *ref*, or the newest snapshot tagged
        *latest_tag* (``--latest-tag``)."""
        if (ref is None) == (latest_tag is None):
            raise JvsError("E_USAGE", "give a snapshot reference or latest_tag, not both "
                           "or neither")
        if latest_tag is None:
            return ref
        from jvs.resolve import latest_with_tag

        return latest_with_tag(self._repo, latest_tag).snapshot_id

    def fork(self, name: str, *, ref: str | None = None,
             progress: Progress | None = None) -> CreatedWorktree:
        """``jvs fork [REF] NAME``: a new worktree at REF (default: this worktree's head).
        ``repo.at(name)`` then works in it. *ref* is keyword-only because the CLI puts it
        first: ``repo.fork("v1.0", "bugfix")`` would otherwise read the wrong way round."""
        from jvs.worktrees import fork

        return fork(self._repo, ref, name, current=self.worktree_name, progress=progress)

    def create_worktree(self, name: str, *, from_ref: str | None = None) -> CreatedWorktree:
        """``jvs worktree create NAME [--from REF]``."""
        from jvs.worktrees import create

        return create(self._repo, name, from_ref, current=self.worktree_name)

    def worktrees(self) -> WorktreeList:
        """``jvs worktree list``: a sequence of WorktreeInfo, ``.current`` the worktree
        this Repository is at."""
        from jvs.worktrees import worktree_list

        return worktree_list(self._repo, self.worktree_name)

    def worktree_path(self, name: str | None = None) -> WorktreePath:
        """``jvs worktree path [NAME]``: worktree *name* (default: this one) and its folder."""
        from jvs.worktrees import worktree_path

        return worktree_path(self._repo, self._current() if name is None else name)

    def rename_worktree(self, old: str, new: str) -> RenamedWorktree:
        """``jvs worktree rename OLD NEW``; ``.old_name`` is OLD."""
        from jvs.worktrees import rename

        return rename(self._repo, old, new)

    def remove_worktree(self, name: str, *, force: bool = False,
                        discard_unsaved: bool = False,
                        progress: Progress | None = None) -> RemoveResult:
        """``jvs worktree remove NAME [--force [--discard-unsaved]]`` (its snapshots stay;
        forced, unsaved work is kept as the result's ``rescue`` unless discarded)."""
        from jvs.worktrees import remove

        return remove(self._repo, name, force=force, discard_unsaved=discard_unsaved,
                      progress=progress)

    # ------------------------------------------------------------------ integrity

    def verify(self, ref: str | None = None, *, all: bool = False,  # noqa: A002
               check: bool = False, progress: Progress | None = None) -> VerifyReport:
        """``jvs verify [REF] [--all]``. The report's ``.ok`` is False when anything was
        tampered with; with *check*, that raises the report's JvsError instead (the CLI's
        exit 1)."""
        from jvs.verify import verify_all, verify_ref

        if all and ref is not None:
            raise JvsError("E_USAGE", "give a ref or all=True, not both")
        report = verify_all(self._repo, progress=progress) if all \
            else verify_ref(self._repo, ref, self.worktree_name)
        if check and report.error() is not None:
            raise report.error()
        return report

    def doctor(self, *, strict: bool = False, repair: Iterable[str] = (),
               repair_runtime: bool = False, progress: Progress | None = None) -> Report:
        """``jvs doctor [--strict] [--repair-runtime] [--repair ACTION]...``;
        ``report.healthy`` and ``report.findings``."""
        from jvs.doctor import RUNTIME_REPAIRS, diagnose
        from jvs.doctor import repair as do_repair

        actions = list(dict.fromkeys([*(RUNTIME_REPAIRS if repair_runtime else ()), *repair]))
        if actions:
            return do_repair(self._repo, actions, strict=strict, progress=progress)
        return diagnose(self._repo, strict=strict, progress=progress)

    # ------------------------------------------------------------------ gc

    def gc_plan(self, *, keep_last: int | None = None, keep_daily: int | None = None,
                keep_weekly: int | None = None, keep_days: int | None = None,
                keep_tagged: bool | None = None, now: str | None = None) -> Plan:
        """``jvs gc plan``: ``plan.plan_id``, ``plan.candidates`` and the ``plan.policy``
        applied. Retention given here replaces the configured one, as on the command
        line. *now* pretends it is that time (as ``--now`` and ``JVS_GC_NOW``: tests)."""
        from jvs.gc import gc_now, make_plan, policy_from

        policy = policy_from(self._repo.config().gc, keep_last=keep_last,
                             keep_daily=keep_daily, keep_weekly=keep_weekly,
                             keep_days=keep_days, keep_tagged=keep_tagged)
        return make_plan(self._repo, policy, gc_now(now))

    def du(self, *refs: str) -> RepoSpace:
        """``jvs du [REF]...``: space per snapshot (exclusive and shared; only *refs* if
        given) and for the repository."""
        from jvs.catalog import load_descriptors
        from jvs.space import repository_space
        from jvs.verify import resolve_for_verify

        space = repository_space(self._repo, load_descriptors(self._repo))
        if refs:
            space = space.only(resolve_for_verify(self._repo, r, self.worktree_name)
                               for r in refs)
        return space

    def gc_run(self, plan_id: str, *, progress: Progress | None = None,
               now: str | None = None) -> RunResult:
        """``jvs gc run --plan-id ID`` (E_GC_PLAN_MISMATCH if the repository changed);
        *now* as for :meth:`gc_plan`."""
        from jvs.gc import gc_now, run_plan

        return run_plan(self._repo, plan_id.strip(), gc_now(now), progress)

    def pin(self, ref: str, *, reason: str = "", expires: str | None = None) -> Pin:
        """``jvs gc pin REF [--reason R] [--expires 30d]``."""
        from jvs.gc import pin
        from jvs.verify import resolve_for_verify

        sid = resolve_for_verify(self._repo, ref, self.worktree_name)
        return pin(self._repo, sid, reason, expires)

    def unpin(self, ref: str) -> Unpinned:
        """``jvs gc unpin REF``."""
        from jvs.gc import unpin
        from jvs.ids import is_snapshot_id
        from jvs.verify import resolve_for_verify

        ref = ref.strip()
        sid = ref if is_snapshot_id(ref) else resolve_for_verify(self._repo, ref,
                                                                 self.worktree_name)
        return unpin(self._repo, sid)

    def pins(self) -> PinList:
        """``jvs gc pins``: a sequence of Pin; ``.to_json()`` says which expired."""
        from jvs.gc import pin_list

        return pin_list(self._repo)

    # ------------------------------------------------------------------ config

    def config(self) -> RepoConfig:
        """``.jvs/config.json`` as read now."""
        return self._repo.config()

    def get_config(self, key: str) -> object:
        """``jvs config get KEY``: the value in effect (defaults filled in)."""
        from jvs.config import get_config

        return get_config(self._repo, key).value

    def set_config(self, key: str, value: object) -> object:
        """``jvs config set KEY VALUE`` (locked, checked, audited); returns the new value.
        *value* may be the CLI's text or a Python value (a list of tags, an int, a bool)."""
        from jvs.config import change_config, python_value_text

        return change_config(self._repo, key, python_value_text(key, value)).new

    def unset_config(self, key: str) -> object:
        """``jvs config unset KEY``; returns the default now in effect."""
        from jvs.config import change_config

        return change_config(self._repo, key, None).new


def open(path: str | os.PathLike = ".", *, worktree: str | None = None) -> Repository:  # noqa: A001
    """Same as :func:`jvs.open`."""
    return Repository.open(path, worktree=worktree)


def init(parent: str | os.PathLike, name: str, *, hash_algo: str = "xxh3-128",
         template: str | None = None) -> Repository:
    """``jvs init NAME`` in *parent*."""
    return Repository.init(parent, name, hash_algo=hash_algo, template=template)
