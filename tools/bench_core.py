"""Core benchmark (issue 2): start-up time and copy-engine snapshots against `cp -a`.

Run with `tools/bench core [--big-mib N] [--repeat N]`. Prints a table of median times
and ratios. Works on the plain disk under $TMPDIR (the copy engine's home).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
JVS = str(VENV_BIN / "jvs")


def timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def median(fn, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def drop_file(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def make_small_tree(root: Path, n: int = 1000, size: int = 4096) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "data" / f"f{i:04d}.bin").write_bytes(os.urandom(size))


def make_big_file(root: Path, mib: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as f:
        for _ in range(mib):
            f.write(chunk)


def bench_tree(label: str, fill, base: Path, repeat: int) -> list[tuple[str, float, str]]:
    rows = []
    work = base / label
    subprocess.run([JVS, "init", "r"], cwd=base, check=True, stdout=subprocess.DEVNULL) \
        if not (base / "r").exists() else None
    repo = base / "r"
    main = repo / "main"
    for p in main.iterdir():
        drop_file(p)
    fill(main)
    time.sleep(0.3)  # leave the racily-clean window so the stat cache can hold entries
    subprocess.run(["sync"], check=True)

    def cp_a(durable: bool = False) -> float:
        dst = work / "cp"
        if dst.exists():
            shutil.rmtree(dst)
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sync"], check=True)
        cmd = f"cp -a '{main}' '{dst}'" + (" && sync" if durable else "")
        t = timed(["sh", "-c", cmd])
        subprocess.run(["sync"], check=True)
        return t

    def first_snapshot() -> float:
        shutil.rmtree(repo / ".jvs" / "cache", ignore_errors=True)  # a cold stat cache
        subprocess.run(["sync"], check=True)
        return timed([JVS, "snapshot", "bench"], cwd=main)

    t_cp = median(cp_a, repeat)
    t_cp_sync = median(lambda: cp_a(durable=True), repeat)
    t_first = median(first_snapshot, repeat)
    # one file changed, stat cache warm
    victim = sorted(p for p in main.rglob("*") if p.is_file())[0]

    def changed_snapshot() -> float:
        with open(victim, "r+b") as f:
            f.write(os.urandom(16))
        return timed([JVS, "snapshot", "changed"], cwd=main)

    timed([JVS, "snapshot", "warm"], cwd=main)
    t_changed = median(changed_snapshot, repeat)
    rows.append((f"{label}: cp -a", t_cp, ""))
    rows.append((f"{label}: cp -a && sync", t_cp_sync, "(jvs fsyncs its snapshots)"))
    rows.append((f"{label}: jvs snapshot (cold cache)", t_first,
                 f"{t_cp / t_first:.2f}x cp -a throughput (target >= 0.8x), "
                 f"{t_cp_sync / t_first:.2f}x cp -a && sync"))
    rows.append((f"{label}: jvs snapshot, one file changed", t_changed,
                 f"{t_changed / t_first:.2f}x of the first snapshot"))
    shutil.rmtree(repo / ".jvs" / "snapshots")
    (repo / ".jvs" / "snapshots").mkdir()
    shutil.rmtree(work, ignore_errors=True)
    return rows


def print_table(rows: list[tuple[str, float, str]]) -> None:
    """The table every tools/bench_*.py section prints: name, median seconds, ratio."""
    load = os.getloadavg()[0]
    print(f"{'measurement':48} {'seconds':>9}  ratio   (load {load:.2f}, {os.cpu_count()} cpus)")
    for name, secs, note in rows:
        print(f"{name:48} {secs:9.3f}  {note}")


def main() -> None:
    # Start-up time is part of what we measure: let Python keep its bytecode cache.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="jvs-bench-core-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        subprocess.run([JVS, "init", "r"], cwd=base, check=True, stdout=subprocess.DEVNULL)
        main_wt = base / "r" / "main"
        rows.append(("jvs --version", median(lambda: timed([JVS, "--version"]), 7),
                     "target < 0.15 s"))
        rows.append(("jvs history (empty repo)",
                     median(lambda: timed([JVS, "history"], cwd=main_wt), 7), ""))
        rows += bench_tree("1000 x 4 KiB", make_small_tree, base, args.repeat)
        rows += bench_tree(f"1 file x {args.big_mib} MiB",
                           lambda r: make_big_file(r, args.big_mib), base, args.repeat)
    print_table(rows)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    main()
