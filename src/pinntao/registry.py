"""One registry of pinntao's PETSc python types and presets.

A solver registers itself by subclassing :class:`pinntao.solvers.base.Solver` (``__init_subclass__``);
the PCs are listed here with the KSP prefix the presets put them under; presets live in
:mod:`pinntao.presets`. ``-help``, the generated docs/options.md, the API reference, the CLI's
memory estimate and the report read what is registered here: adding a solver is one file in
``solvers/`` (imported by ``solvers/__init__``) plus its test.
"""

from __future__ import annotations

import importlib
from typing import Any

#: registered TAO python types, by their -tao_python_type name, in registration order
SOLVERS: dict[str, type] = {}

#: pinntao PCs: python type name -> (KSP prefix the presets use, memory model)
PCS: dict[str, tuple[str, str]] = {
    "pinntao.pc.SketchedPseudoInverse": ("tao_ng_", "sketch"),
    "pinntao.pc.NystromPC": ("tao_ng_", "sketch"),
    "pinntao.pc.ExactPseudoInverse": ("tao_ng_", "dense"),
    "pinntao.pc.ProximalPC": ("tao_isgd_", "sketch"),
}

#: the order docs/options.md and -help list the solvers in
_ORDER = ("NaturalGradient", "ImplicitGD", "Schedule", "Adam", "SAV", "Spring")


def register_solver(cls: type) -> type:
    """Add a TAO python type (called by Solver.__init_subclass__; usable as a decorator)."""
    module = cls.__module__
    name = f"pinntao.solvers.{cls.__name__}" if module.startswith("pinntao.solvers.") else f"{module}.{cls.__name__}"
    SOLVERS[name] = cls
    return cls


def _resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def solvers() -> dict[str, type]:
    """Every registered solver (imports pinntao.solvers, which registers the built-in ones)."""
    importlib.import_module("pinntao.solvers")
    return SOLVERS


def object_option_sets() -> list[tuple[Any, str]]:
    """(option set, owner prefix) of pinntao's PETSc python objects, each set once: TAO types
    unprefixed, each PC under the prefix of the KSP the presets put it in."""
    reg = {k: v for k, v in solvers().items() if k.startswith("pinntao.")}  # not a script's own solver
    ordered = sorted(reg.values(), key=lambda c: _ORDER.index(c.__name__) if c.__name__ in _ORDER else len(_ORDER))
    out, seen = [], set()
    for cls in ordered:
        for oset in cls.option_sets():
            if id(oset) not in seen:
                seen.add(id(oset))
                out.append((oset, ""))
    for name, (owner, _) in PCS.items():
        oset = _resolve(name).options
        if id(oset) not in seen:
            seen.add(id(oset))
            out.append((oset, owner))
    return out


def memory_traits(options: dict[str, str]) -> dict[str, bool]:
    """What the chosen options build that the memory estimate must count: a low-rank sketch, a
    dense Gram matrix, a kernel (N × N) solve. ``options``: option name -> value (preset and user's)."""
    types = [v for k, v in options.items() if k.endswith("python_type")]
    pcs = [PCS[t][1] for t in types if t in PCS]
    kernel = any(getattr(solvers().get(t), "memory_model", "") == "kernel" for t in types)
    return {"sketch": "sketch" in pcs, "dense": "dense" in pcs, "kernel": kernel}


def presets() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    from .presets import PRESETS

    return PRESETS
