"""Scale benchmark (issue 5): history, reference resolution, restore and gc plan over
20,000 snapshots, and ``verify --all`` throughput per hash algorithm.

Run with ``tools/bench scale [--snapshots N] [--verify-mib N] [--repeat N] [--skip-verify]``.
To compare two trees on the same machine, run it twice with ``PYTHONPATH=<tree>``: the
jvs commands it times inherit that path.

The 20,000 snapshots are made cheaply: descriptors are written directly (with correct
checksums, via jvs.descriptor) over tiny payload dirs that share one manifest, one hour
apart, as one main lineage plus a removed worktree's branch (gc candidates). Every 100th
snapshot carries a tag ``t<i>``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VENV_BIN = Path(sys.executable).parent
JVS = str(VENV_BIN / "jvs")
HOUR_NS = 3600 * 1_000_000_000


def populate(root: Path, n: int, *, branch: int = 2000) -> list[str]:
    """Add *n* snapshots to the repository at *root* (main lineage of n - branch, plus a
    branch of *branch* snapshots of a worktree that no longer exists); returns main's IDs."""
    from jvs.descriptor import Descriptor
    from jvs.ids import new_snapshot_id, rfc3339_utc
    from jvs.integrity import compute_payload
    from jvs.repo import Repo
    from jvs.worktree import load_worktree_config, save_worktree_config

    repo = Repo(root)
    algo = repo.config().payload_hash_algo
    sample = root / ".jvs" / "bench-sample"
    sample.mkdir(exist_ok=True)
    (sample / "f.txt").write_text("tiny\n")
    manifest, digest = compute_payload(sample, algo)
    shutil.rmtree(sample)
    start = time.time_ns() - (n + 48) * HOUR_NS
    main_ids: list[str] = []
    parent = None
    branch_parent = None
    for i in range(n):
        ns = start + i * HOUR_NS
        sid = new_snapshot_id(ns)
        on_branch = i >= n - branch - 24 and i < n - 24 and branch > 0
        wt = "old" if on_branch else "main"
        par = (branch_parent or parent) if on_branch else parent
        desc = Descriptor(snapshot_id=sid, parent_id=par, worktree_name=wt,
                          created_at=rfc3339_utc(ns), note=f"bench snapshot {i}",
                          tags=(f"t{i}",) if i % 100 == 0 else (), engine="copy",
                          payload_hash_algo=algo, payload_root_hash=digest).sealed()
        payload = repo.payload_dir(sid)
        payload.mkdir()
        (payload / "f.txt").write_text("tiny\n")
        repo.manifest_path(sid).write_bytes(manifest)
        repo.descriptor_path(sid).write_bytes(desc.to_bytes())
        if on_branch:
            branch_parent = sid
        else:
            parent = sid
            main_ids.append(sid)
    wt = load_worktree_config(repo, "main")
    save_worktree_config(repo, wt.moved_to(main_ids[-1], new_latest=True))
    (root / "main" / "f.txt").write_text("tiny\n")
    return main_ids


CPU_SECONDS: dict[str, list[float]] = {}


