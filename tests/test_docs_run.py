"""The shell blocks of README.md and docs/quickstart.md run as printed, in order, in one
shell per document, with the jvs under test on PATH (as tools/examples do), so they
cannot rot. In ``console`` blocks the ``$ `` lines are the commands and the lines after
each are its output, compared after masking what differs from run to run (snapshot IDs,
times, the temporary directory, shown as ``/tmp/qs``).

A block preceded by ``<!-- not run: why -->`` is skipped (installing packages); one
preceded by ``<!-- needs: fuse -->`` runs only where FUSE is available. ``~`` is a
scratch home holding a small ``~/dataset``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import volumes

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HAVE_FUSE = volumes.fuse_unavailable() is None
_BLOCK = re.compile(r"(?:<!-- (?P<mark>[^>]*?) -->\n)?```(?P<lang>sh|bash|console)\n"
                    r"(?P<body>.*?)```", re.S)
_MARK = "\x1e"
_MASKS = [
    (re.compile(r"\b\d{13}-[0-9a-f]{8}\b"), "<ID>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?: [+-]\d{4})?"), "<TIME>"),
    (re.compile(r"\b[0-9a-f]{8}\b"), "<SHORT>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<PLAN>"),
]


def commands_of(text: str) -> list[tuple[str, list[str] | None]]:
    """(command, expected output lines or None) in document order."""
    out: list[tuple[str, list[str] | None]] = []
    for block in _BLOCK.finditer(text):
        mark = (block.group("mark") or "").strip()
        if mark.startswith("not run"):
            continue
        if mark == "needs: fuse" and not HAVE_FUSE:
            continue
        lines = block.group("body").splitlines()
        if block.group("lang") != "console":
            out += [(line, None) for line in lines if line.strip()]
            continue
        for line in lines:
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif out and out[-1][1] is not None:
                out[-1][1].append(line)
    return out


def _masked(line: str, scratch: str) -> str:
    line = line.replace(scratch, "/tmp/qs").rstrip()
    for pattern, mask in _MASKS:
        line = pattern.sub(mask, line)
    return re.sub(r" {2,}", "  ", line)  # columns widen with the IDs they hold


def run_document(doc: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "qs"
    home = tmp_path / "home"
    (home / "dataset").mkdir(parents=True)
    (home / "dataset" / "train.csv").write_text("x,y\n1,2\n")
    scratch.mkdir()
    steps = commands_of(doc.read_text())
    script = ["set -euo pipefail"]
    for n, (command, _expected) in enumerate(steps):
        script += [f"printf '{_MARK}%d\\n' {n}", command]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
           "NO_COLOR": "1", "TZ": "UTC", "JVS_PAGER": "cat"}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=scratch, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    try:
        outputs = {}
        for chunk in proc.stdout.split(_MARK)[1:]:
            number, _, output = chunk.partition("\n")
            outputs[int(number)] = output
        last = max(outputs) if outputs else -1
        assert proc.returncode == 0, (
            f"{doc.name}: '{steps[last][0]}' failed ({proc.returncode}):\n{outputs.get(last)}")
        for n, (command, expected) in enumerate(steps):
            if not expected:
                continue
            got = [_masked(line, str(scratch)) for line in outputs[n].splitlines()]
            want = [_masked(line, str(scratch)) for line in expected]
            assert got == want, f"{doc.name}: output of '{command}' differs from the page"
    finally:
        mounts = (home / "jvs-view")
        if mounts.exists():
            subprocess.run([str(BIN / "jvs"), "umount", str(mounts)], capture_output=True)


@pytest.mark.parametrize("doc", ["README.md", "docs/quickstart.md"])
def test_the_shell_blocks_run_as_printed(doc, tmp_path):
    run_document(ROOT / doc, tmp_path)
