"""The command line: parses arguments, calls the library, renders output. Nothing imports it."""
