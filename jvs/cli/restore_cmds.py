"""restore, fork, worktree (create, fork, list, path, rename, remove), diff."""

from __future__ import annotations

import os

import click

from jvs.cli.common import current_worktree, locate, short, some_of, start_dir, ui_of
from jvs.cli.completion import complete_snapshot_ref, complete_tag, complete_worktree
from jvs.cli.output import json_option

_MARKS = {"added": "+", "removed": "-", "modified": "M", "mode": "m", "type": "T"}
_MAX_MENU = 50


def _state_line(ui, wt) -> str:
    if wt.detached:
        return ui.style(f"Worktree '{wt.name}' is DETACHED at {short(wt.head_snapshot_id)} "
                        f"(latest is {short(wt.latest_snapshot_id)}): 'jvs snapshot' "
                        "continues from here, 'jvs restore HEAD' returns to the latest",
                        fg="yellow")
    return f"HEAD state: worktree '{wt.name}' is at its latest snapshot " \
           f"{short(wt.head_snapshot_id)}"


def _pick_interactively(ctx, repo, pattern: str | None) -> str:
    """Numbered list of snapshots (newest first, filtered by *pattern*) on stderr; the
    choice is read from stdin, so it can be piped as well as typed."""
    from jvs.catalog import load_descriptors
    from jvs.errors import JvsError
    from jvs.resolve import describe

    snapshots = list(reversed(load_descriptors(repo)))
    if pattern:
        needle = pattern.casefold()
        snapshots = [d for d in snapshots
                     if needle in d.snapshot_id or needle in d.note.casefold()
                     or any(needle in t.casefold() for t in d.tags)]
    if not snapshots:
        raise JvsError("E_NOT_FOUND", f"no snapshot matches {pattern!r}" if pattern
                       else "no snapshots yet")
    shown = snapshots[:_MAX_MENU]
    for number, desc in enumerate(shown, 1):
        click.echo(f"{number:3d}) {describe(desc)}", err=True)
    if len(snapshots) > len(shown):
        click.echo(f"     ... {len(snapshots) - len(shown)} older not shown; narrow with a "
                   "filter: jvs restore -i TEXT", err=True)
    choice = click.prompt("Restore which snapshot? (number)", type=click.IntRange(1, len(shown)),
                          err=True)
    return shown[choice - 1].snapshot_id


@click.command()
@click.argument("ref", required=False, shell_complete=complete_snapshot_ref)
@click.argument("paths", nargs=-1, metavar="[-- PATH...]")
@click.option("--latest-tag", metavar="TAG", help="The newest snapshot carrying TAG.",
              shell_complete=complete_tag)
@click.option("--discard-unsaved", is_flag=True,
              help="Throw away unsaved changes instead of saving them as a rescue snapshot.")
@click.option("-i", "--interactive", is_flag=True,
              help="Pick from a numbered list (REF, if given, filters it).")
@click.option("-n", "--dry-run", is_flag=True,
              help="Print what would change (and whether unsaved work would become a "
                   "rescue); change nothing.")
@click.option("--verify", "verify_payload", is_flag=True,
              help="Hash the whole snapshot first and refuse if it was tampered with "
                   "(the descriptor checksum is always checked).")
