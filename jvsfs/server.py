"""Mounting, serving and unmounting the view (SPEC §11).

The handshake follows ``borg mount``: the mount is made in the parent, so a mount that
fails (bad mountpoint, no /dev/fuse) is reported by the command the user ran; then the
process forks, the child becomes the server and tells the parent through a pipe once its
trio loop runs, and only then does ``jvs mount`` return 0. ``--foreground`` skips the fork
and tells systemd ``READY=1`` instead (Type=notify).

No repository lock is held: the view only reads, and snapshots, restores and gc carry on
while it is mounted (collected snapshots vanish from it).

This module imports trio and pyfuse3 only inside the functions that serve, so the checks
and ``umount`` stay cheap.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jvs.errors import JvsError
from jvs.mountinfo import fstype_at
from jvs.repo import Repo

FSTYPE = "fuse.jvs"
MOUNT_OPTIONS = ("ro", "fsname=jvs", "subtype=jvs", "noatime", "auto_unmount")
READY_TIMEOUT = 30.0


# ------------------------------------------------------------------ mount table

def mounted_fstype(mountpoint: Path | str) -> str | None:
    """The fstype of the mount exactly at *mountpoint* (``jvs.mountinfo``)."""
    return fstype_at(mountpoint)


def _is_stale(mountpoint: Path) -> bool:
    try:
        os.stat(mountpoint)
    except OSError as exc:
        return exc.errno in (107, 5)  # ENOTCONN, EIO: a server that died
    return False


# ------------------------------------------------------------------ checks

def check_mountpoint(repo: Repo, mountpoint: Path) -> Path:
    """The absolute mountpoint, or a clear error: missing, not a directory, already a
    mount, inside the repository or containing it (a view inside the repo would put all
    of history under every ``grep -r`` of a worktree, and clones could deadlock)."""
    path = Path(os.path.abspath(mountpoint))
    if mounted_fstype(path) is not None or _is_stale(path):
        raise JvsError("E_BUSY", f"{path} is already a mount point",
                       hint=f"unmount it first: jvs umount {path}")
    # Where it is comes first: a missing mount point inside the repository must not be
    # met with "create it", which would then be refused.
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(repo.root))
    if real == root or root in real.parents:
        raise JvsError("E_USAGE", f"mount point {path} is inside the repository {root}",
                       hint="mount the view outside the repository, e.g. ~/jvs-view")
    if real in root.parents:
        raise JvsError("E_USAGE", f"mount point {path} contains the repository {root}",
                       hint="mount the view on an empty directory outside the repository")
    if not os.path.lexists(path):
        raise JvsError("E_NOT_FOUND", f"mount point {path} does not exist",
                       hint=f"create it: mkdir -p {path}")
    if not path.is_dir():
        raise JvsError("E_USAGE", f"mount point {path} is not a directory",
                       hint="the view is mounted on a directory (an empty one)")
    return path


def mount_options(allow_other: bool) -> set[str]:
    import pyfuse3

    options = set(pyfuse3.default_options) | set(MOUNT_OPTIONS)
    if allow_other:
        # Other users see the view only through the kernel's permission checks, never ours.
        options |= {"allow_other", "default_permissions"}
    return options


def reads_in_threads(repo: Repo) -> bool:
    """Read in worker threads on JuiceFS (an object fetch can take long and must not stall
    every other request); inline on local disks, where the thread hop costs more than
    a read from the page cache (see tools/bench_mount.py)."""
    forced = os.environ.get("JVS_MOUNT_READ_THREADS")
    if forced is not None:
        return forced not in ("", "0", "no")
    try:
        from jvs.engines.juicefs import juicefs_mount_of

        return juicefs_mount_of(repo.root) is not None
    except Exception:
        return False


# ------------------------------------------------------------------ serving

@dataclass(frozen=True)
class Mounted:
    """``jvs mount``: the view of *repo_root* at *mountpoint*, served by process *pid*."""

    mountpoint: Path
    repo_root: Path
    pid: int

    def to_json(self) -> dict:
        return {"mountpoint": str(self.mountpoint), "repo": str(self.repo_root),
                "pid": self.pid}


def mount(repo: Repo, mountpoint: Path, *, foreground: bool = False,
          allow_other: bool = False, xattrs: bool = True, on_serving=None) -> Mounted:
    """Mount the view of *repo* at *mountpoint*. Returns once the mount is live
    (background; ``pid`` is the server's), or after it is unmounted (foreground; ``pid``
    is this process). *on_serving* is called once the mount is made, before serving in
    the foreground."""
    path = check_mountpoint(repo, mountpoint)
    if not os.path.exists("/dev/fuse"):
        raise JvsError("E_IO", "FUSE is not available (/dev/fuse is missing)",
                       hint="load the module (modprobe fuse) and install fuse3; in a "
                            "container, pass the device: --device /dev/fuse "
                            "--cap-add SYS_ADMIN")
    try:
        import pyfuse3
        import trio  # noqa: F401 - the server needs both; fail here, before mounting
    except ImportError as exc:
        raise JvsError("E_IO", f"the view needs pyfuse3 and trio: {exc}",
                       hint="pip install 'jvs[mount]' (and apt install libfuse3-dev fuse3)",
                       ) from None

    from jvsfs.catalog import ViewCatalog
    from jvsfs.fuse import ViewOperations
    from jvsfs.view import View

    ops = ViewOperations(View(ViewCatalog(repo)), read_in_thread=reads_in_threads(repo),
                           xattrs=xattrs)
    try:
        pyfuse3.init(ops, str(path), mount_options(allow_other))
    except RuntimeError as exc:
        raise JvsError("E_IO", f"cannot mount {path}: {exc}") from None
    if foreground:
        if on_serving is not None:
            on_serving()
        _serve(path, on_ready=notify_systemd)
        return Mounted(path, repo.root, os.getpid())
    return Mounted(path, repo.root, _daemonize(path))


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; the new soft limit.

    Every file a client has open through the view is a file the server holds open, for
    all clients together: with the soft limit of 1024 that systemd and most shells give,
    the 1,010th open file anywhere got EMFILE. The kernel's hard limit is the real bound
    (the unit raises it with LimitNOFILE=)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return want
        except (ValueError, OSError):
            pass
    return soft


def _daemonize(path: Path) -> int:
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the server
        os.close(ready_r)
        code = 0
        try:
            os.setsid()
            os.chdir("/")  # hold no directory busy (the caller's cwd could not unmount)
            _detach_stdio()
            _log_to(os.environ.get("JVS_MOUNT_LOG"))
            _serve(path, on_ready=lambda: _tell_parent(ready_w))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(ready_w)
    # The parent keeps no trace of the session: it must not unmount on exit.
    message = _read_ready(ready_r, READY_TIMEOUT)
    os.close(ready_r)
    if message != b"ok":
        _force_unmount(path)
        raise JvsError("E_IO", f"the view server for {path} did not start",
                       hint="run 'jvs mount --foreground' to see why")
    return pid


def _read_ready(fd: int, timeout: float) -> bytes:
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while b"ok" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 16)
        if not chunk:
            break
        data += chunk
    return data


def _tell_parent(fd: int) -> None:
    os.write(fd, b"ok")
    os.close(fd)


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _log_to(path: str | None) -> None:
    """The detached server has no terminal: with JVS_MOUNT_LOG=FILE its warnings (a
    request that failed on a bug, answered EIO) go there; otherwise they are dropped."""
    if path:
        import logging

        logging.basicConfig(filename=path, level=logging.WARNING,
                            format="%(asctime)s jvs-view[%(process)d] %(message)s")


def _serve(path: Path, on_ready) -> None:
    """Run the pyfuse3 loop under trio until unmounted or SIGINT/SIGTERM; then unmount."""
    import pyfuse3
    import trio

    raise_open_file_limit()
    os.chdir("/")

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as sigs:
            async with trio.open_nursery() as nursery:
                async def loop() -> None:
                    await pyfuse3.main()
                    nursery.cancel_scope.cancel()  # unmounted from outside

                nursery.start_soon(loop)
                await trio.sleep(0)  # the loop is running: requests will be answered
                on_ready()
                async for _ in sigs:
                    pyfuse3.terminate()
                    break

    try:
        trio.run(main)
    finally:
        try:
            pyfuse3.close(unmount=True)
        except Exception:
            pass
        if mounted_fstype(path) == FSTYPE:
            _force_unmount(path)


def notify_systemd(state: str = "READY=1") -> None:
    """sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET, if set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError as exc:
            print(f"jvs: warning: cannot notify systemd: {exc}", file=sys.stderr)


