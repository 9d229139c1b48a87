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


def root_cause(exc: BaseException) -> BaseException:
    """The original Python exception behind a petsc4py error (a callback that raised inside TAO)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def describe_exception(exc: BaseException) -> str:
    """One line for an exception: its root cause's type and the first line of its message."""
    exc = root_cause(exc)
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
