"""Shell completion candidates: worktree names, tags, snapshot references, config keys.

click calls these with the half-parsed context while the user presses TAB. They must
never fail (a traceback in the middle of a command line is worse than no candidates) and
must stay quick, so each reads only what it needs and swallows every error.
"""

from __future__ import annotations

import os

import click
from click.shell_completion import CompletionItem


def _repo_location(ctx: click.Context):
    """The repository the command line being completed would act on (-C respected)."""
    from jvs.repo import discover

    directory = ctx.find_root().params.get("directory") or os.getcwd()
    return discover(directory)


def complete_worktree(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """Worktree names."""
    try:
        from jvs.worktree import list_worktree_names

        names = list_worktree_names(_repo_location(ctx).repo)
    except Exception:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def _descriptors(ctx: click.Context):
    from jvs.catalog import load_descriptors

    return load_descriptors(_repo_location(ctx).repo)


def complete_tag(ctx: click.Context, param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
    """Tags in use, each once."""
    try:
        descs = _descriptors(ctx)
    except Exception:
        return []
    tags = dict.fromkeys(t for d in reversed(descs) for t in d.tags)
    return [CompletionItem(t) for t in tags if t.startswith(incomplete)]


def complete_snapshot_ref(ctx: click.Context, param: click.Parameter,
                          incomplete: str) -> list[CompletionItem]:
    """Snapshot references: HEAD, tags, then short IDs (full IDs once the user types the
    timestamp digits), newest first, each with its note as the help text."""
    if param.nargs == -1 and ctx.params.get(param.name):
        return []  # "[REF] NAME": once REF is given, NAME is a new name
    try:
        from jvs.ids import short_id

        descs = list(reversed(_descriptors(ctx)))
    except Exception:
        return []
    out: list[CompletionItem] = []
    if "HEAD".startswith(incomplete):
        out.append(CompletionItem("HEAD", help="the worktree's head snapshot"))
    if "latest".startswith(incomplete):
        out.append(CompletionItem("latest", help="the worktree's newest snapshot"))
    seen: set[str] = set()
    for d in descs:
        for t in d.tags:
            if t not in seen and t.startswith(incomplete):
                seen.add(t)
                out.append(CompletionItem(t, help=f"tag, newest: {short_id(d.snapshot_id)}"))
    long_form = len(incomplete) >= 1 and incomplete[:1].isdigit() and (
        len(incomplete) > 8 or "-" in incomplete)
    for d in descs:
        ident = d.snapshot_id if long_form else short_id(d.snapshot_id)
        if ident.startswith(incomplete):
            note = d.note.splitlines()[0] if d.note else ""
            out.append(CompletionItem(ident, help=note[:60]))
    return out


def complete_tag_of_ref(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[CompletionItem]:
    """The tags of the snapshot named earlier on the line (``tag remove REF TAG``)."""
    try:
        from jvs.resolve import resolve

        loc = _repo_location(ctx)
        desc = resolve(loc.repo, ctx.params.get("ref") or "", loc.worktree)
    except Exception:
        return []
    given = set(ctx.params.get("tags") or ())
    return [CompletionItem(t) for t in desc.tags if t.startswith(incomplete) and t not in given]


def complete_config_key(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[CompletionItem]:
    from jvs.config import KEYS

    return [CompletionItem(k, help=spec.help) for k, spec in KEYS.items()
            if k.startswith(incomplete)]


def complete_config_value(ctx: click.Context, param: click.Parameter,
                          incomplete: str) -> list[CompletionItem]:
    from jvs.config import KEYS

    spec = KEYS.get(ctx.params.get("key") or "")
    if spec is None:
        return []
    if spec.key == "default_tags":  # a comma list: complete its last item
        head, _, last = incomplete.rpartition(",")
        done = set(head.split(",")) if head else set()
        prefix = head + "," if head else ""
        return [CompletionItem(prefix + item.value)
                for item in complete_tag(ctx, param, last) if item.value not in done]
    return [CompletionItem(c) for c in spec.choices if c.startswith(incomplete)]


def complete_path(ctx: click.Context, param: click.Parameter,
                  incomplete: str) -> list[CompletionItem]:
    """Let the shell complete file names (for ``--paths``)."""
    return [CompletionItem(incomplete, type="file")]


def complete_template(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """The shipped ``.jvsignore`` templates, or a file name."""
    from jvs.ignore import template_names

    names = [n for n in template_names() if n.startswith(incomplete)]
    return [CompletionItem(n) for n in names] or [CompletionItem(incomplete, type="file")]


def complete_dir(ctx: click.Context, param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
    """Let the shell complete directory names (mount points, ``-C``)."""
    return [CompletionItem(incomplete, type="dir")]
