"""A fork server for the crash harness: runs real jvs commands, each in a fresh process.

Started once with ``LD_PRELOAD=killshim.so`` (the shim stays idle until armed), it imports
jvs and every command module, then reads one JSON request per line on stdin and answers one
JSON line on stdout. For each request it forks; the child arms the shim (count from zero,
kill before call ``kill_at``), moves to ``cwd``, takes ``env``, points stdout/stderr at the
given files and runs the CLI's ``main`` exactly as ``python -m jvs`` would. The parent
answers with the child's exit status (negative: killed by that signal).

Why: a harness that kills a command at each of its hundreds of system calls runs it
hundreds of times; interpreter start-up and imports were most of each run. A forked child
is still a separate process that dies by SIGKILL with whatever it left on disk, which is
all the harness needs; no jvs code has run in the server, so the child starts with no
state a real run would not have.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import sys


def preload() -> None:
    import jvs.cli.main as cli_main

    for module in set(cli_main.COMMAND_MODULES.values()):
        importlib.import_module(f"jvs.cli.{module}")
    for name in ("snapshot", "restore", "worktrees", "doctor", "verify", "gc", "history",
                 "status", "diff", "index", "audit", "engines.copy", "engines.reflink",
                 "engines.juicefs"):
        try:
            importlib.import_module(f"jvs.{name}")
        except ImportError:
            pass


def child(request: dict, shim) -> None:
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, key in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        log = request.get("log")
        shim.killshim_arm(ctypes.c_long(int(request.get("kill_at") or 0)),
                          os.fsencode(log) if log else None)
        from jvs.cli.main import main

        main(list(request["args"]))
    finally:
        os._exit(70)  # main() exits by itself; reaching here means it raised


def serve() -> None:
    preload()
    shim = ctypes.CDLL(None)
    if not hasattr(shim, "killshim_arm"):
        raise SystemExit("forkserver: killshim.so is not preloaded")
    shim.killshim_arm.argtypes = [ctypes.c_long, ctypes.c_char_p]
    reply = sys.stdout
    sys.stdout = sys.stderr
    print(json.dumps({"ready": True}), file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request, shim)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"status": code}), file=reply, flush=True)


if __name__ == "__main__":
    serve()
