"""show, tag add|remove|list, note: look at one snapshot, and label it."""

from __future__ import annotations

import click

from jvs.cli.common import locate, short, ui_of
from jvs.cli.completion import complete_snapshot_ref, complete_tag, complete_tag_of_ref
from jvs.cli.output import human_size, json_option


@click.command()
@click.argument("ref", shell_complete=complete_snapshot_ref)
@json_option
@click.pass_context
def show(ctx, ref):
    """Show snapshot REF: its descriptor, what changed against its parent, and its size.

    REF is any snapshot reference (HEAD, latest, an ID or short ID, a tag, a note;
    ~N or ^ go back along the lineage).

    \b
    Examples:
      jvs show HEAD
      jvs show exp1^ --json
    """
    from jvs.api import Repository
    from jvs.ids import local_time

    ui = ui_of(ctx)
    loc = locate(ctx)
    shown = Repository(loc.repo, loc.worktree).show(ref)
    if ui.json:
        ui.emit(shown.to_json())
        return
    d = shown.descriptor
    c = shown.contents
    lines = [ui.style(f"snapshot {d.snapshot_id}", fg="yellow")]
    if d.parent_id is None:
        lines.append("Parent:    none (the first of its lineage)")
    else:
        state = {"published": "", "collected": " (collected by gc)",
                 "missing": " (MISSING)"}[shown.parent_state]
        lines.append(f"Parent:    {short(d.parent_id)}{state}")
    where = [f"HEAD of {n}" for n in shown.heads_of] + \
        [f"latest of {n}" for n in shown.latest_of if n not in shown.heads_of]
    lines.append(f"Worktree:  {d.worktree_name}" + (f"  ({', '.join(where)})" if where else ""))
    lines.append(f"Date:      {local_time(d.created_at)}")
    if d.tags:
        lines.append(f"Tags:      {', '.join(d.tags)}")
    kind = [k for k, on in (("rescue", d.is_rescue), ("partial", d.is_partial)) if on]
    if kind:
        lines.append(f"Kind:      {', '.join(kind)}"
                     + (f" ({', '.join(d.partial_paths)})" if d.is_partial else ""))
    lines.append(f"Engine:    {d.engine}" + (f" (degraded: {', '.join(d.degraded)})"
                                              if d.degraded else ""))
    if shown.checksum_valid:
        lines.append(f"Size:      {c.files} file(s), {c.dirs} dir(s), {c.symlinks} "
                     f"symlink(s), {human_size(c.bytes)}")
    else:
        lines.append(ui.style("Checksum:  INVALID (tampered or corrupt; run 'jvs verify')",
                              fg="red"))
    if d.note:
        lines.append("")
        lines += [f"    {line}" for line in d.note.splitlines()]
    if shown.changes is not None:
        lines.append("")
        if shown.changes.clean:
            lines.append(f"No changes against {short(d.parent_id)}.")
        else:
            marks = {"added": "+", "removed": "-", "modified": "M", "mode": "m", "type": "T"}
            lines.append(f"{len(shown.changes.items)} change(s) against {short(d.parent_id)}:")
            lines += [f"  {marks[ch.change]} {ch.relpath}" for ch in shown.changes.items]
    ui.out("\n".join(lines) + "\n")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def tag():
    """Add, remove and list tags of published snapshots.

    A tag names the newest snapshot carrying it. Tagging rewrites the snapshot's
    descriptor (a new checksum, atomically, audited); its files are untouched.

    \b
    Examples:
      jvs tag add HEAD stable v1.0
      jvs tag remove exp1 model
      jvs tag list
    """


@tag.command("add")
@click.argument("ref", shell_complete=complete_snapshot_ref)
@click.argument("tags", nargs=-1, required=True, metavar="TAG...", shell_complete=complete_tag)
@json_option
@click.pass_context
def tag_add(ctx, ref, tags):
    """Add TAGs to snapshot REF.

    A tag that equals an existing snapshot's ID, short ID or ID prefix is refused: it
    would take that reference over.

    \b
    Examples:
      jvs tag add HEAD stable
      jvs tag add 3fa9c2d1 v1.0 release
    """
    from jvs.api import Repository

    loc = locate(ctx)
    _report(ctx, Repository(loc.repo, loc.worktree).add_tags(ref, *tags))


@tag.command("remove")
@click.argument("ref", shell_complete=complete_snapshot_ref)
@click.argument("tags", nargs=-1, required=True, metavar="TAG...",
                shell_complete=complete_tag_of_ref)
@json_option
@click.pass_context
def tag_remove(ctx, ref, tags):
    """Remove TAGs from snapshot REF (all or nothing: each must be on it).

    \b
    Examples:
      jvs tag remove HEAD stable
      jvs tag remove exp1 exp1
    """
    from jvs.api import Repository

    loc = locate(ctx)
    _report(ctx, Repository(loc.repo, loc.worktree).remove_tags(ref, *tags))


@tag.command("list")
@json_option
@click.pass_context
def tag_list(ctx):
    """List every tag, the snapshot it names (the newest carrying it), and how many carry it.

    \b
    Examples:
      jvs tag list
      jvs tag list --json
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    tags = Repository(locate(ctx).repo).tags()
    if ui.json:
        ui.emit(tags.to_json())
        return
    if not tags:
        ui.out("No tags.\n")
        return
    width = max(len(t.tag) for t in tags)
    lines = []
    for t in tags:
        more = f"  (+{len(t.snapshot_ids) - 1} older)" if len(t.snapshot_ids) > 1 else ""
        lines.append(f"{t.tag:<{width}}  {short(t.snapshot_id)}{more}")
    ui.out("\n".join(lines) + "\n")


@click.command()
@click.argument("ref", shell_complete=complete_snapshot_ref)
@click.argument("text", metavar="TEXT")
@json_option
@click.pass_context
def note(ctx, ref, text):
    """Replace the note of snapshot REF with TEXT ('' removes it; '-' reads stdin).

    Rewrites the snapshot's descriptor (a new checksum, atomically, audited).

    \b
    Examples:
      jvs note HEAD "Exp1: ResNet50, lr 0.01 (diverged)"
      jvs note 3fa9c2d1 - < notes.txt
    """
    from jvs.api import Repository
    from jvs.cli.core_cmds import read_note

    loc = locate(ctx)
    _report(ctx, Repository(loc.repo, loc.worktree).set_note(ref, read_note(text, None)))


def _report(ctx, relabel) -> None:
    after = relabel.after
    what = short(after.snapshot_id)
    if not relabel.changed:
        human = f"Snapshot {what} unchanged (tags: {', '.join(after.tags) or 'none'})"
    elif relabel.added_tags or relabel.removed_tags:
        parts = []
        if relabel.added_tags:
            parts.append(f"tagged {', '.join(relabel.added_tags)}")
        if relabel.removed_tags:
            parts.append(f"untagged {', '.join(relabel.removed_tags)}")
        human = f"Snapshot {what}: {'; '.join(parts)} (tags: {', '.join(after.tags) or 'none'})"
    else:
        first = after.note.splitlines()[0] if after.note else ""
        human = f"Snapshot {what}: note " + (f"set to {first!r}" if after.note else "removed")
    ui_of(ctx).emit(relabel.to_json(), human)


COMMANDS = [show, tag, note]
