"""init, snapshot, history, status, info."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from jvs.cli.common import (
    current_worktree,
    locate,
    short,
    some_of,
    start_dir,
    ui_of,
)
from jvs.cli.completion import complete_path, complete_tag, complete_template
from jvs.cli.output import json_option
from jvs.names import MAX_NOTE_BYTES, validate_note


@click.command()
@click.argument("name")
@click.option("--hash-algo", type=click.Choice(["xxh3-128", "sha256"]), default="xxh3-128",
              show_default=True, help="Content hash for payload records.")
@click.option("--template", metavar="NAME|FILE", shell_complete=complete_template,
              help="Start main/.jvsignore from a ready template (unity, unreal) or a file.")
@click.option("--from", "source", metavar="DIR", type=click.Path(file_okay=False),
              help="Import DIR: main/ gets its content (clone, reflink or copy) and it "
                   "becomes the first snapshot. DIR is left as it is.")
@click.option("--move", is_flag=True,
              help="With --from: rename DIR into the repository instead (same filesystem).")
@json_option
@click.pass_context
def init(ctx, name, hash_algo, template, source, move):
    """Create the repository NAME (with an empty main worktree) in the current directory.

    NAME may also be a path whose last part is the repository (/data/ml-experiments).

    \b
    Examples:
      jvs init ml-experiments && cd ml-experiments/main
      jvs init my-game --template unity
      jvs init datasets --from /data/dataset
      jvs init /mnt/juicefs/projects/ml
    """
    if source is not None or move:
        if source is None:
            raise click.UsageError("--move needs --from DIR")
        if template:
            raise click.UsageError("--template and --from: the imported folder brings its "
                                   "own .jvsignore, if any")
        _import(ctx, name, source, move, hash_algo)
        return
    from jvs.api import init_repository

    parent, name = _parent_and_name(ctx, name)
    result = init_repository(parent, name, hash_algo=hash_algo, template=template)
    root = result.repository.root
    lines = [f"Initialized JVS repository in {root}", f"Main worktree: {root / 'main'}"]
    if template:
        lines.append(f"Ignore rules: {result.ignore_file} (from {template})")
    ui_of(ctx).emit(result.to_json(), "\n".join(lines))


def _parent_and_name(ctx, name: str) -> tuple[Path, str]:
    """NAME may be a path (``jvs init /data/projects/ml``, ``jvs init ../ml``): the
    repository is its last component, made in the directory before it (which must exist)."""
    full = os.path.normpath(os.path.join(start_dir(ctx), name))
    parent, base = os.path.split(full)
    if not os.path.isdir(parent):
        from jvs.errors import JvsError

        raise JvsError("E_NOT_FOUND", f"{parent}: no such directory",
                       hint="create it first, or give a name in an existing directory")
    return Path(parent), base


def _import(ctx, name: str, source: str, move: bool, hash_algo: str) -> None:
    from jvs.api import import_repository

    ui = ui_of(ctx)
    parent, name = _parent_and_name(ctx, name)
    with ui.live() as progress:
        result = import_repository(parent, name, source, move=move, hash_algo=hash_algo,
                                   progress=progress)
    root = result.repo.root
    ui.emit(result.to_json(),
            "\n".join([f"Initialized JVS repository in {root}", f"Main worktree: {root / 'main'}",
                       f"Imported {result.source} ({result.how}: {result.reason})",
                       f"Created snapshot {result.snapshot.descriptor.snapshot_id}"]))


def read_note(note: str | None, note_file: str | None) -> str:
    if note_file is not None and note not in (None,):
        raise click.UsageError("give the note as an argument or with -F, not both")
    from jvs.errors import JvsError

    if note == "-" or note_file == "-":
        raw = sys.stdin.buffer.read(MAX_NOTE_BYTES + 2)  # never more than the limit
    elif note_file is not None:
        try:
            with open(note_file, "rb") as f:
                raw = f.read(MAX_NOTE_BYTES + 2)
        except OSError as exc:
            raise JvsError("E_NOT_FOUND",
                           f"cannot read note file {note_file}: {exc.strerror}") from None
    else:
        raw = os.fsencode(note or "")  # argv: undecodable bytes come back as they were
    if len(raw.rstrip(b"\n")) > MAX_NOTE_BYTES:  # read cut it: say why, not "not UTF-8"
        validate_note(raw.decode("utf-8", "replace"))  # raises E_USAGE, the limit
    try:
        return raw.decode("utf-8")  # the limit is checked where the snapshot is taken
    except UnicodeDecodeError as exc:
        raise JvsError("E_USAGE", f"note is not valid UTF-8 (byte {exc.start})",
                       hint="notes are text; check the file's encoding") from None


@click.command()
@click.argument("note", required=False)
@click.option("-t", "--tag", "tags", multiple=True, metavar="TAG", help="Tag (repeatable).",
              shell_complete=complete_tag)
@click.option("--paths", "paths", multiple=True, metavar="PATH", shell_complete=complete_path,
              help="Partial snapshot: only these paths (repeatable).")
@click.option("-F", "--file", "note_file", metavar="FILE",
              help="Read the note from FILE ('-': stdin).")
@click.option("-m", "--message", "message", metavar="NOTE",
              help="The note, as an option (like git commit -m).")
@json_option
@click.pass_context
def snapshot(ctx, note, tags, paths, note_file, message):
    """Snapshot the current worktree. NOTE '-' reads the note from stdin.

    \b
    Examples:
      jvs snapshot "Initial setup with dataset" --tag baseline
      jvs snapshot "Exp1" --tag exp1 --tag model
      jvs snapshot -m "Exp2: LR 0.001" -t exp2
      jvs snapshot -F note.txt
      echo "note" | jvs snapshot -
      jvs snapshot "assets only" --paths Assets --paths ProjectSettings
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    repo, worktree = current_worktree(ctx)
    if message is not None:
        if note is not None:
            raise click.UsageError("give the note as an argument or with -m, not both")
        note = message
    text = read_note(note, note_file)
    with ui.live() as progress:
        result = Repository(repo, worktree).snapshot(text, tags=tags, paths=paths,
                                                     progress=progress)
    desc = result.descriptor
    if result.was_detached:
        ui.warn(f"worktree '{worktree}' was DETACHED: the new snapshot's parent is "
                f"{short(desc.parent_id)}; the previous latest {short(result.previous_latest)} "
                "stays in 'jvs history --all'")
    for path in result.skipped_special:
        ui.warn(f"skipped special file (FIFO, socket or device): {path}")
    lines = [f"Created snapshot {desc.snapshot_id}"]
    if desc.tags:
        lines.append(f"  tags: {', '.join(desc.tags)}")
    if desc.partial_paths:
        lines.append(f"  partial: {', '.join(desc.partial_paths)}")
    if desc.degraded:
        lines.append(f"  degraded ({desc.engine}): {', '.join(desc.degraded)}")
    if result.ignored:
        lines.append(f"  ignored (.jvsignore): {some_of(result.ignored)}")
    ui.emit(result.to_json(), "\n".join(lines))
    if result.audit_error:
        ui.warn(f"the snapshot is published and is HEAD, but its audit record could not be "
                f"written ({result.audit_error}); 'jvs doctor --strict' reports it and "
                "'jvs doctor --repair audit_repair' adds it")


