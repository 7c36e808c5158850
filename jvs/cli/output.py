"""How the CLI speaks: human text or JSON, colour only on a TTY, progress on stderr, and
one place where a JvsError becomes ``jvs: E_CLASS: message`` and an exit code."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field

import click


@dataclass
class Ui:
    json: bool = False
    color: bool | None = None  # None: decide from the TTY and NO_COLOR
    progress: bool = True
    directory: str | None = None
    _started: float = field(default_factory=time.monotonic)
    _last_progress: float = 0.0

    def use_color(self) -> bool:
        if self.color is not None:
            return self.color
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def style(self, text: str, **kw) -> str:
        return click.style(text, **kw) if self.use_color() else text

    def emit(self, data: object, human: str | None = None) -> None:
        """Print *data* as pretty JSON with --json, otherwise the human text."""
        if self.json:
            click.echo(pretty_json(data))
        elif human is not None:
            click.echo(human)

    def warn(self, message: str) -> None:
        click.echo(f"jvs: warning: {message}", err=True)

    def report(self, message: str) -> None:
        """Progress on stderr, only for work that has already taken over a second."""
        if self.json or not self.progress:
            return
        now = time.monotonic()
        if now - self._started < 1.0 or now - self._last_progress < 0.5:
            return
        self._last_progress = now
        click.echo(f"jvs: {message}...", err=True)


def pretty_json(data: object) -> str:
    """Exactly ``json.dumps(data, indent=2, ensure_ascii=False)``, about twice as fast.

    With ``indent`` the stdlib (before Python 3.13) falls back to its pure-Python
    encoder; ``history --json`` over 20,000 snapshots spent most of its time there. Here
    only the layout is Python: strings go through the C string encoder."""
    from json.encoder import encode_basestring  # the C version where the build has it

    def render(value: object, pad: str) -> str:
        kind = value.__class__
        if kind is str:
            return encode_basestring(value)
        if kind is dict:
            if not value:
                return "{}"
            inner = pad + "  "
            items = ",\n".join(f"{inner}{encode_basestring(str(k))}: {render(v, inner)}"
                               for k, v in value.items())
            return "{\n" + items + "\n" + pad + "}"
        if kind is list or kind is tuple:
            if not value:
                return "[]"
            inner = pad + "  "
            return "[\n" + ",\n".join(inner + render(v, inner) for v in value) + "\n" + pad + "]"
        return json.dumps(value)  # numbers, booleans, None

    return render(data, "")


def json_option(f):
    """``--json`` and its alias ``--format json`` on a command."""

    def set_json(ctx, param, value):
        if value:
            ctx.ensure_object(Ui).json = True
        return value

    def set_format(ctx, param, value):
        if value == "json":
            ctx.ensure_object(Ui).json = True
        return value

    f = click.option("--format", "output_format", type=click.Choice(["text", "json"]),
                     default=None, expose_value=False, callback=set_format,
                     help="Output format; 'json' is the same as --json.")(f)
    f = click.option("--json", "as_json", is_flag=True, expose_value=False,
                     callback=set_json, help="Print JSON (pretty, stable field names).")(f)
    return f
