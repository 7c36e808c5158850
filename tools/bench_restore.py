"""Restore benchmark (issue 3): copy-engine restore against `cp -a`, and what the rescue
of unsaved work adds.

Run with `tools/bench restore [--big-mib N] [--repeat N]`. For each tree (1,000 x 4 KiB
files; one big file) it times:
- `cp -a` of the worktree (and `cp -a && sync`: jvs makes its staged copy durable);
- `jvs restore` between two snapshots of a clean worktree (stage with the engine, swap by
  rename, delete the old content);
- `jvs restore` of a dirty worktree (one file changed): the rescue snapshot is built by
  moving the old content, so the extra cost is hashing the changed file plus a manifest;
- the same with `--discard-unsaved`, for comparison.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import make_small_tree, print_table  # noqa: E402  (a sibling script)

ENV = {**os.environ, "JVS_SNAPSHOT_ENGINE": "copy"}


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=ENV)


def make_big_file(root: Path, mib: int) -> None:
    (root / "big").mkdir(exist_ok=True)
    chunk = os.urandom(1 << 20)
    with open(root / "big" / "big.bin", "wb") as f:
        for _ in range(mib):
            f.write(chunk)


def first_file(main: Path) -> Path:
    return sorted(p for p in main.rglob("*") if p.is_file())[0]


def bench_tree(label: str, fill, base: Path, repeat: int) -> list[tuple[str, float, str]]:
    work = base / label.replace(" ", "_")
    work.mkdir()
    run([JVS, "init", "r"], cwd=work)
    main = work / "r" / "main"
    fill(main)
    run([JVS, "snapshot", "A", "--tag", "A"], cwd=main)
    snap_a = next(p for p in (work / "r" / ".jvs" / "snapshots").iterdir())
    victim = first_file(main)
    with open(victim, "r+b") as f:
        f.write(b"B-side")
    run([JVS, "snapshot", "B", "--tag", "B"], cwd=main)
    run(["sync"])
    time.sleep(0.3)  # leave the stat cache's racily-clean window

    trash = work / "r" / ".jvs" / "restore" / "@trash"

    def settle() -> None:
        """Let the previous run's background deletion and writeback finish, so each
        timing starts from the same quiet state."""
        while trash.exists() and any(trash.iterdir()):
            time.sleep(0.05)
        run(["sync"])

    def cp_a(durable: bool = False) -> float:
        # the same copy a restore makes: the snapshot payload into a new directory
        dst = work / "cp"
        if dst.exists():
            shutil.rmtree(dst)
        settle()
        t = timed(["sh", "-c", f"cp -a '{snap_a}' '{dst}'" + (" && sync" if durable else "")])
        return t

    side = ["B"]  # head is B: the first restore goes to A

    def clean_restore() -> float:
        side[0] = "B" if side[0] == "A" else "A"  # always the other snapshot: a real swap
        run(["sync"])
        # warm the stat cache for the worktree as a user's earlier status/snapshot would
        run([JVS, "status"], cwd=main)
        time.sleep(0.15)
        run([JVS, "status"], cwd=main)
        settle()
        return timed([JVS, "restore", side[0]], cwd=main)

    def dirty_restore(*extra: str) -> float:
        side[0] = "B" if side[0] == "A" else "A"
        run([JVS, "status"], cwd=main)
        time.sleep(0.15)
        run([JVS, "status"], cwd=main)
        with open(first_file(main), "r+b") as f:
            f.write(os.urandom(16))
        settle()
        return timed([JVS, "restore", side[0], *extra], cwd=main)

    t_cp = statistics.median(cp_a() for _ in range(repeat))
    t_cp_sync = statistics.median(cp_a(True) for _ in range(repeat))
    shutil.rmtree(work / "cp")
    t_clean = statistics.median(clean_restore() for _ in range(repeat))
    t_dirty = statistics.median(dirty_restore() for _ in range(repeat))
    t_discard = statistics.median(dirty_restore("--discard-unsaved") for _ in range(repeat))
    settle()
    shutil.rmtree(work, ignore_errors=True)
    return [
        (f"{label}: cp -a", t_cp, ""),
        (f"{label}: cp -a && sync", t_cp_sync, ""),
        (f"{label}: jvs restore (clean)", t_clean,
         f"{t_clean / t_cp:.2f}x cp -a time ({t_cp / t_clean:.2f}x throughput), "
         f"{t_clean / t_cp_sync:.2f}x cp -a && sync"),
        (f"{label}: jvs restore (dirty: rescue)", t_dirty,
         f"rescue adds {t_dirty - t_clean:+.3f} s"),
        (f"{label}: jvs restore --discard-unsaved", t_discard,
         f"{t_discard - t_clean:+.3f} s vs clean"),
    ]


def main() -> None:
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="jvs-bench-restore-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        rows += bench_tree("1000 x 4 KiB", make_small_tree, base, args.repeat)
        rows += bench_tree(f"1 file x {args.big_mib} MiB",
                           lambda r: make_big_file(r, args.big_mib), base, args.repeat)
    print_table(rows)


if __name__ == "__main__":
    main()
