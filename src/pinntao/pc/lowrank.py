"""PCPYTHON preconditioners built on a low-rank factor G ≈ U diag(λ) Uᵀ of the Gram matrix.

Any KSP whose operator is a pinntao operator (Gram G, exact Hessian, or anything whose
python context exposes ``.obj``, a :class:`~pinntao.objective.PinnObjective`) can use them:

- :class:`SketchedPseudoInverse`  x = U diag(1/(λ+μ)) Uᵀ b, U from a randomized sketch
  (one or two pass). With ``-ksp_type preonly`` inside a Gauss-Newton step this *is* SNGD.
- :class:`NystromPC`  damped Nyström preconditioner for CG on G:
  x = U diag(1/(λ+μ)) Uᵀ b + (I − UUᵀ) b / (λ_r+μ).
- :class:`ExactPseudoInverse`  ENGD: the exact factor from dense G (P × P) or, when N < P,
  from the thin SVD of J (the kernel form).

The factor is built in PCSetUp when the operator's linearisation point θ changes (every
``refresh``-th change; a stale factor found by PCApply is rebuilt there). Every rank computes
the same factor from replicated block products and keeps only its rows of U (the parameter
Vec's layout): applying the PC costs one Allreduce of r numbers.

Damping: the PCs invert the kept spectrum shifted by μ = ``mu`` + σ, where σ is the damping a
pinntao solver applied to the operator (the natural-gradient TAO's Levenberg-Marquardt G + σI,
a MatShift recorded on the operator) — followed without a new factorisation. Truncation keeps
λ > max(tol, rtol·λ_max).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from petsc4py import PETSc
from torch import Tensor

from .. import events
from ..comm import allreduce_sum, to_numpy
from ..errors import PinnInputError
from ..options import Option, OptionSet, help_requested, nonnegative, positive
from ..sketch import (
    SKETCH_TESTS,
    LowRank,
    NonFiniteSketch,
    check_sketch_args,
    exact_from_jacobian,
    gaussian,
    gram_ritz,
    jacobian_eig,
    jacobian_ritz,
    nystrom,
    randomized_eig,
)

ENGD_FORMS = ("auto", "gram", "kernel")
# -pc_sketch_test auto: a CountSketch needs N >= 4k rows so that fewer than e⁻⁴ ≈ 2 % of its k columns are
# empty (an empty column is a lost direction; the oversampling covers 2 % up to k = 500)
COUNTSKETCH_ROWS_PER_COLUMN = 4


def pinn_objective_of(pc: PETSc.PC) -> Any:
    """The PinnObjective behind the PC's operator, or a clear error."""
    _, P = pc.getOperators()
    ctx = P.getPythonContext() if P.getType() == PETSc.Mat.Type.PYTHON else None
    obj = getattr(ctx, "obj", None)
    if obj is None:
        raise PinnInputError(
            f"{type(pc.getPythonContext()).__name__} needs a pinntao operator (Gram, Hessian or Jacobian shell "
            f"from PinnObjective), got a Mat of type {P.getType()!r}"
        )
    return obj


def operator_shift(pc: PETSc.PC) -> float:
    """The damping μ a pinntao solver put on its operator (G + μI, recorded as ``ctx.damping``
    beside the MatShift), else 0. Shifts of other solvers (NLS's perturbation) are not followed:
    they belong to the trust-region safeguard, whose radius lives in the PC's norm."""
    A, _ = pc.getOperators()
    ctx = A.getPythonContext() if A.getType() == PETSc.Mat.Type.PYTHON else None
    return float(getattr(ctx, "damping", 0.0) or 0.0)


