"""Cluster benchmark (issue 7): jvs on a JuiceFS volume shared by two hosts through Redis.

Run with `tools/bench cluster [--files N] [--mib N] [--repeat N] [--rounds N]`.

Builds the two-host cluster of tests/cluster.py (one Redis, one volume, two JuiceFS client
sessions with their own hostnames) plus a sqlite-backed volume holding the same tree, and
prints:

- snapshot (one file changed) and restore latency on the Redis volume and on the sqlite
  one, next to a bare `juicefs clone -p` of the same tree on each;
- how long host B takes to see a snapshot host A just made (the descriptor on B's mount,
  and B's first successful `jvs history --tag`);
- how long after a host dies holding the repository lock another host's snapshot gets
  through (session expiry: 5 heartbeats, then a live client's clean-up);
- throughput (runs per minute) of the agent loop of the seeds (restore the baseline, work,
  snapshot) with 1, 2, 4 and 8 workers (--workers) split over the two hosts, each in its
  own worktree, and of a snapshot loop where every worker snapshots the same worktree (one lock).
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

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))

from cluster import JUICEFS, Cluster, Host, format_volume, unavailable  # noqa: E402


def fill_tree(root: Path, files: int, mib: int) -> None:
    size = max(1, (mib << 20) // files)
    block = os.urandom(size)
    for i in range(files):
        d = root / "data" / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.bin").write_bytes(block[: size - 8] + i.to_bytes(8, "little"))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def med(values: list[float]) -> float:
    return statistics.median(values)


def has_command(host: Host, *words: str) -> bool:
    return host.jvs(*words, "--help", check=False).returncode == 0


def bare_clone(host: Host, src: Path, repeat: int) -> float:
    times = []
    for i in range(repeat):
        dst = src.parent / f"bare-clone-{i}"
        times.append(timed(lambda dst=dst: subprocess.run(
            [str(JUICEFS), "clone", "-p", str(src), str(dst)], check=True,
            capture_output=True)))
        subprocess.run([str(JUICEFS), "rmr", str(dst)], capture_output=True)
    return med(times)


def snapshot_and_restore(host: Host, repo: str, repeat: int) -> dict[str, float | str]:
    main = host.path(f"{repo}/main")
    out = host.jvs("snapshot", "base", "--json", cwd=main).json  # warms the stat cache
    engine = out["engine"]
    time.sleep(0.3)  # out of the racily-clean window, as a real user's next snapshot is
    host.jvs("snapshot", "warm", cwd=main)
    snaps = []
    for i in range(repeat):
        (main / "data" / "d000" / "f00000.bin").write_bytes(os.urandom(4096) + bytes([i]))
        snaps.append(timed(lambda i=i: host.jvs("snapshot", f"one changed {i}", cwd=main)))
    row: dict[str, float | str] = {"engine": engine, "snapshot": med(snaps)}
    if has_command(host, "restore"):
        restores = []
        for i in range(repeat):
            ref = "HEAD~1" if i % 2 == 0 else "latest-of-main"
            if ref == "latest-of-main":
                hist = host.jvs("history", "--json", cwd=main).json
                ref = hist["latest_snapshot_id"]
            restores.append(timed(lambda ref=ref: host.jvs("restore", ref, cwd=main)))
        row["restore"] = med(restores)
    return row


def dead_host_recovery(work: Path, heartbeat: str) -> float:
    """Seconds from host C's death (mid-snapshot, holding the lock) until host B's waiting
    `jvs snapshot` completes, all clients mounted with *heartbeat*."""
    with Cluster(work / f"dead-{heartbeat}", heartbeat=heartbeat) as c:
        a, b = c["hostA"], c["hostB"]
        cc = c.add_host("hostC")
        a.jvs("init", "r", cwd=a.mountpoint)
        (a.path("r/main") / "x.txt").write_text("x\n")
        doomed = cc.start_jvs("snapshot", "dies", cwd=cc.path("r/main"),
                              env={"JVS_TEST_PAUSE_AT": "snapshot:after_materialise"})
        if not any("paused at" in line for line in doomed.stderr):
            raise RuntimeError("host C did not reach its pause point")
        cc.kill()
        start = time.perf_counter()
        doomed.kill()
        doomed.communicate()
        b.jvs("snapshot", "after C died", cwd=b.path("r/main"),
              env={"JVS_LOCK_TIMEOUT": "600"}, timeout=700)
        return time.perf_counter() - start


def view_visibility(a: Host, b: Host, repo: str, repeat: int, view: Path) -> float:
    """Seconds from A's `jvs snapshot` returning until B's `jvs mount` view serves it."""
    times = []
    main_a = a.path(f"{repo}/main")
    b.jvs("-C", str(b.path(f"{repo}/main")), "mount", str(view))
    try:
        for i in range(repeat):
            (main_a / "view.txt").write_text(f"{i}\n")
            sid = a.jvs("snapshot", f"view {i}", "--json", cwd=main_a).json["snapshot_id"]
            t0 = time.perf_counter()
            while not (view / "@snapshots" / sid / "view.txt").exists():
                time.sleep(0.002)
            times.append(time.perf_counter() - t0)
    finally:
        b.jvs("umount", str(view), check=False)
    return med(times)


def visibility(a: Host, b: Host, repo: str, repeat: int) -> tuple[float, float]:
    """Seconds from A's `jvs snapshot` returning until B's mount shows the descriptor,
    and until B's `jvs history --tag` first lists it (each a median)."""
    fs_times, cli_times = [], []
    main_a = a.path(f"{repo}/main")
    for i in range(repeat):
        (main_a / "vis.txt").write_text(f"{i}\n")
        sid = a.jvs("snapshot", f"vis {i}", "--tag", f"vis-{i}", "--json",
                    cwd=main_a).json["snapshot_id"]
        t0 = time.perf_counter()
        descriptor = b.path(f"{repo}/.jvs/descriptors/{sid}.json")
        while not descriptor.exists():
            time.sleep(0.002)
        fs_times.append(time.perf_counter() - t0)
        (main_a / "vis.txt").write_text(f"{i}b\n")
        sid = a.jvs("snapshot", f"vis {i}b", "--tag", f"visb-{i}", "--json",
                    cwd=main_a).json["snapshot_id"]
        t0 = time.perf_counter()
        while True:
            out = b.jvs("history", "--all", "--json", "--tag", f"visb-{i}",
                        cwd=b.path(f"{repo}/main")).json
            if any(s["snapshot_id"] == sid for s in out["snapshots"]):
                break
        cli_times.append(time.perf_counter() - t0)
    return med(fs_times), med(cli_times)


