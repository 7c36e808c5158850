"""CLI commands (placeholder: filled in by the config/completion work)."""

COMMANDS: list = []
