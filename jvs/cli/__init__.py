"""The command line: parses, calls the library, prints. No protocol logic lives here."""

# The C module: the 'signal' wrapper builds enums, a few ms in which Ctrl-C would still
# print a traceback.
import _signal
import os as _os
import sys as _sys


def _interrupted_while_starting(signum, frame):  # pragma: no cover - timing dependent
    """Ctrl-C before the command starts: nothing was done, so leave without a traceback.
    ``main`` puts Python's own handler back once it can turn the interrupt into
    'jvs: interrupted' (exit 130) itself."""
    _os.write(2, b"jvs: interrupted\n")
    _os._exit(130)


if _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("jvs", "-m") \
        and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    # Only for the program (bin/jvs, python -m jvs): code importing jvs.cli keeps its own.
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
