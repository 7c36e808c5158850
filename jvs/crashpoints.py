"""Test-only crash hooks that sit between protocol steps.

Set ``JVS_CRASH_AT=<step>`` and the process kills itself with SIGKILL when it reaches that
step, so tests can prove that a crash anywhere leaves the repository recoverable. The
hook costs one dictionary lookup when unset.

The same points time the protocols: ``JVS_PROFILE_STEPS=1`` prints to stderr how long each
step took (the time since the previous point), for finding where a snapshot or a restore
spends its time (docs/engines.md, "Measured").
"""

from __future__ import annotations

import os
import signal


def crashpoint(step: str) -> None:
    if os.environ.get("JVS_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
    _pause_if_asked(step)
    if _PROFILE:
        profile_step(step)


_PROFILE = bool(os.environ.get("JVS_PROFILE_STEPS"))
_last_step_at: float | None = None


def profile_step(step: str) -> None:
    """With ``JVS_PROFILE_STEPS`` set, print the time since the previous step (the first
    one: since the process started, i.e. interpreter start-up, imports and everything
    before it)."""
    global _last_step_at
    if not _PROFILE:
        return
    import sys
    import time

    now = time.perf_counter()
    if _last_step_at is None:
        import atexit

        atexit.register(profile_step, "exit")  # output, and whatever ran after the last step
        took = time.clock_gettime(time.CLOCK_BOOTTIME) - _process_start()
    else:
        took = now - _last_step_at
    _last_step_at = now
    sys.stderr.write(f"jvs-step {took * 1000:8.1f} ms  {step}\n")


def _process_start() -> float:
    """When this process started, in CLOCK_BOOTTIME seconds (from /proc/self/stat)."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _pause_if_asked(step: str) -> None:
    """``JVS_TEST_PAUSE_AT=<step>[,<step>...]``: announce the step on stderr and sleep
    there (up to ``JVS_TEST_PAUSE_S`` seconds, default 600), so a test can act on the
    world while this process holds the repository lock mid-protocol (e.g. kill its host)."""
    wanted = os.environ.get("JVS_TEST_PAUSE_AT")
    if not wanted or step not in wanted.split(","):
        return
    import sys
    import time

    sys.stderr.write(f"jvs-test: paused at {step} (pid {os.getpid()})\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get("JVS_TEST_PAUSE_S", "600")))
