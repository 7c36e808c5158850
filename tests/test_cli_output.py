"""The CLI's JSON must stay byte-identical to json.dumps(indent=2): scripts parse it and
diff it, and the fast renderer must never drift from the stdlib's layout."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

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
