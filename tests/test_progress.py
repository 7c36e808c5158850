"""Live progress on a terminal (issue 18): a single rewritten line on stderr, only when
stderr is a terminal, never with --json or -q; the command's output is the same either
way. The terminal is a real pseudo-terminal; JVS_PROGRESS_DELAY=0 shows the line at once
instead of after a second of work."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time

from conftest import read_terminal, run_jvs, take_snapshot
from jvs.cli.output import Meter

NOW = {"JVS_PROGRESS_DELAY": "0", "NO_COLOR": "1"}


def _stderr_on_a_terminal(args, cwd, env=None, columns=None) -> tuple[int, str, str]:
    """Run jvs with stderr on a pseudo-terminal (*columns* wide, if given): (exit code,
    stdout, what the terminal got)."""
    master, slave = pty.openpty()
    if columns is not None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "jvs", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=slave,
                            env={**os.environ, **NOW, **(env or {})})
    os.close(slave)
    seen = read_terminal(master)
    out = proc.stdout.read().decode()
    proc.wait(timeout=60)
    proc.stdout.close()
    os.close(master)
    return proc.returncode, out, seen.decode()


def _worktree_with_files(main):
    for i in range(40):
        (main / f"f{i}.txt").write_text(f"content {i}\n" * 50)


def test_snapshot_shows_live_progress_on_a_terminal_and_erases_it(main_wt):
    _worktree_with_files(main_wt)
    code, out, terminal = _stderr_on_a_terminal(["snapshot", "first"], main_wt)
    assert code == 0
    assert out.startswith("Created snapshot ")
    # Counted as the walk goes (it lists the tree once: no total beforehand).
    assert re.search(r"jvs: hashing, \d+ files", terminal)
    assert "\r" in terminal and terminal.endswith("\r\x1b[K")  # the line is cleared
    assert "jvs: hashing..." not in terminal  # the old static line is gone


def test_no_progress_in_a_pipe_with_json_or_quiet(main_wt):
    _worktree_with_files(main_wt)
    piped = run_jvs("snapshot", "piped", cwd=main_wt, env=NOW)
    assert piped.stderr == ""
    assert piped.stdout.startswith("Created snapshot ")
    (main_wt / "f0.txt").write_text("changed\n")
    code, out, terminal = _stderr_on_a_terminal(["--json", "snapshot", "as json"], main_wt)
    assert code == 0 and terminal == ""
    assert '"snapshot_id"' in out
    (main_wt / "f1.txt").write_text("changed\n")
    code, out, terminal = _stderr_on_a_terminal(["-q", "snapshot", "quiet"], main_wt)
    assert code == 0 and terminal == "" and out == ""
    code, out, terminal = _stderr_on_a_terminal(["--no-progress", "verify", "--all"], main_wt)
    assert code == 0 and terminal == ""


def test_verify_and_restore_show_progress_and_keep_their_output(main_wt):
    _worktree_with_files(main_wt)
    first = take_snapshot(main_wt, "first")
    (main_wt / "f0.txt").write_text("changed\n")
    take_snapshot(main_wt, "second")
    piped = run_jvs("verify", "--all", cwd=main_wt, env=NOW)
    code, out, terminal = _stderr_on_a_terminal(["verify", "--all"], main_wt)
    assert code == 0 and out == piped.stdout
    assert "jvs: verifying, 0/2 snapshots" in terminal
    for i in range(1, 4):
        (main_wt / f"f{i}.txt").write_text("changed\n")
    take_snapshot(main_wt, "third")
    code, out, terminal = _stderr_on_a_terminal(["restore", first], main_wt)
    assert code == 0
    assert "jvs: checking the worktree" in terminal
    # Counts of what it stages: the changed files only, with their sizes from the manifest.
    size = len("content 0\n" * 50) * 4
    assert "jvs: staging 4 changed entries, 0/4 files, 0 B/" in terminal
    assert f"/{size / 1024:.1f} KiB" in terminal
    assert (main_wt / "f0.txt").read_text() == "content 0\n" * 50


def test_the_line_counts_files_bytes_rate_and_eta():
    meter = Meter(delay=3600)  # never drawn: only the text is looked at
    meter("hashing")
    meter.start(10, 4096)
    meter._since -= 2  # two seconds in
    meter.advance(5, 2048)
    line = meter.line(meter._since + 2)
    assert line == "hashing, 5/10 files, 2.0 KiB/4.0 KiB, 1.0 KiB/s, ETA 0:02"
    # A walk that counts as it goes has no total to show, nor an ETA.
    meter.start(0, 0)
    meter._since -= 2
    meter.advance(5, 2048)
    assert meter.line(meter._since + 2) == "hashing, 5 files, 2.0 KiB, 1.0 KiB/s"


def test_fork_worktree_remove_and_gc_run_show_progress(main_wt):
    _worktree_with_files(main_wt)
    take_snapshot(main_wt, "first")
    code, out, terminal = _stderr_on_a_terminal(["fork", "exp"], main_wt)
    assert code == 0 and "exp" in out
    assert "jvs: cloning " in terminal
    assert ", 0/40 files, 0 B/" in terminal  # the copy engine counts what it copies
    code, out, terminal = _stderr_on_a_terminal(["worktree", "remove", "exp"], main_wt)
    assert code == 0
    assert "jvs: checking for unsaved work" in terminal
    assert "jvs: deleting, 0/40 files, 0 B/" in terminal  # counted as the files go
    assert not (main_wt.parent / "worktrees" / "exp").exists()
    for note in ("second", "third"):
        (main_wt / "f0.txt").write_text(note + "\n")
        take_snapshot(main_wt, note)
    later = {"JVS_GC_NOW": str(time.time() + 2 * 24 * 3600)}
    plan = run_jvs("gc", "plan", "--keep-last", "1", "--json", cwd=main_wt, env=later).json
    assert plan["candidates"]
    code, out, terminal = _stderr_on_a_terminal(
        ["gc", "run", "--plan-id", plan["plan_id"]], main_wt, later)
    assert code == 0
    assert f"jvs: deleting, 0/{len(plan['candidates'])} snapshots" in terminal


def test_the_line_is_cut_to_a_narrow_terminal(main_wt):
    _worktree_with_files(main_wt)
    code, out, terminal = _stderr_on_a_terminal(["snapshot", "first"], main_wt, columns=30)
    assert code == 0 and out.startswith("Created snapshot ")
    rows = [r.removeprefix("\x1b[K") for r in terminal.split("\r") if r]
    assert any(r.startswith("jvs: hashing") for r in rows)
    # Every redraw fits one row (with a column spare), so "\r" rewrites all of it.
    assert all(len(r) <= 29 for r in rows), rows
    assert "\n" not in terminal
    wide = _stderr_on_a_terminal(["snapshot", "second"], main_wt, columns=200)[2]
    assert any(len(r) > 29 for r in wide.split("\r"))  # not cut where it fits


def test_worktree_remove_counts_what_it_deletes_on_every_engine(engine_repo):
    """The deletion is counted file by file where jvs unlinks, and as one step where
    ``juicefs rmr`` removes the tree; either way the command reports the removal, the
    worktree is gone and nothing is left in the trash."""
    repo, _ = engine_repo
    main = repo / "main"
    _worktree_with_files(main)
    take_snapshot(main, "first")
    run_jvs("fork", "exp", cwd=main)
    code, out, terminal = _stderr_on_a_terminal(["worktree", "remove", "exp"], main)
    assert code == 0 and out.startswith("Removed worktree 'exp'"), out
    assert "jvs: deleting, 0/40 files, 0 B/" in terminal
    assert not (repo / "worktrees" / "exp").exists()
    trash = repo / ".jvs" / "restore" / "@trash"
    assert not trash.exists() or not any(trash.iterdir())