class _LowRankPC:
    """Shared plumbing: options, lazy refactorisation, distributed apply, stats, view."""

    options: OptionSet

    def __init__(self) -> None:
        self.obj: Any = None
        self.opts: dict[str, Any] = {}
        self.U_loc: Tensor | None = None
        self.lam: Tensor | None = None
        self.weights: Tensor | None = None
        self._key: Tensor | None = None
        self._changes = 0
        self.stats: dict[str, Any] = {"factorizations": 0, "ranks": [], "factor_s": 0.0}
        self.mu = 0.0
        self.failed = ""
        self.prefix = ""  # the PC's options prefix (error messages name the full option)

    # -- PCPYTHON protocol -----------------------------------------------------------------
    def setFromOptions(self, pc: PETSc.PC) -> None:
        prefix = pc.getOptionsPrefix() or ""
        if help_requested():
            self.options.print_help(pc.getComm(), prefix, current=True)
        self.options.check_unknown(prefix, ignore=("ksp_", "pc_"))  # misspelt -<prefix>pc_sketch_*: "did you mean"
        self.opts = self.options.read(prefix)
        self.prefix = prefix
        self.validate(self.opts)

    def validate(self, opts: dict[str, Any]) -> None:
        pass

    def setUp(self, pc: PETSc.PC) -> None:
        """PCSetUp: read options and build the factor at the operator's linearisation point."""
        if not self.opts:
            self.prefix = pc.getOptionsPrefix() or ""
            self.opts = self.options.read(self.prefix)
            self.validate(self.opts)
        self.obj = pinn_objective_of(pc)
        if self.factor_in_setup():
            self._ensure_factor()

    def factor_in_setup(self) -> bool:
        return True

    def _ensure_factor(self) -> None:
        key = self.obj.theta_lin
        if key is self._key or (self._key is not None and torch.equal(key, self._key)):
            self._key = key
            return
        with events.FACTOR:
            self._refactor(key)

    def _refactor(self, key: Tensor) -> None:
        first = self._key is None
        self._key = key
        self._changes += 1
        if not first and (self._changes - 1) % self.opts.get("refresh", 1) != 0:
            return  # reuse the previous factor (-pc_*_refresh k)
        t0 = time.perf_counter()
        self.failed = ""
        try:
            lr = self.factor(self.obj, key)
        except (NonFiniteSketch, torch.linalg.LinAlgError) as exc:
            self.failed = str(exc)
            self.U_loc = None
            return
        a, b = self.obj.rstart, self.obj.rend
        self.U_loc, self.lam = lr.U[a:b].contiguous(), lr.lam
        self._lr = lr
        self.mu = -1.0  # weights are set by _damp at the next apply
        self.stats["factorizations"] += 1
        self.stats["ranks"].append(lr.rank)
        self.stats["factor_s"] += time.perf_counter() - t0

    def _damp(self, pc: PETSc.PC) -> None:
        """Weights 1/(λ + μ) for μ = -pc_*_mu + the operator's shift (recomputed only when μ changes)."""
        mu = self.opts.get("mu", 0.0) + operator_shift(pc)
        if mu != self.mu:
            self.mu = mu
            self.weights = self.apply_weights(self._lr)

    def apply(self, pc: PETSc.PC, b: PETSc.Vec, x: PETSc.Vec) -> None:
        self._ensure_factor()
        if self.U_loc is None:
            pc.setFailedReason(PETSc.PC.FailedReason.SUBPC_ERROR)
            x.set(np.nan)
            return
        self._damp(pc)
        o = self.obj
        b_loc = o.local_tensor(b)
        c = torch.as_tensor(
            allreduce_sum(o.mpi, to_numpy(self.U_loc.T @ b_loc)), dtype=b_loc.dtype, device=b_loc.device
        )
        x.setArray(to_numpy(self.combine(b_loc, c)))

    def applyTranspose(self, pc: PETSc.PC, b: PETSc.Vec, x: PETSc.Vec) -> None:
        self.apply(pc, b, x)  # symmetric

    def view(self, pc: PETSc.PC, viewer: PETSc.Viewer) -> None:
        rank = self.stats["ranks"][-1] if self.stats["ranks"] else 0
        viewer.printfASCII(
            f"  {type(self).__name__}: kept rank {rank}, {self.stats['factorizations']} factorizations, "
            f"{self.stats['factor_s']:.3g} s, last damping mu={max(self.mu, 0.0):.3g}\n"
        )
        viewer.printfASCII("    " + " ".join(f"{k}={v}" for k, v in self.opts.items()) + "\n")

    # -- what subclasses define ------------------------------------------------------------
    def factor(self, obj: Any, theta: Tensor) -> LowRank:
        raise NotImplementedError

    def apply_weights(self, lr: LowRank) -> Tensor:
        return 1.0 / (lr.lam + self.mu)

    def combine(self, b_loc: Tensor, c: Tensor) -> Tensor:
        assert self.U_loc is not None and self.weights is not None
        return self.U_loc @ (self.weights * c)


