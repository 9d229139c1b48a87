"""Exceptions pinntao raises for bad user input (caught by the CLI and shown as one line)."""

from __future__ import annotations


class PinnInputError(ValueError):
    """A user-supplied option or argument is invalid; the message names the allowed values.

    Raised inside a PETSc callback (a PC's or TAO's setFromOptions) it reaches the caller as
    a PETSc.Error; :attr:`last` keeps the original so the CLI can still print it plainly.
    """

    last: PinnInputError | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        PinnInputError.last = self
