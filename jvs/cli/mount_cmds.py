"""CLI commands (placeholder: filled in by the mount work)."""

COMMANDS: list = []
