"""The user documentation keeps up with the CLI: every registered command has its
section in docs/commands.md, and the documents link to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import click

from jvs.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _command_paths(group: click.Group, ctx: click.Context, prefix=()):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        yield " ".join((*prefix, name))
        if isinstance(cmd, click.Group):
            yield from _command_paths(cmd, ctx, (*prefix, name))


def test_every_command_and_option_is_in_the_reference():
    """Every command has its section and every option of it is mentioned there (the
    wording may lag; regenerate with .venv/bin/python tools/gen_commands_doc.py)."""
    text = (DOCS / "commands.md").read_text()
    sections = {}
    for chunk in re.split(r"^#{2,3} ", text, flags=re.M)[1:]:
        title, _, body = chunk.partition("\n")
        sections[title.strip()] = body
    root = click.Context(cli, info_name="jvs")
    for path in _command_paths(cli, root):
        assert path in sections, f"docs/commands.md has no section for 'jvs {path}'"
        cmd = cli
        for part in path.split():
            cmd = cmd.get_command(root, part)
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert any(o in sections[path] for o in param.opts), \
                    f"docs/commands.md: 'jvs {path}' does not mention {param.opts[0]}"


def test_user_docs_exist_and_relative_links_resolve():
    for name in ("quickstart", "commands", "format", "guarantees", "troubleshooting",
                 "scenarios", "python-api"):
        assert (DOCS / f"{name}.md").is_file(), name
    for doc in DOCS.glob("**/*.md"):
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_generated_command_pages_are_current():
    """docs/commands.md and docs/commands/*.md are exactly what the CLI generates now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_commands_doc.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    pages = gen.render()
    on_disk = set((DOCS / "commands").glob("*.md")) | {DOCS / "commands.md"}
    assert set(pages) == on_disk, "run: .venv/bin/python tools/gen_commands_doc.py"
    for path, text in pages.items():
        assert path.read_text() == text, \
            f"{path.name} is stale; run: .venv/bin/python tools/gen_commands_doc.py"


def test_troubleshooting_covers_every_error_class():
    from jvs.errors import ERROR_CLASSES

    text = (DOCS / "troubleshooting.md").read_text()
    missing = [c for c in sorted(ERROR_CLASSES) if f"## {c}" not in text]
    assert not missing, missing


def test_man_pages_are_current():
    """man/man1/jvs.1 and jvs-<command>.1 are exactly what the CLI generates now, one per
    command of the reference."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_commands_doc.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    pages = gen.render_man()
    on_disk = set((ROOT / "man" / "man1").glob("*.1"))
    assert set(pages) == on_disk, "run: .venv/bin/python tools/gen_commands_doc.py"
    for path, text in pages.items():
        assert path.read_text() == text, \
            f"{path.name} is stale; run: .venv/bin/python tools/gen_commands_doc.py"
    commands = set(_command_paths(cli, click.Context(cli, info_name="jvs")))
    assert {p.name for p in pages} == {"jvs.1"} | {
        f"jvs-{c.replace(' ', '-')}.1" for c in commands}
