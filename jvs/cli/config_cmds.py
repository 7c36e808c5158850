"""config (show, get, set, unset) over ``.jvs/config.json``, and shell completion scripts.

The keys, their parsing and :func:`jvs.config.change_config` live in :mod:`jvs.config`;
these commands parse, call it and print.
"""

from __future__ import annotations

import click

from jvs.cli.common import locate, ui_of
from jvs.cli.completion import complete_config_key, complete_config_value
from jvs.cli.output import json_option
from jvs.config import change_config, get_config, show_config, value_text
from jvs.errors import JvsError


@click.group("config")
def config_group():
    """Show and change repository settings (.jvs/config.json).

    \b
    Keys:
      engine             auto | juicefs-clone | reflink-copy | copy
      default_tags       comma list of tags added to every snapshot
      payload_hash_algo  xxh3-128 | sha256 (applies to new snapshots)
      gc.keep_last, gc.keep_daily, gc.keep_weekly, gc.keep_days   whole numbers
      gc.keep_tagged     true | false
      gc.rescue_days     days before rescue snapshots expire

    \b
    Examples:
      jvs config show
      jvs config set default_tags nightly,ml
      jvs config set gc.keep_daily 7
      jvs config get engine
    """


@config_group.command("show")
@json_option
@click.pass_context
def config_show(ctx):
    """Show every setting, defaults filled in ('*' marks values set in config.json).

    \b
    Example:
      jvs config show --json
    """
    view = show_config(locate(ctx).repo)
    width = max(len(k) for k in view.values)
    lines = [f"{'*' if k in view.configured else ' '} "
             f"{k:<{width}}  {value_text(v)}" for k, v in view.values.items()]
    ui_of(ctx).emit(view.to_json(), "\n".join(lines))


@config_group.command("get")
@click.argument("key", shell_complete=complete_config_key)
@json_option
@click.pass_context
def config_get(ctx, key):
    """Print the value of KEY (its default when not set).

    \b
    Example:
      jvs config get gc.keep_last
    """
    value = get_config(locate(ctx).repo, key)
    ui_of(ctx).emit(value.to_json(), value_text(value.value))


def _change(ctx, key: str, text: str | None) -> None:
    ui = ui_of(ctx)
    repo = locate(ctx).repo
    change = change_config(repo, key, text)
    old, new = change.old, change.new
    if change.key == "payload_hash_algo" and old != new:
        ui.warn(f"new snapshots will hash content with {new}; existing snapshots keep "
                f"{old} (each descriptor records its own algorithm)")
    if change.key == "engine" and text is not None and new != "auto":
        _warn_if_engine_unusable(ui, repo, str(new))
    verb = "Set" if text is not None else "Unset"
    ui.emit(change.to_json(),
            f"{verb} {change.key} = {value_text(new)}" + (f" (was {value_text(old)})" if old != new
                                                     else ""))


def _warn_if_engine_unusable(ui, repo, name: str) -> None:
    """A configured engine that cannot work on this host fails every snapshot with
    E_ENGINE; say so now. Not an error: another host of a shared repo may support it."""
    from jvs.engines import get_engine

    try:
        get_engine(name, repo.root)
    except JvsError as exc:
        ui.warn(f"engine {name} does not work here: {exc.message}")


@config_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", shell_complete=complete_config_key)
@click.argument("value", shell_complete=complete_config_value)
@json_option
@click.pass_context
def config_set(ctx, key, value):
    """Set KEY to VALUE (checked first; the old value is kept in the audit log).

    \b
    Examples:
      jvs config set engine copy
      jvs config set default_tags nightly,ml
      jvs config set gc.keep_tagged false
    """
    _change(ctx, key, value)


@config_group.command("unset")
@click.argument("key", shell_complete=complete_config_key)
@json_option
@click.pass_context
def config_unset(ctx, key):
    """Return KEY to its default.

    \b
    Example:
      jvs config unset gc.keep_daily
    """
    _change(ctx, key, None)


SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell):
    """Print the shell completion script for SHELL.

    Completes commands, options, worktree names, tags and snapshot IDs.

    \b
    Examples:
      eval "$(jvs completion bash)"       # in ~/.bashrc
      eval "$(jvs completion zsh)"        # in ~/.zshrc
      jvs completion fish > ~/.config/fish/completions/jvs.fish
    """
    from click.shell_completion import get_completion_class

    from jvs.cli.main import cli

    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "jvs", "_JVS_COMPLETE").source())


COMMANDS = [config_group, completion]
