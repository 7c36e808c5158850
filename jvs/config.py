"""Repository settings as users name them: every key of ``.jvs/config.json`` declared once
(how its text is parsed and checked, its default), and the one way to change a key.

``jvs config``, :mod:`jvs.api` and shell completion all read :data:`KEYS`, so they agree.
Setting a key is a mutating operation: :func:`change_config` holds the repository lock and
leaves an audit record naming the old and new value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from jvs.errors import JvsError
from jvs.repo import Repo, RepoConfig

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


def effective_values(config: RepoConfig) -> dict[str, object]:
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


def is_configured(config: RepoConfig, key: str) -> bool:
    if key.startswith("gc."):
        return key[3:] in config.gc
    if key == "engine":
        return config.engine is not None
    if key == "default_tags":
        return bool(config.default_tags)
    return True


def with_value(config: RepoConfig, key: str, value: object, *,
               unset: bool = False) -> RepoConfig:
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


def value_text(value: object) -> str:
    """A value as ``jvs config get`` prints it and ``jvs config set`` reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(value)
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: object
    new: object
    configured: bool

    def to_json(self) -> dict:
        return {"key": self.key, "old": self.old, "value": self.new,
                "configured": self.configured}


def change_config(repo: Repo, key: str, text: str | None) -> ConfigChange:
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
                     "", old=value_text(old), new=value_text(new))
    return ConfigChange(spec.key, old, new, is_configured(updated, spec.key))


@dataclass(frozen=True)
class ConfigView:
    """Every key's value in effect (``jvs config show``)."""

    values: dict[str, object]
    configured: tuple[str, ...]  # the keys set in config.json, sorted
    path: str

    def to_json(self) -> dict:
        return {"config": dict(self.values), "configured": list(self.configured),
                "path": self.path}


def show_config(repo: Repo) -> ConfigView:
    config = repo.config()
    values = effective_values(config)
    return ConfigView(values, tuple(sorted(k for k in values if is_configured(config, k))),
                      str(repo.jvs_dir / "config.json"))


@dataclass(frozen=True)
class ConfigValue:
    """One key's value in effect (``jvs config get``)."""

    key: str
    value: object
    configured: bool

    def to_json(self) -> dict:
        return {"key": self.key, "value": self.value, "configured": self.configured}


def get_config(repo: Repo, key: str) -> ConfigValue:
    spec = spec_of(key)
    config = repo.config()
    return ConfigValue(spec.key, effective_values(config)[spec.key],
                       is_configured(config, spec.key))


def python_value_text(key: str, value: object) -> str | None:
    """A Python value (a list of tags, an int, a bool, None) as the text :func:`change_config`
    parses, for callers of the Python API."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(value)
    if value is None:
        return "auto" if key == "engine" else None
    return str(value)
