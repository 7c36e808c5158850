"""How the CLI speaks: human text or JSON, colour only on a TTY, progress on stderr, and
one place where a JvsError becomes ``jvs: E_CLASS: message`` and an exit code."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _encode_str  # C where the build has it

import click


@dataclass
class Ui:
    json: bool = False
    color: bool | None = None  # None: decide from the TTY and NO_COLOR
    progress: bool = True
    quiet: bool = False  # -q: no human output on stdout (JSON still; stderr still)
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
        elif human is not None and not self.quiet:
            click.echo(human)

    def out(self, text: str) -> None:
        """Human output written as is (no newline added); nothing with ``-q``."""
        if not self.quiet:
            click.echo(text, nl=False)

    def page(self, text: str, *, enabled: bool = True) -> None:
        """Print *text*, through a pager when stdout is a terminal (as git does): the
        command in ``JVS_PAGER``, else ``PAGER``, else ``less`` (with ``LESS=FRX`` unless
        set: it exits at once when the text fits the screen, keeps colours, leaves the
        text on screen). An empty ``JVS_PAGER``/``PAGER`` or ``cat`` means no pager."""
        if self.quiet:
            return
        command = _pager_command() if enabled and sys.stdout.isatty() else None
        if command is None:
            click.echo(text, nl=False)
            return
        import subprocess

        env = {**os.environ}
        env.setdefault("LESS", "FRX")
        env.setdefault("LV", "-c")
        sys.stdout.flush()
        try:
            proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
        except OSError:
            click.echo(text, nl=False)
            return
        try:
            proc.stdin.write(text.encode("utf-8", "surrogateescape"))
            proc.stdin.close()
        except BrokenPipeError:  # the user quit the pager early
            pass
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt:  # ^C belongs to the pager, as with git
                continue

    def warn(self, message: str) -> None:
        click.echo(f"jvs: warning: {message}", err=True)

    def report(self, message: str) -> None:
        """Progress on stderr, only for work that has already taken over a second."""
        if self.json or not self.progress or self.quiet:
            return
        now = time.monotonic()
        if now - self._started < 1.0 or now - self._last_progress < 0.5:
            return
        self._last_progress = now
        click.echo(f"jvs: {message}...", err=True)


def _pager_command() -> str | None:
    import shutil

    for var in ("JVS_PAGER", "PAGER"):
        if var in os.environ:
            command = os.environ[var].strip()
            return None if command in ("", "cat") else command
    return "less" if shutil.which("less") else None


def pretty_json(data: object) -> str:
    """Exactly ``json.dumps(data, indent=2, ensure_ascii=False)``, several times faster.

    With ``indent`` the stdlib (before Python 3.13) falls back to its pure-Python
    encoder; ``history --json`` over 20,000 snapshots spent most of its time there. Here
    only the nesting is Python: a dict none of whose values is a non-empty list or dict
    (a snapshot record, mostly) is one call of the C encoder, whose item separator carries
    the newline and indentation; other strings go through the C string encoder."""
    out: list[str] = []
    _render_into(data, "", out, {})
    return "".join(out)


def _render_into(value: object, pad: str, out: list[str], encoders: dict) -> None:
    kind = value.__class__
    if kind is str:
        out.append(_encode_str(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = pad + "  "
        if _flat(value):
            if inner not in encoders:
                encoders[inner] = _flat_encoder(inner)
            flat = encoders[inner]
            if flat is not None:
                text = "".join(flat(value, 0))
                out.append("{\n" + inner + text[1:-1] + "\n" + pad + "}")
                return
        out.append("{\n")
        first = True
        for k, v in value.items():
            if not first:
                out.append(",\n")
            first = False
            out.append(f"{inner}{_key(k)}: ")
            _render_into(v, inner, out, encoders)
        out.append("\n" + pad + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = pad + "  "
        out.append("[\n")
        first = True
        for v in value:
            out.append(inner if first else ",\n" + inner)
            first = False
            _render_into(v, inner, out, encoders)
        out.append("\n" + pad + "]")
    else:
        out.append(json.dumps(value))  # numbers, booleans, None


def _flat(d: dict) -> bool:
    """No value of *d* is a non-empty container: its lines are one level deep."""
    for v in d.values():
        kind = v.__class__
        if (kind is list or kind is tuple or kind is dict) and v:
            return False
    return True


def _key(k: object) -> str:
    # json.dumps turns non-string keys into strings its own way (True -> "true").
    return _encode_str(k) if k.__class__ is str else json.dumps({k: 0})[1:-4]


def _flat_encoder(inner: str):
    """The C encoder laying out one flat dict, items separated by a newline and *inner*;
    None where the build has no C encoder."""
    from json import encoder

    if encoder.c_make_encoder is None:
        return None
    # The arguments json.JSONEncoder.iterencode passes, for ensure_ascii=False.
    return encoder.c_make_encoder(None, _no_default, _encode_str, None, ": ", ",\n" + inner,
                                  False, False, True)


def _no_default(o: object) -> object:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


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
