"""Regenerate the command reference from the CLI itself, so it never drifts from what
``jvs`` registers: docs/commands.md (every command on one page) and docs/commands/<name>.md
(one page per command), with usage, help text, examples and options exactly as
``jvs COMMAND --help`` prints them. tests/test_docs.py fails when they are stale.

    .venv/bin/python tools/gen_commands_doc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from jvs.cli.main import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"

INTRO = """\
# Command reference

Generated from the CLI (`tools/gen_commands_doc.py`); `jvs COMMAND --help` prints the
same. Every command accepts `--json` (or `--format json`): pretty JSON with stable field
names on stdout. Options of `jvs` itself go **before** the command:

| option | |
|---|---|
| `-C PATH` | run as if started in PATH (`jvs -C ~/proj/main history`) |
| `--json` | JSON output for any command |
| `--no-color` | never colour (also `NO_COLOR=1`; colour is only used on a terminal) |
| `--no-progress` | no progress messages on stderr (they appear for work over ~1 s) |
| `-q`, `--quiet` | no output on success (JSON still; warnings, errors on stderr) |
| `--version`, `-h/--help` | |

Errors: one line `jvs: E_CLASS: message` on stderr (plus a `hint:`), exit 1; with
`--json` also `{"error": {"code", "message"}}` on stdout. Command-line errors exit 2.
See [troubleshooting](troubleshooting.md). Snapshot references (REF) are resolved in one
way everywhere: `HEAD`, `latest`, a snapshot ID, a tag (newest carrying it), a unique ID
or short-ID prefix, a note, a unique note prefix (3+ characters), each optionally followed
by `~N`, `~` or `^` (parents back: `exp1^`, `HEAD~2`) ([restore](restore.md)).

Environment: `JVS_SNAPSHOT_ENGINE` (juicefs-clone | reflink-copy | copy) overrides the
engine; `JVS_LOCK_TIMEOUT` (seconds, default 10) is how long a writer waits for the
repository lock; `JVS_GC_NOW` sets gc's clock (dry runs); `NO_COLOR`.

Commands (each also has a page of its own in [commands/](commands/)): {index}
"""


# A user's order: make and use snapshots, then worktrees, then upkeep; others after.
ORDER = ["init", "snapshot", "history", "status", "diff", "restore", "fork", "worktree",
         "info", "verify", "doctor", "gc", "mount", "umount", "config", "completion"]


# Where each top-level command is explained beyond its help text.
SEE_ALSO = {
    "init": ("quickstart.md", "ignore.md#ready-templates"),
    "snapshot": ("quickstart.md", "ignore.md", "guarantees.md"),
    "history": ("restore.md#naming-a-snapshot-the-resolver",),
    "status": ("restore.md",), "diff": ("restore.md#diff",),
    "restore": ("restore.md", "ignore.md#restore-and-ignored-paths-precisely"),
    "fork": ("restore.md#worktrees",), "worktree": ("restore.md#worktrees",),
    "info": ("engines.md#how-the-engine-is-chosen",),
    "verify": ("operations.md#verify",), "doctor": ("operations.md#doctor",),
    "gc": ("operations.md#gc",), "mount": ("mount.md",), "umount": ("mount.md",),
    "config": ("operations.md",), "completion": ("quickstart.md",),
}


def _rank(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def walk(group: click.Group, ctx: click.Context, prefix: list[str]):
    names = group.list_commands(ctx)
    for name in sorted(names, key=_rank) if not prefix else sorted(names):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        path = [*prefix, name]
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, ctx, path)


def render() -> dict[Path, str]:
    """Every generated file and its text."""
    root = click.Context(cli, info_name="jvs")
    entries = list(walk(cli, root, []))
    index = ", ".join(f"[{' '.join(p)}](#{'-'.join(p)})" for p, _ in entries)
    out = [INTRO.replace("{index}", index)]
    pages: dict[Path, str] = {}
    for path, cmd in entries:
        parent = root
        for part in path[:-1]:
            parent = click.Context(parent.command.get_command(parent, part), info_name=part,
                                   parent=parent)
        ctx = click.Context(cmd, info_name=path[-1], parent=parent)
        level = "##" if len(path) == 1 else "###"
        help_block = "```text\n" + cmd.get_help(ctx).rstrip() + "\n```\n"
        out.append(f'{level} {" ".join(path)}\n\n<a id="{"-".join(path)}"></a>\n')
        out.append(help_block)
        see = " · ".join(f"[{t.split('#')[0].removesuffix('.md')}](../{t})"
                         for t in SEE_ALSO.get(path[0], ()))
        pages[DOCS / "commands" / f"{'-'.join(path)}.md"] = (
            f"# jvs {' '.join(path)}\n\n{help_block}\n"
            + (f"See also: {see} · " if see else "See also: ")
            + "[all commands](../commands.md)\n")
    pages[DOCS / "commands.md"] = "\n".join(out) + "\n"
    return pages


def main() -> None:
    pages = render()
    (DOCS / "commands").mkdir(exist_ok=True)
    stale = {p for p in (DOCS / "commands").glob("*.md")} - set(pages)
    for path in stale:
        path.unlink()
    for path, text in pages.items():
        path.write_text(text)
    print(f"wrote {len(pages)} files under {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