@json_option
@click.pass_context
def restore(ctx, ref, paths, latest_tag, discard_unsaved, interactive, dry_run,
            verify_payload):
    """Replace the worktree's contents with snapshot REF, in place, or only PATHs.

    REF is HEAD (the worktree's latest snapshot), latest, a snapshot ID or a unique prefix
    of it or of its short form, a tag (newest snapshot carrying it), a note, or a unique
    note prefix; any of them followed by ~N or ^ goes back along the lineage (exp1^,
    HEAD~2). Unsaved changes first become a rescue snapshot, restorable by its ID,
    unless --discard-unsaved. Restoring an older snapshot leaves the worktree DETACHED;
    'jvs snapshot' continues from there and 'jvs restore HEAD' returns to the latest.
    Only what differs is touched: unchanged files are never moved, copied or read.

    With '-- PATH...', only those files or directories (relative to the current
    directory) are made as they are in REF; the rest of the worktree and its HEAD stay.

    \b
    Examples:
      jvs restore exp1
      jvs restore "Experiment with seed 42"
      jvs restore --latest-tag stable
      jvs restore HEAD~2
      jvs restore HEAD
      jvs restore -i exp
      jvs restore baseline --discard-unsaved
      jvs restore v1 -- config.yaml data/labels
      jvs restore exp1 --dry-run
      jvs restore prod --verify
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    repo, worktree = current_worktree(ctx)
    if latest_tag and ref:
        raise click.UsageError("give REF or --latest-tag, not both")
    if interactive:
        if latest_tag:
            raise click.UsageError("-i takes a filter text, not --latest-tag")
        ref = _pick_interactively(ctx, repo, ref)
    elif not ref and not latest_tag:
        raise click.UsageError("give a snapshot: REF, HEAD, --latest-tag TAG or -i")
    started = os.path.realpath(start_dir(ctx))
    if dry_run:
        _print_restore_preview(ui, Repository(repo, worktree).restore_preview(
            ref, latest_tag=latest_tag, discard_unsaved=discard_unsaved,
            paths=_worktree_paths(repo, worktree, started, paths)))
        return
    was = os.stat(started)
    with ui.live() as progress:
        result = Repository(repo, worktree).restore(
            ref, latest_tag=latest_tag, discard_unsaved=discard_unsaved,
            paths=_worktree_paths(repo, worktree, started, paths), progress=progress,
            verify_payload=verify_payload)
    wt = result.worktree
    _warn_if_shell_dir_replaced(ui, started, was)
    for what in result.finished:
        ui.warn(what)
    lines = _rescue_lines(ui, result, "jvs restore {rid}")
    if result.paths:
        lines.append(f"Restored {', '.join(result.paths)} from snapshot "
                     f"{result.target.snapshot_id}")
    else:
        lines.append(f"Restored to snapshot {result.target.snapshot_id}")
    if result.unchanged:
        lines.append("  (the worktree already matched it: nothing was moved)")
    else:
        lines.append(f"  {result.changed} entr{'y' if result.changed == 1 else 'ies'} "
                     "changed, the rest left as it was")
    if result.conflicts:
        lines.append(f"  written during the restore, kept in jvs-restore-conflicts/: "
                     f"{some_of(result.conflicts)}")
    if result.target.is_partial:
        lines.append(f"  partial: only {', '.join(result.target.partial_paths)} replaced")
    if result.not_restored:
        lines.append(f"  not restored, ignored by .jvsignore: {some_of(result.not_restored)}")
    lines.append(_state_line(ui, wt))
    ui.emit(result.to_json(), "\n".join(lines))


def _rescue_lines(ui, result, back: str) -> list[str]:
    """Where a restore's or a forced remove's unsaved work went; *back*: the command that
    gets it back (``{rid}``: the rescue's ID)."""
    lines = []
    if result.rescue is not None:
        rid = result.rescue.snapshot_id
        lines.append(f"Saved {result.unsaved} unsaved change(s) as rescue snapshot {rid}")
        lines.append(f"  get them back with: {back.format(rid=rid)}")
    if result.discarded:
        ui.warn("--discard-unsaved: unsaved changes, if there were any, were discarded")
    return lines


_ACTION_MARKS = {"create": "+", "delete": "-", "replace": "M", "chmod": "m"}


def _print_restore_preview(ui, preview) -> None:
    target = preview.target.snapshot_id
    lines = [f"Dry run: 'jvs restore' would restore to snapshot {target}; nothing changed."]
    if preview.rescue:
        lines.append(f"  first: {len(preview.unsaved)} unsaved change(s) would be saved as "
                     "a rescue snapshot")
    elif preview.unsaved:
        lines.append(f"  first: {len(preview.unsaved)} unsaved change(s) would be DISCARDED "
                     "(--discard-unsaved)")
    if not preview.actions:
        lines.append("  the worktree already holds it: no file would change")
    lines += [f"  {_ACTION_MARKS[a]} {p}  ({a})" for a, p in preview.actions]
    ui.emit(preview.to_json(), "\n".join(lines))


def _worktree_paths(repo, worktree: str, started: str, paths: tuple[str, ...]
                    ) -> tuple[str, ...]:
    from jvs.worktree import worktree_relpaths

    return worktree_relpaths(repo, worktree, started, paths,
                             whole="leave out '-- PATH' to restore all of it")


def _warn_if_shell_dir_replaced(ui, started: str, was: os.stat_result) -> None:
    """The worktree dir keeps its inode, and so does every directory the restore did not
    change; but if the one the command was started in was replaced, say how to follow."""
    try:
        now = os.stat(started)
    except FileNotFoundError:
        ui.warn("the directory you are in is not in the restored snapshot; 'cd ..'")
        return
    if (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino):
        ui.warn("the directory you are in was replaced by the restore; run 'cd \"$PWD\"' "
                "to see the restored one")


def _created(ctx, info, how: str) -> None:
    cfg = info.config
    lines = [f"Created worktree '{cfg.name}' {how}", f"  path: {info.path}"]
    if cfg.head_snapshot_id:
        lines.append(f"  HEAD state at snapshot {cfg.head_snapshot_id}")
    lines.append(f"  cd {info.path}")
    ui_of(ctx).emit(info.to_json(), "\n".join(lines))


def _fork_args(args: tuple[str, ...]) -> tuple[str | None, str]:
    if len(args) == 1:
        return None, args[0]
    if len(args) == 2:
        return args[0], args[1]
    raise click.UsageError("expected [REF] NAME")


def _do_fork(ctx, args):
    from jvs.api import Repository

    ref, name = _fork_args(args)
    loc = locate(ctx)
    with ui_of(ctx).live() as progress:
        info = Repository(loc.repo, loc.worktree).fork(name, ref=ref, progress=progress)
    _created(ctx, info, f"from snapshot {short(info.config.head_snapshot_id)}")


@click.command("fork")
@click.argument("args", nargs=-1, metavar="[REF] NAME", shell_complete=complete_snapshot_ref)
@json_option
@click.pass_context
def fork_cmd(ctx, args):
    """Create worktree NAME at snapshot REF (default: the current worktree's head).

    The new worktree starts in HEAD state at that snapshot, under worktrees/NAME.
    Unsaved changes of the current worktree are not carried over.

    \b
    Examples:
      jvs fork investigation && cd ../worktrees/investigation
      jvs fork v1.0 bugfix-1234
    """
    _do_fork(ctx, args)


@click.group("worktree")
def worktree_group():
    """Create, fork, list, locate, rename and remove worktrees.

    \b
    Examples:
      jvs worktree fork investigation && cd ../worktrees/investigation
      jvs worktree list
    """


@worktree_group.command("create")
@click.argument("name")
@click.option("--from", "from_ref", metavar="REF", help="Start from this snapshot.",
              shell_complete=complete_snapshot_ref)
@json_option
@click.pass_context
def worktree_create(ctx, name, from_ref):
    """Create worktree NAME, empty or holding snapshot REF (--from).

    \b
    Examples:
      jvs worktree create scratch
      jvs worktree create staging --from v1.0
    """
    from jvs.api import Repository

    loc = locate(ctx)
    info = Repository(loc.repo, loc.worktree).create_worktree(name, from_ref=from_ref)
    how = f"from snapshot {short(info.config.head_snapshot_id)}" if from_ref else "(empty)"
    _created(ctx, info, how)


@worktree_group.command("fork")
@click.argument("args", nargs=-1, metavar="[REF] NAME", shell_complete=complete_snapshot_ref)
@json_option
@click.pass_context
def worktree_fork(ctx, args):
    """Create worktree NAME at snapshot REF (default: the current worktree's head).

    \b
    Examples:
      jvs worktree fork investigation && cd ../worktrees/investigation
      jvs worktree fork v1.0 bugfix-1234
    """
    _do_fork(ctx, args)


@worktree_group.command("list")
@json_option
@click.pass_context
def worktree_list(ctx):
    """List worktrees with their path, head and state.

    \b
    Example:
      jvs worktree list --json
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    loc = locate(ctx)
    infos = Repository(loc.repo, loc.worktree).worktrees()
    width = max((len(i.config.name) for i in infos), default=4)
    lines = []
    for i in infos:
        cfg = i.config
        cur = "*" if cfg.name == loc.worktree else " "
        if cfg.head_snapshot_id is None:
            state = "no snapshots"
        elif cfg.detached:
            state = f"DETACHED (latest {short(cfg.latest_snapshot_id)})"
        else:
            state = "HEAD state"
        lines.append(f"{cur} {cfg.name:<{width}}  {short(cfg.head_snapshot_id):<8}  "
                     f"{state:<28}  {i.path}")
    ui.emit(infos.to_json(), "\n".join(lines))


@worktree_group.command("path")
@click.argument("name", required=False, shell_complete=complete_worktree)
@json_option
@click.pass_context
def worktree_path(ctx, name):
    """Print the directory of worktree NAME (default: the current one).

    \b
    Examples:
      jvs worktree path staging
      cd "$(jvs worktree path staging)"
    """
    from jvs.api import Repository

    loc = locate(ctx)
    if name is None:
        _, name = current_worktree(ctx)
    found = Repository(loc.repo, loc.worktree).worktree_path(name)
    ui_of(ctx).emit(found.to_json(), str(found.path))


@worktree_group.command("rename")
@click.argument("old", shell_complete=complete_worktree)
@click.argument("new")
@json_option
@click.pass_context
def worktree_rename(ctx, old, new):
    """Rename worktree OLD to NEW (never main). Its snapshots keep their recorded name.

    \b
    Example:
      jvs worktree rename feature-b caching
    """
    from jvs.api import Repository

    info = Repository(locate(ctx).repo).rename_worktree(old, new)
    ui_of(ctx).emit(info.to_json(), f"Renamed worktree '{info.old_name}' to "
                    f"'{info.config.name}'\n  path: {info.path}")


@worktree_group.command("remove")
@click.argument("name", shell_complete=complete_worktree)
@click.option("--force", is_flag=True,
              help="Remove even with unsaved changes; they are kept as a rescue snapshot.")
@click.option("--discard-unsaved", is_flag=True,
              help="With --force: throw unsaved changes away instead of keeping a rescue.")
@click.option("-n", "--dry-run", is_flag=True,
              help="Print what would be removed (and whether it would be refused); change "
                   "nothing.")
@json_option
@click.pass_context
def worktree_remove(ctx, name, force, discard_unsaved, dry_run):
    """Remove worktree NAME (its folder and config; its snapshots stay).

    Refuses a worktree with unsaved changes unless --force. Forced, the unsaved changes
    first become a rescue snapshot (as restore does; 'jvs history --all' lists it, 'jvs
    fork RESCUE_ID NAME' brings the worktree back), unless --discard-unsaved.

    \b
    Examples:
      jvs worktree remove investigation
      jvs worktree remove investigation --dry-run
      jvs worktree remove investigation --force
      jvs worktree remove investigation --force --discard-unsaved
    """
    from jvs.worktrees import remove

    ui = ui_of(ctx)
    if discard_unsaved and not force:
        raise click.UsageError("--discard-unsaved goes with --force")
    if dry_run:
        from jvs.preview import remove_preview

        p = remove_preview(locate(ctx).repo, name, force=force,
                           discard_unsaved=discard_unsaved)
        if p.refused:
            human = (f"Dry run: 'jvs worktree remove {p.name}' would be refused: "
                     f"{p.unsaved} unsaved change(s) (snapshot them, or --force to keep "
                     "them as a rescue snapshot)")
        else:
            if p.rescue:
                fate = (f"; first, its {p.unsaved} unsaved change(s) would be saved as a "
                        "rescue snapshot")
            elif p.unsaved:
                fate = f"; {p.unsaved} unsaved change(s) would be LOST (--discard-unsaved)"
            else:
                fate = ""
            human = (f"Dry run: would remove worktree '{p.name}' ({p.path} and its config; "
                     f"its snapshots stay{fate}); nothing changed.")
        ui.emit(p.to_json(), human)
        return

    with ui.live() as progress:
        result = remove(locate(ctx).repo, name, force=force,
                        discard_unsaved=discard_unsaved, progress=progress)
    lines = _rescue_lines(ui, result, f"jvs fork {{rid}} {result.worktree.name}")
    lines.append(f"Removed worktree '{result.worktree.name}' (its snapshots stay; "
                 "see 'jvs history --all')")
    ui.emit(result.to_json(), "\n".join(lines))


class _PathsAfterDashes(click.Command):
    """A command whose arguments after ``--`` are paths, whatever their number: click
    itself would hand ``jvs diff -- data`` to the first positional argument."""

    def parse_args(self, ctx, args):
        if "--" in args:
            at = args.index("--")
            ctx.meta["jvs.paths"] = tuple(args[at + 1:])
            args = args[:at]
        else:
            ctx.meta["jvs.paths"] = ()
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx):
        return [*super().collect_usage_pieces(ctx), "[-- PATH...]"]


@click.command(cls=_PathsAfterDashes)
@click.argument("a", required=False, shell_complete=complete_snapshot_ref)
@click.argument("b", required=False, shell_complete=complete_snapshot_ref)
@click.option("--stat", "stat_only", is_flag=True, help="Only a summary per file and in total.")
@click.option("-p", "--patch", "as_patch", is_flag=True,
              help="The content diff (unified, like git diff); binary files are reported "
                   "as such.")
@click.option("-U", "--unified", "context", type=click.IntRange(min=0), default=3,
              show_default=True, metavar="N", help="Lines of context with -p.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when there are differences, 0 when there are none.")
@json_option
@click.pass_context
def diff(ctx, a, b, stat_only, as_patch, context, exit_code):
    """Show what changed from snapshot A to snapshot B (only at or below PATHs).

    B missing: from A to the worktree as it is now. Both missing: from the head snapshot
    to the worktree. Mode-only changes are shown as 'm'. PATHs after '--' are relative
    to the current directory (inside the worktree). With --exit-code the exit status is
    1 when anything differs (errors also exit 1; they print 'jvs: E_...' on stderr).

    \b
    Examples:
      jvs diff
      jvs diff exp1
      jvs diff exp1 exp2 --stat
      jvs diff HEAD~1 HEAD --json
      jvs diff -p exp1 -- train.py
      jvs diff --exit-code --stat
    """
    from jvs.diff import diff as do_diff
    from jvs.diff import patched

    ui = ui_of(ctx)
    loc = locate(ctx)
    relpaths = _diff_paths(ctx, loc, ctx.meta.get("jvs.paths", ()))
    result = do_diff(loc.repo, loc.worktree, a, b, relpaths)
    if as_patch:
        found = patched(loc.repo, result, context=context)
        if ui.json:
            ui.emit(found.to_json())
        else:
            ui.out(found.text)
    else:
        _print_diff(ui, result, stat_only)
    if exit_code and result.changes.items:
        raise SystemExit(1)  # not ctx.exit: click returns that code instead of exiting


def _diff_paths(ctx, loc, paths: tuple[str, ...]) -> tuple[str, ...]:
    if not paths:
        return ()
    from jvs.errors import JvsError
    from jvs.worktree import worktree_relpaths

    if loc.worktree is None:
        # Outside a worktree the paths are taken as worktree-relative already.
        for raw in paths:
            if raw.startswith("/") or ".." in raw.split("/"):
                raise JvsError("E_PATH_ESCAPE", f"{raw!r}: outside a worktree, give paths "
                               "relative to the worktree's root")
        return tuple(p.strip("/") for p in paths if p.strip("/") not in ("", "."))
    return worktree_relpaths(loc.repo, loc.worktree, start_dir(ctx), paths)


def _print_diff(ui, result, stat_only: bool) -> None:
    s = result.summary()
    old = short(result.old.snapshot_id) if result.old else "(empty)"
    new = short(result.new.snapshot_id) if result.new else f"worktree '{result.worktree}'"
    within = f" (in {', '.join(result.paths)})" if result.paths else ""
    lines = [f"Comparing {old} -> {new}{within}"]
    for c in result.changes.items:
        delta = f"  ({c.size_delta:+d} bytes)" if stat_only and c.type == "file" else ""
        lines.append(f"  {_MARKS[c.change]} {c.path}{delta}")
    total = len(result.changes.items)
    if total == 0:
        lines.append("No differences.")
    else:
        lines.append(f"{total} change(s): {s.added} added, {s.removed} removed, "
                     f"{s.modified} modified, {s.mode} mode, {s.type} type; "
                     f"{s.size_delta:+d} bytes")
    ui.emit(result.to_json(), "\n".join(lines))


COMMANDS = [restore, fork_cmd, worktree_group, diff]
