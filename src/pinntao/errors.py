"""Exceptions pinntao raises for bad user input, and the exit codes of ``python -m pinntao``."""

from __future__ import annotations

EXIT_OK = 0  # trained: converged, or stopped by an iteration, evaluation or time budget
EXIT_ERROR = 1  # an internal error (traceback; on several ranks: MPI_Abort)
EXIT_INPUT = 2  # bad options, input file or output path: nothing was trained
EXIT_FAILED = 3  # the solve failed: DIVERGED_* (other than a budget), non-finite, or final loss > initial
EXIT_OUTPUT = 4  # trained, but the report or the final checkpoint could not be written
# a run stopped by a signal exits 128 + signal: 130 (SIGINT), 143 (SIGTERM)


class PinnInputError(ValueError):
    """A user-supplied option or argument is invalid; the message names the allowed values.

    Raised inside a PETSc callback (a PC's or TAO's setFromOptions) it reaches the caller as
    a PETSc.Error; :attr:`last` keeps the original so the CLI can still print it plainly.
    """

    last: PinnInputError | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        PinnInputError.last = self


class RunFailedError(RuntimeError):
    """A failure every rank agreed on during a solve (e.g. a rank's monitor raised)."""
