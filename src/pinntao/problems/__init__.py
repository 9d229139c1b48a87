"""Built-in PDE problems. Add a problem: write a factory returning a :class:`Problem` in a
module here and register it in :data:`PROBLEMS` (or pass your own Problem to the API)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from string import Formatter
from typing import Any

from ..errors import PinnInputError
from . import burgers, cavity, helmholtz, klein_gordon, multiscale
from .anisotropic import anisotropic_poisson2d
from .base import Block, Box, Problem
from .burgers import burgers1d
from .cavity import cavity2d
from .heat import heat1d
from .helmholtz import helmholtz2d
from .klein_gordon import klein_gordon1d
from .lshape import poisson_lshape
from .multiscale import poisson1d_multiscale, poisson2d_multiscale
from .oned import nonlinear1d_neumann, singular_perturbation
from .poisson import poisson1d, poisson2d
from .transport import transport1d

PROBLEMS: dict[str, Callable[..., Problem]] = {
    "poisson1d": poisson1d,
    "poisson2d": poisson2d,
    "heat1d": heat1d,
    "poisson1d_multiscale": poisson1d_multiscale,
    "poisson2d_multiscale": poisson2d_multiscale,
    "helmholtz2d": helmholtz2d,
    "singular_perturbation": singular_perturbation,
    "nonlinear1d_neumann": nonlinear1d_neumann,
    "transport1d": transport1d,
    "burgers1d": burgers1d,
    "klein_gordon1d": klein_gordon1d,
    "poisson_lshape": poisson_lshape,
    "anisotropic_poisson2d": anisotropic_poisson2d,
    "cavity2d": cavity2d,
}

#: each problem's recommended set-up (the same dict as its Problem.recommended), readable without
#: building the problem: option name (no dash) → value
RECOMMENDED: dict[str, dict[str, str]] = {
    "burgers1d": burgers.RECOMMENDED,
    "cavity2d": cavity.RECOMMENDED,
    "helmholtz2d": helmholtz.RECOMMENDED,
    "klein_gordon1d": klein_gordon.RECOMMENDED,
    "poisson1d_multiscale": multiscale.RECOMMENDED_1D,
    "poisson2d_multiscale": multiscale.RECOMMENDED_2D,
}


#: entries that configure a choice the user may make: they step aside when the user made it (a
#: chosen solver sets its own steps; a chosen architecture its own inputs; the input map is refused
#: with the Fourier architectures, whose frequencies are in the problem's coordinates)
STEPS_ASIDE: dict[str, str] = {"pinn_optimizer": "tao_type", "pinn_input_scale": "pinn_arch"}


def recommended_values(name: str, params: dict[str, float] | None = None) -> dict[str, str]:
    """Problem ``name``'s recommended options with their values for the given parameters: an entry
    may name the problem's parameters (``"{a1:g},{a2:g}"``: Helmholtz's wave numbers as Fourier
    scales), filled from the defaults and ``params``, so a changed parameter changes the set-up."""
    check_params(name, params or {})  # a bad parameter is named before any value is built from it
    values = {**problem_params(name), **(params or {})} if name in PROBLEMS else {}
    return {key: value.format(**values) for key, value in RECOMMENDED.get(name, {}).items()}


def apply_recommended(
    db: Any, default_problem: str = "poisson2d", params: Callable[[str], dict[str, float]] | None = None
) -> list[tuple[str, str]]:
    """Write the chosen problem's recommended options that the user has not given into the PETSc
    options database ``db``; return those written. Off with ``-pinn_recommended 0``. An entry of
    :data:`STEPS_ASIDE` steps aside when the user gave the option it configures: the optimizer for a
    chosen solver (``-tao_type``), as a Trainer's default preset does; the input map for a chosen
    ``-pinn_arch``. A recommended batch size steps aside where the run's point counts are fewer.
    ``params(name)`` reads the user's problem parameters (``-pinn_param_*``) for entries built from them."""
    if db.hasName("pinn_recommended") and db.getString("pinn_recommended", "").lower() in ("0", "false", "no", "off"):
        return []
    name = db.getString("pinn_problem", default_problem) if db.hasName("pinn_problem") else default_problem
    if name not in RECOMMENDED:
        return []
    applied = []
    given = params(name) if params else None
    values = recommended_values(name, given)
    chosen = {key for key in STEPS_ASIDE.values() if db.hasName(key)}  # the user's, before any is written
    for key, value in values.items():
        if db.hasName(key) or STEPS_ASIDE.get(key) in chosen:
            continue
        if key == "pinn_batch_size" and not _batch_fits(int(value), name, given, db, values):
            continue
        db.setValue(key, value)
        applied.append((key, value))
    return applied


