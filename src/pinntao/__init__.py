"""pinntao: physics-informed neural networks trained with PETSc/TAO.

Torch computes residuals and their derivatives (float64); PETSc/TAO owns the parameter
Vec, the solvers, the Krylov methods and the preconditioners. Importing the package does
not initialise PETSc: call ``petsc4py.init(argv)`` first if you want command-line options.
"""

from .errors import PinnInputError
from .models import MLP, FlatModel, Jet, build_mlp
from .problems import PROBLEMS, Block, Box, Problem, get_problem

__version__ = "0.1.0"

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
]
