""".jvsignore patterns: the matcher agrees with Git's own on the same patterns and tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jvs.errors import JvsError
from jvs.ignore import IgnoreRules

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TREE = [
    "Assets/", "Assets/Player.cs", "Assets/Player.cs.meta", "Assets/Art/", "Assets/Art/hero.png",
    "Assets/Library/", "Assets/Library/keep.txt", "Library/", "Library/ShaderCache/",
    "Library/ShaderCache/a.bin", "Temp/", "Temp/x.tmp", "build/", "build/out.o", "doc/",
    "doc/frotz/", "doc/frotz/a.txt", "a/", "a/doc/", "a/doc/frotz/", "a/doc/frotz/b.txt",
    "logs/", "logs/run.log", "logs/keep.log", "logs/deep/", "logs/deep/old.log", "x.log",
    "foo", "foo.bak", "bar/", "bar/foo", "bar/foo.txt", "[ab]", "b", "#hash", "!bang",
    "sp ace", "trail ", "we*ird", "q?", "dir.d/", "dir.d/in", "a1/", "a1/b1/", "a1/b1/c1",
    "a1/x/", "a1/x/b1/", "a1/x/b1/c1", "node_modules/", "node_modules/m/", "node_modules/m/i.js",
]

CASES = [
    "Library/\nTemp/\n",
    "/Library/\n",
    "*.log\n!keep.log\n",
    "logs/\n!logs/keep.log\n",
    "logs/*\n!logs/keep.log\n",
    "doc/frotz/\n",
    "frotz/\n",
    "/doc/frotz\n",
    "**/frotz\n",
    "a1/**/c1\n",
    "a1/**\n!a1/x/\n",
    "foo\n",
    "foo/\n",
    "*.ba?\n",
    "[ab]\n",
    "\\[ab]\n",
    "[!a]\n",
    "[a-c]*\n!b\n",
    "\\#hash\n\\!bang\n",
    "# a comment\n\n   \n",
    "sp ace\n",
    "trail\\ \n",
    "trail \n",
    "we\\*ird\nq\\?\n",
    "*.d/\n",
    "node_modules\n",
    "**\n!Assets/\n!Assets/**\n",
    "Assets/*.meta\n",
    "Assets/**/*.png\n",
    "*\n!*/\n!*.cs\n",
    "/*\n!/Assets\n",
    "bar/**/foo\n",
    "ba*/\n",
    "**/Library/\n",
]


def _make_tree(root: Path) -> None:
    for rel in TREE:
        p = root / rel.rstrip("/")
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x")


def _git_ignored(root: Path, paths: list[str]) -> set[str]:
    proc = subprocess.run(["git", "-C", str(root), "check-ignore", "--no-index", "--stdin",
                           "-z", "-v", "-n"], input="\0".join(paths) + "\0",
                          capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    fields = proc.stdout.split("\0")
    out = set()
    for i in range(0, len(fields) - 1, 4):
        source, _line, pattern, path = fields[i:i + 4]
        if source and not pattern.startswith("!"):
            out.add(path)
    return out


@pytest.fixture(scope="module")
def git_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("gittree")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _make_tree(root)
    return root


def _ours(rules: IgnoreRules, root: Path) -> set[str]:
    return {rel.rstrip("/") for rel in TREE
            if rules.ignored(rel.rstrip("/"), (root / rel.rstrip("/")).is_dir())}


@pytest.mark.parametrize("text", CASES)
def test_matcher_agrees_with_git(git_tree, text):
    (git_tree / ".gitignore").write_text(text)
    expected = _git_ignored(git_tree, [rel.rstrip("/") for rel in TREE])
    assert _ours(IgnoreRules(text), git_tree) == expected


_segment = st.sampled_from(["a", "b", "a1", "b1", "c1", "x", "foo", "*", "?", "**", "[ab]",
                            "[!a]*", "*.log", "Library", "logs", "doc", "frotz"])


@st.composite
def _pattern(draw):
    parts = draw(st.lists(_segment, min_size=1, max_size=3))
    text = "/".join(parts)
    if draw(st.booleans()):
        text = "/" + text
    if draw(st.booleans()):
        text += "/"
    if draw(st.integers(0, 3)) == 0:
        text = "!" + text
    return text


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_pattern(), min_size=1, max_size=4))
def test_generated_patterns_agree_with_git(git_tree, patterns):
    text = "\n".join(patterns) + "\n"
    (git_tree / ".gitignore").write_text(text)
    expected = _git_ignored(git_tree, [rel.rstrip("/") for rel in TREE])
    assert _ours(IgnoreRules(text), git_tree) == expected, text


def test_crlf_lines_work_like_lf():
    assert IgnoreRules("Library/\r\n*.tmp\r\n").ignored("Temp/x.tmp", False)
    assert IgnoreRules("Library/\r\n").ignored("Library/a", False)


def test_ignore_file_must_be_a_regular_file(tmp_path):
    (tmp_path / "outside").write_text("*\n")
    wt = tmp_path / "wt"
    wt.mkdir()
    assert not IgnoreRules.load(wt)
    os.symlink("../outside", wt / ".jvsignore")
    with pytest.raises(JvsError) as exc:
        IgnoreRules.load(wt)
    assert exc.value.code == "E_PATH_ESCAPE"
    os.unlink(wt / ".jvsignore")
    (wt / ".jvsignore").mkdir()
    with pytest.raises(JvsError) as exc:
        IgnoreRules.load(wt)
    assert exc.value.code == "E_USAGE"
