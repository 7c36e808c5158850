"""``.jvsignore``: paths a worktree keeps out of its snapshots.

The file sits at the top of a worktree and holds gitignore-style patterns, one per line
(docs/ignore.md has the full rules). jvs acts as if an ignored path did not exist:
snapshots leave it out, ``status`` and ``diff`` do not see it, and ``restore`` neither
removes nor replaces it. As in Git, a path inside an ignored directory cannot be
re-included by a later ``!`` pattern, which lets every walk skip an ignored directory
without looking inside.

Matching is on worktree-relative paths with ``/`` separators, case-sensitive.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from jvs.errors import JvsError

IGNORE_FILE = ".jvsignore"
MAX_IGNORE_BYTES = 1 << 20
_TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


class IgnoreRules:
    """The parsed patterns of one ``.jvsignore`` (empty: nothing is ignored)."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        # Lines end at "\n" only, as in Git (str.splitlines would also split on \f, \v...).
        self._rules = tuple(r for r in map(_parse_line, text.split("\n")) if r is not None)
        if not any(r.negate for r in self._rules):
            # Without negations the order does not matter: one regex per kind of rule.
            self._any = _union([r for r in self._rules if not r.dir_only])
            self._any_dir = _union([r for r in self._rules if r.dir_only])
        else:
            self._any = self._any_dir = None

    @classmethod
    def load(cls, worktree_dir: Path) -> IgnoreRules:
        """The rules of the worktree at *worktree_dir*. A missing file means none; a
        ``.jvsignore`` that is a symlink or not a regular file is refused, so a worktree
        cannot make jvs read a file outside it."""
        path = os.path.join(worktree_dir, IGNORE_FILE)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            if os.path.islink(path):
                raise JvsError("E_PATH_ESCAPE", f"{path} is a symlink",
                               hint=f"make {IGNORE_FILE} a regular file") from None
            raise JvsError("E_IO", f"cannot read {path}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise JvsError("E_USAGE", f"{path} is not a regular file",
                               hint=f"make {IGNORE_FILE} a text file of patterns")
            data = os.read(fd, MAX_IGNORE_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_IGNORE_BYTES:
            raise JvsError("E_USAGE", f"{path} is larger than 1 MiB")
        return cls(data.decode("utf-8", "surrogateescape"))

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, rel: str, is_dir: bool) -> bool:
        """Whether the patterns ignore *rel* itself (its parents not considered: walks
        never get below an ignored directory)."""
        if not self._rules:
            return False
        if self._any is not None or self._any_dir is not None:
            if self._any is not None and self._any.match(rel):
                return True
            return is_dir and self._any_dir is not None and bool(self._any_dir.match(rel))
        for rule in reversed(self._rules):  # the last matching pattern decides
            if (is_dir or not rule.dir_only) and rule.regex.match(rel):
                return not rule.negate
        return False

    def below(self, prefix: str) -> _Below:
        """These rules for paths relative to the directory *prefix* of the worktree."""
        return _Below(self, prefix)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether *rel* is ignored, by its own patterns or because a directory above it
        is."""
        return self.match(rel, is_dir) or self.parent_ignored(rel)

    def parent_ignored(self, rel: str) -> bool:
        """Whether a directory above *rel* is ignored."""
        if not self._rules:
            return False
        parts = rel.split("/")
        return any(self.match("/".join(parts[:depth]), True) for depth in range(1, len(parts)))


class _Below:
    def __init__(self, rules: IgnoreRules, prefix: str) -> None:
        self.rules, self.prefix = rules, prefix.rstrip("/") + "/"

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, rel: str, is_dir: bool) -> bool:
        return self.rules.match(self.prefix + rel, is_dir)


def template_names() -> list[str]:
    """The ready-made ``.jvsignore`` files shipped with jvs (``jvs init --template``)."""
    return sorted(p.name.removesuffix(".jvsignore")
                  for p in _TEMPLATES.glob("*.jvsignore"))


def template_text(name: str) -> str:
    """The text of template *name*, or of the file at path *name*."""
    path = _TEMPLATES / f"{name}.jvsignore" if name in template_names() else Path(name)
    try:
        data = path.read_bytes()
    except OSError:
        known = ", ".join(template_names())
        raise JvsError("E_NOT_FOUND", f"no template {name!r} (known: {known}; or give a "
                       "file of patterns)") from None
    if len(data) > MAX_IGNORE_BYTES:
        raise JvsError("E_USAGE", f"{name} is larger than 1 MiB")
    return data.decode("utf-8", "surrogateescape")


def _union(rules: list[_Rule]) -> re.Pattern[str] | None:
    if not rules:
        return None
    return re.compile("|".join(f"(?:{r.regex.pattern})" for r in rules), re.DOTALL)


def _parse_line(line: str) -> _Rule | None:
    line = line.rstrip("\r")  # a file saved with CRLF (a name cannot end in CR anyway)
    if not line or line.startswith("#"):
        return None
    # Trailing spaces are dropped unless the last one is escaped with a backslash.
    stripped = line.rstrip(" ")
    if stripped != line and stripped.endswith("\\") and not _escaped_backslash_end(stripped):
        stripped += " "
    line = stripped
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line  # a slash at the start or in the middle: relative to the top
    line = line.lstrip("/")
    if not line:
        return None
    body = _translate(line)
    if body is None:
        return None  # an invalid pattern (a trailing backslash) matches nothing, as in Git
    prefix = "" if anchored else "(?:.*/)?"
    return _Rule(re.compile(f"{prefix}{body}\\Z", re.DOTALL), negate, dir_only)


def _escaped_backslash_end(text: str) -> bool:
    """Whether *text* ends in an even number of backslashes (none of them escapes the
    following space)."""
    count = len(text) - len(text.rstrip("\\"))
    return count % 2 == 0


def _translate(pattern: str) -> str | None:
    """A glob of gitignore's flavour (``*``, ``?``, ``[...]``, ``**``, backslash escapes)
    as a regular expression over a relative path."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            segment = (i == 0 or pattern[i - 1] == "/") and (j == n or pattern[j] == "/")
            if j - i == 2 and segment:
                if j == n:
                    out.append(".*")  # "dir/**": everything inside
                    i = j
                else:
                    out.append("(?:.*/)?")  # "**/": any number of directories, even none
                    i = j + 1
            else:
                out.append("[^/]*")
                i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            cls, i = _char_class(pattern, i)
            out.append(cls)
        elif c == "\\":
            if i + 1 == n:
                return None
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """``[...]`` at *start*: the regex for it and the index after it. An unclosed
    bracket is a literal ``[``. A class never matches ``/``."""
    i, n = start + 1, len(pattern)
    negate = i < n and pattern[i] in "!^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while i < n and (pattern[i] != "]" or first):
        first = False
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            items.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "-" and items and i + 1 < n and pattern[i + 1] != "]":
            items.append("-")
            i += 1
        else:
            items.append("\\" + c if c in "\\^[]-" else c)
            i += 1
    if i >= n:
        return re.escape("["), start + 1
    body = "".join(items)
    return (f"(?!/)[^{body}]" if negate else f"(?!/)[{body}]"), i + 1
