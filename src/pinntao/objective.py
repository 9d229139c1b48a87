"""The PINN loss as a PETSc/TAO objective: the only module that touches PETSc and torch.

θ is a PETSc Vec distributed over the communicator; collocation points are split over its
ranks. Every callback gathers θ to all ranks (VecScatter to all), evaluates this rank's
residual slice with torch, and sums the contributions (one MPI Allreduce). The residual
Vec used by TAO ``brgn`` is distributed like the points, so J maps θ's layout to r's.
Operators (Gram G = JᵀJ, exact Hessian, Jacobian J) are MATPYTHON shells built here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from mpi4py import MPI
from petsc4py import PETSc
from torch import Tensor

from . import events
from .comm import allreduce_sum, max_flags, split_range, to_numpy
from .errors import PinnInputError
from .models import FlatModel, MissingDerivative
from .problems.base import Problem
from .residual import Residual
from .sketch import CountSketch, countsketch_rows, gaussian_rows

GRAM_MODES = ("auto", "explicit", "matfree")
INITS = ("glorot", "module")
HESSIAN_TYPES = ("gauss_newton", "exact")
#: J v for a v in the span of the last sketch basis Q (‖v − QQᵀv‖ ≤ this · ‖v‖) is read off the
#: kept image J Q (N·k flops, not N·P): the low-rank natural gradient's d and geodesic a lie there
SPAN_RTOL = 1e-13


class PinnObjective:
    """L(θ) = ½‖r(θ)‖² over the global collocation set, with its PETSc callbacks/operators.

    Parameters: the problem, the flat model, global point counts per block kind, a seed (the
    global point set depends on counts and seed only, never on the rank count), the sampling
    method, and how Gram products are formed (``explicit`` J when it fits the memory budget
    ``gram_memory_mb`` per rank, ``matfree`` jvp+vjp, or ``auto``).
    """

    def __init__(
        self,
        problem: Problem,
        model: FlatModel,
        *,
        comm: PETSc.Comm | None = None,
        counts: dict[str, int] | None = None,
        seed: int = 0,
        sampling: str = "uniform",
        gram: str = "auto",
        gram_memory_mb: float = 1024.0,
    ) -> None:
        if gram not in GRAM_MODES:
            raise PinnInputError(f"unknown Gram mode {gram!r}; allowed: {', '.join(GRAM_MODES)}")
        self.comm = comm if comm is not None else PETSc.COMM_WORLD
        self.mpi = self.comm.tompi4py()
        self.size, self.rank = self.comm.getSize(), self.comm.getRank()
        self.problem, self.model = problem, model
        self.seed, self.sampling = seed, sampling

        points = problem.sample(counts or {}, seed, sampling)
        check_problem(problem, model, points)
        self.global_counts = {k: v.shape[0] for k, v in points.items()}
        # this rank owns a contiguous slice of the stacked global point list (blocks in problem
        # order), so the distributed residual Vec has the same global ordering on any rank count
        start, stop = split_range(sum(v.shape[0] for v in points.values()), self.size, self.rank)
        local, offset = {}, 0
        for b in problem.blocks:
            v = points[b.name]
            lo, hi = max(start - offset, 0), min(stop - offset, v.shape[0])
            local[b.name] = v[lo : max(lo, hi)]
            offset += v.shape[0]
        self.residual = Residual(problem, model, local, self.global_counts)
        self.n_params = model.n_params
        self.n_points = sum(self.global_counts.values())
        #: global residual length: points × components summed over blocks (= n_points for scalar blocks)
        self.n_rows = sum(self.global_counts[b.name] * b.components for b in problem.blocks)
        self.n_local = self.residual.n_local

        xe = problem.eval_points()
        a, b = split_range(xe.shape[0], self.size, self.rank)
        self._x_eval = torch.as_tensor(xe[a:b], dtype=model.dtype, device=model.device)
        self._u_eval = problem.compared(problem.exact(self._x_eval))

        # θ layout and the scatter that gathers θ onto every rank
        self._template = self.create_vec()
        self._scatter, self._full = PETSc.Scatter.toAll(self._template)
        self.rstart, self.rend = self._template.getOwnershipRange()

        need = self.n_local * self.n_params * 8 / 2**20
        self.gram_mode = gram if gram != "auto" else ("explicit" if need <= gram_memory_mb else "matfree")
        self._lin_theta: Tensor | None = None  # where operators are linearised (set by hessian())
        self._jac: tuple[Tensor, Tensor] | None = None  # cached (θ, local J)
        self._image: tuple[Tensor, Tensor, Tensor] | None = None  # (θ, Q, local J Q) of the last jq_triangle
        self._grad_at: tuple[Tensor, np.ndarray] | None = None  # (θ, full ∇L) of the last gradient evaluation
        self._r_at: tuple[Tensor, Tensor] | None = None  # (θ, local r) of the last loss or gradient evaluation
        self.counts = {"objective": 0, "gradient": 0, "gram": 0, "hvp": 0, "jacobian": 0}
        self.nonfinite = False

    # -- layouts ---------------------------------------------------------------------------
    def create_vec(self) -> PETSc.Vec:
        """A parameter Vec (global size P) on the communicator."""
        v = PETSc.Vec().createMPI((PETSc.DECIDE, self.n_params), comm=self.comm)
        v.setUp()
        return v

    def create_residual_vec(self) -> PETSc.Vec:
        """A residual Vec distributed like the collocation points (global size N)."""
        return PETSc.Vec().createMPI((self.n_local, self.n_rows), comm=self.comm)

    def initial_vec(self, seed: int | None = None, init: str = "glorot") -> PETSc.Vec:
        """θ₀: ``glorot`` draws it from the seed (identical on every rank count); ``module`` takes
        the nn.Module's own parameters (rank 0's, broadcast, so all ranks start alike)."""
        if init not in INITS:
            raise PinnInputError(f"-pinn_init: unknown value {init!r}; allowed: {', '.join(INITS)}")
        x = self.create_vec()
        if init == "module":
            theta = to_numpy(self.model.module_theta())
            theta = self.mpi.bcast(theta, root=0) if self.size > 1 else theta
        else:
            theta = to_numpy(self.model.initial_theta(self.seed if seed is None else seed))
        self.set_from_full(x, theta)
        return x

    def evaluate(self, x: PETSc.Vec | Tensor, points: np.ndarray | Tensor) -> np.ndarray:
        """u_θ at the given points (n, d), on every rank (each rank evaluates all of them)."""
        theta = self.gather(x) if isinstance(x, PETSc.Vec) else x
        pts = torch.as_tensor(np.asarray(points), dtype=self.model.dtype, device=self.model.device)
        if pts.ndim != 2 or pts.shape[1] != self.problem.dim:
            raise PinnInputError(f"evaluate: points must have shape (n, {self.problem.dim}), got {tuple(pts.shape)}")
        with torch.no_grad():
            return to_numpy(self.model.u(theta, pts))

    def to_module(self, x: PETSc.Vec | Tensor) -> torch.nn.Module:
        """Copy θ into the torch module's parameters (collective for a Vec); returns the module, so
        ``obj.to_module(x).state_dict()`` is the trained network in torch's own format."""
        self.model.load_into_module(self.gather(x) if isinstance(x, PETSc.Vec) else x)
        return self.model.module

    def gather(self, x: PETSc.Vec) -> Tensor:
        """All of θ on this rank, as a torch tensor on the model's device."""
        self._scatter.scatter(x, self._full, addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        return torch.tensor(self._full.getArray(readonly=True), dtype=self.model.dtype, device=self.model.device)

    def local_tensor(self, v: PETSc.Vec) -> Tensor:
        """A copy of this rank's part of v as a torch tensor on the model's device."""
        return torch.tensor(v.getArray(readonly=True), dtype=self.model.dtype, device=self.model.device)

    def set_from_full(self, y: PETSc.Vec, full: np.ndarray) -> None:
        """Write this rank's slice of a full-length P array into the distributed Vec y."""
        a, b = y.getOwnershipRange()
        y.setArray(full[a:b])

    def _sum(self, t: Tensor) -> np.ndarray:
        return allreduce_sum(self.mpi, to_numpy(t))

    # -- TAO callbacks ---------------------------------------------------------------------
    def _check(self, f: float) -> float:
        if not math.isfinite(f):
            self.nonfinite = True
        return f

    def objective(self, tao: Any, x: PETSc.Vec) -> float:
        self.counts["objective"] += 1
        with events.RESIDUAL:
            theta = self.gather(x)
            r = self.residual(theta)
            self._r_at = (theta, r)  # a gradient from J at an accepted trial point needs no new forward pass
            return self._check(float(self._sum((0.5 * torch.dot(r, r)).reshape(1))[0]))

    def objective_gradient(self, tao: Any, x: PETSc.Vec, g: PETSc.Vec) -> float:
        self.counts["gradient"] += 1
        with events.RESIDUAL:
            theta = self.gather(x)
            r, grad = self.residual.residual_grad(theta)
            buf = self._sum(torch.cat([(0.5 * torch.dot(r, r)).reshape(1), grad]))
        self.set_from_full(g, buf[1:])
        self._grad_at, self._r_at = (theta, buf[1:]), (theta, r)
        return self._check(float(buf[0]))

    def is_gradient(self, theta: Tensor, b: PETSc.Vec) -> bool:
        """True on every rank when b is (bitwise) the gradient Jᵀr this objective last computed, at
        θ: a solver may then use r itself (the kernel-form pseudo-inverse does). Collective."""
        mine = self._grad_at is not None and torch.equal(self._grad_at[0], theta) and np.array_equal(
            b.getArray(readonly=True), self._grad_at[1][self.rstart : self.rend])
        return not bool(max_flags(self.mpi, [0.0 if mine else 1.0])[0])

    def gradient_from_jacobian(self, x: PETSc.Vec, g: PETSc.Vec) -> None:
        """∇L = Σ_ranks J_locᵀ r_loc at x into g, from the explicit J at x (formed here and cached:
        a solver that linearises at x next reuses it) and the r of the last evaluation at x: one
        product instead of a backward pass. Afterwards :meth:`is_gradient` holds for g, as after
        :meth:`objective_gradient`."""
        self.counts["gradient"] += 1
        theta = self.gather(x)
        r = self.local_residual(theta)
        J = self.local_jacobian(theta)
        with events.RESIDUAL:
            full = self._sum(transpose_times(J, r))
        self.set_from_full(g, full)
        self._grad_at, self._r_at = (theta, full), (theta, r)

    def gradient(self, tao: Any, x: PETSc.Vec, g: PETSc.Vec) -> None:
        self.objective_gradient(tao, x, g)

    def hessian(self, tao: Any, x: PETSc.Vec, H: PETSc.Mat, P: PETSc.Mat) -> None:
        """Linearise the Gram/Hessian operators at x (they are matrix-free shells) and drop any
        shift a solver added to the previous operator (NLS perturbs H with MatShift)."""
        self.set_linearization(x)
        for A in (H, P):
            ctx = A.getPythonContext() if A.getType() == PETSc.Mat.Type.PYTHON else None
            if isinstance(ctx, _OperatorContext):
                ctx.sigma = 0.0
            A.stateIncrease()  # a new operator: the KSP runs PCSetUp (pinntao PCs build their factor there)

    def residual_function(self, tao: Any, x: PETSc.Vec, R: PETSc.Vec) -> None:
        r = self.residual(self.gather(x))
        R.setArray(to_numpy(r))
        self._check(float(R.norm()))

    def jacobian_function(self, tao: Any, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        self.set_linearization(x)

    def warmup(self, x: PETSc.Vec) -> None:
        """Run each derivative path once (uncounted) so one-time torch set-up is paid here."""
        theta = self.gather(x)
        self.residual.loss_grad(theta)
        self.residual.jvp(theta, theta)

    def set_linearization(self, x: PETSc.Vec) -> None:
        self._lin_theta = self.gather(x)

    @property
    def theta_lin(self) -> Tensor:
        if self._lin_theta is None:
            raise RuntimeError("operator used before set_linearization()/hessian() was called")
        return self._lin_theta

    # -- derivative products at the linearisation point (global, summed over ranks) ----------
    def local_jacobian(self, theta: Tensor) -> Tensor:
        """This rank's rows of J at θ, cached while θ does not change. A J at another θ is
        overwritten: hold a copy, not the returned tensor, across linearisation points."""
        if self._jac is not None and torch.equal(self._jac[0], theta):
            return self._jac[1]
        self.counts["jacobian"] += 1
        old = self._jac[1] if self._jac is not None else None
        self._jac = None
        with events.JACOBIAN:
            J = self.residual.jacobian(theta, out=old)  # the J at the old θ is dead: reuse its memory
        self._jac = (theta.clone(), J)
        return J

    def global_jacobian(self, theta: Tensor) -> Tensor:
        """All N rows of J on every rank (rows grouped by rank; row order does not matter
        for J Jᵀ's spectrum or for Jᵀ W), a fresh tensor: the cached J is overwritten at the next θ.
        One rank: a copy on J's device, with no trip through host memory (on a GPU that round trip
        cost more than forming J)."""
        J = self.local_jacobian(theta)
        return J.clone() if self.size == 1 else self.allgather_rows(J)

    def allgather_rows(self, loc: Tensor) -> Tensor:
        """The ranks' row blocks stacked in rank order on every rank (Allgatherv through host
        memory); one rank: ``loc`` itself."""
        if self.size == 1:
            return loc
        arr = to_numpy(loc)
        rows = np.array(self.mpi.allgather(arr.shape[0]))
        cols = int(np.prod(arr.shape[1:])) if arr.ndim > 1 else 1
        out = np.empty((int(rows.sum()), *arr.shape[1:]))
        self.mpi.Allgatherv(arr, [out, rows * cols])
        return torch.as_tensor(out, dtype=loc.dtype, device=loc.device)

    def gram_local(self, theta: Tensor, m: Tensor) -> Tensor:
        """This rank's G M (M of shape (P,) or (P, k)), explicit or matrix-free."""
        self.counts["gram"] += 1 if m.ndim == 1 else m.shape[1]
        if self.gram_mode == "explicit":
            J = self.local_jacobian(theta)
            return transpose_times(J, J @ m)
        return self.residual.gram(theta, m)

    def gram(self, theta: Tensor, m: Tensor) -> Tensor:
        """G M summed over ranks (on the model's device)."""
        out = self._sum(self.gram_local(theta, m))
        return torch.as_tensor(out, dtype=self.model.dtype, device=self.model.device)

    def gram_form(self, theta: Tensor, Q: Tensor) -> Tensor:
        """QᵀGQ (k × k) summed over ranks: (JQ)ᵀ(JQ) from the explicit J, else Qᵀ(G Q)."""
        if self.gram_mode == "explicit":
            self.counts["gram"] += Q.shape[1]
            JQ = self.local_jacobian(theta) @ Q
            loc = JQ.T @ JQ
        else:
            loc = Q.T @ self.gram_local(theta, Q)
        return torch.as_tensor(self._sum(loc), dtype=self.model.dtype, device=self.model.device)

    def row_range(self) -> tuple[int, int]:
        """(first global residual row of this rank, global row count N): the ranks' rows stacked in
        rank order, which is the stacked point order. Collective."""
        n = np.array(self.mpi.allgather(self.n_local)) if self.size > 1 else np.array([self.n_local])
        return int(n[: self.rank].sum()), int(n.sum())

    def row_gaussian(self, k: int, seed: int, like: Tensor) -> Tensor:
        """This rank's rows of an N × k standard normal matrix over the global residual rows: the
        same matrix on any number of ranks."""
        return gaussian_rows(self.row_range()[0], self.n_local, k, seed, like)

    def row_countsketch(self, k: int, seed: int, like: Tensor) -> CountSketch:
        """This rank's rows of an N × k CountSketch over the global residual rows (the same matrix
        on any number of ranks)."""
        return countsketch_rows(self.row_range()[0], self.n_local, k, seed, like)

    def jacobian_t(self, theta: Tensor, W: Tensor | CountSketch) -> Tensor:
        """Jᵀ W (P × k) summed over ranks, W this rank's rows (n_loc × k), dense or a CountSketch."""
        self.counts["gram"] += W.shape[1]
        if isinstance(W, CountSketch):
            loc = (W.transpose_times(self.local_jacobian(theta)) if self.gram_mode == "explicit"
                   else self.residual.vjp(theta, W.dense()))
        else:
            loc = self.local_vjp(theta, W)
        return torch.as_tensor(self._sum(loc), dtype=self.model.dtype, device=self.model.device)

    def jq_triangle(self, theta: Tensor, Q: Tensor) -> Tensor:
        """A triangle R with RᵀR = (JQ)ᵀ(JQ) and the singular values of the global J Q: the local
        QR factors stacked over the ranks (the same on every rank), never the product (JQ)ᵀ(JQ)."""
        self.counts["gram"] += Q.shape[1]
        JQ = self.local_jvp(theta, Q)
        self._image = (theta.clone(), Q, JQ)
        R = torch.linalg.qr(JQ, mode="r")[1]
        if self.size > 1:  # the stacked triangles (p·k × k) reduced to one: the SVD then works on k × k
            R = torch.as_tensor(np.concatenate(self.mpi.allgather(to_numpy(R))), dtype=R.dtype, device=R.device)
            R = torch.linalg.qr(R, mode="r")[1]
        return R

    def hvp(self, theta: Tensor, v: Tensor) -> Tensor:
        self.counts["hvp"] += 1 if v.ndim == 1 else v.shape[1]
        out = self._sum(self.residual.hvp(theta, v))
        return torch.as_tensor(out, dtype=self.model.dtype, device=self.model.device)

    def gradient_full(self, theta: Tensor) -> tuple[float, Tensor]:
        """(L, ∇L) at θ as a tensor on every rank."""
        loss, grad = self.residual.loss_grad(theta)
        buf = self._sum(torch.cat([loss.reshape(1), grad]))
        return float(buf[0]), torch.as_tensor(buf[1:], dtype=self.model.dtype, device=self.model.device)

    def loss_full(self, theta: Tensor) -> float:
        return float(self._sum(self.residual.loss(theta).reshape(1))[0])

    def losses_along(self, theta: Tensor, d: Tensor, etas: Tensor, a: Tensor | None = None) -> np.ndarray:
        """L(θ − η d) (or L(θ − η d − ½η² a) on a parabola) for every η at once (vmap over the step
        lengths), summed over ranks."""
        with events.RESIDUAL:
            if a is None:
                local = torch.func.vmap(lambda e: self.residual.loss(theta - e * d))(etas)
            else:
                local = torch.func.vmap(lambda e: self.residual.loss(theta - e * d - (0.5 * e * e) * a))(etas)
            return self._sum(local)

    def second_derivative_along(self, theta: Tensor, d: Tensor, h: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """This rank's r, J d and r_dd ≈ d²/dt² r(θ − t d) at t = 0 (one-sided difference with the
        exact J d, Transtrum & Sethna 2012), and Jᵀ r_dd summed over ranks."""
        with events.RESIDUAL:
            if h > 0:
                r0 = self.local_residual(theta)
                Jd = self.local_jvp(theta, d)
                rdd = (2.0 / h) * ((self.residual(theta - h * d) - r0) / h + Jd)
            else:  # exact: forward over forward mode
                def rjd(th: Tensor) -> tuple[Tensor, Tensor]:
                    return torch.func.jvp(self.residual, (th,), (d,))

                (r0, Jd), (_, rdd) = torch.func.jvp(rjd, (theta,), (d,))
            b = torch.as_tensor(self._sum(self.local_vjp(theta, rdd)), dtype=self.model.dtype, device=self.model.device)
        return r0, Jd, rdd, b

    def local_residual(self, theta: Tensor) -> Tensor:
        """This rank's r(θ): the one the last loss or gradient evaluation made when it was at θ (a
        solver that needs r where it just evaluated saves a forward pass), else evaluated."""
        if self._r_at is not None and torch.equal(self._r_at[0], theta):
            return self._r_at[1]
        return self.residual(theta)

    def squared_norm(self, v: Tensor) -> float:
        """‖v‖² of a residual-layout vector whose rows are split over the ranks."""
        return float(self._sum(torch.dot(v, v).reshape(1))[0])

    def local_jvp(self, theta: Tensor, v: Tensor) -> Tensor:
        """This rank's rows of J v at θ: from the last sketch's image J Q when v lies in span(Q) at
        this θ (:data:`SPAN_RTOL`), else the explicit J when the Gram mode keeps one, else forward mode."""
        if v.ndim == 1 and self._image is not None and torch.equal(self._image[0], theta):
            _, Q, JQ = self._image
            c = Q.T @ v
            if float(torch.linalg.vector_norm(v - Q @ c)) <= SPAN_RTOL * float(torch.linalg.vector_norm(v)):
                return JQ @ c
        return self.local_jacobian(theta) @ v if self.gram_mode == "explicit" else self.residual.jvp(theta, v)

    def local_vjp(self, theta: Tensor, u: Tensor) -> Tensor:
        """This rank's share of Jᵀu at θ for u in its residual rows (sum over ranks for Jᵀu)."""
        return transpose_times(self.local_jacobian(theta), u) if self.gram_mode == "explicit" else \
            self.residual.vjp(theta, u)

    # -- operators -------------------------------------------------------------------------
    def _shell(self, ctx: Any, rows: tuple[int, int], symmetric: bool) -> PETSc.Mat:
        cols = (self._template.getLocalSize(), self.n_params)
        A = PETSc.Mat().createPython((rows, cols), context=ctx, comm=self.comm)
        if symmetric:
            A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        A.setUp()
        return A

    def gram_mat(self) -> PETSc.Mat:
        """Shell G = JᵀJ (Gauss-Newton / energy natural-gradient Gram matrix)."""
        return self._shell(GramContext(self), (self._template.getLocalSize(), self.n_params), True)

    def hessian_mat(self) -> PETSc.Mat:
        """Shell exact Hessian ∇²L."""
        return self._shell(HessianContext(self), (self._template.getLocalSize(), self.n_params), True)

    def jacobian_mat(self) -> PETSc.Mat:
        """Shell J (N × P): mult = jvp, multTranspose = vjp (for TAO brgn)."""
        return self._shell(JacobianContext(self), (self.n_local, self.n_rows), False)

    # -- errors ----------------------------------------------------------------------------
    def rel_l2(self, x: PETSc.Vec | Tensor) -> float:
        """‖u_θ − u*‖ / ‖u*‖ on the problem's fixed evaluation grid."""
        theta = self.gather(x) if isinstance(x, PETSc.Vec) else x
        with torch.no_grad():
            u = self.problem.compared(self.model.u(theta, self._x_eval))
            loc = torch.stack([((u - self._u_eval) ** 2).sum(), (self._u_eval**2).sum()])
        num, den = self._sum(loc)
        return float(math.sqrt(num / den)) if den > 0 else float(math.sqrt(num))

    def max_error(self, x: PETSc.Vec | Tensor) -> float:
        """``max |u_θ − u*| / max |u*|`` on the evaluation grid (the ISGD paper's error measure)."""
        theta = self.gather(x) if isinstance(x, PETSc.Vec) else x
        with torch.no_grad():
            u = self.problem.compared(self.model.u(theta, self._x_eval))
            loc = np.array([float((u - self._u_eval).abs().max()) if u.numel() else 0.0,
                            float(self._u_eval.abs().max()) if u.numel() else 0.0])
        out = np.empty(2)
        self.mpi.Allreduce(loc, out, op=MPI.MAX)  # both maxima in one reduction
        err, ref = float(out[0]), float(out[1])
        return err / ref if ref > 0 else err

    def setup_tao(self, tao: PETSc.TAO, hessian: str | None = None) -> None:
        """Install every callback TAO may ask for: f, ∇f, Hessian shell, residual, Jacobian.
        ``hessian`` None: ``-<tao prefix>pinn_hessian`` (default gauss_newton)."""
        flag = "hessian"
        if hessian is None:
            key = (tao.getOptionsPrefix() or "") + "pinn_hessian"
            db = PETSc.Options()
            hessian = db.getString(key, "gauss_newton") if db.hasName(key) else "gauss_newton"
            flag = f"-{key}"
        if hessian not in HESSIAN_TYPES:
            raise PinnInputError(f"{flag}: unknown Hessian {hessian!r}; allowed: {', '.join(HESSIAN_TYPES)}")
        g = self.create_vec()
        tao.setObjective(self.objective)
        tao.setGradient(self.gradient, g)
        tao.setObjectiveGradient(self.objective_gradient, g)
        H = self.gram_mat() if hessian == "gauss_newton" else self.hessian_mat()
        tao.setHessian(self.hessian, H, H)
        tao.setResidual(self.residual_function, self.create_residual_vec())
        J = self.jacobian_mat()
        tao.setJacobianResidual(self.jacobian_function, J, J)


def transpose_times(J: Tensor, u: Tensor) -> Tensor:
    """Jᵀu for a row-major J: a matrix u as (uᵀJ)ᵀ, which BLAS runs 1.2–1.5× faster than the
    transposed product Jᵀ·u (measured at 1,020 × 1,341 to 12,288 × 3,297, one thread)."""
    return (u.T @ J).T if u.ndim == 2 else J.T @ u


def check_problem(problem: Problem, model: FlatModel, points: dict[str, np.ndarray]) -> None:
    """Push two points of every block through the network, the block's residual and ``exact``
    before anything is distributed: wrong input dimension, field count, output shape, a
    derivative the jet does not hold or non-finite values become one PinnInputError naming the
    block and the expected shape (the same on every rank: points are global)."""
    th = model.initial_theta(0)
    n, m = 2, problem.fields
    for b in problem.blocks:
        x = torch.as_tensor(points[b.name][:n], dtype=model.dtype, device=model.device)
        where = f"problem {problem.name!r}, block {b.name!r}"
        try:
            out = torch.func.functional_call(model.module, model.unflatten(th), (x,))
        except Exception as exc:
            raise PinnInputError(f"{where}: the network cannot take points of shape {tuple(x.shape)} "
                                 f"(the problem is {problem.dim}-D): {type(exc).__name__}: {exc}") from None
        if out.numel() != x.shape[0] * m:
            if m == 1:
                raise PinnInputError(f"{where}: the network returns shape {tuple(out.shape)} for {x.shape[0]} points; "
                                     f"one scalar output per point is expected, shape ({x.shape[0]},) or "
                                     f"({x.shape[0]}, 1)")
            raise PinnInputError(f"{where}: the network returns shape {tuple(out.shape)} for {x.shape[0]} points; the "
                                 f"problem has {m} fields, expected shape ({x.shape[0]}, {m}) (out_dim={m})")
        try:
            pairs = b.pairs(problem.dim)
            if b.residual is not None:
                r = b.residual(model.jet(th, x, b.order, pairs, pure=b.pure_dims(problem.dim)), x)
            else:
                u = model.point_function(model.unflatten(th))
                r = torch.func.vmap(lambda p, b=b, u=u: b.point_residual(u, p))(x)
        except PinnInputError:
            raise
        except MissingDerivative as exc:
            pure = f", pure={b.pure!r}" if b.pure is not None else ""
            raise PinnInputError(f"{where}: the residual asks for a derivative the jet does not hold "
                                 f"(order={b.order}, mixed={b.mixed!r}{pure}): {exc}") from None
        except Exception as exc:
            raise PinnInputError(f"{where}: the residual failed on {x.shape[0]} points: "
                                 f"{type(exc).__name__}: {exc}") from None
        c = b.components
        _check_values(r, x.shape[0], c, f"{where}: the residual",
                      f"{c} components per point (components={c})", "at the block's first points")
    xe = torch.as_tensor(problem.eval_points()[:n], dtype=model.dtype, device=model.device)
    try:
        ue = problem.exact(xe)
    except PinnInputError:
        raise  # already one line naming what was wrong (e.g. a reference cache that is not a regular file)
    except Exception as exc:
        raise PinnInputError(f"problem {problem.name!r}: exact() failed on {n} points: "
                             f"{type(exc).__name__}: {exc}") from None
    _check_values(ue, xe.shape[0], m, f"problem {problem.name!r}: exact()", f"{m} fields per point",
                  "at the evaluation points")


def _check_values(v: Any, n: int, width: int, who: str, what: str, where: str) -> None:
    """v must be a finite tensor of shape (n,) (width 1) or (n, width); else one PinnInputError."""
    want = (n,) if width == 1 else (n, width)
    if not isinstance(v, Tensor) or tuple(v.shape) != want:
        shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
        what = "one value per point" if width == 1 else what
        raise PinnInputError(f"{who} returns {shape} for {n} points; expected shape {want}, {what}")
    if not torch.isfinite(v).all():
        raise PinnInputError(f"{who} is not finite {where}")


class _OperatorContext:
    """Shared MATPYTHON plumbing: gather x, apply a torch product, scatter to y."""

    def __init__(self, obj: PinnObjective) -> None:
        self.obj = obj
        self.sigma = 0.0  # the operator is A + σI after MatShift(σ)

    def product(self, v: Tensor) -> Tensor:  # global product as a tensor
        raise NotImplementedError

    def mult(self, A: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        v = self.obj.gather(x)
        out = self.product(v)
        if self.sigma:
            out = out + self.sigma * v
        self.obj.set_from_full(y, to_numpy(out))

    def shift(self, A: PETSc.Mat, alpha: float) -> None:
        self.sigma += alpha

    def multTranspose(self, A: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self.mult(A, x, y)  # symmetric


class GramContext(_OperatorContext):
    """G v = Jᵀ(J v) at the linearisation point."""

    def product(self, v: Tensor) -> Tensor:
        return self.obj.gram(self.obj.theta_lin, v)

    def getDiagonal(self, A: PETSc.Mat, d: PETSc.Vec) -> None:
        J = self.obj.local_jacobian(self.obj.theta_lin)
        self.obj.set_from_full(d, self.obj._sum((J * J).sum(0)) + self.sigma)


class HessianContext(_OperatorContext):
    """Exact ∇²L v at the linearisation point."""

    def product(self, v: Tensor) -> Tensor:
        return self.obj.hvp(self.obj.theta_lin, v)


class JacobianContext:
    """J: θ-layout → residual layout. mult = jvp (local rows), multTranspose = Σ_ranks vjp."""

    def __init__(self, obj: PinnObjective) -> None:
        self.obj = obj

    def mult(self, A: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        o = self.obj
        y.setArray(to_numpy(o.local_jvp(o.theta_lin, o.gather(x))))

    def multTranspose(self, A: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        o = self.obj
        o.set_from_full(y, o._sum(o.local_vjp(o.theta_lin, o.local_tensor(x))))
