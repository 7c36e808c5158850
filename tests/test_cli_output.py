"""The CLI's JSON must stay byte-identical to json.dumps(indent=2): scripts parse it and
diff it, and the fast renderer must never drift from the stdlib's layout."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_jvs
from jvs.cli.output import pretty_json

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text())
values = st.recursive(scalars, lambda inner: st.lists(inner)
                      | st.dictionaries(st.text(), inner), max_leaves=40)


@settings(max_examples=300)
@given(values)
def test_pretty_json_is_the_stdlib_layout(value):
    assert pretty_json(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_pretty_json_keeps_non_ascii_and_escapes_controls():
    value = {"note": "ü <&> \x07\n", "tags": [], "nested": {"a": [1, {"b": None}]}}
    assert pretty_json(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_pretty_json_flat_records_match_the_stdlib():
    # Flat dicts take the C encoder's path: its key and number rendering must agree too.
    value = {"snapshots": [{"a": 1.5, "b": None, "c": True, "d": [], "e": {}, "f": "x\ty"},
                           {2: "int key", 2.5: "float key", True: "bool", None: "none"},
                           {"nan": float("nan"), "inf": float("-inf"), "big": 10**30}],
             "nested": {"inner": {"flat": "yes"}, "list": [{"k": []}, {"k": ["v"]}],
                        "keys": {False: [1], 3: {"x": [None]}}}}
    assert pretty_json(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_history_json_is_the_descriptors_in_the_documented_layout(repo):
    """``history --json`` byte for byte: the descriptor files' fields under stable names,
    pretty-printed one key per line (SPEC §10), whatever the renderer does to be fast."""
    main = repo / "main"
    (main / "f").write_text("1")
    run_jvs("snapshot", "first \u00fc <&> \"quoted\"\tnote", "--tag", "t1", "--tag", "t2",
            cwd=main)
    (main / "f").write_text("2")
    run_jvs("snapshot", "second", cwd=main)
    files = sorted((repo / ".jvs" / "descriptors").glob("*.json"), reverse=True)
    descs = [json.loads(f.read_text(encoding="utf-8")) for f in files]  # newest first
    head = descs[0]["snapshot_id"]
    expected = {
        "worktree": "main", "head_snapshot_id": head, "latest_snapshot_id": head,
        "detached": False,
        "snapshots": [{
            "snapshot_id": d["snapshot_id"],
            "short_id": d["snapshot_id"].rpartition("-")[2],
            "parent_id": d.get("parent_id"),
            "worktree_name": d["worktree_name"],
            "created_at": d["created_at"],
            "note": d.get("note", ""),
            "tags": d.get("tags", []),
            "engine": d["engine"],
            "kind": d.get("kind") or "snapshot",
            "partial_paths": d.get("partial_paths", []),
            "degraded": d.get("degraded", []),
            "is_head": d["snapshot_id"] == head,
            "is_latest": d["snapshot_id"] == head,
        } for d in descs],
    }
    out = run_jvs("history", "--json", cwd=main).stdout
    assert out == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert descs[1]["tags"] == ["t1", "t2"] and "\u00fc" in out


def test_quiet_silences_success_output_but_not_json_or_errors(repo):
    main = repo / "main"
    (main / "a").write_text("a\n")
    quiet = run_jvs("-q", "snapshot", "quiet", "--tag", "q1", cwd=main)
    assert quiet.stdout == "" and quiet.stderr == ""
    assert run_jvs("-q", "tag", "add", "q1", "q2", cwd=main).stdout == ""
    assert run_jvs("-q", "history", cwd=main).stdout == ""
    assert run_jvs("--quiet", "restore", "q1", cwd=main).stdout == ""
    data = run_jvs("-q", "history", "--json", cwd=main).json
    assert data["snapshots"][0]["tags"] == ["q1", "q2"]
    res = run_jvs("-q", "restore", "nope", cwd=main, check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr
    (main / "a").write_text("changed\n")
    assert run_jvs("-q", "diff", "--exit-code", cwd=main, check=False).returncode == 1
