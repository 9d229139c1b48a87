"""PCPYTHON preconditioners: ``-pc_type python -pc_python_type pinntao.pc.NAME``."""

from .lowrank import ExactPseudoInverse, NystromPC, SketchedPseudoInverse
from .proximal import ProximalOperator, ProximalPC, proximal_mat

__all__ = ["ExactPseudoInverse", "NystromPC", "ProximalOperator", "ProximalPC", "SketchedPseudoInverse", "proximal_mat"]