_SKETCH_OPTIONS = [
    Option("rank", "int", 50, "initial sketch rank estimate r (sketch size r + p)", check=positive, check_text="> 0"),
    Option("oversample", "int", 10, "oversampling p added to the kept rank", check=nonnegative, check_text=">= 0"),
    Option(
        "max_rank",
        "int",
        0,
        "upper bound on the sketch size (0: P; larger values are clamped to P)",
        check=nonnegative,
        check_text=">= 0",
    ),
    Option("tol", "float", 1e-13, "eigenvalues <= max(tol, rtol λ_max) are truncated", check=positive,
           check_text="> 0"),
    Option("rtol", "float", 0.0, "relative cut: eigenvalues <= rtol λ_max are truncated (0: absolute tol only)",
           check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
    Option("mu", "float", 0.0, "damping μ added to the kept eigenvalues (plus the operator's shift)",
           check=nonnegative, check_text=">= 0"),
    Option("refresh", "int", 1, "re-sketch every k-th new linearisation point", check=positive, check_text="> 0"),
    Option("adaptive", "bool", True, "next sketch size = kept rank + oversampling (the paper's rule)"),
    Option("seed", "int", 0, "seed of the Gaussian test matrices (same on every rank)"),
    Option("warm", "bool", False, "test matrix: the last factor's kept basis U, then fresh Gaussian columns (at "
           "least -oversample): subspace iteration across iterations, instead of k fresh Gaussian columns"),
]


class SketchedPseudoInverse(_LowRankPC):
    """Randomized low-rank pseudo-inverse of G: SNGD's direction U Λ⁻¹ Uᵀ b."""

    options = OptionSet(
        "Sketched pseudo-inverse PC (pinntao.pc.SketchedPseudoInverse)",
        "pc_sketch_",
        [
            *_SKETCH_OPTIONS,
            Option("passes", "int", 2, "1: one-pass T = QᵀA(QᵀM)⁻¹, 2: two-pass T = QᵀGQ", choices=None),
            Option("jacobian", "bool", False, "sketch J, not G: Q = orth(JᵀΩ) with Ω over the residual rows "
                   "(-pc_sketch_test), λ = σ² from the SVD of J Q (two products with J, as one pass): eigenvalues "
                   "resolved down to ~eps² λ_max instead of eps λ_max, so a relative cut far below 1e-16 keeps real "
                   "directions"),
            Option("test", "str", "auto", "the Jacobian sketch's test matrix Ω (N × k): countsketch (one ±1 per "
                   "row in a random column: JᵀΩ is one pass over J instead of a product, no normals drawn), gaussian, "
                   f"or auto: countsketch when N >= {COUNTSKETCH_ROWS_PER_COLUMN}k (fewer rows per column leave "
                   "columns empty), else gaussian", choices=["auto", *SKETCH_TESTS]),
            Option("reuse", "int", 1, "a fresh sketch every k-th factorisation; in between, Rayleigh-Ritz in the "
                   "last sketch's basis Q: λ and U from the current J Q alone (one product with J instead of two or "
                   "three, no new test matrix); while the kept rank fills the basis (still growing) every sketch "
                   "is fresh", check=positive, check_text="> 0"),
        ],
    )

    def __init__(self) -> None:
        super().__init__()
        self.k = 0
        #: the last factor's kept U (global P × r, the same on every rank): -pc_sketch_warm's test matrix
        self.basis: Tensor | None = None
        #: the last fresh sketch's orthonormal basis Q (global P × k): -pc_sketch_reuse's Ritz basis
        self.subspace: Tensor | None = None
        self.ritz_left = 0  # Ritz factorisations before the next fresh sketch

    def validate(self, opts: dict[str, Any]) -> None:
        check_sketch_args(opts["rank"], opts["oversample"], opts["tol"], opts.get("passes", 2))
        if opts.get("test", "auto") == "countsketch" and not opts.get("jacobian"):
            p = f"-{self.prefix}pc_sketch_"
            raise PinnInputError(f"{p}test {opts['test']}: only with {p}jacobian 1 (a test matrix over the residual "
                                 f"rows); allowed: {p}test auto or gaussian, or {p}jacobian 1")
        if opts.get("jacobian") and (opts.get("warm") or opts.get("passes", 2) != 2):
            p = f"-{self.prefix}pc_sketch_"
            what = f"{p}warm (its test matrix lives in parameter space)" if opts.get("warm") else \
                f"{p}passes 1 (the Jacobian sketch makes its own two products)"
            raise PinnInputError(f"{p}jacobian: not with {what}; allowed: {p}jacobian with {p}passes 2 and "
                                 f"{p}warm 0, or {p}jacobian 0 (a sketch of G) with either")

    def sketch_size(self, P: int) -> int:
        if self.k == 0:
            self.k = self.opts["rank"] + self.opts["oversample"]
        cap = min(P, self.opts["max_rank"] or P)
        return max(1, min(self.k, cap))

    def _gram(self, obj: Any, theta: Tensor):
        return lambda M: obj.gram(theta, M)

    def factor(self, obj: Any, theta: Tensor) -> LowRank:
        k = self.sketch_size(obj.n_params)
        cut = {"tol": self.opts["tol"], "rtol": self.opts["rtol"]}
        reuse = self.opts.get("reuse", 1)
        Q = self.subspace if reuse > 1 and self.ritz_left > 0 else None
        if Q is not None and Q.shape[0] != obj.n_params:
            Q = None  # a basis of another network (a restart file): sketch afresh
        if Q is not None:  # between fresh sketches: Rayleigh-Ritz in the last sketch's basis
            self.ritz_left -= 1
            lr = (jacobian_ritz(lambda B: obj.jq_triangle(theta, B), Q.to(theta), **cut) if self.opts.get("jacobian")
                  else gram_ritz(lambda B: obj.gram_form(theta, B), Q.to(theta), **cut))
        elif self.opts.get("jacobian"):
            seed, test = self.opts["seed"] + self.stats["factorizations"], self.opts.get("test", "auto")
            if test == "auto":
                test = "countsketch" if obj.n_rows >= COUNTSKETCH_ROWS_PER_COLUMN * k else "gaussian"
            self.stats["test"] = test
            Omega = obj.row_countsketch(k, seed, theta) if test == "countsketch" else obj.row_gaussian(k, seed, theta)
            lr = jacobian_eig(lambda W: obj.jacobian_t(theta, W), lambda Q: obj.jq_triangle(theta, Q), Omega, **cut)
        else:
            lr = self.sketch(obj, theta, self.test_matrix(obj.n_params, k, theta))
        if reuse > 1 and Q is None:
            self.subspace, self.ritz_left = lr.Q, reuse - 1
        if lr.k < obj.n_params and lr.rank > lr.k - max(1, self.opts["oversample"] // 2):
            self.ritz_left = 0  # the kept rank fills a basis short of P: still growing, only a fresh sketch grows it
        if self.opts.get("warm"):
            self.basis = lr.U
        if self.opts["adaptive"]:
            self.k = max(1, lr.rank + self.opts["oversample"])
        self.stats["sketch_size"] = lr.k
        return lr

    def test_matrix(self, P: int, k: int, like: Tensor) -> Tensor:
        """k test columns: Gaussian (seeded by the count of factorisations), or with
        ``-pc_sketch_warm`` the last kept basis first, then Gaussian columns. Started from the
        dominant eigenspace at the previous θ, the sketch refines it as a subspace iteration
        would (Halko, Martinsson & Tropp 2011, §4.5); the fresh columns find new directions."""
        seed = self.opts["seed"] + self.stats["factorizations"]
        U = self.basis if self.opts.get("warm") else None
        r = 0 if U is None or U.shape[0] != P else min(U.shape[1], max(k - self.opts["oversample"], 0))
        if r == 0:
            return gaussian(P, k, seed, like)
        return torch.cat([U[:, :r].to(like), gaussian(P, k - r, seed, like)], 1)

    def sketch(self, obj: Any, theta: Tensor, M: Tensor) -> LowRank:
        return randomized_eig(
            self._gram(obj, theta),
            M,
            passes=self.opts.get("passes", 2),  # subclasses without -*_passes sketch in two passes
            tol=self.opts["tol"],
            rtol=self.opts["rtol"],
            form=lambda Q: obj.gram_form(theta, Q),
        )


class NystromPC(SketchedPseudoInverse):
    """Damped Nyström preconditioner for Krylov solves with G (Frangella-Tropp-Udell):
    P⁻¹ = U (Λ + μ)⁻¹ Uᵀ + (I − UUᵀ) / (λ_r + μ), the inverse of Ĝ + μI with the unresolved
    spectrum set to λ_r. Written in absolute scale (not rescaled by λ_r + μ) so that trust-region
    Krylov methods (NLS's STCG), whose radius lives in the P-norm, see the scale of (G + μI)⁻¹.
    μ defaults to λ_r, the smallest kept eigenvalue."""

    options = OptionSet("Nyström PC (pinntao.pc.NystromPC)", "pc_sketch_", _SKETCH_OPTIONS)

    def validate(self, opts: dict[str, Any]) -> None:
        check_sketch_args(opts["rank"], opts["oversample"], opts["tol"], 2)

    def sketch(self, obj: Any, theta: Tensor, M: Tensor) -> LowRank:
        return nystrom(self._gram(obj, theta), M, tol=self.opts["tol"], rtol=self.opts["rtol"])

    def apply_weights(self, lr: LowRank) -> Tensor:
        lam_r = float(lr.lam[-1]) if lr.rank else 1.0
        mu = self.mu or lam_r
        self.tail = 1.0 / (lam_r + mu)
        return 1.0 / (lr.lam + mu) - self.tail  # combine adds the tail back: U(w − t)Uᵀb + t b

    def combine(self, b_loc: Tensor, c: Tensor) -> Tensor:
        assert self.U_loc is not None and self.weights is not None
        return self.tail * b_loc + self.U_loc @ (self.weights * c)


class ExactPseudoInverse(_LowRankPC):
    """ENGD: the exact pseudo-inverse (G + μI)⁺ from the full Jacobian."""

    options = OptionSet(
        "Exact Gram pseudo-inverse PC, ENGD (pinntao.pc.ExactPseudoInverse)",
        "pc_engd_",
        [
            Option(
                "tol",
                "float",
                1e-13,
                "eigenvalues <= max(tol, rtol λ_max) are treated as zero",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "rtol",
                "float",
                0.0,
                "relative cut (0: eps·max(N, P), as least squares)",
                check=nonnegative,
                check_text=">= 0",
            ),
            Option("mu", "float", 0.0, "damping μ: (G + μI)⁺", check=nonnegative, check_text=">= 0"),
            Option(
                "form",
                "str",
                "auto",
                "gram: eigh of the P × P matrix G; kernel: thin SVD of the N × P matrix J (auto: kernel when N < P)",
                choices=list(ENGD_FORMS),
            ),
            Option(
                "refresh", "int", 1, "refactor every k-th new linearisation point", check=positive, check_text="> 0"
            ),
        ],
    )

    def factor(self, obj: Any, theta: Tensor) -> LowRank:
        lr, self.stats["form"] = exact_factor(obj, theta, self.opts["form"], self.opts["tol"], self.opts["rtol"])
        if lr.W is not None:  # this rank's rows of W (global J stacks the ranks' rows in rank order)
            off = obj.row_range()[0]
            self._W_loc, self._W_theta = lr.W[off : off + obj.n_local].contiguous(), theta
        return lr

    def apply(self, pc: PETSc.PC, b: PETSc.Vec, x: PETSc.Vec) -> None:
        """Kernel form with b the gradient Jᵀr at the linearisation point: x = U (Λ + μ)⁻¹ Σ Wᵀ r,
        from r itself. Through b = Jᵀr, rounding in b (rank-dependent summation order) reaches
        every singular direction and is amplified by 1/σ²; through r only by 1/σ (poisson1d,
        P = 321, N = 102: 5e-7 vs 8e-11 relative change of d when J's rows are permuted)."""
        self._ensure_factor()
        lr = getattr(self, "_lr", None)
        o = self.obj
        fresh = lr is not None and lr.W is not None and torch.equal(self._W_theta, o.theta_lin)  # not a lagged factor
        if self.U_loc is None or not fresh or not o.is_gradient(o.theta_lin, b):
            super().apply(pc, b, x)
            return
        self._damp(pc)
        with events.RESIDUAL:
            r_loc = o.local_residual(o.theta_lin)
        c = torch.as_tensor(allreduce_sum(o.mpi, to_numpy(self._W_loc.T @ r_loc)), dtype=r_loc.dtype,
                            device=r_loc.device)
        x.setArray(to_numpy(self.U_loc @ (self.weights * lr.lam.sqrt() * c)))


def exact_factor(obj: Any, theta: Tensor, form: str, tol: float, rtol: float = 0.0) -> tuple[LowRank, str]:
    """The exact eigen-factor of G at θ and the form used: ``gram`` (eigh of the summed P × P
    matrix JᵀJ) or ``kernel`` (thin SVD of the gathered N × P J); ``auto`` picks kernel when N < P."""
    if form == "auto":
        form = "kernel" if obj.n_rows < obj.n_params else "gram"
    if form == "kernel":
        return exact_from_jacobian(obj.global_jacobian(theta), None, tol=tol, rtol=rtol), form
    J = obj.local_jacobian(theta)
    G = torch.as_tensor(allreduce_sum(obj.mpi, to_numpy(J.T @ J)), dtype=J.dtype, device=J.device)
    return exact_from_jacobian(None, G, tol=tol, rtol=rtol), form
