"""The one module that writes control-plane files: atomic replace, create-only, rename
without replace, containment, and removal of read-only trees."""

from __future__ import annotations

import os

import pytest

from jvs import fsio
from jvs.errors import JvsError, PathEscapeError


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "config.json"
    fsio.write_bytes_atomic(target, b"old")
    fsio.write_bytes_atomic(target, b"new contents", mode=0o600)
    assert target.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["config.json"]
    fsio.write_json_atomic(target, {"b": 1, "a": [1, 2]})
    assert fsio.read_json(target) == {"b": 1, "a": [1, 2]}
    assert target.read_text().startswith('{\n  "b": 1')  # pretty, two-space indent


def test_write_new_never_overwrites(tmp_path):
    target = tmp_path / "descriptor.json.tmp"
    fsio.write_bytes_new(target, b"first")
    with pytest.raises(FileExistsError):
        fsio.write_bytes_new(target, b"second")
    assert target.read_bytes() == b"first"


def test_rename_noreplace_refuses_an_existing_destination(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("mine")
    dst.write_text("theirs")
    with pytest.raises(FileExistsError):
        fsio.rename_noreplace(src, dst)
    assert dst.read_text() == "theirs" and src.read_text() == "mine"
    dst.unlink()
    fsio.rename_noreplace(src, dst)
    assert dst.read_text() == "mine" and not src.exists()
    # A directory too (a snapshot payload is published this way).
    (tmp_path / "staging").mkdir()
    (tmp_path / "published").mkdir()
    with pytest.raises(FileExistsError):
        fsio.rename_noreplace(tmp_path / "staging", tmp_path / "published")


def test_ensure_inside_refuses_a_symlink_that_escapes(tmp_path):
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    assert fsio.ensure_inside(root, root / "sub") == (root / "sub").resolve()
    with pytest.raises(PathEscapeError) as exc:
        fsio.ensure_inside(root, root / "out" / "x")
    assert isinstance(exc.value, JvsError) and exc.value.code == "E_PATH_ESCAPE"


def _remove_counting(path, counted=None):
    fsio.remove_tree_counted(path, (counted if counted is not None else []).append)


@pytest.mark.parametrize("remove", [fsio.remove_tree, _remove_counting],
                         ids=["remove_tree", "remove_tree_counted"])
def test_remove_tree_removes_read_only_trees_and_never_follows_links(tmp_path, remove):
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "precious").write_text("x")
    tree = tmp_path / "payload"
    (tree / "ro" / "deeper").mkdir(parents=True)
    (tree / "ro" / "deeper" / "f").write_text("y")
    (tree / "link").symlink_to(outside)
    os.chmod(tree / "ro" / "deeper", 0o500)
    os.chmod(tree / "ro", 0o500)
    remove(tree)
    assert not tree.exists()
    assert (outside / "precious").read_text() == "x"
    remove(tree)  # already gone: nothing to do
    link = tmp_path / "lone-link"
    link.symlink_to(outside)
    remove(link)
    assert not os.path.lexists(link) and outside.is_dir()


def test_the_counted_removal_tells_each_file_and_its_size_once(tmp_path):
    tree = tmp_path / "payload"
    deep = tree
    tree.mkdir()
    for _ in range(1200):  # deeper than Python's recursion limit
        deep = deep / "d"
        deep.mkdir()
    (deep / "f").write_bytes(b"x" * 10)
    (tree / "a").write_bytes(b"y" * 3)
    (tree / "link").symlink_to("a")
    assert fsio.tree_size(tree) == (2, 13)  # the symlink is not a file
    counted: list[int] = []
    _remove_counting(tree, counted)
    assert sorted(counted) == [3, 10] and not tree.exists()
