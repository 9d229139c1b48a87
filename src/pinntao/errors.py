"""Exceptions pinntao raises for bad user input (caught by the CLI and shown as one line)."""


class PinnInputError(ValueError):
    """A user-supplied option or argument is invalid; the message names the allowed values."""
