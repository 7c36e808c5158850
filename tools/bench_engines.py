"""Engine benchmark (issue 4): jvs snapshot / restore / fork on each engine's own
filesystem, next to the bare tool the engine stands on (SPEC §12).

Run with `tools/bench engines [--small] [--big-mib N] [--repeat N] [--only NAME]`. It
builds its own volumes and removes them afterwards:
- plain disk (a temporary directory) for ``copy``, baseline ``cp -a``;
- an XFS loop image (reflink=1) for ``reflink-copy``, baseline ``cp -a --reflink=always``;
- a JuiceFS volume (sqlite3 metadata, ``file`` storage on the plain disk) for
  ``juicefs-clone``, baseline ``juicefs clone -p``.
For two trees (1,000 files x 4 KiB; 2 GiB in 2,000 files, or --big-mib spread over
1 MiB files) it times: the first (cold) snapshot, a snapshot of the unchanged worktree, a
snapshot with one file changed, a restore to the other snapshot, and a `worktree fork`.
Each time is the median of --repeat runs (warm page cache), including jvs's own process
start-up, next to the median baseline (for forks: of baselines each taken right before
a fork); the table shows the ratio and the SPEC §12 target:
juicefs-clone <= 1.5 x baseline + 0.15 s, reflink-copy <= 2 x baseline + 0.15 s,
copy >= 0.8 x the throughput of `cp -a` (time <= baseline / 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
JVS = [sys.executable, "-m", "jvs"] if not (VENV_BIN / "jvs").exists() else [str(VENV_BIN / "jvs")]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import volumes  # noqa: E402 - the real-volume builders the tests use

JUICEFS = volumes.juicefs_binary() or "juicefs"


@dataclass
class Volume:
    name: str
    engine: str
    path: Path
    baseline_name: str
    baseline: Callable[[Path, Path], list[str]]
    # (slope, intercept): jvs time must be <= slope * baseline + intercept
    target: tuple[float, float]


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, env=env)


def timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr}")
    return took


# ---- volumes ---------------------------------------------------------------------------

@contextlib.contextmanager
def plain_volume(base: Path) -> Iterator[Volume]:
    path = base / "plain"
    path.mkdir()
    try:
        yield Volume("disk", "copy", path, "cp -a",
                     lambda s, d: ["cp", "-a", str(s), str(d)], (1 / 0.8, 0.0))
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def xfs_volume(base: Path, size: int) -> Iterator[Volume | None]:
    with contextlib.ExitStack() as stack:
        try:
            mnt = stack.enter_context(volumes.xfs_volume(base / "xfs", size))
        except (volumes.Unavailable, RuntimeError) as exc:
            print(f"xfs: cannot build a loop-mounted XFS here ({exc}); skipped")
            yield None
            return
        yield Volume("xfs", "reflink-copy", mnt, "cp -a --reflink=always",
                     lambda s, d: ["cp", "-a", "--reflink=always", str(s), str(d)], (2.0, 0.15))


@contextlib.contextmanager
def juicefs_volume(base: Path) -> Iterator[Volume | None]:
    with contextlib.ExitStack() as stack:
        try:
            mnt = stack.enter_context(
                volumes.juicefs_volume(base / "jfs", "bench", xattrs_and_acls=False))
        except (volumes.Unavailable, RuntimeError) as exc:
            print(f"juicefs: cannot format/mount a JuiceFS volume here ({exc}); skipped")
            yield None
            return
        yield Volume("juicefs", "juicefs-clone", mnt, "juicefs clone -p",
                     lambda s, d: [JUICEFS, "clone", "-p", str(s), str(d)], (1.5, 0.15))


# ---- trees -----------------------------------------------------------------------------

def fill_tree(main: Path, files: int, size: int) -> None:
    block = os.urandom(max(size, 1))
    per_dir = 100
    for i in range(files):
        d = main / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir(exist_ok=True)
        with open(d / f"f{i:05d}.bin", "wb") as f:
            # distinct content per file, cheap to produce
            f.write(i.to_bytes(8, "little") + block[8:size])


def change_one_file(main: Path, n: int) -> None:
    target = main / "d000" / "f00000.bin"
    with open(target, "r+b") as f:
        f.write(f"change {n:08d}".encode())


def remove_tree(vol: Volume, path: Path) -> None:
    if not path.exists():
        return
    if vol.engine == "juicefs-clone":
        subprocess.run([JUICEFS, "rmr", str(path)], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


_CLONE_SNIPPET = """
import sys, time
from pathlib import Path
from jvs.engines import get_engine
engine = get_engine(sys.argv[1], Path(sys.argv[2]))
start = time.perf_counter()
engine.clone(Path(sys.argv[3]), Path(sys.argv[4]))
print(time.perf_counter() - start)
"""


def engine_clone_time(engine: str, repo_root: Path, src: Path, dst: Path) -> float:
    """The engine's clone alone, timed inside one process: what the engine costs next to
    the bare tool, without jvs's start-up, scans, hashing and publishing."""
    out = subprocess.run([sys.executable, "-c", _CLONE_SNIPPET, engine, str(repo_root),
                          str(src), str(dst)], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return float(out.stdout.strip())


# ---- one volume x one tree -------------------------------------------------------------

def bench_case(vol: Volume, label: str, files: int, size: int,
               repeat: int) -> list[tuple[str, float, float]]:
    env = {**os.environ, "JVS_SNAPSHOT_ENGINE": vol.engine, "NO_COLOR": "1"}
    work = vol.path / label
    work.mkdir()
    run([*JVS, "init", "r"], cwd=work, env=env)
    main = work / "r" / "main"
    fill_tree(main, files, size)
    run(["sync"])
    time.sleep(0.3)  # leave the stat cache's racily-clean window

    base_times = []
    for i in range(repeat):
        dst = work / f"baseline{i}"
        base_times.append(timed(vol.baseline(main, dst)))
        remove_tree(vol, dst)
        run(["sync"])
    baseline = statistics.median(base_times)

    engine_times = []
    for i in range(repeat):
        dst = work / f"engine{i}"
        engine_times.append(engine_clone_time(vol.engine, work / "r", main, dst))
        remove_tree(vol, dst)
        run(["sync"])

    def jvs(*args: str) -> float:
        return timed([*JVS, "--no-progress", *args], cwd=main, env=env)

    rows = []
    rows.append(("engine.clone only (in-process)", statistics.median(engine_times),
                 baseline))
    if vol.engine == "copy":
        # jvs makes a snapshot durable (syncfs); plain `cp -a` leaves 2 GiB dirty.
        durable = []
        for i in range(repeat):
            dst = work / f"durable{i}"
            durable.append(timed(["sh", "-c", f"cp -a '{main}' '{dst}' && sync"]))
            remove_tree(vol, dst)
            run(["sync"])
        rows.append(("(baseline cp -a && sync)", statistics.median(durable), baseline))
    rows.append(("snapshot (cold, hashes all)", jvs("snapshot", "A", "--tag", "A"),
                 baseline))
    time.sleep(0.3)
    rows.append(("snapshot (unchanged)",
                 statistics.median(jvs("snapshot", f"same {i}") for i in range(repeat)),
                 baseline))
    changed = []
    for i in range(repeat):
        change_one_file(main, i)
        time.sleep(0.3)
        changed.append(jvs("snapshot", f"B{i}", "--tag", "B"))
    rows.append(("snapshot (one file changed)", statistics.median(changed), baseline))
    run(["sync"])
    restores = []
    for i in range(repeat):
        restores.append(jvs("restore", "A" if i % 2 == 0 else "B"))
        run(["sync"])
        time.sleep(0.3)
    rows.append(("restore (to other snapshot)", statistics.median(restores), baseline))
    # A fork writes a whole new tree, so on the plain disk it runs at the disk's pace,
    # which drifts over a run by 2x (the disk is shared, and fuller by now than when the
    # baseline above was taken): each fork is graded against a baseline taken right
    # before it.
    forks, paired = [], []
    for i in range(repeat):
        dst = work / f"paired{i}"
        paired.append(timed(vol.baseline(main, dst)))
        remove_tree(vol, dst)
        run(["sync"])
        forks.append(jvs("worktree", "fork", "A", f"fork{i}"))
        run(["sync"])
    rows.append(("worktree fork (paired cp)", statistics.median(forks),
                 statistics.median(paired)))
    remove_tree(vol, work)
    run(["sync"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="quick run: the big tree is 200 MiB in 200 files")
    parser.add_argument("--big-mib", type=int, default=None,
                        help="size of the big tree in MiB, in 1 MiB files (default 2048)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["disk", "xfs", "juicefs"], action="append")
    args = parser.parse_args()
    big_mib = args.big_mib or (200 if args.small else 2048)
    cases = [("small", 1000, 4096, "1,000 x 4 KiB"),
             ("big", big_mib, 1 << 20, f"{big_mib / 1024:.2g} GiB in {big_mib} files")]
    only = set(args.only or ["disk", "xfs", "juicefs"])

    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"(2-core machine shared with others)")
    table = []
    base = Path(tempfile.mkdtemp(prefix="jvs-bench-engines-", dir="/var/tmp"))
    # An installed jvs has its bytecode compiled; without this, a PYTHONDONTWRITEBYTECODE
    # environment (ours has it) makes every jvs run compile its modules again (~15 ms of
    # CPU), a cost the bare tools do not pay. The cache goes to the scratch dir.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    try:
        makers = {
            "disk": lambda: plain_volume(base),
            "xfs": lambda: xfs_volume(base, max(4 << 30, big_mib * (6 << 20))),
            "juicefs": lambda: juicefs_volume(base),
        }
        for name in ("juicefs", "xfs", "disk"):
            if name not in only:
                continue
            with makers[name]() as vol:
                if vol is None:
                    continue
                for label, files, size, desc in cases:
                    for op, took, baseline in bench_case(vol, label, files, size,
                                                         args.repeat):
                        table.append((vol, desc, op, took, baseline))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    head = f"{'engine':14} {'tree':20} {'operation':30} {'jvs s':>7} {'baseline':>24} " \
           f"{'ratio':>6} {'target s':>9} ok"
    print(head)
    print("-" * len(head))
    for vol, desc, op, took, baseline in table:
        slope, intercept = vol.target
        limit = slope * baseline + intercept
        graded = not any(w in op for w in ("cold", "unchanged", "in-process", "baseline"))
        ok = ("yes" if took <= limit else "NO") if graded else "-"
        print(f"{vol.engine:14} {desc:20} {op:30} {took:7.3f} "
              f"{vol.baseline_name + f' {baseline:.3f}':>24} {took / baseline:6.2f} "
              f"{limit:9.3f} {ok}")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print("targets: juicefs-clone <= 1.5x + 0.15 s, reflink-copy <= 2x + 0.15 s, "
          "copy <= baseline / 0.8 (graded: one-file-changed snapshot, restore, fork)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    sys.exit(main())
