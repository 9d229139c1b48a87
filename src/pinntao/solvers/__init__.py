"""TAO python types for methods TAO lacks: ``-tao_type python -tao_python_type pinntao.solvers.NAME``."""

from .adam import Adam
from .base import Solver
from .isgd import ImplicitGD
from .natgrad import NaturalGradient
from .sav import ASAV, SAV, RelSAV, ResSAV
from .schedule import Schedule
from .spring import Spring

__all__ = ["ASAV", "SAV", "Adam", "ImplicitGD", "NaturalGradient", "RelSAV", "ResSAV", "Schedule", "Solver", "Spring"]
