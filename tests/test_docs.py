"""The user documentation keeps up with the CLI: every registered command has its
section in docs/commands.md, and the documents link to files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_every_command_has_a_section_and_the_reference_is_current():
    text = (DOCS / "commands.md").read_text()
    headings = set(re.findall(r"^#{2,3} (.+)$", text, flags=re.M))
    commands = set(_command_paths(cli, click.Context(cli, info_name="jvs")))
    assert commands <= headings, f"missing from docs/commands.md: {commands - headings}"
    generated = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_commands_doc.py")],
                               capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert generated.strip() == text.strip(), \
        "docs/commands.md is stale: run tools/gen_commands_doc.py > docs/commands.md"


def test_user_docs_exist_and_relative_links_resolve():
    for name in ("quickstart", "commands", "format", "guarantees", "troubleshooting",
                 "scenarios", "python-api"):
        assert (DOCS / f"{name}.md").is_file(), name
    for doc in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_troubleshooting_covers_every_error_class():
    from jvs.errors import ERROR_CLASSES

    text = (DOCS / "troubleshooting.md").read_text()
    missing = [c for c in sorted(ERROR_CLASSES) if f"## {c}" not in text]
    assert not missing, missing
