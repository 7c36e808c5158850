"""Test-only crash hooks that sit between protocol steps.

Set ``JVS_CRASH_AT=<step>`` and the process kills itself with SIGKILL when it reaches that
step, so tests can prove that a crash anywhere leaves the repository recoverable. The
hook costs one dictionary lookup when unset.
"""

from __future__ import annotations

import os
import signal


def crashpoint(step: str) -> None:
    if os.environ.get("JVS_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
    _pause_if_asked(step)


def _pause_if_asked(step: str) -> None:
    """``JVS_TEST_PAUSE_AT=<step>``: announce the step on stderr and sleep there (up to
    ``JVS_TEST_PAUSE_S`` seconds, default 600), so a test can act on the world while this
    process holds the repository lock mid-protocol (e.g. kill its host)."""
    if os.environ.get("JVS_TEST_PAUSE_AT") != step:
        return
    import sys
    import time

    sys.stderr.write(f"jvs-test: paused at {step} (pid {os.getpid()})\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get("JVS_TEST_PAUSE_S", "600")))
