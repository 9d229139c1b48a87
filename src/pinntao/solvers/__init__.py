"""TAO python types for methods TAO lacks: ``-tao_type python -tao_python_type pinntao.solvers.NAME``."""

from .adam import Adam
from .natgrad import NaturalGradient

__all__ = ["Adam", "NaturalGradient"]
