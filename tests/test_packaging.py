"""What a distributor gets: the sdist and the wheel built offline from this checkout
(``python -m build``, the wheel built from the sdist, so a file the sdist forgets fails
here), with the license, the type marker, the docs, the systemd unit and the man pages;
and the wheel installed into a fresh virtualenv gives a working ``jvs`` and ``man jvs``."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import jvs
from conftest import requires_fuse

ROOT = Path(__file__).resolve().parent.parent
VERSION = jvs.__version__


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    return out


def _venv_with(tmp_path: Path, requirement: str) -> Path:
    """A fresh virtualenv holding *requirement* and what it needs. Made without pip of its
    own (ensurepip costs ~6 s a venv); this checkout's pip installs into it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=300)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", requirement], check=True, capture_output=True, timeout=900)
    return venv


def _man_pages() -> set[str]:
    return {p.name for p in (ROOT / "man" / "man1").glob("*.1")}


def test_the_sdist_carries_what_a_distributor_builds_from(dist):
    with tarfile.open(dist / f"jvs-{VERSION}.tar.gz") as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
        license_text = sdist.extractfile(f"jvs-{VERSION}/LICENSE").read().decode()
    assert "Apache License" in license_text and "Version 2.0" in license_text
    assert {"LICENSE", "README.md", "pyproject.toml", "jvs/py.typed", "jvsfs/py.typed",
            "systemd/jvs-mount@.service", "docs/python-api.md", "docs/commands.md",
            "man/man1/jvs.1", "man/man1/jvs-snapshot.1"} <= names
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= names
    assert {f"man/man1/{n}" for n in _man_pages()} <= names


def test_the_wheel_carries_license_types_docs_the_systemd_unit_and_man_pages(dist):
    with zipfile.ZipFile(dist / f"jvs-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"jvs-{VERSION}.dist-info/METADATA").decode()
    assert f"jvs-{VERSION}.dist-info/licenses/LICENSE" in names
    assert {"jvs/py.typed", "jvsfs/py.typed", "jvs/templates/unity.jvsignore"} <= names
    man = {n.rsplit("/", 1)[1] for n in names
           if n.startswith(f"jvs-{VERSION}.data/data/share/man/man1/")}
    assert man == _man_pages() and "jvs.1" in man and "jvs-restore.1" in man
    data = f"jvs-{VERSION}.data/data/share"
    assert {f"{data}/doc/jvs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= names
    assert {f"{data}/doc/jvs/README.md", f"{data}/doc/jvs/commands/snapshot.md",
            f"{data}/jvs/systemd/jvs-mount@.service"} <= names
    assert "License-Expression: Apache-2.0" in metadata
    assert "Classifier: Typing :: Typed" in metadata and "Keywords: " in metadata
    assert "Project-URL: " in metadata


def test_the_installed_wheel_gives_jvs_and_its_man_page(dist, tmp_path):
    venv = _venv_with(tmp_path, str(dist / f"jvs-{VERSION}-py3-none-any.whl"))
    jvs_bin = venv / "bin" / "jvs"
    version = subprocess.run([str(jvs_bin), "--version"], capture_output=True, text=True,
                             check=True).stdout
    assert VERSION in version
    subprocess.run([str(jvs_bin), "init", "proj"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert (tmp_path / "proj" / ".jvs").is_dir()
    page = venv / "share" / "man" / "man1" / "jvs-snapshot.1"
    assert page.read_text() == (ROOT / "man" / "man1" / "jvs-snapshot.1").read_text()
    # man finds it from PATH alone, as for any prefix: <bin>/../share/man.
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    found = subprocess.run(["man", "-w", "jvs-snapshot"], env=env, capture_output=True,
                           text=True)
    assert found.returncode == 0 and found.stdout.strip() == str(page), found.stderr
    unit = venv / "share" / "jvs" / "systemd" / "jvs-mount@.service"
    assert unit.read_text() == (ROOT / "systemd" / "jvs-mount@.service").read_text()
    assert (venv / "share" / "doc" / "jvs" / "python-api.md").is_file()


@pytest.mark.fuse
@pytest.mark.slow
@requires_fuse
def test_the_sdist_with_the_mount_extra_gives_a_working_jvs_mount(dist, tmp_path):
    """``pip install 'jvs[mount]'`` from the sdist into a fresh virtualenv, then a real
    mount: the snapshot's file reads back through the kernel."""
    venv = _venv_with(tmp_path, f"{dist / f'jvs-{VERSION}.tar.gz'}[mount]")
    jvs_bin = str(venv / "bin" / "jvs")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"}

    def run(*args, cwd):
        return subprocess.run([jvs_bin, *args], cwd=cwd, env=env, capture_output=True,
                              text=True, check=True, timeout=120)

    run("init", "proj", cwd=tmp_path)
    main = tmp_path / "proj" / "main"
    (main / "data.txt").write_text("through the view\n")
    sid = json_of(run("snapshot", "first", "--json", cwd=main).stdout)["snapshot_id"]
    view = tmp_path / "view"
    view.mkdir()
    run("mount", str(view), cwd=main)
    try:
        assert (view / "@snapshots" / sid / "data.txt").read_text() == "through the view\n"
    finally:
        run("umount", str(view), cwd=main)
    assert not os.path.ismount(view)


def json_of(text: str) -> dict:
    import json

    return json.loads(text)
