"""How the CLI speaks: human text or JSON, colour only on a TTY, progress on stderr, and
one place where a JvsError becomes ``jvs: E_CLASS: message`` and an exit code."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring as _encode_str  # C where the build has it

import click


@dataclass
class Ui:
    json: bool = False
    color: bool | None = None  # None: decide from the TTY and NO_COLOR
    progress: bool = True
    quiet: bool = False  # -q: no human output on stdout (JSON still; stderr still)
    directory: str | None = None

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

    @contextmanager
    def live(self) -> Iterator[Meter | None]:
        """``with ui.live() as progress:`` pass *progress* to the library; the line is
        erased when the block ends, however it ends."""
        meter = self.meter()
        try:
            yield meter
        finally:
            if meter is not None:
                meter.done()

    def meter(self) -> Meter | None:
        """The live progress line for one command, or None when nobody should see one:
        stderr not a terminal, ``--json``, ``-q`` or ``--no-progress``."""
        if self.json or not self.progress or self.quiet or not sys.stderr.isatty():
            return None
        return Meter(_progress_delay())


def _progress_delay() -> float:
    """Seconds of work before the line shows: ``JVS_PROGRESS_DELAY`` (tests set 0)."""
    try:
        return max(0.0, float(os.environ.get("JVS_PROGRESS_DELAY", "1")))
    except ValueError:
        return 1.0


class Meter:
    """One ``\\r``-rewritten line on stderr: the stage, then files and bytes done of the
    total, rate and ETA once the library gives counts (jvs/progress.py). Shown only after
    *delay* seconds, redrawn at most ten times a second, erased by ``done()``."""

    def __init__(self, delay: float) -> None:
        self._t0 = time.monotonic()
        self._delay = delay
        self._last = 0.0
        self._shown = False
        self._stage = ""
        self._total = (0, 0)
        self._counting = False  # start() was called: counts are shown
        self._done = [0, 0]
        self._since = self._t0
        self._unit = "files"

    def __call__(self, stage: str) -> None:
        self._stage = stage
        self._draw(force=True)

    def start(self, total_files: int, total_bytes: int, *, unit: str = "files") -> None:
        self._total = (total_files, total_bytes)
        self._counting = True
        self._unit = unit
        self._done = [0, 0]
        self._since = time.monotonic()
        self._draw(force=True)

    def advance(self, files: int, bytes_done: int) -> None:
        self._done[0] += files
        self._done[1] += bytes_done
        self._draw()

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._shown = False
        self._total = (0, 0)
        self._counting = False

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if now - self._t0 < self._delay or (not force and now - self._last < 0.1):
            return
        self._last = now
        text = "jvs: " + self.line(now)
        width = _terminal_width()
        if width and len(text) >= width:
            # One row only: a line that wraps would leave its first rows behind, since
            # "\r" goes back to the start of the last row. One column spare, for
            # terminals that wrap as soon as the last column is written.
            text = text[:width - 1]
        sys.stderr.write("\r\x1b[K" + text)
        sys.stderr.flush()
        self._shown = True

    def line(self, now: float) -> str:
        parts = [self._stage or "working"]
        files, nbytes = self._done
        total_files, total_bytes = self._total
        if not self._counting:
            return parts[0]
        known = bool(total_files or total_bytes)  # else counted as it goes (a walk)
        parts.append(f"{files}/{total_files} {self._unit}" if known else f"{files} {self._unit}")
        if total_bytes:
            parts.append(f"{human_size(nbytes)}/{human_size(total_bytes)}")
        elif nbytes:
            parts.append(human_size(nbytes))
        elapsed = now - self._since
        if elapsed <= 0 or not (files or nbytes):
            return ", ".join(parts)
        if nbytes:
            parts.append(f"{human_size(nbytes / elapsed)}/s")
        else:
            parts.append(f"{files / elapsed:.0f} {self._unit}/s")
        if not known:
            return ", ".join(parts)
        if total_bytes and nbytes:
            left = (total_bytes - nbytes) * elapsed / nbytes
        else:
            left = (total_files - files) * elapsed / files if files else 0
        parts.append(f"ETA {int(left) // 60}:{int(left) % 60:02d}")
        return ", ".join(parts)


def _terminal_width() -> int:
    """Columns of the terminal stderr is on, asked at each redraw (it may be resized);
    0 when unknown."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


def human_size(n: float) -> str:
    """*n* bytes as people read them: ``512 B``, ``1.5 MiB`` (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


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
