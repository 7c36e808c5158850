"""The steps from one tree to another: what a restore changes in a worktree (worktree →
target snapshot), and what a rescue changes in a clone of the head (head → worktree).

Both trees are given as manifest entries (SPEC §5), so planning reads no file. A step is
an entry to add, replace, remove, or whose mode to change, at the top-most path where the
trees differ: a directory that exists on one side only is one step, a directory on both
sides is descended into. Unchanged entries get no step: the cost of carrying a plan out
follows the change, not the tree.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from jvs.errors import JvsError
from jvs.integrity import Entry

ADD, REPLACE, REMOVE, MODE = "add", "replace", "remove", "mode"


@dataclass(frozen=True)
class Step:
    """One change: *action* at *path*; *kind* and *mode* are what the path becomes (what
    it was, for a removal); *before* is the fingerprint of the entry it replaces or
    removes as read (``jvs.unsaved.fingerprint``), so that a roll-forward can tell it
    from something written later."""

    action: str
    path: str
    kind: str
    mode: int
    before: str | None = None

    def to_json(self) -> list:
        return [self.action, self.path, self.kind, self.mode, self.before]

    @classmethod
    def from_json(cls, obj: list | tuple) -> Step:
        action, path, kind, mode, before = obj
        return cls(action, path, kind, int(mode), before)

    @property
    def moves_out(self) -> bool:
        """The worktree's entry at *path* leaves it (whole)."""
        return self.action in (REPLACE, REMOVE)


def plan(old: dict[str, Entry], new: dict[str, Entry], *,
         held: dict[str, str] | None = None, units: tuple[str, ...] = ()) -> list[Step]:
    """The steps that turn tree *old* into tree *new* (only at *units* and below, if
    given). A directory in *held* holds content that must stay where it is (the ignored path it
    maps to, and maybe more): it is never moved as a whole, only what is in *old* below
    it."""
    held = held or {}
    kids_old, kids_new = _children(old), _children(new)
    steps: list[Step] = []

    def compare(rel: str) -> None:
        a, b = old.get(rel), new.get(rel)
        if a is None and b is None:
            return
        if a is None:
            steps.append(Step(ADD, rel, b.kind, b.mode))
        elif b is None:
            if a.kind == "dir" and rel in held:
                visit(rel)  # its saved entries go; it stays, with what is ignored in it
            else:
                steps.append(Step(REMOVE, rel, a.kind, a.mode))
        elif a.kind != b.kind:
            if a.kind == "dir" and rel in held:
                raise JvsError("E_UNSAVED",
                               f"the snapshot has a {b.kind} at {rel} where the worktree has "
                               f"a directory holding ignored content ({held[rel]})",
                               hint="move the ignored content elsewhere, or delete it, and "
                                    "restore again")
            steps.append(Step(REPLACE, rel, b.kind, b.mode))
        elif a.kind == "dir":
            visit(rel)
            if a.mode != b.mode:
                steps.append(Step(MODE, rel, "dir", b.mode))
        elif a.hash != b.hash or a.size != b.size:
            steps.append(Step(REPLACE, rel, b.kind, b.mode))
        elif a.kind == "file" and a.mode != b.mode:
            steps.append(Step(MODE, rel, "file", b.mode))

    def visit(prefix: str) -> None:
        for name in sorted(kids_old.get(prefix, set()) | kids_new.get(prefix, set())):
            compare(f"{prefix}/{name}" if prefix else name)

    if units:
        for unit in sorted(units):
            compare(unit)
    else:
        visit("")
    return steps


def _children(entries: dict[str, Entry]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rel in entries:
        parent, _, name = rel.rpartition("/")
        out.setdefault(parent, set()).add(name)
    return out


def holding_dirs(ignored: Iterable[str]) -> dict[str, str]:
    """Every directory above an ignored path (it must stay in place), with the first
    such path."""
    out: dict[str, str] = {}
    for rel in ignored:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            out.setdefault("/".join(parts[:depth]), rel)
    return out


def covered(path: str, paths: Iterable[str]) -> bool:
    """Whether *path* is one of *paths* or lies below one."""
    return any(path == p or path.startswith(p + "/") for p in paths)


def subtree(keys: list[str], rel: str) -> list[str]:
    """*rel* and the paths below it, from sorted paths *keys* (a range of them: "/" sorts
    before every character a name can continue with)."""
    start = bisect_left(keys, rel)
    end = bisect_left(keys, rel + "0", start)  # "0" is the character after "/"
    return [k for k in keys[start:end] if k == rel or k.startswith(rel + "/")]