def timed(cmd: list[str], cwd: Path, env: dict | None = None,
          ok_codes: tuple[int, ...] = (0,)) -> float:
    """Wall time; the child's CPU time (user + sys) is kept in CPU_SECONDS, because on a
    loaded 2-core machine wall time mostly measures the other processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})
    if proc.returncode not in ok_codes:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU_SECONDS.setdefault(" ".join(cmd[1:3])[:30], []).append(cpu)
    return wall


def median_of(cmd: list[str], cwd: Path, repeat: int, env: dict | None = None,
              ok_codes: tuple[int, ...] = (0,)) -> float:
    return statistics.median(timed(cmd, cwd, env, ok_codes) for _ in range(repeat))


def bench_scale(base: Path, n: int, repeat: int) -> list[tuple[str, float, str]]:
    subprocess.run([JVS, "init", "big"], cwd=base, check=True, stdout=subprocess.DEVNULL)
    root = base / "big"
    t0 = time.perf_counter()
    main_ids = populate(root, n)
    made = time.perf_counter() - t0
    os.sync()  # else writeback of the 80,000 new files competes with the timings below
    main = root / "main"
    rows = [(f"populate {n} snapshots (direct writes)", made, "")]
    (root / ".jvs" / "index.sqlite").unlink(missing_ok=True)
    rows.append(("history --json, no index (builds it)",
                 timed([JVS, "history", "--json"], main), ""))
    rows.append(("history --json (index warm)",
                 median_of([JVS, "history", "--json"], main, repeat), "target < 0.5 s"))
    rows.append(("history --all --json",
                 median_of([JVS, "history", "--all", "--json"], main, repeat), "target < 0.5 s"))
    rows.append(("history (human)", median_of([JVS, "history"], main, repeat), ""))
    tag = f"t{(len(main_ids) // 2) // 100 * 100}"
    rows.append((f"history --tag {tag}", median_of([JVS, "history", "--tag", tag], main, repeat),
                 ""))
    rows.append(("--version", median_of([JVS, "--version"], main, repeat), "target < 0.15 s"))
    # The resolve step of 'restore <tag>' alone, in a fresh process like a jvs command.
    resolve_only = [sys.executable, "-c",
                    "import sys; from pathlib import Path; from jvs.repo import Repo; from "
                    "jvs.resolve import resolve; resolve(Repo(Path(sys.argv[1])), sys.argv[2])",
                    str(root), tag]
    rows.append((f"resolve {tag} alone (python -c, process included)",
                 median_of(resolve_only, main, repeat), "target < 0.5 s"))
    back = len(main_ids) // 2
    rows.append((f"resolve HEAD~{back} via 'verify HEAD~{back}'",
                 median_of([JVS, "verify", f"HEAD~{back}"], main, repeat), ""))
    rows.append((f"resolve a tag ({tag}) via 'verify {tag}'",
                 median_of([JVS, "verify", tag], main, repeat), "includes hashing 1 tiny file"))
    rows.append(("resolve a note prefix ('bench snapshot 1999')",
                 median_of([JVS, "verify", "bench snapshot 1999"], main, repeat), ""))
    help_out = subprocess.run([JVS, "restore", "--help"], cwd=main, capture_output=True)
    if help_out.returncode == 0:
        # Alternate between two tags so that every restore really moves the worktree.
        other = f"t{int(tag[1:]) + 100}"
        times = [timed([JVS, "restore", t, "--discard-unsaved"], main)
                 for _ in range(repeat) for t in (tag, other)]
        rows.append((f"restore <tag> ({tag} / {other}, alternating)", statistics.median(times),
                     "tiny payload: resolution + protocol"))
    env = {"JVS_GC_NOW": ""}
    rows.append(("gc plan --keep-daily 7 --keep-tagged",
                 median_of([JVS, "gc", "plan", "--keep-daily", "7", "--keep-tagged"], main,
                           repeat, env), "target < 0.5 s"))
    doctor = [JVS, "--no-progress", "doctor"]
    rows.append(("doctor", median_of(doctor, main, repeat, ok_codes=(0, 1)),
                 "reads and checks every descriptor"))
    rows.append(("doctor --strict", timed([*doctor, "--strict"], main, ok_codes=(0, 1)),
                 "also hashes every payload (1 run)"))
    return rows


def make_payload(root: Path, mib: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(1 << 20)
    files = 64
    per = max(1, mib // files)
    for i in range(files):
        with open(root / f"f{i:02d}.bin", "wb") as f:
            for _ in range(per):
                f.write(chunk)


def bench_verify(base: Path, mib: int, repeat: int) -> list[tuple[str, float, str]]:
    rows = []
    for algo in ("xxh3-128", "sha256"):
        name = f"v-{algo.replace('-', '')}"
        subprocess.run([JVS, "init", name, "--hash-algo", algo], cwd=base, check=True,
                       stdout=subprocess.DEVNULL)
        main = base / name / "main"
        make_payload(main, mib)
        subprocess.run([JVS, "snapshot", "big"], cwd=main, check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ,
                                                       "JVS_SNAPSHOT_ENGINE": "copy"})
        size = sum(p.stat().st_size for p in main.iterdir())
        secs = median_of([JVS, "verify", "--all"], main, repeat)
        rows.append((f"verify --all, {size / 2**30:.2f} GiB, {algo} (warm)", secs,
                     f"{size / secs / 1e9:.2f} GB/s"))
    return rows


def main() -> None:
    # Start-up is part of what is measured: jvs compiles its bytecode once, as an
    # installed jvs has it (some environments set PYTHONDONTWRITEBYTECODE).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=20_000)
    parser.add_argument("--verify-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="jvs-bench-scale-") as tmp:
        base = Path(tmp)
        rows = bench_scale(base, args.snapshots, args.repeat)
        shutil.rmtree(base / "big")
        if not args.skip_verify:
            rows += bench_verify(base, args.verify_mib, args.repeat)
    width = max(len(r[0]) for r in rows)
    for label, secs, note in rows:
        print(f"{label:<{width}}  {secs:8.3f} s  {note}")
    print("median CPU time (user+sys) per command, all runs:")
    for key, values in CPU_SECONDS.items():
        print(f"  jvs {key:<30} {statistics.median(values):6.3f} s  ({len(values)} runs)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