@click.command()
@click.option("-n", "--limit", type=click.IntRange(min=1), default=None,
              help="Show at most N snapshots.")
@click.option("--grep", metavar="TEXT", help="Only snapshots whose note contains TEXT.")
@click.option("--tag", metavar="TAG", help="Only snapshots with this tag (exact, glob, or prefix).",
              shell_complete=complete_tag)
@click.option("--all", "all_snapshots", is_flag=True,
              help="Every snapshot in the repository, rescues and other worktrees included.")
@click.option("--collected", is_flag=True,
              help="Also list snapshots gc collected (marked; they cannot be restored).")
@click.option("--since", "--after", "since", metavar="WHEN",
              help="Only snapshots created at or after WHEN (2026-12-01, yesterday, "
                   "'3 days ago', 2.days.ago).")
@click.option("--until", "--before", "until", metavar="WHEN",
              help="Only snapshots created at or before WHEN.")
@click.option("--reverse", is_flag=True, help="Oldest first (after --limit, as in git).")
@click.option("--oneline", is_flag=True, help="One short line per snapshot: ID, note, tags.")
@click.option("--no-pager", is_flag=True,
              help="Never page (on a terminal the list goes through JVS_PAGER, PAGER or "
                   "less).")
@json_option
@click.pass_context
def history(ctx, limit, grep, tag, all_snapshots, collected, since, until, reverse, oneline,
            no_pager):
    """List snapshots, newest first; times are local, with their UTC offset.

    \b
    Examples:
      jvs history
      jvs history --tag exp
      jvs history --grep Exp --limit 5 --json
      jvs history --all
      jvs history --collected
      jvs history --since "3 days ago" --until yesterday --oneline
      jvs history --reverse -n 10
    """
    from jvs.api import Repository
    from jvs.descriptor import Descriptor
    from jvs.ids import local_time

    ui = ui_of(ctx)
    loc = locate(ctx)
    _warn_if_restore_pending(ui, loc)
    result = Repository(loc.repo, loc.worktree).history(
        all=all_snapshots, tag=tag, grep=grep, limit=limit, collected=collected,
        since=since or None, until=until or None, reverse=reverse)
    wt = result.worktree
    head = wt.head_snapshot_id if wt else None
    latest = wt.latest_snapshot_id if wt else None
    if ui.json:
        ui.emit(result.to_json())
        return
    lines = []
    if wt and wt.detached:
        lines.append(ui.style(f"Worktree '{wt.name}' is DETACHED at {short(head)} "
                              f"(latest is {short(latest)}); 'jvs restore HEAD' returns "
                              "to the latest", fg="yellow"))
    if not result.snapshots and not result.collected:
        lines.append("No snapshots yet." if not (tag or grep or since or until)
                     else "No matching snapshots.")
    entries = sorted([*result.snapshots, *result.collected], key=lambda e: e.snapshot_id,
                     reverse=not reverse)
    for d in entries:
        if not isinstance(d, Descriptor):  # a tombstone
            when = local_time(d.created_at)
            tags = f" [{', '.join(d.tags)}]" if d.tags else ""
            first_line = d.note.splitlines()[0] if d.note else ""
            lines.append(ui.style(f"{short(d.snapshot_id)}  {when}  {first_line}{tags}  "
                                  f"(collected {d.collected_at[:10]} by plan {d.plan_id})",
                                  dim=True))
            continue
        marks = []
        if d.snapshot_id == head:
            marks.append(ui.style("HEAD", fg="green", bold=True))
        if d.snapshot_id == latest and latest != head:
            marks.append("latest")
        if d.is_rescue:
            marks.append(ui.style("rescue", fg="red"))
        if d.is_partial:
            marks.append("partial")
        if all_snapshots or (wt and d.worktree_name != wt.name):
            marks.append(f"@{d.worktree_name}")
        tags = f" [{', '.join(d.tags)}]" if d.tags else ""
        first_line = d.note.splitlines()[0] if d.note else ""
        mark = f"  ({', '.join(marks)})" if marks else ""
        if oneline:
            lines.append(f"{ui.style(short(d.snapshot_id), fg='yellow')} {first_line}{tags}"
                         f"{mark}")
            continue
        lines.append(f"{ui.style(short(d.snapshot_id), fg='yellow')}  "
                     f"{local_time(d.created_at)}  {first_line}{tags}{mark}")
    ui.page("\n".join(lines) + "\n", enabled=not no_pager)


