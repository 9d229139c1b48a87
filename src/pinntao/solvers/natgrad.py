"""Natural-gradient / Gauss-Newton line-search method as a TAO python type.

Each iteration linearises the Hessian operator at θ (TAO's Hessian callback: the Gram
matrix G = JᵀJ by default), solves G d = ∇L with the Tao's KSP, and steps θ ← θ − η d.
The KSP and PC pick the method by options:

- SNGD: ``-tao_ng_ksp_type preonly -tao_ng_pc_type python -tao_ng_pc_python_type pinntao.pc.SketchedPseudoInverse``
- ENGD: ``-tao_ng_ksp_type preonly -tao_ng_pc_type python -tao_ng_pc_python_type pinntao.pc.ExactPseudoInverse``
- Gauss-Newton-CG: ``-tao_ng_ksp_type cg`` (optionally ``-tao_ng_pc_python_type pinntao.pc.NystromPC``)

The KSP's options prefix is the Tao's prefix + ``tao_ng_`` (as TAO's nls gives its KSP ``tao_nls_``),
so two prefixed natural-gradient solves in one program are configured apart.

η comes from the papers' grid line search (η = base^j, j = 0..steps−1, all candidates
evaluated in one batched pass; the best one wins) or from the Tao's own TaoLineSearch
(``-tao_ng_linesearch tao``, then ``-tao_ls_type`` picks it). A non-finite direction, a
non-descent direction or no decrease ends the solve with a TAO diverged reason; θ stays at
the last accepted iterate.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from petsc4py import PETSc

from .. import events
from ..errors import PinnInputError
from ..options import Option, OptionSet, nonnegative, positive
from .base import Solver, pinn_operator

LINESEARCHES = ("grid", "backtrack", "tao")
DAMPINGS = ("none", "fixed", "adaptive", "safeguard")
LM_DAMPINGS = ("adaptive", "safeguard")  # μ grows after a rejected step, retried
R = PETSc.TAO.ConvergedReason


class NaturalGradient(Solver):
    """TAO python context: ``-tao_type python -tao_python_type pinntao.solvers.NaturalGradient``."""

    options = OptionSet(
        "Natural-gradient TAO (pinntao.solvers.NaturalGradient)",
        "tao_ng_",
        [
            Option(
                "linesearch",
                "str",
                "grid",
                "grid: best of η = base^j in batched passes (the paper's); backtrack: the last accepted η first, "
                "then base^j until sufficient decrease (losses only where ∇L comes from the next J, else the "
                "first trial's gradient in the same pass); tao: the Tao's TaoLineSearch",
                choices=list(LINESEARCHES),
            ),
            Option("ls_steps", "int", 31, "grid line search: number of candidates", check=positive, check_text="> 0"),
            Option(
                "ls_chunk",
                "int",
                4,
                "grid line search: candidates per batched pass; stops at the first interior "
                "minimum (= ls_steps: exhaustive)",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "ls_base",
                "float",
                0.5,
                "grid line search: η = base^j",
                check=lambda v: 0 < v < 1,
                check_text="in (0, 1)",
            ),
            Option("ls_c1", "float", 1e-4, "backtrack: accept η when L(θ − ηd) ≤ L − c1·η·∇Lᵀd",
                   check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
            Option("damping", "str", "none", "none: d = KSP(G) ∇L; fixed: KSP(G + μI) with μ = damping_init; "
                   "adaptive: μ = c·L with c from the gain ratio (Levenberg-Marquardt), starting at damping_init; "
                   "safeguard: μ = damping_floor until a step is rejected, then floor + c·L from damping_init, "
                   "c → 0 again once the model predicts well", choices=list(DAMPINGS)),
            Option("damping_init", "float", 1e-2,
                   "fixed: μ; adaptive: the initial c in μ = c·L; safeguard: c after a rejection",
                   check=nonnegative, check_text=">= 0"),
            Option("damping_min", "float", 1e-10, "adaptive: lower bound on c; safeguard: c below it is 0",
                   check=nonnegative, check_text=">= 0"),
            Option("damping_floor", "float", 0.0, "safeguard: μ while no step has been rejected recently",
                   check=nonnegative, check_text=">= 0"),
            Option("damping_eta_min", "float", 0.0,
                   "safeguard: an accepted step length η below it counts as a rejection (damp and retry); 0: off",
                   check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
            Option("damping_decay", "float", 0.0,
                   "safeguard: c ← decay·c after each accepted damped step; 0: Nielsen's rule from the gain ratio",
                   check=lambda v: 0 <= v < 1, check_text="in [0, 1)"),
            Option("damping_max", "float", 1e10, "adaptive: upper bound on c", check=positive, check_text="> 0"),
            Option("retries", "int", 6, "adaptive: new directions with more damping after a failed line search",
                   check=nonnegative, check_text=">= 0"),
            Option("geodesic", "bool", False, "geodesic acceleration (Transtrum & Sethna 2012): step along the "
                   "parabola θ − ηd − ½η²a, a = (G + μI)⁺Jᵀr_dd with r_dd the residual's second derivative along "
                   "d (one more residual evaluation and KSP solve per iteration)"),
            Option("geodesic_h", "float", 0.1, "geodesic: one-sided difference step for r_dd along d (0: exact, "
                   "forward over forward mode)", check=nonnegative, check_text=">= 0"),
            Option("geodesic_alpha", "float", 1.5, "geodesic: a path with 2‖a‖ > α‖d‖ bends too much: a rejection "
                   "(more damping, same factor) under adaptive/safeguard damping, else the correction is dropped "
                   "(0: no test)", check=nonnegative, check_text=">= 0"),
            Option("stall_its", "int", 0, "stop (CONVERGED_USER) when the best loss fell by less than stall_rtol "
                   "over this many iterations (0: off)", check=nonnegative, check_text=">= 0"),
            Option("stall_rtol", "float", 1e-3, "relative decrease the stall test asks for",
                   check=lambda v: 0 < v < 1, check_text="in (0, 1)"),
        ],
    )
    ksp_suffix = "tao_ng_"
    default_ksp = ("preonly", "pinntao.pc.SketchedPseudoInverse")
    needs_operator = "hessian"
    work_vecs = ("g", "d", "work", "g_new", "acc")
    # damping c, ν of Nielsen's rule, the warm start of the accept-first line search, the stall test's best losses
    state_scalars = ("c", "nu", "eta_last", "eta_first", "best")

    def __init__(self) -> None:
        super().__init__()
        self.c, self.nu, self.eta_last, self.eta_first = 0.0, 2.0, 1.0, False
        self.best: list[float] = [math.inf]
        self._shift = 0.0
        self._grad_from_j = False  # set per solve (preSolve): ∇L as Jᵀr from the next iteration's J

    def extra_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """The PC's sketch state."""
        return pc_restart_state(tao)

    def load_extra_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        load_pc_restart_state(tao, state)

    def configure(self, tao: PETSc.TAO) -> None:
        krylov_norm_default(tao.getKSP())

    def setUp(self, tao: PETSc.TAO) -> None:
        super().setUp(tao)
        if self.opts["geodesic"]:
            flag = f"-{tao.getOptionsPrefix() or ''}tao_ng_geodesic"
            if self.opts["linesearch"] == "tao":
                raise PinnInputError(f"{flag}: the parabolic step needs -tao_ng_linesearch grid or backtrack, "
                                     f"not tao (a TaoLineSearch searches along a line); add {flag} 0 to use it")
            if not self.uses_ksp():
                raise PinnInputError(f"{flag}: {type(self).__name__} solves with its own kernel step, not the "
                                     "Tao's KSP; geodesic acceleration is for pinntao.solvers.NaturalGradient")
            self.check_operator(tao, "pinntao")
        krylov_norm_default(tao.getKSP())

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        """The step, its options, line-search evaluations and per-phase times (TAO prints the KSP
        after this; the TaoLineSearch it also prints is used only with -tao_ng_linesearch tao)."""
        damp = "" if self.opts.get("damping", "none") == "none" else " + μI"
        viewer.printfASCII(
            f"  natural-gradient step d = KSP(G{damp}) ∇L, " + " ".join(f"{k}={v}" for k, v in self.opts.items())
            + "\n"
        )
        if self.opts.get("damping", "none") != "none" and self.stats.get("mu"):
            viewer.printfASCII(f"  current damping μ = {self.stats['mu'][-1]:.3e}\n")
        st = self.stats
        if st.get("iterations"):
            its = st["iterations"]
            viewer.printfASCII(
                f"  line search: {st['ls_evals']} loss evaluations ({st['ls_evals'] / its:.2f} per iteration, "
                f"batched candidates included), {st['retries']} damping retries"
                + (f", {st['geodesic_dropped']} geodesic corrections dropped" if self.opts.get("geodesic") else "")
                + "\n"
            )
            times = ", ".join(f"{k} {1e3 * v / its:.1f}" for k, v in st["time_s"].items()
                              if k != "geodesic" or self.opts.get("geodesic"))
            viewer.printfASCII(f"  time per iteration [ms]: {times}\n")

    # -- the iteration ---------------------------------------------------------------------
    def _tic(self, phase: str, t0: float) -> float:
        t = time.perf_counter()
        self.stats["time_s"][phase] += t - t0
        return t

    # damping: μ = c·L (Levenberg-Marquardt tied to the loss), c from the gain ratio
    def _mu(self, f: float) -> float:
        kind = self.opts["damping"]
        if kind == "none":
            return 0.0
        if kind == "fixed":
            return self.opts["damping_init"]
        floor = self.opts["damping_floor"] if kind == "safeguard" else 0.0
        return floor + self.c * max(f, 0.0)

    def _update_damping(self, rho: float) -> None:
        """Nielsen's rule on c (μ = c·L): a good model (ρ → 1) shrinks c up to 3×, a poor one
        (ρ ≤ 0) grows it 2×, 4×, 8× … in a row."""
        if self.opts["damping"] == "safeguard":  # undamped (μ = floor) first, LM only after a rejection
            if rho > 0:
                decay = self.opts["damping_decay"]
                self.c *= decay if decay > 0 else max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                self.c, self.nu = (0.0 if self.c < self.opts["damping_min"] else self.c), 2.0
            else:
                grown = self.c * self.nu
                self.c, self.nu = (grown, 2.0 * self.nu) if grown > 0 else (self.opts["damping_init"], 2.0)
            self.c = min(self.c, self.opts["damping_max"])
            return
        if self.opts["damping"] != "adaptive":
            return
        if rho > 0:
            self.c *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            self.nu = 2.0
        else:
            self.c *= self.nu
            self.nu *= 2.0
        self.c = min(max(self.c, self.opts["damping_min"]), self.opts["damping_max"])

    def direction(self, tao: PETSc.TAO, x: PETSc.Vec, g: PETSc.Vec, d: PETSc.Vec, f: float, mu: float,
                  relinearize: bool) -> str:
        """d ≈ (G + μI)⁺ ∇L by the Tao's KSP on the (shifted) Hessian operator; '' or why it failed."""
        H, Hp, _ = tao.getHessian()
        ksp = tao.getKSP()
        t0 = time.perf_counter()
        if relinearize:
            tao.computeHessian(x, H, Hp)  # records θ; resets any earlier shift
            self._shift = 0.0
            for A in (H, Hp):
                ctx = A.getPythonContext() if A.getType() == PETSc.Mat.Type.PYTHON else None
                if ctx is not None and hasattr(ctx, "damping"):
                    ctx.damping = 0.0
            obj = pinn_operator(tao)
            if obj is not None and obj.gram_mode == "explicit":
                obj.local_jacobian(obj.theta_lin)  # the batched J, shared by the PC and the products
            t0 = self._tic("jacobian", t0)
        if mu != self._shift:
            for A in (H, Hp) if Hp.handle != H.handle else (H,):
                A.shift(mu - self._shift)  # the KSP solves with G + μI
                ctx = A.getPythonContext() if A.getType() == PETSc.Mat.Type.PYTHON else None
                if ctx is not None:
                    ctx.damping = mu  # pinntao PCs follow it (pc.lowrank.operator_shift)
            self._shift = mu
        H.stateIncrease()  # a new operator: PCSetUp builds the factor (a shift alone reuses it)
        ksp.setOperators(H, Hp)
        ksp.setUp()
        t0 = self._tic("factor", t0)
        ksp.solve(g, d)
        self._tic("direction", t0)
        self.stats["ksp_its"] += ksp.getIterationNumber()
        if ksp.getConvergedReason() < 0 and not math.isfinite(d.norm()):
            return f"KSP failed ({ksp.getConvergedReason()}): non-finite direction, step rejected"
        return ""

    def _geodesic(self, tao: PETSc.TAO, obj: Any, x: PETSc.Vec, d: PETSc.Vec) -> Any:
        """Geodesic acceleration: a = (G + μI)⁺Jᵀr_dd into ``self.acc`` (the same KSP and factor as
        d), so that r(θ − ηd − ½η²a) ≈ r − ηJd + ½η²(r_dd − Ja) cancels the residual's curvature
        along d in range(J). Returns (a as a tensor, the loss of that second-order model as a
        function of η), None (correction dropped) or "bent" (Transtrum's test failed: damp more)."""
        theta, dt = obj.gather(x), obj.gather(d)
        r0, Jd, rdd, b = obj.second_derivative_along(theta, dt, self.opts["geodesic_h"])
        obj.set_from_full(self.work, b.cpu().numpy())
        ksp = tao.getKSP()
        ksp.solve(self.work, self.acc)
        an, alpha = self.acc.norm(), self.opts["geodesic_alpha"]
        if not math.isfinite(an) or (alpha > 0 and 2.0 * an > alpha * d.norm()):
            if math.isfinite(an) and self.opts["damping"] in LM_DAMPINGS:
                return "bent"
            self.stats["geodesic_dropped"] += 1
            return None
        at = obj.gather(self.acc)
        q = rdd - obj.local_jvp(theta, at)

        def model(eta: float) -> float:
            return 0.5 * obj.squared_norm(r0 - eta * Jd + (0.5 * eta * eta) * q)

        return at, model

    def _trial(self, x: PETSc.Vec, d: PETSc.Vec, eta: float, work: PETSc.Vec, geo: Any) -> None:
        x.copy(work)
        work.axpy(-eta, d)
        if geo is not None:
            work.axpy(-0.5 * eta * eta, self.acc)

    def take_direction(self) -> None:
        """Hook: the last direction was taken (SPRING keeps it as its momentum)."""

    def curvature(self, tao: PETSc.TAO, d: PETSc.Vec, work: PETSc.Vec) -> float:
        """dᵀGd (the Gauss-Newton model's curvature along d), one operator product."""
        H, _, _ = tao.getHessian()
        H.mult(d, work)
        return work.dot(d) - self._shift * d.dot(d)

    def _grid_search(self, tao: PETSc.TAO, obj: Any, x: PETSc.Vec, d: PETSc.Vec, f: float, work: PETSc.Vec,
                     geo: Any = None) -> float:
        """argmin_j L(θ − base^j d) over the grid, evaluated ``ls_chunk`` candidates at a time
        (one batched pass each), from η = 1 down. It stops once a chunk holds a decrease that is
        not at the chunk's smallest η: along a descent direction L(θ − η d) then rises again
        toward f as η → 0 (set ls_chunk = ls_steps for the exhaustive grid)."""
        etas = self.opts["ls_base"] ** np.arange(self.opts["ls_steps"], dtype=np.float64)
        theta = dt = None
        if obj is not None:
            theta, dt = obj.gather(x), obj.gather(d)
        best_f, best_eta = f, 0.0
        chunk = self.opts["ls_chunk"]
        for start in range(0, etas.size, chunk):
            cand = etas[start : start + chunk]
            if obj is not None:
                fs = obj.losses_along(theta, dt, torch.as_tensor(cand, dtype=theta.dtype, device=theta.device),
                                      None if geo is None else geo[0])
            else:  # a foreign objective: one evaluation per candidate
                fs = []
                for eta in cand:
                    self._trial(x, d, eta, work, geo)
                    fs.append(tao.computeObjective(work))
                fs = np.asarray(fs)
            self.stats["ls_evals"] += cand.size
            fs = np.where(np.isfinite(fs), fs, np.inf)
            j = int(np.argmin(fs))
            if fs[j] < best_f:
                best_f, best_eta = float(fs[j]), float(cand[j])
                if j < cand.size - 1:
                    break
            elif best_eta > 0:
                break
        return best_eta

    def _backtrack(self, tao: PETSc.TAO, x: PETSc.Vec, d: PETSc.Vec, f: float, slope: float, work: PETSc.Vec,
                   g_new: PETSc.Vec, geo: Any = None) -> tuple[float, float, bool]:
        """Accept-first, warm-started: the first trial is the last accepted η, or one grid step
        above it when that was accepted at its first trial (η = 1 at the start), with the gradient
        in the same pass unless ∇L comes from the next J; accepted on sufficient decrease
        L(θ − ηd) ≤ L − c1·η·∇Lᵀd, else η ← base·η (objective only). Returns (η, L_new, gradient
        done); η = 0: no acceptable step."""
        eta, c1 = self.eta_last, self.opts["ls_c1"]
        if self.eta_first:
            eta = min(1.0, eta / self.opts["ls_base"])
        for j in range(self.opts["ls_steps"]):
            self._trial(x, d, eta, work, geo)
            first = j == 0 and not self._grad_from_j  # the gradient in the same pass
            fn = tao.computeObjectiveGradient(work, g_new) if first else tao.computeObjective(work)
            self.stats["ls_evals"] += 1
            if math.isfinite(fn) and fn <= f - c1 * eta * slope:
                self.eta_last, self.eta_first = eta, j == 0
                return eta, fn, first
            eta *= self.opts["ls_base"]
        return 0.0, f, False

    def new_stats(self) -> dict[str, Any]:
        phases = ("jacobian", "factor", "direction", "geodesic", "linesearch", "gradient", "iteration")
        return {"ksp_its": 0, "ls_evals": 0, "eta": [], "mu": [], "retries": 0, "geodesic_dropped": 0,
                "time_s": dict.fromkeys(phases, 0.0)}

    def preSolve(self, tao: PETSc.TAO, x: PETSc.Vec) -> None:
        self._obj = pinn_operator(tao)
        self._ls = tao.getLineSearch() if self.opts["linesearch"] == "tao" else None
        if self._ls is not None:
            self._ls.useTAORoutine(tao)
        self.c, self.nu, self._shift = self.opts["damping_init"], 2.0, 0.0
        if self.opts["damping"] == "safeguard":
            self.c = 0.0  # undamped (μ = floor) until a step is rejected
        self.eta_last, self.eta_first = 1.0, False
        self.best = [math.inf]  # best loss per iteration, for the stall test
        # ∇L at the new θ as Jᵀr from the J the next linearisation needs anyway (explicit J, the Tao's
        # own objective): the line search then evaluates the loss only, no backward pass
        fg = tao.getObjectiveAndGradient()[1]
        obj = self._obj
        self._grad_from_j = (obj is not None and obj.gram_mode == "explicit" and fg is not None
                             and fg[0] == obj.objective_gradient)

    def evaluate(self, tao: PETSc.TAO, x: PETSc.Vec) -> float:
        """L(x), and ∇L(x) into ``self.g``: as Jᵀr when the steps take it so (then a run resumed from
        a checkpoint starts from the same bits as the uninterrupted one)."""
        if not self._grad_from_j:
            return super().evaluate(tao, x)
        f = tao.computeObjective(x)
        if not math.isfinite(f):
            return super().evaluate(tao, x)
        self._obj.gradient_from_jacobian(x, self.g)  # outside any iteration: not in the phase times
        return f

    def _gradient_from_j(self, x: PETSc.Vec, g: PETSc.Vec) -> None:
        t0 = time.perf_counter()
        self._obj.local_jacobian(self._obj.gather(x))  # the next linearisation's J, formed now
        t0 = self._tic("jacobian", t0)
        self._obj.gradient_from_jacobian(x, g)
        self._tic("gradient", t0)

    def refreshed(self, f: float) -> None:
        self.best[:] = [math.inf]  # the loss changed: the stall test starts over

    def step(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> tuple[float, float] | None:
        g, d, work, g_new, obj, ls = self.g, self.d, self.work, self.g_new, self._obj, self._ls
        t_it = time.perf_counter()
        eta, f_new, failed = 0.0, f, ""
        for attempt in range(self.opts["retries"] + 1):
            have_grad = False  # g_new holds the gradient at this attempt's accepted point only
            f_known = False
            mu = self._mu(f)
            failed = self.direction(tao, x, g, d, f, mu, relinearize=attempt == 0)
            if failed:
                break
            slope = g.dot(d)
            if not math.isfinite(slope):
                failed = "non-finite direction, step rejected"
                break
            if slope <= 0:
                failed = f"not a descent direction (∇Lᵀd = {slope:.3e}), step rejected"
                if self.opts["damping"] in LM_DAMPINGS and attempt < self.opts["retries"]:
                    failed = ""  # rounding at a tiny gradient (∇Lᵀd ≈ -1e-20 seen): more damping, retry
                    self.stats["retries"] += 1
                    self._update_damping(-1.0)
                    continue
                break
            t0 = time.perf_counter()
            geo = None
            if self.opts["geodesic"]:
                geo = self._geodesic(tao, obj, x, d)
                t0 = self._tic("geodesic", t0)
                if isinstance(geo, str):  # the path bends too much: a rejection (more damping, same factor)
                    self.stats["retries"] += 1
                    if attempt < self.opts["retries"]:
                        self._update_damping(-1.0)
                        continue
                    geo = None
                    self.stats["geodesic_dropped"] += 1
            with events.LINESEARCH:
                if ls is not None:
                    x.copy(work)
                    g.copy(g_new)  # the line search reads ∇L at θ from it and leaves ∇L at the new point
                    d.scale(-1.0)
                    f_new, eta, lsr = ls.apply(work, g_new, d)
                    d.scale(-1.0)
                    if lsr < 0 or not math.isfinite(f_new):
                        eta = 0.0
                    have_grad = eta > 0
                elif self.opts["linesearch"] == "backtrack":
                    eta, f_new, have_grad = self._backtrack(tao, x, d, f, slope, work, g_new, geo)
                    f_known = eta > 0  # f_new is the loss at the new θ
                else:
                    eta = self._grid_search(tao, obj, x, d, f, work, geo)
                if (self.opts["damping"] == "safeguard" and 0 < eta < self.opts["damping_eta_min"]
                        and attempt < self.opts["retries"]):
                    eta = 0.0  # a decrease only below the step floor: the model is far off, a rejection
                lm = self.opts["damping"] == "adaptive" or (self.opts["damping"] == "safeguard" and self.c > 0)
                rho = 0.0 if lm else 1.0  # safeguard at c = 0: an accepted step keeps it undamped
                if eta > 0 and lm:
                    if self.opts["linesearch"] == "grid":
                        self._trial(x, d, eta, work, geo)
                        f_new, have_grad = tao.computeObjectiveGradient(work, g_new), True
                    # gain ratio of the accepted step against the Gauss-Newton model (second order on the parabola)
                    if geo is not None:
                        pred = f - geo[1](eta)
                    else:
                        pred = eta * slope - 0.5 * eta * eta * self.curvature(tao, d, work)
                    rho = (f - f_new) / pred if pred > 0 else 0.0
            self._tic("linesearch", t0)
            if eta > 0:
                self._update_damping(rho)
                break
            if self.opts["damping"] not in LM_DAMPINGS:
                break
            self.stats["retries"] += 1
            self._update_damping(-1.0)  # no decrease (or below the floor): more damping, same factor, new direction
        if failed:
            self.stop(tao, R.DIVERGED_LS_FAILURE if "descent" in failed else R.DIVERGED_NAN, failed)
            return None
        if eta == 0.0:
            what = "TAO line search failed" if ls is not None else "line search found no decrease"
            self.stop(tao, R.DIVERGED_LS_FAILURE, what + (
                f" (after {self.opts['retries']} damping increases)" if self.opts["damping"] in LM_DAMPINGS else ""))
            return None
        x.axpy(-eta, d)
        if geo is not None:
            x.axpy(-0.5 * eta * eta, self.acc)
        self.take_direction()
        if self._grad_from_j:  # ∇L as Jᵀr at every step, as in evaluate(): a resumed run repeats the same bits
            f = f_new if f_known or have_grad else tao.computeObjective(x)
            self._gradient_from_j(x, g)
        else:
            t0 = time.perf_counter()
            if have_grad:
                g_new.copy(g)
                f = f_new
            else:
                f = tao.computeObjectiveGradient(x, g)
            self._tic("gradient", t0)
        self.stats["eta"].append(eta)
        self.stats["mu"].append(mu)
        self._tic("iteration", t_it)
        return f, eta

    def postStep(self, tao: PETSc.TAO, f: float) -> str:
        if self._stalled(f, self.best):
            return (f"loss stalled: less than {self.opts['stall_rtol']:g} relative decrease over "
                    f"{self.opts['stall_its']} iterations (-tao_ng_stall_its)")
        return ""

    def postSolve(self, tao: PETSc.TAO) -> None:
        pc_ctx = pc_context(tao)
        if pc_ctx is not None and hasattr(pc_ctx, "stats"):
            self.stats["pc"] = pc_ctx.stats

    def _stalled(self, f: float, best: list[float]) -> bool:
        """True when the best loss of the last ``stall_its`` iterations is not ``stall_rtol`` below
        the best loss before them (a least-squares loss near its floor: gradient norms say little)."""
        best.append(min(best[-1], f))
        n = self.opts["stall_its"]
        del best[: max(0, len(best) - (n + 2))]  # only the window is read (and kept in a restart file)
        if n <= 0 or len(best) <= n + 1:
            return False
        return best[-1] > (1.0 - self.opts["stall_rtol"]) * best[-1 - n]


def krylov_norm_default(ksp: PETSc.KSP) -> None:
    """CG/MINRES with a pinntao PC on the singular Gram matrix: test convergence on the true
    residual ‖b − Ax‖ unless ``-<prefix>ksp_norm_type`` says otherwise. g = Jᵀr lies in range(G),
    but the preconditioned residual P⁻¹(b − Ax) is inflated by P⁻¹'s large weights 1/(λ+μ) on
    the near-null space, where G hardly acts: CG then runs to its cap (DIVERGED_ITS) at a true
    residual already far below the tolerance."""
    if ksp.getType() not in (PETSc.KSP.Type.CG, PETSc.KSP.Type.MINRES):
        return
    pc = ksp.getPC()
    if pc.getType() != PETSc.PC.Type.PYTHON or not type(pc.getPythonContext()).__module__.startswith("pinntao."):
        return
    if PETSc.Options().hasName((ksp.getOptionsPrefix() or "") + "ksp_norm_type"):
        return
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)


