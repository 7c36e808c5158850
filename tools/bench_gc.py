"""gc benchmark (issue 15): the space a retention run frees, and gc at 20,000 snapshots.

Run with ``tools/bench gc [--files N] [--file-kib N] [--days N] [--snapshots N] [--skip-space]
[--skip-scale]``.

space: a worktree of ``--files`` files of ``--file-kib`` KiB gets one snapshot a day for
``--days`` days on the copy engine, 10 % of its files rewritten each day; the snapshots are
made by the real CLI with its wall clock shifted to 02:00 of each day (as faketime would).
Then the seeds' retention (``gc plan --keep-daily 7 --keep-tagged`` → ``gc run``) a day
after the last one. It prints ``du -sk .jvs`` before and after, and what the plan said it
would free.

scale: ``--snapshots`` snapshots fabricated by ``tools/bench_scale.populate`` (descriptors
written directly with correct checksums over tiny payloads, one hour apart: a main
lineage plus a removed worktree's branch; every 100th tagged), then the times of
``gc plan --keep-daily 7 --keep-tagged``, ``gc run`` of it (nearly every snapshot is a
candidate: retention applies along the lineage), and the readers afterwards, with
the tombstones in place: ``gc plan`` again, ``history --json``, ``history --collected
--json``, ``verify HEAD~N`` through collected snapshots, ``doctor``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import CPU_SECONDS, populate  # noqa: E402
from bench_scale import timed as _timed  # noqa: E402

VENV_BIN = Path(sys.executable).parent
JVS = str(VENV_BIN / "jvs")
DAY = 24 * 3600
# The real CLI with time.time / time.time_ns shifted to the moment in argv[1].
CLOCK_SHIFT = ("import sys, time; _d = float(sys.argv.pop(1)) - time.time(); "
               "_t, _ns = time.time, time.time_ns; time.time = lambda: _t() + _d; "
               "time.time_ns = lambda: _ns() + int(_d * 1e9); sys.argv[0] = 'jvs'; "
               "from jvs.cli.main import main; main()")


def du_kib(path: Path) -> int:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def run(*args: str, cwd: Path, env: dict | None = None) -> str:
    return subprocess.run([JVS, *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})}).stdout


def bench_space(base: Path, files: int, file_kib: int, days: int) -> list[tuple[str, str]]:
    subprocess.run([JVS, "init", "daily"], cwd=base, check=True, stdout=subprocess.DEVNULL)
    repo = base / "daily"
    main = repo / "main"
    rng = random.Random(15)
    for i in range(files):
        (main / f"f{i:05d}.bin").write_bytes(rng.randbytes(file_kib * 1024))
    # The days lie ahead of the real clock: a shifted clock *behind* the files' mtimes
    # would make every file look racily clean to the stat cache, and the copy engine
    # would then copy instead of linking what did not change.
    tomorrow = datetime.fromtimestamp(time.time() + DAY)
    start = tomorrow.replace(hour=2, minute=0, second=0, microsecond=0).timestamp()
    env = {**os.environ, "JVS_SNAPSHOT_ENGINE": "copy", "NO_COLOR": "1"}
    t0 = time.perf_counter()
    for day in range(days):
        if day:
            for i in rng.sample(range(files), files // 10):
                (main / f"f{i:05d}.bin").write_bytes(rng.randbytes(file_kib * 1024))
        subprocess.run([sys.executable, "-c", CLOCK_SHIFT, str(start + day * DAY), "snapshot",
                        f"Daily backup day {day}"], cwd=main, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    made = time.perf_counter() - t0
    os.sync()
    now = {"JVS_GC_NOW": str(start + days * DAY)}
    before = du_kib(repo / ".jvs")
    t0 = time.perf_counter()
    plan = json.loads(run("gc", "plan", "--keep-daily", "7", "--keep-tagged", "--json",
                          cwd=main, env=now))
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run("gc", "run", "--plan-id", plan["plan_id"], cwd=main, env=now)
    run_s = time.perf_counter() - t0
    after = du_kib(repo / ".jvs")
    worktree = du_kib(main)
    return [
        ("worktree", f"{files} files x {file_kib} KiB = {worktree / 1024:.1f} MiB"),
        (f"{days} daily snapshots (copy engine, 10 % files changed a day)",
         f"made in {made:.1f} s"),
        ("du -sk .jvs before gc", f"{before / 1024:.1f} MiB"),
        ("gc plan --keep-daily 7 --keep-tagged",
         f"{plan['candidate_count']} candidates, frees "
         f"{plan['deletable_bytes_estimate'] / 2**20:.1f} MiB ({plan['freed']['kind']}); "
         f"{plan_s:.2f} s"),
        ("gc run", f"{run_s:.2f} s"),
        ("du -sk .jvs after gc", f"{after / 1024:.1f} MiB"),
        ("freed (du before - after)", f"{(before - after) / 1024:.1f} MiB; plan said "
         f"{plan['deletable_bytes_estimate'] / 2**20:.1f} MiB"),
    ]


def bench_scale(base: Path, n: int) -> list[tuple[str, str]]:
    subprocess.run([JVS, "init", "big"], cwd=base, check=True, stdout=subprocess.DEVNULL)
    root = base / "big"
    t0 = time.perf_counter()
    main_ids = populate(root, n)
    made = time.perf_counter() - t0
    os.sync()
    main = root / "main"
    rows = [(f"populate {n} snapshots (direct writes, see docstring)", f"{made:.1f} s")]
    run("history", "--json", cwd=main)  # builds the index, as any first reader does
    plan_cmd = [JVS, "gc", "plan", "--keep-daily", "7", "--keep-tagged", "--json"]
    rows.append(("gc plan --keep-daily 7 --keep-tagged", timed(plan_cmd, main)))
    plan = json.loads(run(*plan_cmd[1:], cwd=main))
    rows.append(("  candidates", str(plan["candidate_count"])))
    rows.append(("gc run --plan-id (that plan)",
                 timed([JVS, "gc", "run", "--plan-id", plan["plan_id"]], main)))
    left = len(json.loads(run("history", "--all", "--json", cwd=main))["snapshots"])
    rows.append(("  snapshots left", str(left)))
    rows.append(("gc plan again (with the tombstones)", timed(plan_cmd, main)))
    rows.append(("baseline: rm -rf of as many payloads, manifests, descriptors",
                 rm_baseline(base, n, plan["candidate_count"])))
    rows.append(("history --json", timed([JVS, "history", "--json"], main)))
    rows.append(("history --collected --json",
                 timed([JVS, "history", "--collected", "--json"], main)))
    back = len(main_ids) // 2
    rows.append((f"verify HEAD~{back} (the walk goes through collected snapshots)",
                 timed([JVS, "verify", f"HEAD~{back}"], main, ok_codes=(0, 1))))
    rows.append(("doctor", timed([JVS, "--no-progress", "doctor"], main, ok_codes=(0, 1))))
    return rows


def timed(cmd: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Wall time and the child's CPU time: on a 2-core machine shared with other work,
    wall time of a deletion mostly measures the disk's queue."""
    wall = _timed(cmd, cwd, ok_codes=ok_codes)
    cpu = CPU_SECONDS[" ".join(cmd[1:3])[:30]][-1]
    return f"{wall:.2f} s (CPU {cpu:.2f} s)"


