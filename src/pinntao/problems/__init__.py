"""Built-in PDE problems. Add a problem: write a factory returning a :class:`Problem` in a
module here and register it in :data:`PROBLEMS` (or pass your own Problem to the API)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import PinnInputError
from .base import Block, Box, Problem
from .heat import heat1d
from .poisson import poisson1d, poisson2d

PROBLEMS: dict[str, Callable[[], Problem]] = {
    "poisson1d": poisson1d,
    "poisson2d": poisson2d,
    "heat1d": heat1d,
}


def get_problem(name: str) -> Problem:
    """The built-in problem called ``name``; a clear error lists the names allowed."""
    try:
        factory = PROBLEMS[name]
    except KeyError:
        raise PinnInputError(f"unknown problem {name!r}; allowed: {', '.join(sorted(PROBLEMS))}") from None
    return factory()


__all__ = ["PROBLEMS", "Block", "Box", "Problem", "get_problem"]
