"""Small helpers every command module shares: where am I, and which worktree."""

from __future__ import annotations

import os

import click

from jvs.cli.output import Ui
from jvs.errors import JvsError


def ui_of(ctx: click.Context) -> Ui:
    return ctx.ensure_object(Ui)


def start_dir(ctx: click.Context) -> str:
    directory = ui_of(ctx).directory
    if directory and not os.path.isdir(directory):
        raise JvsError("E_NOT_FOUND", f"-C {directory}: no such directory")
    return directory or os.getcwd()


def locate(ctx: click.Context):
    from jvs.repo import discover

    return discover(start_dir(ctx))


def current_worktree(ctx: click.Context, explicit: str | None = None):
    """(repo, worktree name) for a command that acts on a worktree."""
    loc = locate(ctx)
    name = explicit or loc.worktree
    if name is None:
        raise JvsError("E_NOT_FOUND", "not inside a worktree",
                       hint=f"cd into {loc.repo.root / 'main'} or a worktree, or use -C")
    return loc.repo, name


def short(snapshot_id: str | None) -> str:
    from jvs.ids import short_id

    return short_id(snapshot_id) if snapshot_id else "-"


def descriptor_json(desc, *, head: str | None = None, latest: str | None = None) -> dict:
    return desc.to_summary_json(head=head, latest=latest)


def some_of(paths: tuple[str, ...] | list[str], limit: int = 5) -> str:
    """The first *limit* of *paths* for a human line, and how many more there are."""
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"
