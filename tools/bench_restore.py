"""Restore benchmark (issue 14): restore costs what changed, on every engine and shape.

Run with `tools/bench restore [--scale F] [--repeat N] [--only ENGINE] [--shapes A,B]`.
For each engine on its own filesystem (copy on the plain disk, reflink-copy on an XFS
loop image, juicefs-clone on a JuiceFS volume; see bench_engines.py) and each tree shape:

  flat       2,000 x 1 MiB files at the worktree root
  nested     20 dirs x 100 x 1 MiB
  many       100,000 x 1 KiB in 500 dirs
  bigfile    one 2 GiB file, 1 MiB of it changed
  different  2,000 x 1 MiB at the root, every file different between the snapshots

it takes two snapshots that differ by one file (by every file for `different`) and times
`jvs restore` between them in a clean worktree (median of --repeat, alternating
targets, jvs start-up included), next to the engine's bare tool copying the whole tree
(`cp -a`, `cp -a --reflink=always`, `juicefs clone -p`; median of --repeat). It then
changes one file and snapshots: the stat cache must make that snapshot hash exactly the
changed bytes. --scale shrinks every shape (file counts and sizes) for a quick look.

Targets (issue 14), one file changed: restore <= 0.25 x cp -a on copy, <= 1 x juicefs
clone -p on JuiceFS, <= 1 x cp --reflink on XFS; flat and nested within 1.3x of each
other; `different`: <= 1.5 x the bare tool + 0.15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engines import (  # noqa: E402  (a sibling script)
    JVS,
    Volume,
    juicefs_volume,
    plain_volume,
    remove_tree,
    run,
    timed,
    xfs_volume,
)

MIB = 1 << 20
SHAPES = {  # name: (files, size, files per dir (0: at the root))
    "flat": (2000, MIB, 0),
    "nested": (2000, MIB, 100),
    "many": (100_000, 1024, 200),
    "bigfile": (1, 2048 * MIB, 0),
    "different": (2000, MIB, 0),
}


def shape_paths(files: int, per_dir: int) -> list[str]:
    if per_dir == 0:
        return [f"f{i:06d}.bin" for i in range(files)]
    return [f"d{i // per_dir:03d}/f{i:06d}.bin" for i in range(files)]


def fill(main: Path, paths: list[str], size: int, salt: bytes) -> None:
    block = os.urandom(min(size, MIB))
    for n, rel in enumerate(paths):
        path = main / rel
        path.parent.mkdir(exist_ok=True)
        with open(path, "wb") as f:
            left = size
            head = salt + n.to_bytes(8, "little")
            while left > 0:
                chunk = block[:min(left, len(block))]
                f.write(head + chunk[len(head):] if left == size else chunk)
                left -= len(chunk)


def change(path: Path, size: int, n: int) -> int:
    """Overwrite up to 1 MiB of *path* in place; returns how many bytes the file has."""
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(f"change {n:08d}".encode().ljust(min(size, MIB), b"c"))
    return os.path.getsize(path)


def jvs_json(args: list[str], cwd: Path, env: dict) -> dict:
    out = subprocess.run([*JVS, *args, "--json"], cwd=cwd, env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"jvs {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


def bench_shape(vol: Volume, shape: str, scale: float, repeat: int) -> dict:
    files, size, per_dir = SHAPES[shape]
    files = max(1, int(files * scale)) if shape != "bigfile" else 1
    size = max(1024, int(size * scale)) if shape == "bigfile" else size
    env = {**os.environ, "JVS_SNAPSHOT_ENGINE": vol.engine, "NO_COLOR": "1"}
    work = vol.path / f"r-{shape}"
    run([*JVS, "init", work.name], cwd=vol.path, env=env)
    main = work / "main"
    paths = shape_paths(files, per_dir)
    fill(main, paths, size, b"A")
    v1 = jvs_json(["snapshot", "one"], main, env)["snapshot_id"]
    if shape == "different":
        for rel in paths:
            os.unlink(main / rel)
        fill(main, [p.replace("f", "g", 1) for p in paths], size, b"B")
    else:
        change(main / paths[0], size, 0)
    v2 = jvs_json(["snapshot", "two"], main, env)["snapshot_id"]

    restores = []
    for n in range(repeat):
        restores.append(timed([*JVS, "restore", v1 if n % 2 == 0 else v2], cwd=main,
                              env=env))
    baselines = []
    payload = work / ".jvs" / "snapshots" / v1
    for n in range(repeat):
        dst = vol.path / f"baseline-{shape}-{n}"
        baselines.append(timed(vol.baseline(payload, dst)))
        remove_tree(vol, dst)
    # The snapshot after a restore: only what changed since is read.
    at_v1 = (repeat - 1) % 2 == 0
    last = paths[-1] if at_v1 or shape != "different" else paths[-1].replace("f", "g", 1)
    changed = change(main / last, size, 99)
    stats = jvs_json(["snapshot", "after restore"], main, env)["stats"]
    remove_tree(vol, work)
    restore_s, base_s = statistics.median(restores), statistics.median(baselines)
    return {"engine": vol.engine, "shape": shape, "files": files, "size": size,
            "restore_s": restore_s, "baseline_s": base_s, "ratio": restore_s / base_s,
            "bytes_hashed": stats.get("bytes_hashed"), "bytes_changed": changed}


def target_of(row: dict) -> str:
    if row["shape"] == "different":
        slope = {"copy": 1 / 0.8}.get(row["engine"], 1.5)
        limit = slope * row["baseline_s"] + 0.15
        return f"<= {limit:.2f} s: {'met' if row['restore_s'] <= limit else 'NOT met'}"
    limit = 0.25 if row["engine"] == "copy" else 1.0
    return f"<= {limit} x: {'met' if row['ratio'] <= limit else 'NOT met'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["copy", "reflink-copy", "juicefs-clone"])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    shapes = args.shapes.split(",")
    rows = []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"commit {commit}, kernel {os.uname().release}, scale {args.scale}, "
          f"repeat {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="jvs-bench-restore-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        makers = [("copy", lambda: plain_volume(base)),
                  ("reflink-copy", lambda: xfs_volume(base, int(12 * (1 << 30)))),
                  ("juicefs-clone", lambda: juicefs_volume(base))]
        for engine, make in makers:
            if args.only and engine != args.only:
                continue
            with make() as vol:
                if vol is None:
                    continue
                for shape in shapes:
                    started = time.perf_counter()
                    row = bench_shape(vol, shape, args.scale, args.repeat)
                    rows.append(row)
                    print(f"{engine:14} {shape:10} {row['files']:>7} files  restore "
                          f"{row['restore_s']:7.3f} s  {vol.baseline_name} "
                          f"{row['baseline_s']:7.3f} s  ratio {row['ratio']:6.3f}  "
                          f"[{target_of(row)}]  next snapshot hashed "
                          f"{row['bytes_hashed']} B of {row['bytes_changed']} B changed  "
                          f"({time.perf_counter() - started:.0f} s)", flush=True)
    by = {(r["engine"], r["shape"]): r for r in rows}
    for engine in ("copy", "reflink-copy", "juicefs-clone"):
        flat, nested = by.get((engine, "flat")), by.get((engine, "nested"))
        if flat and nested:
            spread = max(flat["restore_s"], nested["restore_s"]) / \
                min(flat["restore_s"], nested["restore_s"])
            print(f"{engine:14} flat vs nested: {spread:.2f}x "
                  f"[<= 1.3x: {'met' if spread <= 1.3 else 'NOT met'}]")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    sys.exit(main())
