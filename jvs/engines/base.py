"""The one small interface every snapshot engine implements (SPEC §7)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from jvs.ignore import IgnoreRules


@dataclass(frozen=True)
class CloneResult:
    """What a clone really did: the engine that ran and what it could not preserve."""

    engine: str
    degraded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do beyond ``clone``, declared by the engine so that callers
    ask it rather than probe for methods or compare names."""

    # It copies file by file itself and offers ``clone_walking``: it tells the snapshot
    # each entry as it copies it (and hashes small files on the way if it reads them),
    # so neither tree is listed again and each byte is read once.
    walks_files: bool = False
    # Its payloads share unchanged files with the previous snapshot by hard links, so
    # ``clone_walking``'s sink links them from the previous payload (the copy engine).
    links_unchanged_files: bool = False
    # Whole trees clone as metadata only (``juicefs clone``): one clone of a tree is
    # cheaper than many clones of its entries.
    clones_trees_as_metadata: bool = False
    # ``clone(..., report=False)`` skips finding what it could not keep (a walk of the
    # source); the caller learns it from ``report_from_scan`` over a scan it takes anyway.
    reports_from_scan: bool = False
    # The clone shares data with its source (extents, JuiceFS chunks), which works only
    # within the repository's filesystem: a source on another one is copied instead
    # (``jvs init --from``).
    shares_data_within_one_filesystem: bool = False


class Engine(Protocol):
    name: str
    capabilities: Capabilities

    def clone(self, src: Path, dst: Path, ignore: IgnoreRules | None = None) -> CloneResult:
        """Materialise *src* (a directory, file or symlink) at *dst*, which must not exist.

        Modes are kept exactly, mtimes kept, symlinks stay symlinks (dangling ones too),
        and anything the engine cannot preserve is named in ``degraded`` — a silent
        downgrade is never allowed.

        Paths *ignore* matches (relative to *src*) are left out where that is cheap; an
        engine may still clone some of them (``juicefs-clone`` clones whole top-level
        entries), so the caller drops what remains (see ``trash.drop_ignored``).
        """
        ...

    def clone_payload(self, src: Path, dst: Path) -> None:
        """Another immutable payload holding what the immutable payload *src* holds (a
        rescue's base is its head's payload): as cheap as the engine can make it. The copy
        engine hard-links the files, as it does between the snapshots it takes."""
        ...


@dataclass(frozen=True)
class EngineChoice:
    engine: Engine
    reason: str  # shown by `jvs info`: why this engine was chosen
