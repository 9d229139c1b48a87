"""The implicit (proximal) step of implicit gradient descent as a PETSc preconditioner.

:class:`ProximalPC` applies (I + αG)⁻¹, G the Gram matrix of the pinntao operator behind the
KSP. One Gauss-Newton linearisation of the proximal subproblem
θₙ₊₁ = argmin ½‖θ − θₙ‖² + α L(θ) gives θₙ₊₁ = θₙ − α (I + αG)⁻¹ ∇L(θₙ), so with
``-ksp_type preonly`` this PC *is* the linearized ISGD step. Three ways, ``-pc_prox_type``:

- ``sketch``  Woodbury on the randomized factor G ≈ U Λ Uᵀ (the SNGD sketch):
  x = b − U diag(αλ/(1 + αλ)) Uᵀ b — one Allreduce of r numbers per apply. Directions G does
  not resolve are treated as λ = 0, where (I + αG)⁻¹ is the identity anyway.
- ``exact``   the same formula on the exact eigen-factor of G (dense G or the kernel form).
- ``cg``      an inner CG on I + αG (prefix ``<pc prefix>pc_prox_``), matrix-free; the PC is
  then a nonlinear operator, so use it under preonly or a flexible outer Krylov method.

α comes from the operator when the KSP's operator is a :func:`proximal_mat` shell I + αA
(what :class:`~pinntao.solvers.ImplicitGD` builds, so a scheduled α reaches the PC), else
from ``-pc_prox_alpha``.
"""

from __future__ import annotations

from typing import Any

from petsc4py import PETSc
from torch import Tensor

from ..options import Option, OptionSet, positive
from ..sketch import LowRank
from .lowrank import _SKETCH_OPTIONS, SketchedPseudoInverse, exact_factor

PROX_TYPES = ("sketch", "exact", "cg")


class ProximalOperator:
    """MATPYTHON context of M = I + αA (+ σI after MatShift) for a Mat A, e.g. the Gram shell.
    ``obj`` is A's PinnObjective (if any), so the pinntao PCs accept M as their operator."""

    def __init__(self, A: PETSc.Mat, alpha: float) -> None:
        self.A, self.alpha, self.sigma = A, float(alpha), 0.0

    @property
    def obj(self) -> Any:
        ctx = self.A.getPythonContext() if self.A.getType() == PETSc.Mat.Type.PYTHON else None
        return getattr(ctx, "obj", None)

    def mult(self, M: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self.A.mult(x, y)
        y.aypx(self.alpha, x)  # y ← α A x + x
        if self.sigma:
            y.axpy(self.sigma, x)

    def multTranspose(self, M: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self.mult(M, x, y)  # A symmetric

    def getDiagonal(self, M: PETSc.Mat, d: PETSc.Vec) -> None:
        self.A.getDiagonal(d)
        d.scale(self.alpha)
        d.shift(1.0 + self.sigma)

    def shift(self, M: PETSc.Mat, s: float) -> None:
        self.sigma += s


def proximal_mat(A: PETSc.Mat, alpha: float) -> PETSc.Mat:
    """The shell I + αA with A's layout (symmetric); change α through ``M.getPythonContext()``."""
    M = PETSc.Mat().createPython(A.getSizes(), context=ProximalOperator(A, alpha), comm=A.getComm())
    M.setOption(PETSc.Mat.Option.SYMMETRIC, True)
    M.setUp()
    return M


class ProximalPC(SketchedPseudoInverse):
    """(I + αG)⁻¹ by Woodbury on a sketched or exact factor of G, or by inner CG."""

    options = OptionSet(
        "Proximal PC (I + αG)⁻¹ (pinntao.pc.ProximalPC)",
        "pc_prox_",
        [
            Option("type", "str", "sketch", "sketch: Woodbury on the randomized factor; exact: on the exact "
                   "factor of G; cg: inner CG on I + αG (options -<prefix>pc_prox_ksp_*)", choices=list(PROX_TYPES)),
            Option("alpha", "float", 0.1, "α when the operator is not an I + αA shell (else the shell's α)",
                   check=positive, check_text="> 0"),
            *[o for o in _SKETCH_OPTIONS if o.name != "mu"],  # damping is α's job here
        ],
    )

    def __init__(self) -> None:
        super().__init__()
        self.alpha = 0.0
        self.inner: PETSc.KSP | None = None
        self._M: PETSc.Mat | None = None

    def setUp(self, pc: PETSc.PC) -> None:
        super().setUp(pc)
        if self.opts["type"] == "cg" and self.inner is None:
            self._M = proximal_mat(self.obj.gram_mat(), self.opts["alpha"])
            ksp = PETSc.KSP().create(comm=pc.getComm())
            ksp.setOptionsPrefix((pc.getOptionsPrefix() or "") + "pc_prox_")
            ksp.setType(PETSc.KSP.Type.CG)
            ksp.getPC().setType(PETSc.PC.Type.NONE)
            ksp.setTolerances(rtol=1e-10, max_it=500)
            ksp.setOperators(self._M)
            ksp.setFromOptions()
            self.inner = ksp

    def factor_in_setup(self) -> bool:
        return self.opts["type"] != "cg"  # inner CG needs no factor

    def current_alpha(self, pc: PETSc.PC) -> float:
        _, P = pc.getOperators()
        ctx = P.getPythonContext() if P.getType() == PETSc.Mat.Type.PYTHON else None
        return ctx.alpha if isinstance(ctx, ProximalOperator) else self.opts["alpha"]

    def factor(self, obj: Any, theta: Tensor) -> LowRank:
        if self.opts["type"] == "exact":
            lr, self.stats["form"] = exact_factor(obj, theta, "auto", self.opts["tol"])
            return lr
        return super().factor(obj, theta)  # the two-pass sketch (no -pc_prox_passes)

    def apply_weights(self, lr: LowRank) -> Tensor:
        return lr.lam  # weights αλ/(1 + αλ) are formed per apply: α may change between applies

    def combine(self, b_loc: Tensor, c: Tensor) -> Tensor:
        assert self.U_loc is not None and self.lam is not None
        al = self.alpha * self.lam
        return b_loc - self.U_loc @ ((al / (1.0 + al)) * c)

    def apply(self, pc: PETSc.PC, b: PETSc.Vec, x: PETSc.Vec) -> None:
        self.alpha = self.current_alpha(pc)
        if self.opts["type"] != "cg":
            super().apply(pc, b, x)
            return
        assert self.inner is not None and self._M is not None
        self._M.getPythonContext().alpha = self.alpha
        self.inner.solve(b, x)
        self.stats["inner_its"] = self.stats.get("inner_its", 0) + self.inner.getIterationNumber()
        reason = self.inner.getConvergedReason()
        if reason < 0 and reason != PETSc.KSP.ConvergedReason.DIVERGED_ITS:
            pc.setFailedReason(PETSc.PC.FailedReason.SUBPC_ERROR)

    def view(self, pc: PETSc.PC, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII(f"  ProximalPC: (I + αG)⁻¹, type {self.opts.get('type')}, α = {self.alpha:g}\n")
        if self.inner is not None:
            self.inner.view(viewer)
        else:
            super().view(pc, viewer)
