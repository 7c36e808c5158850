"""Points in time as users type them (``history --since/--until``), in git's forms.

Accepted, case-insensitive: an ISO date or date-time (``2026-12-01``, ``2026-12-01 14:30``,
``2026-12-01T14:30:00+01:00``; without an offset it is local time), ``now``, ``today``
and ``yesterday`` (local midnight), ``@<unix seconds>``, and a relative age: a number
and a unit, with the words separated by spaces or dots and an optional ``ago``
(``2.days.ago``, ``"3 days ago"``, ``90min``, ``1 week``). Units: seconds, minutes,
hours, days, weeks, months (30 days) and years (365 days), singular or plural, and the
short forms s, m/min, h, d, w, mo, y.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from jvs.errors import JvsError

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 7 * 86400, "week": 7 * 86400, "weeks": 7 * 86400,
    "mo": 30 * 86400, "month": 30 * 86400, "months": 30 * 86400,
    "y": 365 * 86400, "year": 365 * 86400, "years": 365 * 86400,
}
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)[\s.]*([a-z]+)(?:[\s.]+ago)?")


def parse_time(text: str, now: float | None = None) -> float:
    """Seconds since the epoch that *text* names (see the module docstring);
    E_USAGE naming the accepted forms if it names none."""
    now = time.time() if now is None else now
    raw = text.strip()
    word = raw.lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
        if word == "yesterday":
            midnight -= timedelta(days=1)
        return midnight.timestamp()
    if word.startswith("@"):
        try:
            return float(word[1:])
        except ValueError:
            pass
    relative = _RELATIVE.fullmatch(word)
    if relative and relative.group(2) in _UNITS:
        return now - float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
        when = datetime.fromisoformat(iso)
    except ValueError:
        raise JvsError("E_USAGE", f"cannot read {text!r} as a date or time",
                       hint="use e.g. 2026-12-01, '2026-12-01 14:30', yesterday, "
                            "'3 days ago' or 2.days.ago") from None
    return when.timestamp()  # a naive date-time is local time
