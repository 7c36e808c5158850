"""Regenerate the command reference from the CLI itself, so it never drifts from what
``jvs`` registers: docs/commands.md (every command on one page) and docs/commands/<name>.md
(one page per command), with usage, help text, examples and options exactly as
``jvs COMMAND --help`` prints them; and the man pages man/man1/jvs.1 and
man/man1/jvs-<name>.1 from the same text. tests/test_docs.py fails when any is stale.

    .venv/bin/python tools/gen_commands_doc.py

The man pages are written here rather than by click-man (which is not in this
environment's package index, and whose pages drop click's ``\b`` example blocks): one
walk of the commands feeds both outputs, and the roff is only a frame (NAME, SYNOPSIS,
the help text verbatim, SEE ALSO) around what ``--help`` prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

import jvs
from jvs.cli.main import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
MAN1 = Path(__file__).resolve().parent.parent / "man" / "man1"

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
| `--no-progress` | no live progress line on stderr (see below) |
| `-q`, `--quiet` | no output on success (JSON still; warnings, errors on stderr) |
| `--version`, `-h/--help` | |

Progress: `snapshot`, `restore`, `fork`, `worktree remove`, `verify`, `gc run` (and
`init --from`, `doctor`) show one line on stderr once they have worked for about a second:
the step, then files (or snapshots) and bytes done of the total, the rate and an ETA where
the step knows its size: snapshot counts what it hashes (on the copy and reflink-copy
engines, which walk the tree once, the files done so far with no total and no ETA), restore
what it stages (the
changed files, sized from the snapshot's manifest), fork what the copy and reflink-copy
engines copy (a JuiceFS metadata clone is one step and shows only its name), verify and
gc run the snapshots, `worktree remove` the files it deletes (counted first, by one more
walk of the tree, only when the line is shown). The line is rewritten in
place (at most ten times a second), cut to the terminal's width so that it stays one row,
and erased when the command ends, so what stays on the screen is the command's own output.
It appears only when stderr is a terminal, never with `--json`, `-q` or `--no-progress`;
stdout is the same either way. `JVS_PROGRESS_DELAY=SECONDS` changes the one-second wait
(`0`: at once; the tests use it).

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


def _contexts(root: click.Context):
    """(path, command, its context) for every command below *root*."""
    for path, cmd in walk(cli, root, []):
        parent = root
        for part in path[:-1]:
            parent = click.Context(parent.command.get_command(parent, part), info_name=part,
                                   parent=parent)
        yield path, cmd, click.Context(cmd, info_name=path[-1], parent=parent)


def render() -> dict[Path, str]:
    """Every generated file and its text."""
    root = click.Context(cli, info_name="jvs")
    entries = list(_contexts(root))
    index = ", ".join(f"[{' '.join(p)}](#{'-'.join(p)})" for p, _, _ in entries)
    out = [INTRO.replace("{index}", index)]
    pages: dict[Path, str] = {}
    for path, cmd, ctx in entries:
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


def _roff(text: str) -> str:
    """Plain text as roff lines shown as they are (inside .nf): backslashes escaped, and
    a line that would start with a request character protected."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _man_page(name: str, summary: str, help_text: str, see_also: list[str],
              extra: str = "") -> str:
    title = name.upper()
    usage, _, body = help_text.partition("\n")
    see = ",\n".join(f".BR {n} (1)" for n in see_also)
    return (f'.TH "{title}" "1" "" "jvs {jvs.__version__}" "jvs manual"\n'
            ".\\\" Generated by tools/gen_commands_doc.py from the click commands; do not edit.\n"
            ".nh\n"
            f".SH NAME\n{name} \\- {_roff(summary)}\n"
            f".SH SYNOPSIS\n.nf\n{_roff(usage.removeprefix('Usage: '))}\n.fi\n"
            f".SH DESCRIPTION\n.nf\n{_roff(body.strip(chr(10)))}\n.fi\n"
            f"{extra}"
            f".SH SEE ALSO\n{see}\n")


MAN_EXTRA = """\
.SH ENVIRONMENT
.TP
.B JVS_SNAPSHOT_ENGINE
juicefs-clone, reflink-copy or copy: overrides the engine.
.TP
.B JVS_LOCK_TIMEOUT
seconds a writer waits for a lock (default 10).
.TP
.B JVS_GC_NOW
gc's clock, for dry runs.
.TP
.B NO_COLOR
never colour the output.
.SH EXIT STATUS
0 on success, 1 on failure (one line \\fBjvs: E_CLASS: message\\fR on stderr), 2 on a
command-line error.
"""


def render_man() -> dict[Path, str]:
    """jvs(1) and one page per command, jvs-<command>(1), from the --help texts."""
    root = click.Context(cli, info_name="jvs")
    entries = list(_contexts(root))
    names = [f"jvs-{'-'.join(p)}" for p, _, _ in entries]
    summary = "snapshots of whole working folders, instant restore, a browsable history"
    pages = {MAN1 / "jvs.1": _man_page("jvs", summary,
                                      cli.get_help(root), names, MAN_EXTRA)}
    for (_path, cmd, ctx), name in zip(entries, names, strict=True):
        related = ["jvs"] + [n for n in names if n != name
                             and (n.startswith(name + "-") or name.startswith(n + "-"))]
        pages[MAN1 / f"{name}.1"] = _man_page(name, cmd.get_short_help_str(limit=80),
                                              cmd.get_help(ctx), related)
    return pages


def main() -> None:
    pages = render()
    (DOCS / "commands").mkdir(exist_ok=True)
    stale = {p for p in (DOCS / "commands").glob("*.md")} - set(pages)
    for path in stale:
        path.unlink()
    for path, text in pages.items():
        path.write_text(text)
    man = render_man()
    MAN1.mkdir(parents=True, exist_ok=True)
    for path in set(MAN1.glob("*.1")) - set(man):
        path.unlink()
    for path, text in man.items():
        path.write_text(text)
    print(f"wrote {len(pages)} files under {DOCS} and {len(man)} under {MAN1}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