def rm_baseline(base: Path, n: int, count: int) -> str:
    """What deleting *count* of the same fabricated snapshots costs with rm -rf alone (the
    file system's floor for gc run on this disk, which other processes share)."""
    subprocess.run([JVS, "init", "floor"], cwd=base, check=True, stdout=subprocess.DEVNULL)
    root = base / "floor"
    ids = sorted(populate(root, n, branch=0))[:count]
    os.sync()
    jvs_dir = root / ".jvs"
    paths = [str(p) for sid in ids for p in (jvs_dir / "snapshots" / sid,
                                              jvs_dir / "manifests" / sid,
                                              jvs_dir / "descriptors" / f"{sid}.json")]
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for i in range(0, len(paths), 3000):
        subprocess.run(["rm", "-rf", *paths[i:i + 3000]], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return f"{time.perf_counter() - start:.2f} s (CPU {cpu:.2f} s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--file-kib", type=int, default=64)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--snapshots", type=int, default=20000)
    ap.add_argument("--skip-space", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jvs-bench-gc-") as tmp:
        rows: list[tuple[str, str]] = []
        if not args.skip_space:
            space = Path(tmp) / "space"
            space.mkdir()
            rows += bench_space(space, args.files, args.file_kib, args.days)
        if not args.skip_scale:
            scale = Path(tmp) / "scale"
            scale.mkdir()
            rows += bench_scale(scale, args.snapshots)
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    main()
