"""Snapshot engines and the choice between them (SPEC §7).

Order of choice: ``JVS_SNAPSHOT_ENGINE``, then ``engine`` in ``.jvs/config.json``, then
detection on the real filesystem of the repository (JuiceFS mount → ``juicefs-clone``;
a filesystem that answers FICLONE → ``reflink-copy``; otherwise ``copy``).
"""

from __future__ import annotations

import os
from pathlib import Path

from jvs.engines.base import CloneResult, Engine, EngineChoice
from jvs.errors import JvsError

ENGINE_NAMES = ("juicefs-clone", "reflink-copy", "copy")

__all__ = ["CloneResult", "Engine", "EngineChoice", "ENGINE_NAMES", "get_engine",
           "choose_engine"]


def get_engine(name: str, repo_root: Path) -> Engine:
    """The engine called *name*, checked to be usable for *repo_root*; E_ENGINE if not."""
    if name == "copy":
        from jvs.engines.copy import CopyEngine

        return CopyEngine()
    if name == "reflink-copy":
        from jvs.engines.reflink import ReflinkEngine

        return ReflinkEngine.for_path(repo_root)
    if name == "juicefs-clone":
        from jvs.engines.juicefs import JuiceFSEngine

        return JuiceFSEngine.for_path(repo_root)
    raise JvsError("E_ENGINE", f"unknown engine {name!r}",
                   hint=f"choose one of {', '.join(ENGINE_NAMES)}")


def choose_engine(repo_root: Path, configured: str | None) -> EngineChoice:
    env = os.environ.get("JVS_SNAPSHOT_ENGINE")
    if env:
        if env not in ENGINE_NAMES:  # the user's setting is wrong, not the engine
            raise JvsError("E_USAGE", f"JVS_SNAPSHOT_ENGINE={env!r} is not an engine",
                           hint=f"use one of {', '.join(ENGINE_NAMES)}, or unset it to "
                           "detect one")
        return EngineChoice(get_engine(env, repo_root), "JVS_SNAPSHOT_ENGINE")
    if configured:
        return EngineChoice(get_engine(configured, repo_root), "config.json")
    return detect_engine(repo_root)


def detect_engine(repo_root: Path) -> EngineChoice:
    try:
        from jvs.engines.juicefs import JuiceFSEngine
    except ImportError:
        JuiceFSEngine = None  # noqa: N806
    if JuiceFSEngine is not None:
        found = JuiceFSEngine.detect(repo_root)
        if found is not None:
            return EngineChoice(found[0], found[1])
    try:
        from jvs.engines.reflink import ReflinkEngine
    except ImportError:
        ReflinkEngine = None  # noqa: N806
    if ReflinkEngine is not None:
        found = ReflinkEngine.detect(repo_root)
        if found is not None:
            return EngineChoice(found[0], found[1])
    from jvs.engines.copy import CopyEngine

    return EngineChoice(CopyEngine(), "detected: no copy-on-write support found")
