"""Scale benchmark.

Snapshot-count axis (issue 5): history, reference resolution, restore and gc plan over
20,000 snapshots, and ``verify --all`` throughput per hash algorithm. Run with
``tools/bench scale [--snapshots N] [--verify-mib N] [--repeat N] [--skip-verify]``.

File-count axis (issue 16): ``tools/bench scale --files 10000 100000 [--series 10000]
[--juicefs 10000]``: over N files of 1 KiB in N/200 directories, snapshot with one file
changed, unchanged snapshot, status, restore of one changed file and verify, each with
wall time, CPU and the peak RSS of that command (its own rusage), beside the floors
(``cp -al`` of the tree, a ``find -printf`` stat walk) and their ratios; ``--series``
measures manifest bytes per entry over 100 snapshots with 1% of the files changing;
``--juicefs`` runs the same on a JuiceFS volume beside a bare ``juicefs clone -p``.
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
import random
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


# ------------------------------------------------------------------ file-count axis (issue 16)

def child_run(cmd: list[str], cwd: Path, env: dict | None = None,
              ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float, float]:
    """(wall s, cpu s, peak RSS MiB) of one command, from the kernel's rusage of that
    child alone (os.wait4), so a figure is not the maximum over earlier children."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok_codes:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def fill_files(root: Path, n: int, per_dir: int = 200) -> None:
    """*n* files of 1 KiB, *per_dir* to a directory (100,000 → 500 directories)."""
    block = os.urandom(1024 - 8)
    for i in range(n):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        with open(d / f"f{i:07d}.bin", "wb") as f:
            f.write(block + i.to_bytes(8, "little"))


def touch_one(main: Path, i: int) -> None:
    """Change one file's content (and so its stat)."""
    (main / "d0000" / "f0000000.bin").write_bytes(os.urandom(1024 - 8) + i.to_bytes(8, "little"))


def floors(main: Path, scratch: Path, repeat: int) -> dict[str, float]:
    """The floors the issue compares with: ``cp -al`` of the tree and a ``find`` stat walk."""
    cp, walk = [], []
    for i in range(repeat):
        dst = scratch / f"cp-al-{i}"
        cp.append(child_run(["cp", "-al", str(main), str(dst)], scratch)[0])
        shutil.rmtree(dst)
        walk.append(child_run(["find", str(main), "-printf", "%s %T@ %C@ %i %m %p\n"],
                              scratch)[0])
    return {"cp -al": statistics.median(cp), "stat walk": statistics.median(walk)}


def bench_files(base: Path, n: int, repeat: int, engine: str = "copy",
                label: str = "local disk") -> list[tuple[str, str]]:
    """Snapshot (one change, unchanged), status, restore of one changed file and verify
    over *n* files of 1 KiB, each with wall time, CPU and peak RSS (medians)."""
    env = {"JVS_SNAPSHOT_ENGINE": engine}
    subprocess.run([JVS, "init", f"files{n}"], cwd=base, check=True, stdout=subprocess.DEVNULL)
    root = base / f"files{n}"
    main = root / "main"
    t0 = time.perf_counter()
    fill_files(main, n)
    os.sync()
    rows: list[tuple[str, str]] = []

    def add(name: str, figures: str) -> None:
        """A row, printed at once: a million-file run takes a quarter of an hour."""
        rows.append((name, figures))
        print(f"{name:<58} {figures}", flush=True)

    add(f"[{label} {n}] fill {n} files of 1 KiB", f"{time.perf_counter() - t0:.2f} s")
    floor = floors(main, base, repeat) if engine == "copy" else {}
    first = child_run([JVS, "snapshot", "first"], main, env)
    add(f"[{label} {n}] first snapshot (hashes all)",
        f"{first[0]:.2f} s  cpu {first[1]:.2f} s  rss {first[2]:.0f} MiB")
    time.sleep(0.3)  # out of the racily-clean window, as a user's next command is

    def series(name: str, make_cmd, before=None, ok=(0,)) -> tuple[float, float, float]:
        runs = []
        for i in range(repeat):
            if before:
                before(i)
            runs.append(child_run(make_cmd(i), main, env, ok))
        wall, cpu, rss = (statistics.median(r[k] for r in runs) for k in range(3))
        add(f"[{label} {n}] {name}",
            f"{wall:.3f} s  cpu {cpu:.3f} s  rss {rss:.0f} MiB")
        return wall, cpu, rss

    def change(i: int) -> None:
        touch_one(main, 1000 + i)
        time.sleep(0.3)

    snap1 = series("snapshot, 1 file changed", lambda i: [JVS, "snapshot", f"one {i}"], change)
    unchanged = series("snapshot, unchanged", lambda i: [JVS, "snapshot", f"same {i}"])
    status = series("status (clean)", lambda i: [JVS, "status"])
    touch_one(main, 7)
    time.sleep(0.3)
    status_dirty = series("status (1 file changed)", lambda i: [JVS, "status"], ok=(0, 1))
    subprocess.run([JVS, "snapshot", "pre-restore"], cwd=main, check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, **env})
    # Alternate between the last two snapshots, which differ in one file.
    restore = series("restore, 1 file differs",
                     lambda i: [JVS, "restore", "HEAD~1" if i % 2 == 0 else "pre-restore"])
    verify = series("verify HEAD", lambda i: [JVS, "verify"])
    manifests = sorted((root / ".jvs" / "manifests").iterdir(), key=lambda p: p.name)
    size = manifests[-1].stat().st_size
    add(f"[{label} {n}] manifest of one snapshot",
        f"{size} bytes, {size / (n + n // 200):.1f} bytes/entry")
    if floor:
        base_floor = floor["cp -al"] + floor["stat walk"]
        add(f"[{label} {n}] floors: cp -al {floor['cp -al']:.3f} s, "
            f"stat walk {floor['stat walk']:.3f} s", "")
        add(f"[{label} {n}] ratios", (
            f"snapshot/(cp -al + walk) {snap1[0] / base_floor:.2f} (target 2), "
            f"unchanged {unchanged[0] / base_floor:.2f}, "
            f"status/walk {status[0] / floor['stat walk']:.2f} (target 3), "
            f"dirty status/walk {status_dirty[0] / floor['stat walk']:.2f}"))
    del restore, verify
    shutil.rmtree(root)
    return rows


