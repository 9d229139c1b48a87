"""Implicit gradient descent (ISGD, backward Euler on the gradient flow) as a TAO python type.

θₙ₊₁ = θₙ − α ∇L(θₙ₊₁), i.e. θₙ₊₁ = argmin ½‖θ − θₙ‖² + α L(θ): stable for any α > 0, where
explicit gradient descent needs α < 2/λ_max (the stiffness of multiscale PINNs). Two variants,
``-tao_isgd_type``:

- ``proximal``   each outer step solves the subproblem with a nested TAO, prefix
  ``<tao prefix>isgd_inner_`` (``-isgd_inner_tao_type lmvm|nls|ntr|python ...``, default L-BFGS,
  20 iterations). Its Hessian is the shell I + αH of the outer Tao's operator.
- ``linearized`` one Gauss-Newton linearisation: θₙ₊₁ = θₙ − α (I + αG)⁻¹ ∇L(θₙ), solved by the
  Tao's KSP (prefix ``<tao prefix>tao_isgd_``; default preonly + :class:`~pinntao.pc.ProximalPC`).

α is constant or grows geometrically (``alpha_growth``, capped at ``alpha_max``). A rejected step
(non-finite, no decrease of the proximal objective — for ``linearized``, of L —, or a failed inner
solve) keeps θₙ; α is halved and the step retried up to ``retries`` times, then the solve ends
with a TAO diverged reason and a message.
"""

from __future__ import annotations

import math
import time
from typing import Any

from petsc4py import PETSc

from ..options import Option, OptionSet, check_tao_type, nonnegative, positive
from ..pc.proximal import proximal_mat
from .base import Solver
from .natgrad import load_pc_restart_state, pc_restart_state

ISGD_TYPES = ("proximal", "linearized")
R = PETSc.TAO.ConvergedReason