def ksp_prefix(tao: PETSc.TAO) -> str:
    """Options prefix of a NaturalGradient Tao's KSP: ``<tao prefix>tao_ng_``."""
    return (tao.getOptionsPrefix() or "") + NaturalGradient.ksp_suffix


def pc_context(tao: PETSc.TAO) -> Any:
    """The Python context of a Tao's PC (a pinntao sketch PC, say), None for a PETSc PC."""
    pc = tao.getKSP().getPC()
    return pc.getPythonContext() if pc.getType() == PETSc.PC.Type.PYTHON else None


def pc_restart_state(tao: PETSc.TAO) -> dict[str, Any]:
    """What an exact restart needs besides θ from a Tao's sketch PC: its adaptive size and its count
    of factorisations (the seed of the next test matrix)."""
    ctx = pc_context(tao)
    if ctx is None or not hasattr(ctx, "stats"):
        return {}
    state: dict[str, Any] = {"pc_k": float(getattr(ctx, "k", 0)),
                             "pc_factorizations": float(ctx.stats.get("factorizations", 0)),
                             "pc_changes": float(getattr(ctx, "_changes", 0))}
    if getattr(ctx, "basis", None) is not None:  # -pc_sketch_warm: the next test matrix starts from it
        state["pc_basis"] = ctx.basis.detach().cpu().numpy()
    if getattr(ctx, "subspace", None) is not None:  # -pc_sketch_reuse: the Ritz basis until the next sketch
        state["pc_subspace"] = ctx.subspace.detach().cpu().numpy()
        state["pc_ritz_left"] = float(ctx.ritz_left)
    return state


def load_pc_restart_state(tao: PETSc.TAO, state: dict[str, Any]) -> None:
    """Put the sketch PC back where :func:`pc_restart_state` found it (before the next solve)."""
    ctx = pc_context(tao)
    if ctx is None or "pc_factorizations" not in state:
        return
    if hasattr(ctx, "k"):
        ctx.k = int(state["pc_k"])
    ctx.stats["factorizations"] = int(state["pc_factorizations"])
    ctx._changes = int(state["pc_changes"])
    basis = np.asarray(state.get("pc_basis", []), dtype=np.float64)
    if basis.ndim == 2 and hasattr(ctx, "basis"):  # another shape: the next sketch starts Gaussian
        ctx.basis = torch.as_tensor(basis)
    subspace = np.asarray(state.get("pc_subspace", []), dtype=np.float64)
    if subspace.ndim == 2 and hasattr(ctx, "subspace"):  # another network's: the factor sketches afresh
        ctx.subspace, ctx.ritz_left = torch.as_tensor(subspace), int(state.get("pc_ritz_left", 0))
