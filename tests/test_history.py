"""``jvs history`` (jvs/history.py): time spans, order, one-line form, local times, and
the pager on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from datetime import datetime

import pytest

from conftest import read_terminal, run_jvs, take_snapshot
from jvs.dates import parse_time
from jvs.errors import JvsError

NOW = datetime(2026, 12, 3, 12, 0, 0).timestamp()  # local time


@pytest.mark.parametrize("text,expected", [
    ("2.days.ago", NOW - 2 * 86400),
    ("3 days ago", NOW - 3 * 86400),
    ("1 week", NOW - 7 * 86400),
    ("90min", NOW - 90 * 60),
    ("2 hours ago", NOW - 7200),
    ("now", NOW),
    ("today", datetime(2026, 12, 3).timestamp()),
    ("yesterday", datetime(2026, 12, 2).timestamp()),
    ("2026-12-01", datetime(2026, 12, 1).timestamp()),
    ("2026-12-01 14:30", datetime(2026, 12, 1, 14, 30).timestamp()),
    ("2026-12-01T14:30:00Z", 1796135400.0),
    ("2026-12-01T15:30:00+01:00", 1796135400.0),
    ("@1700000000", 1700000000.0),
])
def test_dates_as_users_type_them(text, expected):
    assert parse_time(text, NOW) == pytest.approx(expected)


def test_an_unreadable_date_is_a_usage_error(repo):
    with pytest.raises(JvsError) as exc:
        parse_time("next tuesday", NOW)
    assert exc.value.code == "E_USAGE" and "3 days ago" in exc.value.hint
    res = run_jvs("history", "--since", "soonish", cwd=repo / "main", check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr


def _ids(res) -> list[str]:
    return [s["snapshot_id"] for s in res.json["snapshots"]]


def test_since_until_reverse_and_oneline(repo):
    main = repo / "main"
    ids = []
    for i in range(3):
        (main / "f").write_text(f"{i}\n")
        ids.append(take_snapshot(main, f"state {i}", f"t{i}"))
        time.sleep(0.01)
    # The time history shows (created_at), not the ID's, which is the millisecond the
    # snapshot began: --since and --until both include the snapshot created at that time.
    created = {e["snapshot_id"]: e["created_at"]
               for e in run_jvs("history", "--json", cwd=main).json["snapshots"]}
    middle = datetime.fromisoformat(created[ids[1]][:26].ljust(26, "0") + "+00:00").timestamp()
    assert run_jvs("history", "--since", created[ids[1]], "--until", created[ids[1]],
                   "--json", cwd=main).json["snapshots"][0]["snapshot_id"] == ids[1]
    since = run_jvs("history", "--since", f"@{middle}", "--json", cwd=main)
    assert _ids(since) == [ids[2], ids[1]]
    until = run_jvs("history", "--until", f"@{middle}", "--json", cwd=main)
    assert _ids(until) == [ids[1], ids[0]]
    assert _ids(run_jvs("history", "--after", "1 hour ago", "--before", "now", "--json",
                        cwd=main)) == ids[::-1]
    assert _ids(run_jvs("history", "--until", "2.days.ago", "--json", cwd=main)) == []
    assert "No matching snapshots." in run_jvs("history", "--until", "2.days.ago",
                                               cwd=main).stdout
    # --reverse applies after the limit, as git's does
    assert _ids(run_jvs("history", "--reverse", "-n", "2", "--json", cwd=main)) == \
        [ids[1], ids[2]]
    lines = run_jvs("history", "--oneline", "--reverse", cwd=main).stdout.splitlines()
    assert lines == [f"{ids[0][-8:]} state 0 [t0]", f"{ids[1][-8:]} state 1 [t1]",
                     f"{ids[2][-8:]} state 2 [t2]  (HEAD)"]


def test_times_are_local_with_their_offset(repo):
    main = repo / "main"
    (main / "f").write_text("x\n")
    sid = take_snapshot(main, "tz")
    when = int(sid[:13]) / 1000
    env = {"TZ": "Asia/Kolkata"}  # +0530: the offset and the shifted hour both show
    out = run_jvs("history", cwd=main, env=env).stdout
    expected = datetime.fromtimestamp(when, tz=__import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
    assert expected.strftime("%Y-%m-%d %H:%M:%S +0530") in out
    assert run_jvs("history", "--json", cwd=main, env=env).json["snapshots"][0][
        "created_at"].endswith("Z")  # JSON keeps the descriptor's UTC string


def _run_on_a_terminal(args, cwd, env) -> str:
    """Run jvs with stdout on a pseudo-terminal; everything it (and its pager) wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "jvs", *args], cwd=cwd, stdout=slave,
                            stderr=subprocess.PIPE, env={**os.environ, **env})
    os.close(slave)
    out = read_terminal(master)
    proc.wait(timeout=30)
    os.close(master)
    return out.decode().replace("\r\n", "\n")


def test_history_pages_on_a_terminal_only(repo):
    main = repo / "main"
    (main / "f").write_text("x\n")
    take_snapshot(main, "paged note")
    pager = {"JVS_PAGER": "sed 's/^/PAGED: /'", "PAGER": "false", "NO_COLOR": "1"}
    shown = _run_on_a_terminal(["history"], main, pager)
    assert "PAGED: " in shown and "paged note" in shown
    assert "PAGED" not in _run_on_a_terminal(["history", "--no-pager"], main, pager)
    assert "PAGED" not in _run_on_a_terminal(["history"], main, {**pager, "JVS_PAGER": "cat"})
    piped = run_jvs("history", cwd=main, env=pager).stdout  # not a terminal: no pager
    assert "PAGED" not in piped and "paged note" in piped
