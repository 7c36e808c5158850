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
