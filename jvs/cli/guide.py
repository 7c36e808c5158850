"""What ``jvs`` with no arguments prints: a short guide that starts from where the user
is (outside a repository, at its root, or in a worktree), instead of the full --help."""

from __future__ import annotations

import os

import click

NEW_USER = """\
  jvs init myproject && cd myproject/main     create a repository, enter its main worktree
  jvs snapshot "first state" --tag baseline   save the folder as a snapshot
  jvs history                                 list snapshots
  jvs restore baseline                        put the folder back (unsaved work is kept)"""

IN_WORKTREE = """\
  jvs status                         what changed since the last snapshot
  jvs snapshot "note" --tag T        save the folder
  jvs history                        list snapshots (--all: every worktree, rescues)
  jvs restore REF                    go back to a snapshot (tag, short ID, note, HEAD~1)
  jvs worktree fork NAME             a second folder to work in, from the current state
  jvs verify --all / jvs doctor      check integrity / repository health"""


def guide(ctx: click.Context) -> str:
    from jvs import __version__

    lines = [f"jvs {__version__}: snapshots of whole working folders, instant restore, "
             "and a browsable history.", ""]
    where = _where(ctx)
    if where is None:
        lines += ["You are not inside a jvs repository. Start here:", NEW_USER]
    else:
        root, worktree = where
        if worktree is None:
            lines += [f"Repository {root} (at its root; worktrees are main/ and worktrees/*/).",
                      f"  cd {os.path.join(root, 'main')}    then:", IN_WORKTREE]
        else:
            lines += [f"Worktree '{worktree}' of {root}:", IN_WORKTREE]
    lines += ["", "All commands: jvs --help   One command: jvs COMMAND --help   "
              "Completion: eval \"$(jvs completion bash)\""]
    return "\n".join(lines)


def _where(ctx: click.Context) -> tuple[str, str | None] | None:
    """(repository root, worktree or None), or None outside a repository. Never fails:
    the guide must print even in a broken repository."""
    try:
        from jvs.repo import discover

        start = ctx.params.get("directory") or os.getcwd()
        loc = discover(start)
        return str(loc.repo.root), loc.worktree
    except Exception:
        return None
