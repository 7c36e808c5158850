"""CLI commands (placeholder: filled in by the restore work)."""

COMMANDS: list = []
