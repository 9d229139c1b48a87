"""Kernel (Woodbury) natural gradient and SPRING as a TAO python type.

With J (N × P) and r the residual, the damped Gauss-Newton / ENGD step is

    d = (JᵀJ + μI)⁻¹ Jᵀ r = Jᵀ (JJᵀ + μI)⁻¹ r,

an N × N solve instead of a P × P one. SPRING (Goldshlager, Abrahamsen & Lin 2024, arXiv
2401.10190) carries momentum β through the same solve:

    φₖ = Jᵀ (JJᵀ + μI)⁻¹ (r − β J φₖ₋₁) + β φₖ₋₁,      θₖ₊₁ = θₖ − η φₖ,

so β = 0 is damped kernel ENGD. μ, the line search and the stopping test are the
natural-gradient TAO's (``-tao_ng_damping``, ``-tao_ng_linesearch``, …); the kernel solve is
``-tao_spring_solve cholesky`` (K = JJᵀ formed, Cholesky of K + μI) or ``nystrom`` (K never
formed: CG on K + μI preconditioned by a randomized Nyström factor of K, Frangella-Tropp-Udell).

Distribution: each rank builds its rows J_p of the Jacobian (one batched pass) and the rows are
all-gathered (Allgatherv, N·P numbers per iteration). ``cholesky``: rank p forms its block row
K_p = J_p Jᵀ (n_p·N·P flops, the N²P work split over ranks) and the block rows are all-gathered
(N² numbers); every rank factors K + μI (N³/3 flops, replicated: no communication) and takes its
slice of d = Jᵀα; with N > P (``-tao_spring_form auto``) every rank instead takes the thin SVD of
the gathered J (O(NP²) flops, replicated) and never forms K. ``nystrom``: every rank holds J, so
the sketch JJᵀΩ and each CG product J(Jᵀv) are local (replicated); no communication beyond the
gather of J. Per iteration, then:
N·P (+ N² for cholesky) numbers all-gathered, plus the loss/gradient Allreduces of P + 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from petsc4py import PETSc
from torch import Tensor

from .. import events
from ..comm import to_numpy
from ..options import Option, OptionSet, nonnegative, positive
from ..sketch import gaussian, nystrom
from .base import pinn_operator
from .natgrad import NaturalGradient

KERNEL_SOLVES = ("cholesky", "nystrom")
FORMS = ("auto", "kernel", "primal")


class Spring(NaturalGradient):
    """``-tao_type python -tao_python_type pinntao.solvers.Spring``: d = Jᵀ(JJᵀ + μI)⁻¹(r − βJφ) + βφ."""

    needs_operator = "pinntao"
    memory_model = "kernel"
    default_ksp = ("preonly", "")  # unused (the kernel solve is this type's own): preonly + none in -tao_view
    spring_options = OptionSet(
        "Kernel natural gradient / SPRING (pinntao.solvers.Spring)",
        "tao_spring_",
        [
            Option("momentum", "float", 0.0, "SPRING's β in [0, 1) (0: damped kernel ENGD)",
                   check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
            Option("solve", "str", "cholesky", "cholesky: form K = JJᵀ and factor K + μI; nystrom: CG on K + μI "
                   "with a randomized Nyström preconditioner (K never formed)", choices=list(KERNEL_SOLVES)),
            Option("rank", "int", 200, "nystrom: sketch size of the preconditioner", check=positive,
                   check_text="> 0"),
            Option("cg_rtol", "float", 1e-10, "nystrom: CG relative tolerance", check=positive, check_text="> 0"),
            Option("cg_max_it", "int", 200, "nystrom: CG iteration cap", check=positive, check_text="> 0"),
            Option("rtol", "float", 1e-13, "undamped (μ = 0) kernel: eigenvalues <= rtol λ_max of K are dropped",
                   check=nonnegative, check_text=">= 0"),
            Option("form", "str", "auto", "cholesky: kernel (factor JJᵀ + μI, N × N), primal "
                   "((JᵀJ + μI)⁻¹Jᵀ from the thin SVD of J: the same step by Woodbury), auto: kernel when N <= P, "
                   "else primal",
                   choices=list(FORMS)),
            Option("seed", "int", 0, "nystrom: seed of the Gaussian test matrices"),
        ],
    )

    extra_options = (spring_options,)

    def __init__(self) -> None:
        super().__init__()
        self._phi: Tensor | None = None  # previous direction φₖ₋₁ (full length, replicated)
        self._J: Tensor | None = None
        self._K: Tensor | None = None
        self._r: Tensor | None = None
        self._nys: Any = None
        self._phi_loaded: Tensor | None = None
        self._primal = False  # N > P: the step from the thin SVD of J instead of K = JJᵀ
        self._svd: tuple[Tensor, Tensor, Tensor] | None = None  # J = U S Vᵀ (primal form)

    def configure(self, tao: PETSc.TAO) -> None:
        pass  # the kernel solve is this type's own: the KSP stays preonly + none

    def uses_ksp(self) -> bool:
        return False

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII(
            f"  kernel step φ = Jᵀ(JJᵀ + μI)⁻¹(r − βJφ) + βφ, β = {self.opts.get('momentum', 0.0):g}, "
            f"kernel solve {self.opts.get('solve')}"
            + (" in primal form (JᵀJ + μI)⁻¹Jᵀ(r − βJφ), N > P" if self._primal else "") + "\n"
        )
        super().view(tao, viewer)

    def extra_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """The natural-gradient state plus the momentum φ (a θ-layout Vec)."""
        out = super().extra_state(tao)
        obj = pinn_operator(tao)
        if self._phi is not None and obj is not None:
            v = obj.create_vec()
            obj.set_from_full(v, to_numpy(self._phi))
            out["phi"] = v
        return out

    def load_extra_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        super().load_extra_state(tao, state)
        phi = state.get("phi")
        self._phi_loaded = None if phi is None else torch.as_tensor(np.asarray(phi, dtype=np.float64))

    def preSolve(self, tao: PETSc.TAO, x: PETSc.Vec) -> None:
        super().preSolve(tao, x)
        self._phi, self._phi_loaded = self._phi_loaded, None

    def postSolve(self, tao: PETSc.TAO) -> None:
        self.stats.pop("pc", None)

    # -- the kernel direction ------------------------------------------------------------------
    def direction(self, tao: PETSc.TAO, x: PETSc.Vec, g: PETSc.Vec, d: PETSc.Vec, f: float, mu: float,
                  relinearize: bool) -> str:
        H, Hp, _ = tao.getHessian()
        obj = pinn_operator(tao)
        assert obj is not None  # needs_operator: checked in setUp and solve
        t0 = self._now()
        if relinearize:
            tao.computeHessian(x, H, Hp)  # records θ (the gain ratio's curvature uses G at θ)
            self._shift = 0.0
            theta = obj.theta_lin
            self._J = obj.global_jacobian(theta)  # Allgatherv of the rows: N·P numbers
            with events.RESIDUAL:
                r_loc = obj.local_residual(theta)
            self._r = obj.allgather_rows(r_loc)
            t0 = self._tic("jacobian", t0)
            with events.FACTOR:
                if self.opts["solve"] == "cholesky":
                    N, P = self._J.shape
                    form = self.opts.get("form", "auto")
                    self._primal = form == "primal" or (form == "auto" and N > P)
                    # primal: the thin SVD of the gathered J (the same on every rank), never JᵀJ
                    if self._primal:
                        try:
                            self._svd = torch.linalg.svd(self._J, full_matrices=False)
                        except torch.linalg.LinAlgError as exc:
                            return f"SVD of J failed ({exc}), step rejected"
                    else:
                        self._K = self._kernel(obj, theta)
                else:
                    self._nys = self._nystrom(obj)
            t0 = self._tic("factor", t0)
        J, r = self._J, self._r
        assert J is not None and r is not None
        beta = self.opts["momentum"]
        rhs = r if (self._phi is None or beta == 0.0) else r - beta * (J @ self._phi)
        with events.FACTOR:
            try:
                phi = self._step(rhs, mu)
            except torch.linalg.LinAlgError as exc:
                return f"kernel solve failed ({exc}), step rejected"
        if self._phi is not None and beta:
            phi = phi + beta * self._phi
            gt = obj.gather(g)
            if float(gt @ phi) <= 0:  # momentum turned the step uphill: drop it for this step
                phi = self._step(r, mu)
        if not torch.isfinite(phi).all():
            return "non-finite kernel direction, step rejected"
        self._phi_trial = phi
        obj.set_from_full(d, to_numpy(phi))
        self._tic("direction", t0)
        return ""

    def take_direction(self) -> None:
        self._phi = self._phi_trial

    def _now(self) -> float:
        import time

        return time.perf_counter()

    def _kernel(self, obj: Any, theta: Tensor) -> Tensor:
        """K = JJᵀ: this rank's block row J_p Jᵀ, block rows all-gathered (N² numbers)."""
        assert self._J is not None
        J_loc = obj.local_jacobian(theta)
        return obj.allgather_rows(J_loc @ self._J.T)

    def _nystrom(self, obj: Any) -> Any:
        assert self._J is not None
        J = self._J
        N = J.shape[0]
        k = min(self.opts["rank"], N)
        seed = self.opts["seed"] + self.stats.get("factorizations", 0)
        self.stats["factorizations"] = self.stats.get("factorizations", 0) + 1
        M = gaussian(N, k, seed, J)
        return nystrom(lambda V: J @ (J.T @ V), M, tol=1e-300)

    def _step(self, b: Tensor, mu: float) -> Tensor:
        """Jᵀ(JJᵀ + μI)⁻¹ b, or (JᵀJ + μI)⁻¹ Jᵀb in primal form: equal by Woodbury, but with
        N > P the kernel JJᵀ is singular (rank ≤ P) and 1/μ amplifies the part of b outside
        range(J), which Jᵀ cancels only up to rounding; the primal form never sees it."""
        J = self._J
        assert J is not None
        if self.opts["solve"] == "nystrom":
            return J.T @ self._pcg(b, mu)
        if self._primal:
            return self._solve_primal(b, mu)
        return J.T @ self._solve_kernel(b, mu)

    def _solve_primal(self, b: Tensor, mu: float) -> Tensor:
        """(JᵀJ + μI)⁻¹ Jᵀb = V S(S² + μ)⁻¹ Uᵀb from J = U S Vᵀ: the Tikhonov step without
        forming JᵀJ, whose Cholesky loses λ_max/μ to rounding (σ² near μ: ε σ_max/σ instead);
        μ = 0: the pseudo-inverse with σ² <= rtol σ²_max dropped."""
        assert self._svd is not None
        U, S, Vh = self._svd
        s2 = S * S
        if mu > 0:
            w = S / (s2 + mu)
        else:
            w = torch.where(s2 > self.opts["rtol"] * float(s2.max()), 1.0 / S, torch.zeros_like(S))
        return Vh.T @ (w * (U.T @ b))

    def _solve_kernel(self, b: Tensor, mu: float) -> Tensor:
        """(K + μI)⁻¹ b for the kernel K = JJᵀ; μ = 0: the pseudo-inverse with a relative cut."""
        K = self._K
        assert K is not None
        n = K.shape[0]
        if mu > 0:
            L, info = torch.linalg.cholesky_ex(K + mu * torch.eye(n, dtype=K.dtype, device=K.device))
            if int(info) == 0:
                return torch.cholesky_solve(b[:, None], L)[:, 0]
        lam, W = torch.linalg.eigh(0.5 * (K + K.T))
        keep = lam > max(self.opts["rtol"] * float(lam.max()), 0.0)
        W = W[:, keep]
        return W @ ((W.T @ b) / (lam[keep] + mu))

    def _pcg(self, b: Tensor, mu: float) -> Tensor:
        """CG on (JJᵀ + μI) α = b, preconditioned by the Nyström factor U Λ Uᵀ ≈ K:
        P⁻¹ = U (Λ + μ')⁻¹ Uᵀ + (I − UUᵀ)/(λ_k + μ'), μ' = max(μ, λ_k)."""
        J, lr = self._J, self._nys
        assert J is not None
        U, lam = lr.U, lr.lam
        lam_k = float(lam[-1]) if lam.numel() else 1.0
        m = max(mu, lam_k, 1e-300)

        def prec(v: Tensor) -> Tensor:
            c = U.T @ v
            return U @ (c / (lam + m)) + (v - U @ c) / (lam_k + m)

        def op(v: Tensor) -> Tensor:
            return J @ (J.T @ v) + mu * v

        x = torch.zeros_like(b)
        res = b.clone()
        z = prec(res)
        p = z.clone()
        rz = float(res @ z)
        bnorm = float(b.norm()) or 1.0
        its = 0
        while its < self.opts["cg_max_it"]:
            its += 1
            Ap = op(p)
            pAp = float(p @ Ap)
            if not pAp > 0:
                break
            a = rz / pAp
            x += a * p
            res -= a * Ap
            if float(res.norm()) <= self.opts["cg_rtol"] * bnorm:
                break
            z = prec(res)
            rz_new = float(res @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        self.stats["cg_its"] = self.stats.get("cg_its", 0) + its
        if not math.isfinite(float(x.norm())):
            raise torch.linalg.LinAlgError("non-finite CG iterate")
        return x
