"""The trash (``.jvs/restore/@trash``): what an operation replaced or removed, moved out of
the way by one rename (so the operation's state changes at once) and deleted before the
command returns. Everything in it is garbage by construction, so it is safe to empty at
any time, by several processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from jvs.progress import SILENT, FileTicker, Progress
from jvs.repo import Repo


def trash_dir(repo: Repo) -> Path:
    """'@' cannot occur in a worktree name, so this never collides with a restore work
    dir (``.jvs/restore/<worktree>``)."""
    return repo.jvs_dir / "restore" / "@trash"


def move_to_trash(repo: Repo, path: Path, label: str) -> Path:
    """Rename *path* into the trash under a fresh name; returns where it went."""
    from jvs import fsio

    trash_dir(repo).mkdir(parents=True, exist_ok=True)
    dest = trash_dir(repo) / f"{label}-{os.urandom(4).hex()}"
    fsio.rename_noreplace(path, dest)
    return dest


def drop_ignored(repo: Repo, tree: Path, paths: list[str], label: str) -> None:
    """Move *paths* (ignored entries an engine cloned anyway) out of the staged *tree*
    into the trash: one rename each now, the deletion with ``empty_trash``."""
    if not paths:
        return
    bin_ = trash_dir(repo) / f"{label}-{os.urandom(4).hex()}"
    bin_.mkdir(parents=True)
    for n, rel in enumerate(paths):
        os.rename(tree / rel, bin_ / str(n))


def empty_trash(repo: Repo, *, claimed_too: bool = False, meter: Progress = SILENT) -> None:
    """Delete everything in the trash. Several processes may empty it at once (worktree
    operations run in parallel, on several hosts): each first claims an item by renaming
    it to a name of its own, so no two delete the same tree; an item claimed by a process
    of this host that died is taken over, and with *claimed_too* (doctor, which holds the
    repository lock exclusively, so nobody else is deleting) every claimed item. On a
    JuiceFS mount with ``juicefs rmr``, much faster than one unlink per file. A *meter*
    that counts is told the files and bytes to delete (one more walk, only for it), then
    each file as it goes."""
    trash = trash_dir(repo)
    try:
        items = sorted(os.listdir(trash))
    except FileNotFoundError:
        return
    if not items:
        return
    from jvs.engines.juicefs import remove_tree

    host = os.uname().nodename
    mark = f".deleting-{os.getpid()}@{host}-"
    claimed_items = []
    for name in items:
        if name.startswith(".deleting-") and not name.startswith(mark) \
                and not claimed_too and _claimer_alive(name, host):
            continue
        claimed = trash / (name if name.startswith(mark) else mark + os.urandom(4).hex())
        try:
            if claimed.name != name:
                os.rename(trash / name, claimed)
        except FileNotFoundError:
            continue  # another process claimed it
        if meter is SILENT:
            remove_tree(claimed)
        else:
            claimed_items.append(claimed)
    if claimed_items:
        _remove_counted(claimed_items, meter)


def _remove_counted(items: list[Path], meter: Progress) -> None:
    from jvs.engines.juicefs import remove_tree
    from jvs.fsio import tree_size

    sizes = [tree_size(item) for item in items]
    meter.start(sum(f for f, _ in sizes), sum(b for _, b in sizes))
    ticker = FileTicker(meter)
    for item, (files, nbytes) in zip(items, sizes, strict=True):
        ticked_files, ticked_bytes = ticker.all_files, ticker.all_bytes
        remove_tree(item, ticker.tick)
        ticker.flush()
        # What ``juicefs rmr`` removed was never ticked: it counts as one step.
        missing = (files - (ticker.all_files - ticked_files),
                   nbytes - (ticker.all_bytes - ticked_bytes))
        if missing[0] > 0 or missing[1] > 0:
            meter.advance(max(0, missing[0]), max(0, missing[1]))


def _claimer_alive(name: str, host: str) -> bool:
    """Whether the process that claimed trash item *name* may still be deleting it (one
    of another host always may)."""
    pid, _, rest = name[len(".deleting-"):].partition("@")
    if not rest.startswith(host + "-"):
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True
