"""``jvs``: the entry point. Commands live in small modules and are registered here.

Light on purpose: ``jvs --version`` must not import hashing, engines, trio or pyfuse3.
"""

from __future__ import annotations

import json
import sys

import click

from jvs import __version__
from jvs.cli.output import Ui

EPILOG = """\b
Start here:
  jvs init myproject && cd myproject/main
  jvs snapshot "first state" --tag baseline
  jvs history
  jvs restore baseline
"""


# Which module defines each command. A module is imported when one of its commands is
# looked up, so `jvs snapshot` does not import (and build) every other command: ~7 ms of
# start-up. tests/test_help.py checks this table against the modules' COMMANDS lists.
COMMAND_MODULES = {
    "init": "core_cmds", "snapshot": "core_cmds", "history": "core_cmds",
    "status": "core_cmds", "info": "core_cmds",
    "restore": "restore_cmds", "fork": "restore_cmds", "worktree": "restore_cmds",
    "diff": "restore_cmds",
    "verify": "integrity_cmds", "doctor": "integrity_cmds", "gc": "integrity_cmds",
    "du": "integrity_cmds",
    "mount": "mount_cmds", "umount": "mount_cmds",
    "config": "config_cmds", "completion": "config_cmds",
    "show": "label_cmds", "tag": "label_cmds", "note": "label_cmds",
}


class JvsGroup(click.Group):
    def list_commands(self, ctx):
        return sorted({*self.commands, *COMMAND_MODULES})

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMAND_MODULES:
            import importlib

            module = importlib.import_module(f"jvs.cli.{COMMAND_MODULES[name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close:
                raise click.UsageError(f"{exc.message}\nDid you mean '{close[0]}'?",
                                       ctx) from None
            raise


@click.group(cls=JvsGroup, epilog=EPILOG, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jvs", message="%(prog)s %(version)s")
@click.option("-C", "directory", metavar="PATH", help="Run as if started in PATH.")
@click.option("--no-color", is_flag=True, help="Never colour the output (also NO_COLOR).")
@click.option("--no-progress", is_flag=True, help="No progress messages on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every command).")
@click.option("-q", "--quiet", is_flag=True,
              help="No output on success (JSON still when asked; warnings and errors "
                   "still go to stderr).")
@click.pass_context
def cli(ctx: click.Context, directory, no_color, no_progress, as_json, quiet) -> None:
    """jvs: snapshots of whole working folders, instant restore, and a browsable history."""
    ui = ctx.ensure_object(Ui)
    ui.directory = directory
    if no_color:
        ui.color = False
    if no_progress:
        ui.progress = False
    if as_json:
        ui.json = True
    if quiet:
        ui.quiet = True
    if ctx.invoked_subcommand is not None:
        from jvs.libc import return_big_blocks_to_the_system

        return_big_blocks_to_the_system()
    else:
        from jvs.cli.guide import guide

        click.echo(guide(ctx))



def main(argv: list[str] | None = None) -> None:
    try:
        _run(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    _leave(code)


def _leave(code: int | str | None) -> None:
    """Exit with *code* the way ``sys.exit`` would, minus the interpreter's teardown:
    freeing every module and object a command built (the manifest, scans, stat cache)
    took 8-18 ms of each command. What teardown does that matters is done here: atexit
    handlers run and the output is flushed. Only when no other thread is alive (the
    interpreter would wait for it); otherwise the normal way."""
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import atexit
    import os

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: the output is lost, say so
        code = code or 1
    os._exit(code)


def _run(argv: list[str] | None = None) -> None:
    import signal

    from jvs.cli import _interrupted_while_starting
    from jvs.errors import JvsError

    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        # Start-up is over: an interrupt now is 'jvs: interrupted' below (jvs/cli/__init__).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    ui = Ui()
    try:
        cli.main(args=argv, prog_name="jvs", obj=ui, standalone_mode=False)
    except JvsError as exc:
        if ui.json:
            click.echo(json.dumps(exc.to_json(), indent=2, ensure_ascii=False))
        click.echo(f"jvs: {exc.code}: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        if ui.json:
            usage = JvsError("E_USAGE", exc.format_message())
            click.echo(json.dumps(usage.to_json(), indent=2))
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("jvs: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        from jvs.errors import io_error

        err = io_error(exc, "the operating system refused")
        if ui.json:
            click.echo(json.dumps(err.to_json(), indent=2, ensure_ascii=False))
        click.echo(f"jvs: E_IO: {err.message}", err=True)
        sys.exit(1)
