"""The rescue: before a restore replaces unsaved work, that work becomes a complete,
restorable snapshot (``kind: rescue``, parent = the head it diverged from; SPEC §6).

It costs one engine clone, never a copy of the tree: the rescue starts as a clone of the
head's payload (hard links on the copy engine: payloads are immutable), then the steps that
turn the head into the worktree are carried out on it. An unsaved entry the restore is
about to replace or remove anyway is *moved* into the rescue (a rename); one the restore
keeps (the worktree already holds the target's content there) is copied. A partial restore
rescues only its paths, as a partial snapshot.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from jvs import fsio
from jvs.audit import append_audit
from jvs.descriptor import Descriptor, publish_descriptor, read_descriptor, write_descriptor_tmp
from jvs.errors import JvsError
from jvs.ids import rfc3339_utc, short_id
from jvs.integrity import READY_MARKER, Entry, hash_bytes, hash_file, manifest_bytes, root_hash
from jvs.plan import ADD, MODE, REMOVE, REPLACE, Step, covered, plan, subtree
from jvs.publish import fsync_payload, publish_payload, write_manifest
from jvs.repo import Repo
from jvs.unsaved import Identity, WorktreeState, fingerprint_now, fingerprint_read, identity

MOVE, COPY, DROP, MKDIR, CHMOD = "move", "copy", "drop", "mkdir", "chmod"


@dataclass(frozen=True)
class Transfer:
    """One change to the rescue's base: *action* at *path* (a worktree path), with the
    fingerprint of the worktree entry a move takes, as read (so a roll-forward can tell
    it from something written after a crash)."""

    action: str
    path: str
    mode: int = 0
    before: str | None = None

    def to_json(self) -> list:
        return [self.action, self.path, self.mode, self.before]

    @classmethod
    def from_json(cls, obj: list | tuple) -> Transfer:
        action, path, mode, before = obj
        return cls(action, path, int(mode), before)


def plan_rescue(base: dict[str, Entry], state: WorktreeState, restore_steps: list[Step],
                units: tuple[str, ...] = (), held: dict[str, str] | None = None
                ) -> list[Transfer]:
    """What turns the clone of the *base* payload into the worktree as read (*state*):
    entries the restore moves out (*restore_steps*) are moved, the rest copied. A
    directory in *held* (it holds ignored content: see ``plan.holding_dirs``) is never
    copied whole, so that nothing ignored gets into the rescue."""
    held = held or {}
    leaving = [s.path for s in restore_steps if s.moves_out]
    kept_below = {s.path for s in restore_steps}
    steps = plan(base, state.entries, units=units)
    out: list[Transfer] = []
    worktree_keys = sorted(state.entries)

    def bring(rel: str) -> None:
        entry = state.entries[rel]
        if covered(rel, leaving):
            out.append(Transfer(MOVE, rel, entry.mode,
                                fingerprint_read(state, worktree_keys, rel)))
        elif entry.kind == "dir" and (rel in held
                                      or any(p.startswith(rel + "/") for p in kept_below)):
            # The restore keeps this directory and changes things below it, or it holds
            # ignored content: bring its entries one by one, so that what the restore
            # keeps stays in the worktree and what is ignored stays out of the rescue.
            out.append(Transfer(MKDIR, rel, entry.mode))
            for child in subtree(worktree_keys, rel):
                if child.count("/") == rel.count("/") + 1:
                    bring(child)
        else:
            out.append(Transfer(COPY, rel, entry.mode))

    for step in steps:
        if step.action == REMOVE:
            out.append(Transfer(DROP, step.path))
        elif step.action in (ADD, REPLACE):
            bring(step.path)  # replaces what the base has there
        elif step.action == MODE:
            if step.kind == "dir":
                out.append(Transfer(CHMOD, step.path, step.mode))
            else:  # the base's file is the head's (maybe a hard link): replace, never chmod
                bring(step.path)
    return out


def build_base(repo: Repo, engine, base: Descriptor | None, rescue_dir: Path,
               units: tuple[str, ...] = ()) -> None:
    """The rescue's starting point: a clone of the *base* payload (only its *units*, for
    a partial rescue), or an empty directory when the worktree has no snapshot yet."""
    if os.path.lexists(rescue_dir):
        fsio.remove_tree(rescue_dir)
    source = repo.payload_dir(base.snapshot_id) if base else None
    if source is None or units:
        rescue_dir.mkdir(mode=0o700)
        for unit in units if source is not None else ():
            if os.path.lexists(source / unit):
                make_parents(rescue_dir, unit)
                engine.clone_payload(source / unit, rescue_dir / unit)
        return
    engine.clone_payload(source, rescue_dir)
    marker = rescue_dir / READY_MARKER
    if base.has_ready_marker and os.path.lexists(marker) and not os.path.isdir(marker):
        os.unlink(marker)


def carry_out(worktree: Path, rescue_dir: Path, transfers: list[Transfer], engine, *,
              resuming: bool) -> None:
    """Apply *transfers* to the rescue's base. A move, copy or mkdir replaces what the
    base holds at its path. Each step is skipped if already done (none undoes another), so
    a roll-forward runs this again; *resuming*, a move whose entry is no longer the one
    read before the crash is refused (the user worked since: nothing may move it)."""
    for t in transfers:
        src, dst = worktree / t.path, rescue_dir / t.path
        if t.action == DROP:
            if os.path.lexists(dst):
                with writable(dst.parent):
                    fsio.remove_tree(dst)
        elif t.action == MKDIR:
            if not os.path.isdir(dst) or os.path.islink(dst):
                with writable(dst.parent):
                    if os.path.lexists(dst):
                        fsio.remove_tree(dst)
                    os.mkdir(dst, 0o700)
        elif t.action == CHMOD:
            os.chmod(dst, t.mode)
        elif t.action == MOVE:
            if not os.path.lexists(src):
                continue  # moved already (or deleted meanwhile: nothing left to keep)
            if resuming and fingerprint_now(worktree, t.path) != t.before:
                raise JvsError("E_UNSAVED",
                               f"{t.path} changed in the worktree after the restore crashed",
                               hint="the restore is not finished, so that your change is not "
                                    "moved; see 'jvs doctor' and docs/restore.md")
            if os.path.lexists(dst):  # the head's copy, or a half-made copy
                with writable(dst.parent):
                    fsio.remove_tree(dst)
            with writable(src.parent), writable(dst.parent):
                rename_even_read_only(src, dst)
        elif t.action == COPY and os.path.lexists(src):
            if os.path.lexists(dst):
                with writable(dst.parent):
                    fsio.remove_tree(dst)
            with writable(dst.parent):
                engine.clone(src, dst)
    for t in transfers:
        if t.action == MKDIR:  # made writable above, so that its entries could come in
            os.chmod(rescue_dir / t.path, t.mode)


def rescue_manifest(base: dict[str, Entry], transfers: list[Transfer], rescue_dir: Path,
                    algo: str, known: dict[str, tuple[Identity, str]] | None = None) -> bytes:
    """The rescue's records: the base's, and for what the transfers brought, what the
    rescue now holds (a moved file is read again only if it is not the one the worktree
    read showed, by *known* identity and hash). The directories the transfers went
    through get back the modes the records give them (a crash may have left one writable
    for a step)."""
    entries = dict(base)
    base_keys = sorted(base)
    known = known or {}
    for t in transfers:
        if t.action != CHMOD:  # whatever else comes to a path replaces the base's there
            for rel in subtree(base_keys, t.path):
                entries.pop(rel, None)
        if t.action in (MKDIR, CHMOD):
            entries[t.path] = Entry("dir", t.path, t.mode, 0,
                                    hash_bytes(algo, os.fsencode(t.path.rpartition("/")[2])))
        elif t.action != DROP and os.path.lexists(rescue_dir / t.path):
            for rel, entry in _read_tree(rescue_dir, t.path, algo, known):
                entries[rel] = entry
    for parent in {t.path.rpartition("/")[0] for t in transfers} - {""}:
        entry = entries.get(parent)
        path = rescue_dir / parent
        if entry is not None and os.path.isdir(path) and not os.path.islink(path) \
                and stat.S_IMODE(os.lstat(path).st_mode) != entry.mode:
            os.chmod(path, entry.mode)
    return manifest_bytes(list(entries.values()))


def _read_tree(root: Path, rel: str, algo: str, known: dict[str, tuple[Identity, str]]):
    """(relpath, Entry) for *rel* under *root* and everything below it."""
    from jvs.integrity import scan

    path = root / rel
    st = os.lstat(path)
    items = [(rel, st)]
    if stat.S_ISDIR(st.st_mode):
        items += [(f"{rel}/{e.relpath}", e.st) for e in scan(path).entries]
    for r, est in items:
        mode = stat.S_IMODE(est.st_mode)
        p = root / r
        if stat.S_ISDIR(est.st_mode):
            yield r, Entry("dir", r, mode, 0, hash_bytes(algo, os.fsencode(r.rpartition("/")[2])))
        elif stat.S_ISLNK(est.st_mode):
            yield r, Entry("symlink", r, mode, 0, hash_bytes(algo, os.fsencode(os.readlink(p))))
        elif stat.S_ISREG(est.st_mode):
            seen = known.get(r)
            digest = seen[1] if seen and seen[0] == identity(est) else hash_file(p, algo)
            yield r, Entry("file", r, mode, est.st_size, digest)
        else:
            os.unlink(p)  # a FIFO or socket is never payload (SPEC §5)


def publish_rescue(repo: Repo, rescue_id: str, rescue_dir: Path, manifest: bytes, *,
                   algo: str, worktree: str, parent_id: str | None, target_id: str | None,
                   units: tuple[str, ...], note: str | None = None) -> Descriptor:
    """Publish the rescue with the care of a snapshot: manifest, durable payload,
    descriptor, payload rename, descriptor rename (its commit point). Idempotent: a
    rescue already published is returned as it is. *target_id*: the restore it is made
    for (None: ``worktree remove --force``, whose *note* says so)."""
    if repo.descriptor_path(rescue_id).exists():
        return read_descriptor(repo, rescue_id, verify=False)
    published = repo.payload_dir(rescue_id)
    if not os.path.isdir(published):
        write_manifest(repo, rescue_id, manifest)
        fsync_payload(rescue_dir)  # its moved files are the user's, maybe not yet on disk
    descriptor = Descriptor(
        snapshot_id=rescue_id,
        parent_id=parent_id,
        worktree_name=worktree,
        created_at=rfc3339_utc(),
        note=note or f"rescue: unsaved work before restore to {short_id(target_id)}",
        engine="move",
        payload_hash_algo=algo,
        payload_root_hash=root_hash(manifest),
        partial_paths=units,
        kind="rescue",
    ).sealed()
    tmp = write_descriptor_tmp(repo, descriptor)
    if not os.path.isdir(published):
        publish_payload(repo, rescue_dir, rescue_id)
    publish_descriptor(repo, tmp, rescue_id)  # the rescue's commit point
    append_audit(repo, "rescue", rescue_id, f"unsaved work of worktree {worktree}",
                 worktree=worktree, restore_target=target_id)
    return descriptor


def make_parents(root: Path, rel: str, mode: int = 0o700) -> None:
    """The directories above *rel* under *root* that are missing (a restore or rescue of
    only some paths whose parents are gone)."""
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        sub = root.joinpath(*parts[:depth])
        if not os.path.isdir(sub):
            os.mkdir(sub, mode)


class writable:
    """Let a directory be written in for one step (snapshots keep modes exactly, so a
    worktree or a payload may hold read-only directories), then give its mode back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mode: int | None = None

    def __enter__(self) -> writable:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return self
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IWUSR \
                and not os.access(self.path, os.W_OK):
            self.mode = stat.S_IMODE(st.st_mode)
            os.chmod(self.path, self.mode | stat.S_IWUSR)
        return self

    def __exit__(self, *exc) -> None:
        if self.mode is not None:
            os.chmod(self.path, self.mode)


def rename_even_read_only(src: Path, dst: Path) -> None:
    """rename(2), also of a read-only directory to another parent (that updates its
    ``..``, which needs write permission on it)."""
    try:
        fsio.rename_noreplace(src, dst)
    except PermissionError:
        st = os.lstat(src)
        if not stat.S_ISDIR(st.st_mode):
            raise
        os.chmod(src, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
        fsio.rename_noreplace(src, dst)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
