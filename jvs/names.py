"""Names of worktrees and tags (SPEC §2)."""

from __future__ import annotations

import re
import unicodedata

from jvs.errors import JvsError

_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
SNAPSHOT_ID_RE = re.compile(r"[0-9]{13}-[0-9a-f]{8}")
# A worktree name becomes a file name with a suffix (``<name>.json``, ``restore-<name>``):
# kept well under the 255 bytes a file name may have.
MAX_NAME_BYTES = 200


def _check(kind: str, raw: str) -> str:
    name = unicodedata.normalize("NFC", raw)
    if not name:
        raise JvsError("E_NAME_INVALID", f"{kind} name is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise JvsError("E_NAME_INVALID", f"{kind} name {name!r} contains a control character")
    if "/" in name or "\\" in name:
        raise JvsError("E_NAME_INVALID", f"{kind} name {name!r} contains a path separator")
    if ".." in name or name == ".":
        raise JvsError("E_NAME_INVALID", f"{kind} name {name!r} contains '..' or is '.'")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise JvsError("E_NAME_INVALID",
                       f"{kind} name is {len(name.encode())} bytes long "
                       f"(at most {MAX_NAME_BYTES})", hint="use a shorter name")
    if not _NAME_RE.fullmatch(name):
        raise JvsError(
            "E_NAME_INVALID",
            f"{kind} name {name!r} has characters outside [A-Za-z0-9._-]",
            hint="use letters, digits, '.', '_' and '-'",
        )
    return name


def validate_worktree_name(raw: str) -> str:
    """Return the NFC form of a worktree name, or raise E_NAME_INVALID."""
    return _check("worktree", raw)


def validate_tag(raw: str) -> str:
    """Return the NFC form of a tag, or raise E_NAME_INVALID."""
    tag = _check("tag", raw)
    if tag in ("HEAD", "latest") or tag.startswith("HEAD~"):
        raise JvsError("E_NAME_INVALID", f"tag {tag!r} is reserved (it is a reference)")
    if SNAPSHOT_ID_RE.fullmatch(tag):
        raise JvsError("E_NAME_INVALID", f"tag {tag!r} looks like a snapshot ID")
    return tag


# Notes are text a person reads; the limit keeps a mistaken `-F bigfile` out of every
# listing (docs/guarantees.md).
MAX_NOTE_BYTES = 64 * 1024


def validate_note(text: str) -> str:
    """A snapshot note as stored: trailing newlines dropped (``echo note |`` adds one),
    at most :data:`MAX_NOTE_BYTES` of UTF-8, else E_USAGE."""
    note = text.rstrip("\n")
    try:
        size = len(note.encode("utf-8"))
    except UnicodeEncodeError:
        raise JvsError("E_USAGE", "note is not valid UTF-8",
                       hint="notes are text; check the file's encoding") from None
    if size > MAX_NOTE_BYTES:
        raise JvsError("E_USAGE", f"note is longer than {MAX_NOTE_BYTES} bytes")
    return note
