"""CLI commands (placeholder: filled in by the integrity work)."""

COMMANDS: list = []
