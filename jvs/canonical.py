"""Canonical JSON with the escaping rules of Go's encoding/json (SPEC §3).

Checksums computed here are byte-for-byte the ones the Go implementation computes, so a
repository moves between the two without a single descriptor failing verification.
Keys are sorted by their UTF-8 bytes; there is no whitespace; ``<``, ``>``, ``&``, U+2028
and U+2029 become ``\\u003c``-style escapes; ``\\n``, ``\\r``, ``\\t`` keep their short forms
and every other control character is written ``\\u00xx``.
"""

from __future__ import annotations

import hashlib

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
for _c in range(0x20):
    _ESCAPES.setdefault(chr(_c), f"\\u{_c:04x}")
for _c in "<>&\u2028\u2029":
    _ESCAPES[_c] = f"\\u{ord(_c):04x}"
_TRANSLATE = str.maketrans(_ESCAPES)


def _string(s: str) -> str:
    return '"' + s.translate(_TRANSLATE) + '"'


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=lambda k: k.encode("utf-8"))):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"canonical JSON cannot encode {type(value).__name__}")


def canonical_json(value: object) -> bytes:
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
