"""Crashed operations: what a command does when it finds one on its worktree, and what
``doctor`` runs to finish them.

The rules (SPEC §6, docs/guarantees.md):
- a repair acts only on what an intent recorded, never on names or lineage guesses;
- a snapshot or a worktree operation that crashed is finished or rolled back from its
  record (neither touches user data the user could have changed since);
- a restore that crashed before it touched the worktree is forgotten (the worktree holds
  exactly what it held); one that crashed half-way is finished only by a restore of that
  worktree or by ``doctor --repair finish_restore``; any other command refuses with
  E_UNSAVED naming it, so work done after the crash is never moved.

Every function here runs under the repository lock held exclusively (no operation of the
same worktree can be running), so every intent it finds is a crashed one.
"""

from __future__ import annotations

from jvs.errors import JvsError
from jvs.intents import (
    Intent,
    RestoreIntent,
    SnapshotIntent,
    WorktreeIntent,
    list_intents,
)
from jvs.repo import Repo


def names_worktree(intent: Intent, worktree: str) -> bool:
    rec = intent.record
    if isinstance(rec, (SnapshotIntent, RestoreIntent)):
        return rec.worktree == worktree
    if isinstance(rec, WorktreeIntent):
        return worktree in (rec.name, rec.new_name)
    return False


def finish(repo: Repo, intent: Intent) -> str:
    """Finish (or roll back) one crashed operation; returns what was done."""
    rec = intent.record
    if isinstance(rec, SnapshotIntent):
        from jvs.snapshot import finish_snapshot

        return finish_snapshot(repo, intent)
    if isinstance(rec, WorktreeIntent):
        from jvs.worktrees import finish_worktree_operation

        return finish_worktree_operation(repo, intent)
    if isinstance(rec, RestoreIntent):
        from jvs.restore import finish_restore

        result = finish_restore(repo, intent)
        return f"finished the restore of {rec.worktree} to {result.target.snapshot_id}" + (
            f" (unsaved work kept as rescue {result.rescue.snapshot_id})" if result.rescue
            else "")
    raise JvsError("E_BUSY", f"cannot finish {intent.describe()}")


def settle_worktree(repo: Repo, worktree: str, command: str) -> list[str]:
    """Before *command* acts on *worktree*: finish its crashed snapshots and worktree
    operations, forget a restore that never touched it, and refuse (E_UNSAVED) while a
    restore that crashed half-way is pending — unless *command* is that worktree's
    restore, which finishes it itself. Returns what was done, for the user."""
    from jvs.lock import short_lock
    from jvs.restore import forget_untouched_restore, remove_work_dir

    done = []
    pending_restore = None
    mine = [i for i in list_intents(repo) if names_worktree(i, worktree)]
    if any(not isinstance(i.record, RestoreIntent) for i in mine):
        # A crashed fork or create names two worktrees: operations in both may find it at
        # once (they hold only their own worktree's lock). One finishes it, under this
        # short lock; the other then finds it gone.
        with short_lock(repo, "intents", command):
            mine = [i for i in list_intents(repo) if names_worktree(i, worktree)]
            for intent in mine:
                if not isinstance(intent.record, RestoreIntent):
                    done.append(finish(repo, intent))
    for intent in mine:
        if isinstance(intent.record, RestoreIntent):
            pending_restore = intent
    if pending_restore is not None:
        if forget_untouched_restore(repo, pending_restore):
            done.append(f"forgot a restore of {worktree} that crashed before it changed "
                        "anything")
        elif command != "restore":
            rec = pending_restore.record
            raise JvsError(
                "E_UNSAVED",
                f"a restore of worktree {worktree!r} to {rec.target_id} crashed half-way "
                f"({pending_restore.who}, {pending_restore.started_at}); {command} would "
                "act on a half-restored worktree",
                hint=f"finish it first: 'jvs restore {rec.target_id}' in that worktree, or "
                     "'jvs doctor --repair finish_restore'")
    else:
        remove_work_dir(repo, worktree, only_leftovers=True)
    return done
