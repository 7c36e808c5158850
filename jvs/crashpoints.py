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
