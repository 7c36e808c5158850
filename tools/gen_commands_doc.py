"""Regenerate docs/commands.md from the CLI itself, so the reference never drifts from
what ``jvs`` registers: one section per command, with its usage, help text, examples and
options exactly as ``jvs COMMAND --help`` prints them.

    .venv/bin/python tools/gen_commands_doc.py > docs/commands.md
"""

from __future__ import annotations

import click

from jvs.cli.main import cli

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
| `--version`, `-h/--help` | |

Errors: one line `jvs: E_CLASS: message` on stderr (plus a `hint:`), exit 1; with
`--json` also `{"error": {"code", "message"}}` on stdout. Command-line errors exit 2.
See [troubleshooting](troubleshooting.md). Snapshot references (REF) are resolved in one
way everywhere: `HEAD`, `HEAD~N`, a snapshot ID, a tag (newest carrying it), a unique ID
or short-ID prefix, a note, a unique note prefix ([restore](restore.md)).

Environment: `JVS_SNAPSHOT_ENGINE` (juicefs-clone | reflink-copy | copy) overrides the
engine; `JVS_LOCK_TIMEOUT` (seconds, default 10) is how long a writer waits for the
repository lock; `JVS_GC_NOW` sets gc's clock (dry runs); `NO_COLOR`.

Commands: {index}
"""


# A user's order: make and use snapshots, then worktrees, then upkeep; others after.
ORDER = ["init", "snapshot", "history", "status", "diff", "restore", "fork", "worktree",
         "info", "verify", "doctor", "gc", "mount", "umount", "config", "completion"]


# Examples for commands whose help text has none (kept here, not in their modules).
EXTRA_EXAMPLES = {
    "mount": "jvs mount /mnt/jvs -C ~/ml-experiments\nls /mnt/jvs/@snapshots/baseline/\n"
             "diff -r /mnt/jvs/@snapshots/exp1 /mnt/jvs/@snapshots/exp2\njvs umount /mnt/jvs",
    "umount": "jvs umount /mnt/jvs",
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


def main() -> None:
    root = click.Context(cli, info_name="jvs")
    entries = list(walk(cli, root, []))
    index = ", ".join(f"[{' '.join(p)}](#{'-'.join(p)})" for p, _ in entries)
    out = [INTRO.replace("{index}", index)]
    for path, cmd in entries:
        parent = root
        for part in path[:-1]:
            parent = click.Context(parent.command.get_command(parent, part), info_name=part,
                                   parent=parent)
        ctx = click.Context(cmd, info_name=path[-1], parent=parent)
        level = "##" if len(path) == 1 else "###"
        out.append(f'{level} {" ".join(path)}\n\n<a id="{"-".join(path)}"></a>\n')
        help_text = cmd.get_help(ctx).rstrip()
        out.append("```text\n" + help_text + "\n```\n")
        extra = EXTRA_EXAMPLES.get(" ".join(path))
        if extra and "Example" not in help_text:
            out.append("Example:\n\n```bash\n" + extra + "\n```\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
