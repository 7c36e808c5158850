"""The layering the architecture promises (docs/python-api.md): the CLI sits on the
library, never the other way round, and FUSE stays on the mount path.

Read from the source with ``ast``, so an import inside a function counts as much as one
at the top: a lazy upward import is still an upward import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module *path* imports (``from jvs import cli`` counts as ``jvs.cli``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _library_modules() -> list[Path]:
    cli = ROOT / "jvs" / "cli"
    return [p for p in _modules("jvs") + _modules("jvsfs")
            if cli not in p.parents and p.name != "__main__.py"]


def test_the_modules_checked_are_the_real_ones():
    names = {p.relative_to(ROOT).as_posix() for p in _library_modules()}
    assert {"jvs/api.py", "jvs/config.py", "jvs/snapshot.py", "jvsfs/view.py"} <= names
    assert not any(n.startswith("jvs/cli/") for n in names)
    # The parser sees imports, lazy ones included: the CLI's own upward imports are found.
    assert "jvs.cli.output.Ui" in _imports(ROOT / "jvs" / "cli" / "common.py")


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_nothing_outside_the_cli_imports_the_cli(path):
    upward = sorted(n for n in _imports(path) if _under(n, "jvs.cli"))
    assert not upward, f"{path.relative_to(ROOT)} imports {upward}"


def test_fuse_is_imported_on_the_mount_path_only():
    allowed = {ROOT / "jvsfs" / "fuse.py", ROOT / "jvsfs" / "server.py"}
    for path in _modules("jvs") + _modules("jvsfs"):
        fuse = sorted(n for n in _imports(path) if _under(n, "trio") or _under(n, "pyfuse3"))
        if path not in allowed:
            assert not fuse, f"{path.relative_to(ROOT)} imports {fuse}"


def test_the_c_library_is_loaded_in_one_place():
    """jvs/libc.py holds the one ctypes handle; a module loading its own copy (as
    publish.py once did) is found here."""
    loaders = sorted(
        p.relative_to(ROOT).as_posix() for p in _modules("jvs") + _modules("jvsfs")
        if any(isinstance(n, ast.Attribute) and n.attr == "CDLL"
               for n in ast.walk(ast.parse(p.read_text(), str(p)))))
    assert loaders == ["jvs/libc.py"]
