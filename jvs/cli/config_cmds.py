"""config (show, get, set, unset) over ``.jvs/config.json``, and shell completion scripts.

Every key is declared once in :data:`KEYS` with how its text is parsed and checked, so
``get``, ``set``, ``show`` and completion agree. Setting a key is a mutating command: it
holds the repository lock and leaves an audit record naming the old and new value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import click

from jvs.cli.common import locate, ui_of
from jvs.cli.completion import complete_config_key, complete_config_value
from jvs.cli.output import json_option
from jvs.errors import JvsError

ENGINE_CHOICES = ("auto", "juicefs-clone", "reflink-copy", "copy")
HASH_CHOICES = ("xxh3-128", "sha256")
GC_INT_KEYS = ("keep_last", "keep_daily", "keep_weekly", "keep_days")


def _parse_engine(text: str) -> str | None:
    value = text.strip()
    if value not in ENGINE_CHOICES:
        raise JvsError("E_USAGE", f"engine must be one of {', '.join(ENGINE_CHOICES)}, "
                       f"not {text!r}")
    return None if value == "auto" else value


def _parse_tags(text: str) -> tuple[str, ...]:
    from jvs.names import validate_tag

    # A YAML list ("[a, b]") as the Go implementation's `config set default_tags` takes.
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    parts = [p.strip().strip("'\"") for p in body.split(",")]
    return tuple(dict.fromkeys(validate_tag(p) for p in parts if p))


def _parse_algo(text: str) -> str:
    value = text.strip()
    if value not in HASH_CHOICES:
        raise JvsError("E_USAGE", f"payload_hash_algo must be one of "
                       f"{', '.join(HASH_CHOICES)}, not {text!r}")
    return value


def _parse_count(key: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise JvsError("E_USAGE", f"{key} must be a whole number, not {text!r}") from None
        if value < 0:
            raise JvsError("E_USAGE", f"{key} must not be negative")
        return value

    return parse


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise JvsError("E_USAGE", f"gc.keep_tagged must be true or false, not {text!r}")


def _parse_days(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise JvsError("E_USAGE", f"gc.rescue_days must be a number of days, "
                       f"not {text!r}") from None
    if value < 0 or value != value:
        raise JvsError("E_USAGE", "gc.rescue_days must not be negative")
    return int(value) if value == int(value) else value


@dataclass(frozen=True)
class KeySpec:
    key: str
    help: str
    parse: Callable[[str], object]
    choices: tuple[str, ...] = ()


KEYS: dict[str, KeySpec] = {
    "engine": KeySpec("engine", "snapshot engine: auto detects per operation",
                      _parse_engine, ENGINE_CHOICES),
    "default_tags": KeySpec("default_tags", "tags added to every snapshot (comma list)",
                            _parse_tags),
    "payload_hash_algo": KeySpec("payload_hash_algo",
                                 "content hash for new snapshots (old ones keep theirs)",
                                 _parse_algo, HASH_CHOICES),
    "gc.keep_last": KeySpec("gc.keep_last", "gc keeps the N newest snapshots per worktree",
                            _parse_count("gc.keep_last")),
    "gc.keep_daily": KeySpec("gc.keep_daily", "gc keeps the newest snapshot of N days",
                             _parse_count("gc.keep_daily")),
    "gc.keep_weekly": KeySpec("gc.keep_weekly", "gc keeps the newest snapshot of N weeks",
                              _parse_count("gc.keep_weekly")),
    "gc.keep_days": KeySpec("gc.keep_days", "gc keeps every snapshot younger than N days",
                            _parse_count("gc.keep_days")),
    "gc.keep_tagged": KeySpec("gc.keep_tagged", "gc keeps tagged snapshots (true/false)",
                              _parse_bool, ("true", "false")),
    "gc.rescue_days": KeySpec("gc.rescue_days", "rescue snapshots expire after N days",
                              _parse_days),
}


# The Go implementation's key names (its .jvs/config.yaml), so its users' scripts keep
# working: `jvs config set default_engine copy` sets `engine`.
GO_ALIASES = {"default_engine": "engine"}
# Go keys with no setting here: refused, with what to use instead.
GO_ONLY = {
    "output_format": "jvs has no output setting: give --json (or --format json) per command",
    "progress_enabled": "jvs shows progress on a terminal only; --no-progress turns it off",
}


def spec_of(key: str) -> KeySpec:
    key = GO_ALIASES.get(key.strip(), key.strip())
    if key in GO_ONLY:
        raise JvsError("E_USAGE", f"config key {key!r} (of the Go implementation) has no "
                       "equivalent in this one", hint=GO_ONLY[key])
    spec = KEYS.get(key)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(key, KEYS, n=1)
        raise JvsError("E_USAGE", f"unknown config key {key!r}",
                       hint=f"did you mean {close[0]!r}?" if close
                       else f"known keys: {', '.join(KEYS)}")
    return spec


def effective_values(config) -> dict[str, object]:
    """Every key's value as it applies now (defaults filled in), in KEYS order."""
    from jvs.gc import policy_from

    policy = policy_from(config.gc)
    return {
        "engine": config.engine or "auto",
        "default_tags": list(config.default_tags),
        "payload_hash_algo": config.payload_hash_algo,
        "gc.keep_last": policy.keep_last,
        "gc.keep_daily": policy.keep_daily,
        "gc.keep_weekly": policy.keep_weekly,
        "gc.keep_days": policy.keep_days,
        "gc.keep_tagged": policy.keep_tagged,
        "gc.rescue_days": policy.rescue_days,
    }