def bench_manifest_series(base: Path, n: int, snapshots: int,
                          change_percent: float) -> list[tuple[str, str]]:
    """Manifest bytes per entry per snapshot over *snapshots* snapshots of *n* files with
    *change_percent* % of the files changed between two snapshots."""
    subprocess.run([JVS, "init", "series"], cwd=base, check=True, stdout=subprocess.DEVNULL)
    root = base / "series"
    main = root / "main"
    fill_files(main, n)
    files = sorted(main.rglob("*.bin"))
    per = max(1, int(n * change_percent / 100))
    rng = random.Random(16)
    env = {**os.environ, "JVS_SNAPSHOT_ENGINE": "copy"}
    for s in range(snapshots):
        if s:
            for path in rng.sample(files, per):
                path.write_bytes(os.urandom(1024))
        subprocess.run([JVS, "snapshot", f"s{s}"], cwd=main, check=True,
                       stdout=subprocess.DEVNULL, env=env)
    total = sum(p.stat().st_size for p in (root / ".jvs" / "manifests").rglob("*")
                if p.is_file())
    entries = n + n // 200
    shutil.rmtree(root)
    return [(f"[series] {snapshots} snapshots of {n} files, {change_percent}% changed each",
             f"manifests {total} bytes: {total / (entries * snapshots):.1f} bytes/entry/snapshot"
             " (target 20)")]


def bench_files_juicefs(n: int, repeat: int) -> list[tuple[str, str]]:
    """The same operations on a JuiceFS volume (sqlite metadata) with the juicefs-clone
    engine, beside a bare ``juicefs clone -p`` of the tree."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from cluster import JUICEFS, Host, format_volume, unavailable

    why = unavailable()
    if why:
        return [(f"[juicefs {n}] skipped", why)]
    work = Path(tempfile.mkdtemp(prefix="jvs-bench-files-jfs-"))
    host = Host(name="hostS", meta_url=f"sqlite3://{work}/meta.db", mountpoint=work / "mnt",
                cache_dir=work / "cache", log=work / "juicefs.log")
    try:
        format_volume(host.meta_url, work / "bucket")
        host.mount()
        rows = bench_files(host.mountpoint, n, repeat, "juicefs-clone", "juicefs")
        src = host.mountpoint / "bare-src"
        fill_files(src, n)
        clones = []
        for i in range(repeat):
            dst = host.mountpoint / f"bare-{i}"
            clones.append(child_run([str(JUICEFS), "clone", "-p", str(src), str(dst)],
                                    host.mountpoint)[0])
        rows.append((f"[juicefs {n}] bare juicefs clone -p", f"{statistics.median(clones):.3f} s"
                     " (target: snapshot <= 1.3x)"))
        return rows
    finally:
        host.umount()
        shutil.rmtree(work, ignore_errors=True)


def files_main(args) -> None:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="jvs-bench-files-", dir=args.dir) as tmp:
        for n in args.files:
            print(f"load average: {os.getloadavg()}", flush=True)
            rows += bench_files(Path(tmp), n, args.repeat)
        if args.series:
            rows += bench_manifest_series(Path(tmp), args.series, 100, 1.0)
            print(*rows[-1], flush=True)
    for n in args.juicefs:
        rows += bench_files_juicefs(n, args.repeat)
    print("== summary ==")
    for a, b in rows:
        print(f"{a:<58} {b}")
    print(f"load average after: {os.getloadavg()}")


def main() -> None:
    # Start-up is part of what is measured: jvs compiles its bytecode once, as an
    # installed jvs has it (some environments set PYTHONDONTWRITEBYTECODE).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=20_000)
    parser.add_argument("--verify-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--files", type=int, nargs="*", default=[],
                        help="file-count axis (issue 16): e.g. --files 10000 100000")
    parser.add_argument("--series", type=int, default=0,
                        help="manifest bytes over 100 snapshots of this many files, 1%% changed")
    parser.add_argument("--juicefs", type=int, nargs="*", default=[],
                        help="file counts to run on a JuiceFS volume (sqlite metadata)")
    parser.add_argument("--dir", default=None, help="where the local trees go (default: /tmp)")
    args = parser.parse_args()
    if args.files or args.series or args.juicefs:
        files_main(args)
        return
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
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    main()
