"""Adam (Kingma & Ba) as a TAO python type: the first-order baseline of the PINN papers.

``-tao_type python -tao_python_type pinntao.solvers.Adam -tao_adam_lr 1e-3``. Moments live in
PETSc Vecs in the parameter layout, so it runs unchanged on any number of ranks.
"""

from __future__ import annotations

from petsc4py import PETSc

from ..options import Option, OptionSet, positive
from .base import Solver


class Adam(Solver):
    """θ ← θ − lr · m̂ / (√v̂ + ε) with bias-corrected moments m, v of ∇L."""

    options = OptionSet(
        "Adam TAO (pinntao.solvers.Adam)",
        "tao_adam_",
        [
            Option("lr", "float", 1e-3, "learning rate", check=positive, check_text="> 0"),
            Option("beta1", "float", 0.9, "first-moment decay", check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
            Option("beta2", "float", 0.999, "second-moment decay", check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
            Option("eps", "float", 1e-8, "denominator guard", check=positive, check_text="> 0"),
        ],
    )
    work_vecs = ("g", "m", "v", "w")
    state_vecs = ("m", "v")
    state_scalars = ("t",)  # Adam steps taken (bias correction), across restarts
    restore_nonfinite = True

    def __init__(self) -> None:
        super().__init__()
        self.t = 0
        self.m: PETSc.Vec | None = None
        self.v: PETSc.Vec | None = None

    def restart_state(self, tao: PETSc.TAO) -> dict:
        return super().restart_state(tao) if self.m is not None else {}

    def preSolve(self, tao: PETSc.TAO, x: PETSc.Vec) -> None:
        self.m.set(0.0)
        self.v.set(0.0)
        self.t = 0

    def step(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> tuple[float, float]:
        lr, b1, b2, eps = (self.opts[k] for k in ("lr", "beta1", "beta2", "eps"))
        g, m, v, w = self.g, self.m, self.v, self.w
        t = self.t + 1
        m.scale(b1)
        m.axpy(1 - b1, g)
        g.pointwiseMult(g, g)  # g ← g² (g is recomputed below)
        v.scale(b2)
        v.axpy(1 - b2, g)
        # w = (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)
        v.copy(w)
        w.scale(1.0 / (1 - b2**t))
        w.sqrtabs()
        w.shift(eps)
        w.pointwiseDivide(m, w)
        x.axpy(-lr / (1 - b1**t), w)
        return self.evaluate(tao, x), lr

    def accepted(self, f: float) -> None:
        self.t += 1

    def nonfinite_message(self, f: float) -> str:
        return (f"non-finite loss after Adam step {self.t + 1}: stopped, θ restored to step {self.t} "
                f"(loss {f:.3e})")