def is_configured(config, key: str) -> bool:
    if key.startswith("gc."):
        return key[3:] in config.gc
    if key == "engine":
        return config.engine is not None
    if key == "default_tags":
        return bool(config.default_tags)
    return True


def with_value(config, key: str, value: object, *, unset: bool = False):
    """A copy of *config* with *key* set to the parsed *value* (or removed)."""
    if key.startswith("gc."):
        gc = dict(config.gc)
        if unset:
            gc.pop(key[3:], None)
        else:
            gc[key[3:]] = value
        return replace(config, gc=gc)
    if key == "engine":
        return replace(config, engine=None if unset else value)
    if key == "default_tags":
        return replace(config, default_tags=() if unset else value)
    if key == "payload_hash_algo":
        return replace(config, payload_hash_algo="xxh3-128" if unset else value)
    raise AssertionError(key)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(value)
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


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
    repo = locate(ctx).repo
    config = repo.config()
    values = effective_values(config)
    width = max(len(k) for k in values)
    lines = [f"{'*' if is_configured(config, k) else ' '} "
             f"{k:<{width}}  {_text(v)}" for k, v in values.items()]
    data = {"config": values, "configured": sorted(k for k in values
                                                   if is_configured(config, k)),
            "path": str(repo.jvs_dir / "config.json")}
    ui_of(ctx).emit(data, "\n".join(lines))


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
    spec = spec_of(key)
    config = locate(ctx).repo.config()
    value = effective_values(config)[spec.key]
    ui_of(ctx).emit({"key": spec.key, "value": value,
                     "configured": is_configured(config, spec.key)}, _text(value))


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: object
    new: object
    configured: bool

    def to_json(self) -> dict:
        return {"key": self.key, "old": self.old, "value": self.new,
                "configured": self.configured}


def change_config(repo, key: str, text: str | None) -> ConfigChange:
    """Set *key* from its text form (``None``: back to the default) under the repository
    lock, and audit it. Used by ``jvs config set/unset`` and :mod:`jvs.api` alike."""
    from jvs.audit import append_audit
    from jvs.lock import repo_lock

    spec = spec_of(key)
    value = None if text is None else spec.parse(text)
    with repo_lock(repo, "config"):
        config = repo.config()
        old = effective_values(config)[spec.key]
        updated = with_value(config, spec.key, value, unset=text is None)
        new = effective_values(updated)[spec.key]
        repo.write_config(updated)
        # Details as text: canonical JSON (the audit hash) has no floats.
        append_audit(repo, "config_set" if text is not None else "config_unset", spec.key,
                     "", old=_text(old), new=_text(new))
    return ConfigChange(spec.key, old, new, is_configured(updated, spec.key))


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
            f"{verb} {change.key} = {_text(new)}" + (f" (was {_text(old)})" if old != new
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