AGENT_SCRIPT = """
cd "$(jvs worktree path {wt})"
for r in $(seq 1 {rounds}); do
    jvs restore agent-env
    mkdir -p output
    head -c 65536 /dev/urandom > output/result.bin
    jvs snapshot "Agent run {wt}.$r" --tag agent
done
"""

SNAPSHOT_LOOP = """
for r in $(seq 1 {rounds}); do
    head -c 65536 /dev/urandom > w{i}-$r.bin
    jvs snapshot "loop {i}.$r"
done
"""


def run_workers(hosts: list[Host], scripts: list[tuple[Host, str, Path]]) -> float:
    env = {"JVS_LOCK_TIMEOUT": "300"}
    start = time.perf_counter()
    procs = [h.start_sh(s, cwd=cwd, env=env) for h, s, cwd in scripts]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err)
    return time.perf_counter() - start


def agent_loop(c: Cluster, repo: str, workers: int, rounds: int) -> float:
    hosts = [c["hostA"], c["hostB"]]
    for i in range(workers):
        h = hosts[i % 2]
        h.jvs("worktree", "fork", "agent-env", f"w{workers}-{i}", cwd=h.path(f"{repo}/main"))
    scripts = [(hosts[i % 2], AGENT_SCRIPT.format(wt=f"w{workers}-{i}", rounds=rounds),
                hosts[i % 2].path(f"{repo}/main")) for i in range(workers)]
    elapsed = run_workers(hosts, scripts)
    return workers * rounds / elapsed * 60


