"""PCPYTHON preconditioners: ``-pc_type python -pc_python_type pinntao.pc.NAME``."""

from .lowrank import ExactPseudoInverse, NystromPC, SketchedPseudoInverse

__all__ = ["ExactPseudoInverse", "NystromPC", "SketchedPseudoInverse"]