class ImplicitGD(Solver):
    """TAO python context: ``-tao_type python -tao_python_type pinntao.solvers.ImplicitGD``."""

    options = OptionSet(
        "Implicit gradient descent, ISGD (pinntao.solvers.ImplicitGD)",
        "tao_isgd_",
        [
            Option("type", "str", "proximal", "proximal: solve argmin ½‖θ − θₙ‖² + αL(θ) with the nested TAO "
                   "-isgd_inner_tao_*; linearized: θₙ − α(I + αG)⁻¹∇L(θₙ) with the KSP -tao_isgd_ksp_*",
                   choices=list(ISGD_TYPES)),
            Option("alpha", "float", 0.1, "step α of the implicit update", check=positive, check_text="> 0"),
            Option("alpha_growth", "float", 1.0, "α ← min(growth·α, alpha_max) after each accepted step",
                   check=positive, check_text="> 0"),
            Option("alpha_max", "float", 1e8, "cap of the growing α", check=positive, check_text="> 0"),
            Option("retries", "int", 10, "a rejected step halves α and retries this often before the solve stops",
                   check=nonnegative, check_text=">= 0"),
        ],
    )
    inner_max_it = 20  # the nested TAO's default budget per outer step
    ksp_suffix = "tao_isgd_"
    default_ksp = ("preonly", "pinntao.pc.ProximalPC")
    lazy_ksp = True  # only the linearized step (SAV: the λG operator) uses it
    work_vecs = ("g", "g_new", "d", "_center", "_w")
    state_scalars = ("alpha",)  # the α of the next step

    def __init__(self) -> None:
        super().__init__()
        self.inner: PETSc.TAO | None = None
        self.outer: PETSc.TAO | None = None
        self.alpha = 0.0
        self._M: PETSc.Mat | None = None
        self._center: PETSc.Vec | None = None
        self._w: PETSc.Vec | None = None

    # -- TAO python protocol ---------------------------------------------------------------
    def restart_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """Exact restart: the α of the next step and, for the linearized step, the sketch PC's state."""
        state = pc_restart_state(tao) if self.opts.get("type") == "linearized" else {}
        return {"alpha": float(self.alpha), **state} if self.alpha else state

    def load_extra_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        if "pc_factorizations" in state:  # the linearized step's PC (a proximal step has no KSP)
            self.ksp(tao)
            load_pc_restart_state(tao, state)

    def resume_note(self, tao: PETSc.TAO) -> str:
        """What a restart cannot restore ("" if nothing): the proximal step's nested TAO state."""
        kind = self.opts.get("type") or self.options.read(tao.getOptionsPrefix() or "")["type"]
        if kind == "proximal" and self.inner is not None and self.inner.getType() != PETSc.TAO.Type.PYTHON:
            return (f"the proximal step's inner TAO ({self.inner.getType()}) keeps its state across steps "
                    "(e.g. L-BFGS scaling) private; it restarts fresh")
        return ""

    def create(self, tao: PETSc.TAO) -> None:
        # the inner solves evaluate through this Tao: TAO's default cap of 4000 evaluations would end
        # a run after ~200 proximal steps (-tao_max_funcs still sets one)
        tao.setMaximumFunctionEvaluations(PETSc.UNLIMITED)
        super().create(tao)

    def uses_ksp(self) -> bool:
        return self.opts["type"] == "linearized"

    def configure(self, tao: PETSc.TAO) -> None:
        if self.opts["type"] == "proximal":
            self._inner_tao(tao)

    def setUp(self, tao: PETSc.TAO) -> None:
        super().setUp(tao)
        if self.opts["type"] == "linearized":
            self.check_operator(tao, "hessian")

    def destroy(self, tao: PETSc.TAO) -> None:
        for obj in (self.inner, self._M):
            if obj is not None:
                obj.destroy()
        self.inner = self._M = None
        super().destroy(tao)

    def current_options(self) -> dict[str, Any]:
        return {**self.opts, **({"alpha": self.alpha} if self.alpha else {})}

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII("  implicit gradient descent: " + " ".join(
            f"{k}={v}" for k, v in self.current_options().items()) + "\n")
        if self.opts.get("type") == "proximal" and self.inner is not None:
            viewer.printfASCII("  inner TAO of the proximal subproblem:\n")
            self.inner.view(viewer)
        # the linearized step's KSP is printed by TaoView after this (once, with its prefix)

    # -- the proximal subproblem Φ(y) = ½‖y − θₙ‖² + α L(y) --------------------------------
    def _inner_tao(self, tao: PETSc.TAO) -> PETSc.TAO:
        if self.inner is None:
            inner = PETSc.TAO().create(comm=tao.getComm())
            inner.setOptionsPrefix((tao.getOptionsPrefix() or "") + "isgd_inner_")
            inner.setType(PETSc.TAO.Type.LMVM)
            inner.setMaximumIterations(self.inner_max_it)
            inner.setMaximumFunctionEvaluations(PETSc.UNLIMITED)  # TAO's count runs across solves: no cap but max_it
            inner.setTolerances(gatol=0.0, grtol=0.0, gttol=0.0)  # a fixed budget unless the user says otherwise
            inner.setObjective(self._phi)
            inner.setObjectiveGradient(self._phi_grad, None)
            inner.setGradient(self._phi_gradient, None)
            self.inner = inner
        self.outer = tao
        H, _, _ = tao.getHessian()
        if H is not None and H.handle and H.getType() is not None and self._M is None:
            self._M = proximal_mat(H, self.opts["alpha"])
            self.inner.setHessian(self._phi_hessian, self._M, self._M)
        check_tao_type(self.inner.getOptionsPrefix() or "")
        self.inner.setFromOptions()
        return self.inner

    def _shift(self, y: PETSc.Vec) -> float:
        """w = y − θₙ; returns ½‖w‖²."""
        assert self._center is not None and self._w is not None
        y.copy(self._w)
        self._w.axpy(-1.0, self._center)
        return 0.5 * self._w.dot(self._w)

    def _phi(self, t: PETSc.TAO, y: PETSc.Vec) -> float:
        assert self.outer is not None
        return self._shift(y) + self.alpha * self.outer.computeObjective(y)

    def _phi_grad(self, t: PETSc.TAO, y: PETSc.Vec, g: PETSc.Vec) -> float:
        assert self.outer is not None and self._w is not None
        f = self.outer.computeObjectiveGradient(y, g)
        prox = self._shift(y)
        g.aypx(self.alpha, self._w)  # g ← α∇L + (y − θₙ)
        return prox + self.alpha * f

    def _phi_gradient(self, t: PETSc.TAO, y: PETSc.Vec, g: PETSc.Vec) -> None:
        self._phi_grad(t, y, g)

    def _phi_hessian(self, t: PETSc.TAO, y: PETSc.Vec, M: PETSc.Mat, P: PETSc.Mat) -> None:
        assert self.outer is not None
        ctx = M.getPythonContext()
        self.outer.computeHessian(y, ctx.A, ctx.A)
        ctx.alpha, ctx.sigma = self.alpha, 0.0

    # -- one outer step, each variant: returns (L at the new θ, why it was rejected or "") ------
    def _proximal_step(self, tao: PETSc.TAO, x: PETSc.Vec, f: float, g_new: PETSc.Vec) -> tuple[float, str]:
        assert self.inner is not None
        inner = self.inner
        inner.setSolution(x)
        try:
            inner.solve()
        except PETSc.Error:
            return math.nan, "the inner TAO raised an error (non-finite value)"
        reason = inner.getConvergedReason()
        self.stats["inner_its"] += inner.getIterationNumber()
        f_new = tao.computeObjectiveGradient(x, g_new)
        phi = self._shift(x) + self.alpha * f_new
        if not math.isfinite(phi):
            return f_new, f"inner TAO ({inner.getType()}) ended {_reason(reason)} at a non-finite loss"
        if phi >= self.alpha * f:
            return f_new, (f"inner TAO ({inner.getType()}) ended {_reason(reason)} without decreasing "
                           "½‖θ − θₙ‖² + αL")
        return f_new, ""

    def _linearized_step(self, tao: PETSc.TAO, x: PETSc.Vec, g: PETSc.Vec, f: float, d: PETSc.Vec,
                         g_new: PETSc.Vec) -> tuple[float, str]:
        H, Hp, _ = tao.getHessian()
        if self._M is None:
            self._M = proximal_mat(H, self.alpha)
        ksp = self.ksp(tao)
        tao.computeHessian(x, H, Hp)
        ctx = self._M.getPythonContext()
        ctx.alpha, ctx.sigma = self.alpha, 0.0
        ksp.setOperators(self._M, self._M)
        ksp.solve(g, d)
        self.stats["ksp_its"] += ksp.getIterationNumber()
        if not math.isfinite(d.norm()):
            return math.nan, f"KSP ({ksp.getType()}, reason {ksp.getConvergedReason()}) gave a non-finite direction"
        x.axpy(-self.alpha, d)
        f_new = tao.computeObjectiveGradient(x, g_new)
        if not math.isfinite(f_new):
            return f_new, "non-finite loss after the linearized step"
        if f_new >= f:
            return f_new, f"the linearized step did not decrease L ({f_new:.3e} >= {f:.3e})"
        return f_new, ""

    def new_stats(self) -> dict[str, Any]:
        return {"type": self.opts["type"], "alpha": [], "rejected": 0, "inner_its": 0, "ksp_its": 0, "time_s": 0.0}

    def preSolve(self, tao: PETSc.TAO, x: PETSc.Vec) -> None:
        if self.opts["type"] == "proximal" and self.inner is None:
            self._inner_tao(tao)  # this Tao's setFromOptions was never called (a context set in code)
        if self.opts["type"] == "linearized":
            self.check_operator(tao, "hessian")
        self.alpha = self.opts["alpha"]  # a checkpoint's α replaces it
        self._t_start = time.perf_counter()

    def step(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> tuple[float, float] | None:
        kind, retries = self.opts["type"], self.opts["retries"]
        assert self._center is not None
        x.copy(self._center)
        for attempt in range(retries + 1):
            if kind == "proximal":
                f_new, why = self._proximal_step(tao, x, f, self.g_new)
            else:
                f_new, why = self._linearized_step(tao, x, self.g, f, self.d, self.g_new)
            if not why:
                break
            self._center.copy(x)  # keep θₙ
            self.stats["rejected"] += 1
            if attempt < retries:
                self.alpha *= 0.5
        if why:
            self.stop(tao, R.DIVERGED_NAN if not math.isfinite(f_new) else R.DIVERGED_LS_FAILURE,
                      f"step {self.its + 1} rejected at α = {self.alpha:.3g}: {why}; θ kept at iterate {self.its}")
            return None
        self.g_new.copy(self.g)
        used = self.alpha
        self.alpha = min(self.opts["alpha_growth"] * self.alpha, self.opts["alpha_max"])  # before a checkpoint
        self.stats["alpha"].append(used)
        return f_new, used

    def postSolve(self, tao: PETSc.TAO) -> None:
        self.stats["time_s"] = time.perf_counter() - self._t_start
        if self.opts["type"] == "linearized":
            pc = self.ksp(tao).getPC()
            if pc.getType() == PETSc.PC.Type.PYTHON:
                self.stats["pc"] = getattr(pc.getPythonContext(), "stats", None)


def _reason(reason: int) -> str:
    from ..train import reason_name

    return reason_name(reason)