# ------------------------------------------------------------------ unmounting

@dataclass(frozen=True)
class Unmounted:
    """``jvs umount``: *how* the view at *mountpoint* went: ``"unmounted"``, ``"stale"``
    (the server had died — "Transport endpoint is not connected" — and the mount was
    cleared) or ``"lazy"`` (detached now, gone once the last process using it lets go)."""

    mountpoint: Path
    how: str

    def to_json(self) -> dict:
        return {"mountpoint": str(self.mountpoint), "unmounted": True, "how": self.how}


def umount(mountpoint: Path, *, lazy: bool = False) -> Unmounted:
    """Unmount a jvs view (see :class:`Unmounted` for what can have happened).

    A view in use is not detached behind the user's back: without *lazy* that is E_BUSY,
    naming the way out."""
    path = Path(os.path.abspath(mountpoint))
    fstype = mounted_fstype(path)
    if fstype is None:
        raise JvsError("E_NOT_FOUND", f"{path} is not mounted")
    if fstype != FSTYPE:
        raise JvsError("E_USAGE", f"{path} is a {fstype} mount, not a jvs view")
    done, why = _unmount(path, lazy=False)
    if done:
        return Unmounted(path, "unmounted")
    stale = _is_stale(path)
    if stale or lazy:
        done, why = _unmount(path, lazy=True)
        if done:
            return Unmounted(path, "stale" if stale else "lazy")
    if "busy" not in why.lower():
        raise JvsError("E_IO", f"cannot unmount {path}: {why or 'unknown error'}",
                       hint="a view mounted by another user is unmounted by that user "
                            "or root")
    if lazy:
        raise JvsError("E_BUSY", f"cannot unmount {path}: {why}",
                       hint=f"see 'fuser -vm {path}'")
    raise JvsError("E_BUSY", f"{path} is in use (an open file, or a shell's working "
                   "directory inside it)",
                   hint=f"see 'fuser -vm {path}' and close them, or detach it now with "
                        f"'jvs umount --lazy {path}' (it goes once the last user lets go)")


def _unmount(path: Path, *, lazy: bool) -> tuple[bool, str]:
    """One unmount attempt (``fusermount3 -u``, else ``umount``): whether it is gone, and
    the tools' complaint when not."""
    fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
    attempts = []
    if fusermount:
        attempts.append([fusermount, "-u", *(["-z"] if lazy else []), str(path)])
    attempts.append(["umount", *(["-l"] if lazy else []), str(path)])
    why = ""
    for argv in attempts:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = why or str(exc)
            continue
        if mounted_fstype(path) != FSTYPE:
            return True, ""
        complaint = done.stderr.strip()
        if complaint and not why:
            why = complaint.splitlines()[-1]  # "failed to unmount X: Device or resource busy"
    return False, why


def _force_unmount(path: Path) -> None:
    """The server's own last resort as it exits (or a daemon that never came up): a
    plain unmount, else a lazy one; nobody is left to serve the mount anyway."""
    if not _unmount(path, lazy=False)[0]:
        _unmount(path, lazy=True)
