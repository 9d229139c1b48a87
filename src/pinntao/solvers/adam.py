"""Adam (Kingma & Ba) as a TAO python type: the first-order baseline of the PINN papers.

``-tao_type python -tao_python_type pinntao.solvers.Adam -tao_adam_lr 1e-3``. Moments live in
PETSc Vecs in the parameter layout, so it runs unchanged on any number of ranks.
"""

from __future__ import annotations

import math
from typing import Any

from petsc4py import PETSc

from ..options import Option, OptionSet, help_requested, positive

R = PETSc.TAO.ConvergedReason


class Adam:
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

    def __init__(self) -> None:
        self.opts: dict[str, Any] = {}
        self.message = ""
        self._m: PETSc.Vec | None = None
        self._v: PETSc.Vec | None = None
        self._t = 0  # Adam steps taken (bias correction), across restarts
        self._resume: dict[str, Any] | None = None
        self._stale = False  # a monitor changed L (batches, RAD, weights): ∇L is recomputed before the next step

    def objective_changed(self, tao: PETSc.TAO) -> None:
        """Called by a monitor that changed the loss (pinntao.sampling): the next step uses ∇ of the new L."""
        self._stale = True

    def restart_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """What a restart needs besides θ: the moments and the step count."""
        return {"step": self._t, "m": self._m, "v": self._v} if self._m is not None else {}

    def load_restart_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: full-length m, v arrays and the step count (used by the next solve)."""
        self._resume = state

    def setFromOptions(self, tao: PETSc.TAO) -> None:
        prefix = tao.getOptionsPrefix() or ""
        if help_requested():
            self.options.print_help(tao.getComm(), prefix)
        self.opts = self.options.read(prefix)

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII("  Adam: " + " ".join(f"{k}={v}" for k, v in self.opts.items()) + "\n")

    def solve(self, tao: PETSc.TAO) -> None:
        if not self.opts:
            self.opts = self.options.read(tao.getOptionsPrefix() or "")
        lr, b1, b2, eps = (self.opts[k] for k in ("lr", "beta1", "beta2", "eps"))
        x = tao.getSolution()
        g, m, v, w, prev = x.duplicate(), x.duplicate(), x.duplicate(), x.duplicate(), x.duplicate()
        m.set(0.0)
        v.set(0.0)
        t0, self._m, self._v = 0, m, v
        if self._resume:
            a, b = x.getOwnershipRange()
            m.setArray(self._resume["m"][a:b])
            v.setArray(self._resume["v"][a:b])
            t0, self._resume = int(self._resume["step"]), None
        self._t = t0
        f = tao.computeObjectiveGradient(x, g)
        tao.setIterationNumber(0)
        tao.monitor(0, f, g.norm(), 0.0, 0.0)
        reason = tao.checkConverged()
        if self._stale:
            f, self._stale = tao.computeObjectiveGradient(x, g), False
        its, max_it = 0, tao.getMaximumIterations()
        while reason == R.CONTINUE_ITERATING:
            if its >= max_it:
                tao.setConvergedReason(R.DIVERGED_MAXITS)
                break
            its += 1
            t = t0 + its
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
            x.copy(prev)  # restored by copy: undoing the step arithmetically loses θ when lr·w overflows
            x.axpy(-lr / (1 - b1**t), w)
            f = tao.computeObjectiveGradient(x, g)
            if not math.isfinite(f):
                prev.copy(x)
                f = tao.computeObjectiveGradient(x, g)
                self.message = (f"non-finite loss after Adam step {t}: stopped, θ restored to step {t - 1} "
                                f"(loss {f:.3e})")
                tao.setIterationNumber(its - 1)
                tao.setConvergedReason(R.DIVERGED_NAN)
                break
            self._t = t
            tao.setIterationNumber(its)
            tao.monitor(its, f, g.norm(), 0.0, lr)
            reason = tao.checkConverged()
            if self._stale:
                f, self._stale = tao.computeObjectiveGradient(x, g), False
