"""Every command's help shows how to use it: at least one example line that runs jvs."""

from __future__ import annotations

import click
import pytest

from jvs.cli.main import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)


COMMANDS = sorted(_commands(cli), key=lambda item: item[0])


def test_the_lazy_command_table_matches_the_modules():
    """jvs.cli.main imports a command's module on first use, from COMMAND_MODULES."""
    import importlib

    from jvs.cli.main import COMMAND_MODULES

    found = {}
    for module in set(COMMAND_MODULES.values()):
        for command in importlib.import_module(f"jvs.cli.{module}").COMMANDS:
            found[command.name] = module
    assert found == COMMAND_MODULES


def test_the_command_list_is_not_empty():
    names = {" ".join(path) for path, _cmd in COMMANDS}
    assert {"init", "snapshot", "restore", "history", "mount", "gc plan"} <= names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _c in COMMANDS])
def test_help_shows_an_example(path, cmd):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.strip().startswith("Example") for line in lines), result.output
    example_lines = [line.strip() for line in lines if line.strip().startswith("jvs ")]
    assert any(line.startswith("jvs " + " ".join(path)) for line in example_lines), \
        f"no example of 'jvs {' '.join(path)}' in:\n{result.output}"