def snapshot_loop(c: Cluster, repo: str, workers: int, rounds: int) -> float:
    hosts = [c["hostA"], c["hostB"]]
    scripts = [(hosts[i % 2], SNAPSHOT_LOOP.format(i=f"{workers}-{i}", rounds=rounds),
                hosts[i % 2].path(f"{repo}/main")) for i in range(workers)]
    elapsed = run_workers(hosts, scripts)
    return workers * rounds / elapsed * 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=256, help="size of the tree (MiB)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="agent-loop rounds per worker")
    parser.add_argument("--workers", default="1,2,4,8",
                        help="comma-separated worker counts for the agent and snapshot loops")
    parser.add_argument("--mount-option", action="append", default=[],
                        help="extra `juicefs mount` option for every host, e.g. "
                             "--mount-option=--entry-cache=0 (repeatable)")
    parser.add_argument("--dead-host-heartbeat", action="append", default=None,
                        help="JuiceFS --heartbeat values for the dead-host measurement "
                             "(repeatable; default 1s; JuiceFS's own default is 12s)")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"cluster benchmark skipped: {reason}")
        return 0

    work = Path(tempfile.mkdtemp(prefix="jvs-bench-cluster-"))
    rows: list[tuple[str, str]] = []
    try:
        options = tuple(args.mount_option)
        with Cluster(work / "redis", mount_options=options) as c:
            a, b = c["hostA"], c["hostB"]
            sqlite_host = Host(name="hostS", meta_url=f"sqlite3://{work}/meta.db",
                               mountpoint=work / "mnt-sqlite", cache_dir=work / "cache-s",
                               log=work / "juicefs-sqlite.log", mount_options=options)
            format_volume(sqlite_host.meta_url, work / "bucket-sqlite")
            sqlite_host.mount()
            c.hosts["hostS"] = sqlite_host  # unmounted with the cluster
            print(f"tree: {args.files} files, {args.mib} MiB; median of {args.repeat}; "
                  f"mount options: {' '.join(options) or 'defaults'}", flush=True)

            for label, host in (("redis", a), ("sqlite", sqlite_host)):
                host.jvs("init", "bench", cwd=host.mountpoint)
                fill_tree(host.path("bench/main"), args.files, args.mib)
                clone = bare_clone(host, host.path("bench/main"), args.repeat)
                row = snapshot_and_restore(host, "bench", args.repeat)
                rows.append((f"{label}: bare juicefs clone -p", f"{clone:.3f} s"))
                rows.append((f"{label}: jvs snapshot, 1 file changed ({row['engine']})",
                             f"{row['snapshot']:.3f} s"))
                if "restore" in row:
                    rows.append((f"{label}: jvs restore", f"{row['restore']:.3f} s"))
                else:
                    rows.append((f"{label}: jvs restore", "n/a (no jvs restore yet)"))
                print(*rows[-3:], sep="\n", flush=True)

            a.jvs("init", "vis", cwd=a.mountpoint)
            fs_vis, cli_vis = visibility(a, b, "vis", args.repeat)
            rows.append(("B sees A's snapshot: descriptor on B's mount", f"{fs_vis:.3f} s"))
            rows.append(("B sees A's snapshot: first `jvs history --tag` listing it",
                         f"{cli_vis:.3f} s"))
            print(*rows[-2:], sep="\n", flush=True)
            if has_command(b, "mount"):
                (work / "view").mkdir()
                took = view_visibility(a, b, "vis", args.repeat, work / "view")
                rows.append(("B sees A's snapshot: in B's `jvs mount` view", f"{took:.3f} s"))
                print(rows[-1], flush=True)

            counts = [int(w) for w in args.workers.split(",")]
            for workers in counts:
                repo = f"loop{workers}"
                a.jvs("init", repo, cwd=a.mountpoint)
                (a.path(f"{repo}/main") / "seed.txt").write_text("seed\n")
                a.jvs("snapshot", "seed", cwd=a.path(f"{repo}/main"))
                rpm = snapshot_loop(c, repo, workers, args.rounds)
                rows.append((f"snapshot loop, one worktree, {workers} worker(s)",
                             f"{rpm:.0f} runs/min"))
                print(rows[-1], flush=True)

            for heartbeat in args.dead_host_heartbeat or ["1s"]:
                took = dead_host_recovery(work, heartbeat)
                rows.append((f"dead host's lock released (--heartbeat {heartbeat}), "
                             "B's snapshot done", f"{took:.1f} s"))
                print(rows[-1], flush=True)

            if all(has_command(a, *w) for w in (("restore",), ("worktree", "fork"))):
                one = None
                for workers in counts:
                    repo = f"agent{workers}"
                    a.jvs("init", repo, cwd=a.mountpoint)
                    env_dir = a.path(f"{repo}/main/code")
                    env_dir.mkdir()
                    (env_dir / "agent.py").write_text("print('agent')\n")
                    a.jvs("snapshot", "env", "--tag", "agent-env", cwd=a.path(f"{repo}/main"))
                    rpm = agent_loop(c, repo, workers, args.rounds)
                    one = one or rpm
                    rows.append((f"agent loop over 2 hosts, {workers} worker(s)",
                                 f"{rpm:.0f} runs/min ({rpm / one:.2f} x one worker)"))
                    print(rows[-1], flush=True)
            else:
                rows.append(("agent loop over 2 hosts", "n/a (needs restore, worktree fork)"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    sys.exit(main())
