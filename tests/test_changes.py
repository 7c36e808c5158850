"""jvs/changes.py: comparing two states parses only the records that differ, with the same
result as comparing every entry."""

from __future__ import annotations

from jvs.changes import compare, differing
from jvs.integrity import Entry, manifest_bytes


def _states() -> tuple[list[Entry], list[Entry]]:
    old = [Entry("dir", "d", 0o755, 0, "aa"), Entry("file", "d/same", 0o644, 3, "11"),
           Entry("file", "d/edited", 0o644, 3, "22"), Entry("file", "gone", 0o644, 1, "33"),
           Entry("file", "chmod", 0o644, 1, "44"), Entry("symlink", "x", 0o777, 0, "55")]
    new = [Entry("dir", "d", 0o755, 0, "aa"), Entry("file", "d/same", 0o644, 3, "11"),
           Entry("file", "d/edited", 0o644, 4, "66"), Entry("file", "chmod", 0o600, 1, "44"),
           Entry("dir", "x", 0o755, 0, "77"), Entry("file", "added", 0o644, 2, "88")]
    return old, new


def test_differing_keeps_exactly_the_changed_records():
    old, new = _states()
    less_old, less_new = differing(manifest_bytes(old), new)
    assert {e.relpath for e in less_old} == {"d/edited", "gone", "chmod", "x"}
    assert {e.relpath for e in less_new} == {"d/edited", "chmod", "x", "added"}
    expected = compare(old, new).items
    assert compare(less_old, less_new).items == expected
    assert [(c.relpath, c.change) for c in expected] == [
        ("added", "added"), ("chmod", "mode"), ("d/edited", "modified"), ("gone", "removed"),
        ("x", "type")]


def test_differing_between_two_manifests():
    old, new = _states()
    less_old, less_new = differing(manifest_bytes(old), manifest_bytes(new))
    assert compare(less_old, less_new).items == compare(old, new).items
    assert differing(manifest_bytes(old), manifest_bytes(old)) == ([], [])
    assert differing(b"", new)[1] == new
