"""The errors of jvs: one class per SPEC error class, all of them :class:`JvsError`.

Every error carries its class as ``.code`` (what the CLI prints as ``jvs: E_CLASS:``), a
message and an optional hint. ``JvsError("E_NOT_FOUND", ...)`` builds a
:class:`NotFoundError`, so library code names the SPEC class and Python callers catch
the subclass::

    try:
        repo.restore("nightly")
    except jvs.errors.NotFoundError:
        ...
"""

from __future__ import annotations

from typing import ClassVar


class JvsError(Exception):
    """A failure the user should see as ``jvs: E_CLASS: message``."""

    code: str
    #: The SPEC error class of a subclass (``""`` on JvsError itself).
    CODE: ClassVar[str] = ""

    def __new__(cls, *args: object, **kwargs: object) -> JvsError:
        if cls is JvsError and args:
            sub = _BY_CODE.get(args[0]) if isinstance(args[0], str) else None
            if sub is None:
                raise ValueError(f"unknown error class {args[0]!r}")
            cls = sub
        return super().__new__(cls)

    def __init__(self, *args: str | None, hint: str | None = None) -> None:
        # JvsError(code, message[, hint]); on a subclass also Subclass(message[, hint]).
        code = self.CODE
        if len(args) >= 2 and args[0] in _BY_CODE and (not code or args[0] == code):
            code, args = args[0], args[1:]
        if not code:
            raise ValueError(f"unknown error class {args[0] if args else None!r}")
        if not args or len(args) > 2:
            raise TypeError(f"{type(self).__name__}(message, hint=None)")
        message = args[0]
        if len(args) == 2:
            hint = args[1]
        super().__init__(code, message, hint)
        self.code = code
        self.message = message
        self.hint = hint

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.hint))

    def to_json(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.hint:
            err["hint"] = self.hint
        return {"error": err}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NameInvalidError(JvsError):
    CODE = "E_NAME_INVALID"


class PathEscapeError(JvsError):
    CODE = "E_PATH_ESCAPE"


class NotFoundError(JvsError):
    CODE = "E_NOT_FOUND"


class AmbiguousError(JvsError):
    CODE = "E_AMBIGUOUS"


class NotARepoError(JvsError):
    CODE = "E_NOT_A_REPO"


class BusyError(JvsError):
    CODE = "E_BUSY"


class DescriptorCorruptError(JvsError):
    CODE = "E_DESCRIPTOR_CORRUPT"


class PayloadHashMismatchError(JvsError):
    CODE = "E_PAYLOAD_HASH_MISMATCH"


class LineageBrokenError(JvsError):
    CODE = "E_LINEAGE_BROKEN"


class PartialSnapshotError(JvsError):
    CODE = "E_PARTIAL_SNAPSHOT"


class GcPlanMismatchError(JvsError):
    CODE = "E_GC_PLAN_MISMATCH"


class FormatUnsupportedError(JvsError):
    CODE = "E_FORMAT_UNSUPPORTED"


class AuditChainBrokenError(JvsError):
    CODE = "E_AUDIT_CHAIN_BROKEN"


class EngineError(JvsError):
    CODE = "E_ENGINE"


class UnsavedError(JvsError):
    CODE = "E_UNSAVED"


class UsageError(JvsError):
    CODE = "E_USAGE"


class IOFailure(JvsError):
    """E_IO: the file system failed under an operation (disk full, permissions)."""

    CODE = "E_IO"


_BY_CODE: dict[str, type[JvsError]] = {c.CODE: c for c in JvsError.__subclasses__()}

# Every class the SPEC names (§10), and the two of the CLI (usage, I/O).
ERROR_CLASSES = frozenset(_BY_CODE)


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
