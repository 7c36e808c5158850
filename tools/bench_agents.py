"""Parallel agents benchmark (issue 17): the seeds' agent loop on one host, N workers.

Run with `tools/bench agents [--workers 1,2,4,8] [--rounds N] [--env-files N] [--dir DIR]`.

Tree shape: an agent environment of --env-files files of 4 KiB in directories of 100
(default 500 files, 2 MiB), snapshotted and tagged `agent-env`; each worker has its own
worktree forked from it. One round is what the seeds' agents do: `jvs restore agent-env`,
write a 64 KiB result, `jvs snapshot "Agent run ..." --tag agent` — three jvs processes.
Prints:

- runs per minute for each worker count, the ratio to one worker (the issue's target:
  4 workers >= 1.6 x one worker on a 2-core machine), and the CPU seconds per run (when
  it stays flat while throughput stops growing, the CPUs are the bound, not a lock);
- the repository-exclusive time per snapshot: how long one snapshot holds a lock that a
  writer in another worktree could wait for (the audit and intent short locks; a snapshot
  never holds repo.lock exclusively), median and max over --probe snapshots, measured
  in-process by timing every exclusive flock a snapshot holds except its own worktree's.

The copy engine on the directory given by --dir (default: a temporary directory). For the
same loop across two hosts on JuiceFS, see `tools/bench cluster --workers 1,2,4,8`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
JVS = [sys.executable, "-m", "jvs"]

AGENT_SCRIPT = """
set -e
cd {wt}
for r in $(seq 1 {rounds}); do
    {jvs} restore agent-env >/dev/null
    mkdir -p output
    head -c 65536 /dev/urandom > output/result.bin
    {jvs} snapshot "Agent run {name}.$r" --tag agent >/dev/null
done
"""

# Runs in a child process: time every exclusive lock a snapshot holds, except the
# worktree's own (no other worktree's writer waits for that one).
PROBE = r"""
import json, sys, time
from contextlib import contextmanager
import jvs.lock as lock
from jvs.cli.main import _run

held = []
real = lock._flock

@contextmanager
def timed(repo, path, what, operation, *, exclusive, deadline):
    with real(repo, path, what, operation, exclusive=exclusive, deadline=deadline):
        start = time.perf_counter()
        try:
            yield
        finally:
            if exclusive and not path.name.startswith("worktree-"):
                held.append((path.name, time.perf_counter() - start))

lock._flock = timed
worktree, count = sys.argv[1], int(sys.argv[2])
per_snapshot = []
for i in range(count):
    with open(f"{worktree}/probe-{i}.bin", "wb") as f:
        f.write(i.to_bytes(8, "little") * 8192)
    held.clear()
    try:
        _run(["-C", worktree, "snapshot", f"probe {i}"])  # main() would os._exit
    except SystemExit as exc:
        if exc.code:
            raise
    per_snapshot.append({"total": sum(s for _, s in held),
                         "locks": sorted({name for name, _ in held})})
print("PROBE " + json.dumps(per_snapshot))
"""


def jvs(*args: str, cwd: Path) -> str:
    return subprocess.run([*JVS, *args], cwd=cwd, check=True, capture_output=True,
                          text=True, env=_env()).stdout


def _env() -> dict[str, str]:
    env = dict(os.environ, JVS_LOCK_TIMEOUT="300", JVS_SNAPSHOT_ENGINE="copy")
    env["PYTHONPATH"] = str(HERE)
    # Compiled bytecode, as an installed jvs has: without it every command compiles
    # every module it imports (tools/bench unsets this too).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def make_repo(parent: Path, name: str, env_files: int) -> Path:
    jvs("init", name, cwd=parent)
    main = parent / name / "main"
    block = os.urandom(4096)
    for i in range(env_files):
        d = main / "env" / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.py").write_bytes(block[:4088] + i.to_bytes(8, "little"))
    jvs("snapshot", "env", "--tag", "agent-env", cwd=main)
    return main


def agent_loop(parent: Path, workers: int, rounds: int, env_files: int
               ) -> tuple[float, float]:
    """Runs per minute, and CPU seconds (user + system, every process) per run."""
    main = make_repo(parent, f"agents{workers}", env_files)
    names = [f"w{i}" for i in range(workers)]
    for name in names:
        jvs("fork", "agent-env", name, cwd=main)
    jvs_cmd = " ".join(JVS)
    cpu0 = _children_cpu()
    start = time.perf_counter()
    procs = [subprocess.Popen(
        ["bash", "-c", AGENT_SCRIPT.format(wt=main.parent / "worktrees" / name, name=name,
                                           rounds=rounds, jvs=jvs_cmd)],
        env=_env(), stderr=subprocess.PIPE, text=True) for name in names]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(err)
    elapsed = time.perf_counter() - start
    return workers * rounds / elapsed * 60, (_children_cpu() - cpu0) / (workers * rounds)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def exclusive_time(parent: Path, count: int, env_files: int) -> list[dict]:
    import json
    main = make_repo(parent, "probe", env_files)
    out = subprocess.run([sys.executable, "-c", PROBE, str(main), str(count)], check=True,
                         capture_output=True, text=True, env=_env()).stdout
    return json.loads(next(line[6:] for line in out.splitlines() if line.startswith("PROBE ")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts")
    parser.add_argument("--rounds", type=int, default=8, help="agent-loop rounds per worker")
    parser.add_argument("--env-files", type=int, default=500)
    parser.add_argument("--probe", type=int, default=30,
                        help="snapshots timed for the repository-exclusive time")
    parser.add_argument("--dir", type=Path, default=None, help="where the repositories go")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="jvs-bench-agents-", dir=args.dir))
    try:
        print(f"tree: {args.env_files} files of 4 KiB; {args.rounds} rounds per worker; "
              f"copy engine in {work}; {os.cpu_count()} CPUs; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        one = None
        for workers in counts:
            rpm, cpu = agent_loop(work, workers, args.rounds, args.env_files)
            one = one or rpm
            print(f"agent loop, {workers} worker(s): {rpm:6.1f} runs/min "
                  f"({rpm / one:.2f} x one worker), {cpu:.3f} CPU s per run, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        per = exclusive_time(work, args.probe, args.env_files)
        totals = [p["total"] * 1000 for p in per]
        locks = sorted({name for p in per for name in p["locks"]})
        print(f"repository-exclusive time per snapshot: median {statistics.median(totals):.1f}"
              f" ms, max {max(totals):.1f} ms over {len(totals)} snapshots "
              f"(locks: {', '.join(locks) or 'none'}; target: median <= 20 ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    sys.exit(main())