def _warn_if_restore_pending(ui, loc) -> None:
    """History lists snapshots, but a worktree with a crashed restore holds part of two:
    say so (status does too). One listing of .jvs/intents when there is none."""
    try:
        if not loc.worktree or not any(os.scandir(loc.repo.jvs_dir / "intents")):
            return
    except FileNotFoundError:  # a repository the Go implementation wrote
        return
    from jvs.restore import pending_restore

    intent = pending_restore(loc.repo, loc.worktree)
    if intent is not None and intent.record.phase != "prepare":
        ui.warn(f"a restore of worktree '{loc.worktree}' to {short(intent.record.target_id)} "
                f"was interrupted ({intent.who}, {intent.started_at}); finish it with "
                f"'jvs restore {intent.record.target_id}'")


# ``status --short``: one letter per kind of change. Stable: scripts parse it.
SHORT_CODES = {"added": "A", "removed": "D", "modified": "M", "mode": "m", "type": "T"}


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH...]", shell_complete=complete_path)
@click.option("-s", "--short", "short_format", is_flag=True,
              help="One line per change, 'CODE PATH' (A added, D removed, M modified, "
                   "m mode, T type), paths from the worktree root; stable for scripts.")
@json_option
@click.pass_context
def status(ctx, paths, short_format):
    """Show how the worktree differs from its head snapshot (only at or below PATHs).

    PATHs are relative to the current directory (inside the worktree) and only files
    there are read.

    \b
    Examples:
      jvs status
      jvs status data/ train.py
      jvs status --short
    """
    from jvs.api import Repository
    from jvs.worktree import worktree_relpaths

    ui = ui_of(ctx)
    repo, worktree = current_worktree(ctx)
    relpaths = worktree_relpaths(repo, worktree, start_dir(ctx), paths)
    st = Repository(repo, worktree).status(*relpaths)
    wt = st.worktree
    if short_format and not ui.json:
        ui.out("".join(f"{SHORT_CODES[c.change]} {c.path}\n" for c in st.changes))
        return
    lines = [f"Worktree: {wt.name}"]
    if st.interrupted is not None:
        rec = st.interrupted.record
        when = f"({st.interrupted.who}, {st.interrupted.started_at})"
        lines.append(ui.style(
            f"A restore to {short(rec.target_id)} crashed before it changed anything {when}; "
            "the next command forgets it" if rec.phase == "prepare" else
            f"A restore to {short(rec.target_id)} was interrupted {when}: the worktree may "
            f"hold part of each state. Finish it with 'jvs restore {rec.target_id}' (or "
            "'jvs doctor --repair finish_restore')", fg="yellow"))
    if wt.head_snapshot_id is None:
        lines.append("No snapshots yet.")
    elif wt.detached:
        lines.append(f"HEAD: {short(wt.head_snapshot_id)} (DETACHED; latest is "
                     f"{short(wt.latest_snapshot_id)})")
    else:
        lines.append(f"HEAD: {short(wt.head_snapshot_id)} (HEAD state: at latest)")
    if st.changes.clean:
        lines.append(f"Clean: {', '.join(relpaths)} match(es) the head snapshot." if relpaths
                     else "Clean: the worktree matches its head snapshot.")
    else:
        marks = {"added": "+", "removed": "-", "modified": "M", "mode": "m", "type": "T"}
        lines.append(f"{len(st.changes)} change(s) since the head snapshot:")
        lines += [f"  {marks[c.change]} {c.path}" for c in st.changes]
    ui.emit(st.to_json(), "\n".join(lines))


@click.command()
@json_option
@click.pass_context
def info(ctx):
    """Show the repository, its engine (and why), and the current worktree.

    \b
    Example:
      jvs info --json
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    loc = locate(ctx)
    info = Repository(loc.repo, loc.worktree).info()
    lines = [f"Repository: {info.repo_root}", f"Repo ID: {info.repo_id}",
             f"Format: {info.format_version}", f"Engine: {info.engine} ({info.engine_reason})",
             f"Hash: {info.payload_hash_algo}",
             f"Worktrees: {', '.join(info.worktrees)}",
             f"Snapshots: {info.snapshot_count}"]
    if info.worktree:
        lines.append(f"Current worktree: {info.worktree} (HEAD {short(info.head_snapshot_id)}"
                     f"{', DETACHED' if info.detached else ''})")
    ui.emit(info.to_json(), "\n".join(lines))


COMMANDS = [init, snapshot, history, status, info]
