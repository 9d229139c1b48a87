"""TAO python types for methods TAO lacks: ``-tao_type python -tao_python_type pinntao.solvers.NAME``."""

from .natgrad import NaturalGradient

__all__ = ["NaturalGradient"]
