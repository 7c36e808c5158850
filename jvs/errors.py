"""The one error type of jvs: a SPEC error class, a message and an optional hint."""

from __future__ import annotations

# Every class the SPEC names (§10). A JvsError must carry one of them.
ERROR_CLASSES = frozenset(
    {
        "E_NAME_INVALID",
        "E_PATH_ESCAPE",
        "E_NOT_FOUND",
        "E_AMBIGUOUS",
        "E_NOT_A_REPO",
        "E_BUSY",
        "E_DESCRIPTOR_CORRUPT",
        "E_PAYLOAD_HASH_MISMATCH",
        "E_LINEAGE_BROKEN",
        "E_PARTIAL_SNAPSHOT",
        "E_GC_PLAN_MISMATCH",
        "E_FORMAT_UNSUPPORTED",
        "E_AUDIT_CHAIN_BROKEN",
        "E_ENGINE",
        "E_UNSAVED",
        "E_USAGE",
        "E_IO",
    }
)


class JvsError(Exception):
    """A failure the user should see as ``jvs: E_CLASS: message``."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        if code not in ERROR_CLASSES:
            raise ValueError(f"unknown error class {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def to_json(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.hint:
            err["hint"] = self.hint
        return {"error": err}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def short_path(path: object, limit: int = 160) -> str:
    """*path* for a message: a name near PATH_MAX would make the error 4 KB long."""
    import os

    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    if len(text) <= limit:
        return text
    half = limit // 2 - 2
    return f"{text[:half]}...{text[-half:]}"


def io_error(exc: OSError, doing: str, hint: str | None = None) -> JvsError:
    """E_IO for what the operating system refused (disk full, permission, read-only,
    name too long...) while *doing* something: the reason and the path, kept short."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc)
    where = f": {short_path(exc.filename)}" if exc.filename is not None else ""
    return JvsError("E_IO", f"{doing}: {reason}{f' ({name})' if name else ''}{where}", hint)
