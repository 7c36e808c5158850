"""A two-host JuiceFS cluster on one machine, for tests/test_cluster.py and tools/bench_cluster.py.

One Redis server (metadata) and one ``file`` bucket (objects) make one JuiceFS volume. Each
"host" is a separate ``juicefs mount -d`` process with its own mount point and its own
``--cache-dir``: a separate JuiceFS client session, exactly as a second machine would have.

What makes the hosts distinguishable to jvs is the hostname: the repository lock and the
intents record ``socket.gethostname()``, and the stat cache lives under
``.jvs/cache/<hostname>/``. Every command of a host (its ``juicefs mount`` and every jvs it
runs) starts in its own UTS namespace whose hostname is the host's name::

    unshare --uts sh -c 'hostname "$0"; exec "$@"' hostB python -m jvs snapshot ...

The mount namespace stays shared (both mounts are visible to the test), the processes and
pids stay real, and nothing in jvs knows it is being tested. This needs root (or
CAP_SYS_ADMIN) for ``unshare --uts``; ``Cluster.unavailable()`` says why it cannot run.

A short ``--heartbeat`` (1 s) makes a killed client's session expire after 5 heartbeats, at
which point a live client of the volume cleans it and releases its locks (flock included);
see docs/cluster.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from volumes import JUICEFS, RedisServer, format_volume, free_port  # noqa: E402, F401

from conftest import ROOT, Result  # noqa: E402  (shared with every CLI test)
from jvs.mountinfo import mount_at  # noqa: E402


def in_host(hostname: str, argv: list[str]) -> list[str]:
    """*argv* run in a fresh UTS namespace whose hostname is *hostname*."""
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]


def unavailable() -> str | None:
    """Why a cluster cannot be built here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (tools/setup installs it)"
    if not JUICEFS.exists():
        return f"no juicefs binary at {JUICEFS}"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    probe = subprocess.run(in_host("jvs-probe", ["hostname"]), capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "jvs-probe":
        return f"cannot set a hostname in a UTS namespace (needs root): {probe.stderr.strip()}"
    return None


def mount_pids(mountpoint: Path) -> list[int]:
    """Pids of the ``juicefs mount`` processes (supervisor and child) serving *mountpoint*."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The daemon rewrites its argv into one space-separated string.
            words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
        except OSError:
            continue
        if len(words) > 2 and words[0].endswith(b"juicefs") and words[1] == b"mount" \
                and str(mountpoint).encode() in words:
            pids.append(int(entry.name))
    return pids


def is_mounted(mountpoint: Path) -> bool:
    return mount_at(mountpoint, resolve=False) is not None


@dataclass
class Host:
    """One JuiceFS client of the volume, with its own hostname, as one machine would be."""

    name: str
    meta_url: str
    mountpoint: Path
    cache_dir: Path
    log: Path
    heartbeat: str = "1s"
    mount_options: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def mount(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        argv = [str(JUICEFS), "mount", "-d", self.meta_url, str(self.mountpoint),
                "--cache-dir", str(self.cache_dir), "--log", str(self.log),
                "--heartbeat", self.heartbeat, "--no-usage-report", *self.mount_options]
        proc = subprocess.run(in_host(self.name, argv), capture_output=True, text=True)
        if proc.returncode != 0 or not is_mounted(self.mountpoint):
            raise RuntimeError(f"juicefs mount for {self.name} failed: {proc.stderr}")

    def umount(self) -> None:
        if is_mounted(self.mountpoint):
            done = subprocess.run([str(JUICEFS), "umount", str(self.mountpoint)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
        # A supervisor may outlive a lazy unmount; a host that is gone has no processes left.
        for pid in mount_pids(self.mountpoint):
            _kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """The host dies: its JuiceFS client vanishes without closing its session, which
        stays in Redis, holding its locks, until it expires.

        ``juicefs mount -d`` runs a supervisor that restarts a dead client, and a client
        whose supervisor dies exits cleanly (closing its session, releasing its locks,
        which a dead host never does). So freeze them all first, then SIGKILL them."""
        pids = mount_pids(self.mountpoint)
        for pid in pids:
            _kill(pid, signal.SIGSTOP)
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while mount_pids(self.mountpoint) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The kernel keeps the dead FUSE connection mounted; detach it like a reboot would.
        subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)

    def freeze(self) -> None:
        """The host is cut off from the metadata engine: its client stops heartbeating,
        and every file operation on its mount waits, until ``thaw()``."""
        for pid in mount_pids(self.mountpoint):
            _kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in mount_pids(self.mountpoint):
            _kill(pid, signal.SIGCONT)

    def argv(self, *args: str) -> list[str]:
        return in_host(self.name, [sys.executable, "-m", "jvs", *args])

    def full_env(self, env: dict | None = None) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **self.env,
                **(env or {})}

    def jvs(self, *args: str, cwd: Path | str | None = None, env: dict | None = None,
            check: bool = True, timeout: float = 120, input: str | None = None) -> Result:
        """Run the real jvs CLI on this host."""
        proc = subprocess.run(self.argv(*args), cwd=cwd, input=input, capture_output=True,
                              text=True, env=self.full_env(env), timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"[{self.name}] jvs {' '.join(args)} failed "
                                 f"({proc.returncode}):\nstdout: {proc.stdout}\n"
                                 f"stderr: {proc.stderr}")
        return result

    def start_jvs(self, *args: str, cwd: Path | str | None = None,
                  env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), cwd=cwd, env=self.full_env(env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def start_sh(self, script: str, cwd: Path | str | None = None,
                 env: dict | None = None) -> subprocess.Popen:
        """A shell script on this host with ``jvs`` on PATH, as a user's loop would run."""
        full = self.full_env(env)
        full["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full.get("PATH", "")
        return subprocess.Popen(in_host(self.name, ["sh", "-ec", script]), cwd=cwd, env=full,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def path(self, rel: str | Path) -> Path:
        """*rel* (a path inside the volume) as this host sees it."""
        return self.mountpoint / rel


class Cluster:
    """Redis + one JuiceFS volume + named hosts mounting it. Use as a context manager."""

    def __init__(self, workdir: Path, hosts: tuple[str, ...] = ("hostA", "hostB"),
                 heartbeat: str = "1s", mount_options: tuple[str, ...] = (),
                 trash_days: int = 1) -> None:
        self.workdir = workdir
        self.trash_days = trash_days
        self.heartbeat = heartbeat
        self.mount_options = mount_options
        self.host_names = hosts
        self.redis: RedisServer | None = None
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.redis = RedisServer(self.workdir)
            self.meta_url = self.redis.url(1)
            format_volume(self.meta_url, self.workdir / f"bucket-{self.redis.port}",
                          trash_days=self.trash_days)
            for name in self.host_names:
                self.add_host(name)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def add_host(self, name: str, **options) -> Host:
        host = Host(name=name, meta_url=self.meta_url,
                    mountpoint=self.workdir / f"mnt-{name}",
                    cache_dir=self.workdir / f"cache-{name}",
                    log=self.workdir / f"juicefs-{name}.log",
                    heartbeat=options.pop("heartbeat", self.heartbeat),
                    mount_options=options.pop("mount_options", self.mount_options),
                    **options)
        host.mount()
        self.hosts[name] = host
        return host

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def sessions(self) -> list[dict]:
        """The volume's live client sessions, as ``juicefs status`` lists them."""
        out = subprocess.run([str(JUICEFS), "status", self.meta_url], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out).get("Sessions") or []

    def __exit__(self, *exc) -> None:
        for host in self.hosts.values():
            host.umount()
        if self.redis is not None:
            self.redis.stop()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
