"""pinntao: physics-informed neural networks trained with PETSc/TAO.

Torch computes residuals and their derivatives (float64); PETSc/TAO owns the parameter
Vec, the solvers, the Krylov methods and the preconditioners. Importing the package does
not initialise PETSc: call ``petsc4py.init(argv)`` first if you want command-line options.
The PETSc-facing names (``PinnObjective``, ``Trainer``, the PCs and TAO types) are loaded on
first use, so ``from pinntao import Trainer`` after ``petsc4py.init(sys.argv)`` sees your options.
"""

from __future__ import annotations

from . import _startup  # noqa: F401  (first: under python -m pinntao, start-up signals are one line)

# isort: split
import importlib
from typing import Any

from .errors import PinnInputError
from .models import MLP, FlatModel, Jet, build_mlp
from .problems import PROBLEMS, Block, Box, Problem, get_problem

__version__ = "0.1.0"

_LAZY = {
    "PinnObjective": "objective",
    "Trainer": "train",
    "Result": "train",
    "apply_preset": "presets",
    "signals": "signals",
    "SketchedPseudoInverse": "pc",
    "NystromPC": "pc",
    "ExactPseudoInverse": "pc",
    "ProximalPC": "pc",
    "Solver": "solvers",
    "Adaptation": "sampling",
    "NaturalGradient": "solvers",
    "ImplicitGD": "solvers",
    "Schedule": "solvers",
    "Adam": "solvers",
    "Spring": "solvers",
    "SAV": "solvers",
    "ResSAV": "solvers",
    "RelSAV": "solvers",
    "ASAV": "solvers",
}


def __getattr__(name: str) -> Any:
    """Import PETSc-facing modules on first use (PEP 562), never at ``import pinntao``."""
    if name not in _LAZY:
        raise AttributeError(f"module 'pinntao' has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name]}", __name__)
    return module if name == _LAZY[name] else getattr(module, name)


__all__ = [
    "MLP",
    "PROBLEMS",
    "Block",
    "Box",
    "FlatModel",
    "Jet",
    "PinnInputError",
    "Problem",
    "build_mlp",
    "get_problem",
    *_LAZY,
]
