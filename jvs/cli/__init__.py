"""The command line: parses, calls the library, prints. No protocol logic lives here."""