def _batch_fits(size: int, name: str, params: dict[str, float] | None, db: Any, values: dict[str, str]) -> bool:
    """Whether a recommended mini-batch of ``size`` points fits the point counts the run will have
    (the user's ``-pinn_n_*``, else the set-up's, else the problem's): between one point per block
    and all of them. A user's own counts below it make the batch step aside (all points each
    iteration) instead of ending in an error about an option the user never gave."""
    problem = get_problem(name, params)
    counts = {}
    for kind in problem.kinds:
        key = f"pinn_n_{kind}"
        try:
            counts[kind] = int(db.getString(key, "") if db.hasName(key) else values.get(key, ""))
        except ValueError:  # none given (the problem's default) or malformed (its option says so, later)
            pass
    return len(problem.blocks) <= size <= problem.n_points(counts)


def recommended_text(name: str) -> str:
    """Problem ``name``'s set-up as options, at the default parameters; an entry built from the
    parameters says from which (``-pinn_ff_scales 1,4 (= a1,a2)``)."""
    shown = recommended_values(name)
    parts = []
    for key, template in RECOMMENDED[name].items():
        text = f"-{key} {shown[key]}"
        if "{" in template:  # the template with its fields named, format specs dropped
            text += " (= " + "".join(lit + (field or "") for lit, field, _, _ in Formatter().parse(template)) + ")"
        parts.append(text)
    return " ".join(parts)


def recommended_help() -> str:
    """-help: every problem's recommended set-up."""
    lines = ["recommended set-ups (applied where you give none; -pinn_recommended 0: off):"]
    for name in sorted(RECOMMENDED):
        lines.append(f"  {name}: {recommended_text(name)}")
    return "\n".join(lines)


def _integer(lo: int, hi: int) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v == int(v) and lo <= v <= hi), f"an integer in [{lo}, {hi}]"


_POSITIVE: tuple[Callable[[float], bool], str] = ((lambda v: v > 0), "> 0")

#: the valid range of each problem parameter (others: any finite number), checked by get_problem
PARAM_RANGES: dict[str, dict[str, tuple[Callable[[float], bool], str]]] = {
    "anisotropic_poisson2d": {"a": ((lambda v: abs(v) < 1), "in (-1, 1), where the operator is elliptic")},
    "burgers1d": {"nu": _POSITIVE},
    "helmholtz2d": {a: ((lambda v: v != 0), "nonzero (u = sin(a1 πx) sin(a2 πy) vanishes otherwise)")
                    for a in ("a1", "a2")},
    "heat1d": {"kappa": _POSITIVE},
    "singular_perturbation": {"eps": _POSITIVE},
    "poisson_lshape": {"ref_n": _integer(2, 2000)},
    "cavity2d": {"re": _POSITIVE, "ref_n": _integer(4, 2000), "w_boundary": _POSITIVE,
                 "corner": ((lambda v: v >= 0), ">= 0")},
}


def check_params(name: str, params: dict[str, float]) -> None:
    """Each given parameter finite and in its problem's range (:data:`PARAM_RANGES`); a
    PinnInputError names the parameter, its -pinn_param_ option and what is allowed."""
    for key, value in params.items():
        ok, text = PARAM_RANGES.get(name, {}).get(key, (lambda v: True, ""))
        finite = isinstance(value, (int, float)) and math.isfinite(value)
        if not finite or not ok(value):
            must = f"finite and {text}" if text else "a finite number"
            raise PinnInputError(f"-pinn_param_{key}: {value!r} is not allowed for problem {name!r}; must be {must}")


def problem_params(name: str) -> dict[str, float]:
    """The keyword parameters of a built-in problem and their defaults."""
    factory = _factory(name)
    return {
        k: float(p.default)
        for k, p in inspect.signature(factory).parameters.items()
        if isinstance(p.default, (int, float))
    }


def _factory(name: str) -> Callable[..., Problem]:
    try:
        return PROBLEMS[name]
    except KeyError:
        raise PinnInputError(f"unknown problem {name!r}; allowed: {', '.join(sorted(PROBLEMS))}") from None


def get_problem(name: str, params: dict[str, float] | None = None) -> Problem:
    """The built-in problem called ``name`` with optional parameter overrides; clear errors
    list the names and parameters allowed."""
    factory = _factory(name)
    params = dict(params or {})
    allowed = problem_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise PinnInputError(
            f"problem {name!r} has no parameter(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}"
        )
    check_params(name, params)
    return factory(**params)


__all__ = ["PARAM_RANGES", "PROBLEMS", "RECOMMENDED", "Block", "Box", "Problem", "apply_recommended", "check_params",
           "get_problem", "problem_params", "recommended_help", "recommended_text", "recommended_values"]
