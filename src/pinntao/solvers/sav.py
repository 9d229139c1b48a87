"""Scalar-auxiliary-variable (SAV) training as TAO python types: SAV, ResSAV, RelSAV, A-SAV.

Algorithms 2–5 of the SAV paper (papers/sav-energy-stable-training.md). The gradient flow
θ' = −∇L is split as θ' + 𝓛θ + N(θ) − 𝓛θ = 0 with N = ∇L, 𝓛 = λI (or λG, G = JᵀJ at θₙ,
applied by :class:`~pinntao.pc.ProximalPC`), r = √(L + C), and one step is

    A = (I + Δt𝓛)⁻¹,   rₙ₊₁ = rₙ / (1 + Δt (N, A N) / (2(L + C))),
    θₙ₊₁ = θₙ − rₙ₊₁ Δt A N / √(L + C).

The modified energy r² never increases (SAV, RelSAV) for any Δt > 0: no line search is needed.
ResSAV restarts r from √(L(θₙ) + C); RelSAV relaxes rₙ₊₁ toward √(L(θₙ₊₁) + C) as far as the
energy bound allows (paper eq. 24); A-SAV (``-tao_sav_adaptive``) feeds Adam's moments in:
N̂ = m̂ and the elementwise step Δt̂ = Δt / √(v̂ + ε). Options ``-tao_sav_*``; the KSP of the
λG operator has the prefix ``<tao prefix>tao_sav_``.
"""

from __future__ import annotations

import math
from typing import Any

from petsc4py import PETSc

from ..options import Option, OptionSet, nonnegative, positive
from ..pc.proximal import proximal_mat
from .base import Solver

SAV_TYPES = ("sav", "ressav", "relsav")
SAV_OPERATORS = ("identity", "gram")
RESTART_RULES = ("every", "lower")
R = PETSc.TAO.ConvergedReason


class SAV(Solver):
    """TAO python context: ``-tao_type python -tao_python_type pinntao.solvers.SAV`` (Algorithm 2)."""

    default_type = "sav"
    default_adaptive = False
    options = OptionSet(
        "SAV family TAO (pinntao.solvers.SAV / ResSAV / RelSAV / ASAV)",
        "tao_sav_",
        [
            Option("type", "str", "", "sav: Algorithm 2; ressav: r restarted from √(L+C) (Algorithm 3); relsav: "
                   "relaxed r (Algorithm 4); empty: the class's own (SAV sav, ResSAV ressav, RelSAV relsav, ASAV sav)",
                   choices=["", *SAV_TYPES]),
            Option("dt", "float", 1e-2, "time step Δt (A-SAV: the base step of Δt̂ = Δt/√(v̂+ε))",
                   check=positive, check_text="> 0"),
            Option("C", "float", 1.0, "SAV constant C in r = √(L + C)", check=positive, check_text="> 0"),
            Option("lambda", "float", 4.0, "λ of the linear operator 𝓛 = λI or λG (A-SAV with 𝓛 = λI and a "
                   "large C steps as Adam with ε = λΔt; 0: Adam-like)", check=nonnegative, check_text=">= 0"),
            Option("operator", "str", "identity", "identity: 𝓛 = λI; gram: 𝓛 = λG applied by the KSP "
                   "-tao_sav_ksp_* (default preonly + pinntao.pc.ProximalPC)", choices=list(SAV_OPERATORS)),
            Option("eta", "float", 0.99, "RelSAV relaxation η of the energy bound", check=lambda v: 0 < v <= 1,
                   check_text="in (0, 1]"),
            Option("restart", "str", "every", "ResSAV restart rule: every: r ← √(L+C) every restart_every "
                   "iterations (1 = Algorithm 3); lower: only when √(L+C) < r (keeps r² non-increasing)",
                   choices=list(RESTART_RULES)),
            Option("restart_every", "int", 1, "ResSAV: iterations between restarts (rule every)",
                   check=positive, check_text="> 0"),
            Option("adaptive", "bool", None, "A-SAV (Algorithm 5): Adam's m̂ for N and Δt/√(v̂+ε) for Δt "
                   "(default: true for ASAV, else false)"),
            Option("beta1", "float", 0.9, "A-SAV first-moment decay", check=lambda v: 0 <= v < 1,
                   check_text="in [0, 1)"),
            Option("beta2", "float", 0.999, "A-SAV second-moment decay", check=lambda v: 0 <= v < 1,
                   check_text="in [0, 1)"),
            Option("eps", "float", 1e-8, "A-SAV ε inside √(v̂ + ε) (the paper's placement)", check=positive,
                   check_text="> 0"),
        ],
    )

    ksp_suffix = "tao_sav_"
    default_ksp = ("preonly", "pinntao.pc.ProximalPC")
    lazy_ksp = True  # only the linearized step (SAV: the λG operator) uses it
    work_vecs = ("g", "g_new", "w", "d", "m", "v", "dts")
    state_scalars = ("r", "t")  # the auxiliary variable and the A-SAV step count
    state_vecs = ("m", "v")  # A-SAV's moments
    restore_nonfinite = True

    def __init__(self) -> None:
        super().__init__()
        self.energy: list[float] = []  # r² per iteration; one list object for the Tao's life (the report holds it)
        self._M: PETSc.Mat | None = None
        self.r = math.nan
        self.t = 0
        self._started = False

    # -- TAO python protocol ---------------------------------------------------------------
    def read_options(self, prefix: str) -> dict[str, Any]:
        opts = self.options.read(prefix)
        opts["type"] = opts["type"] or self.default_type
        opts["adaptive"] = self.default_adaptive if opts["adaptive"] is None else opts["adaptive"]
        if opts["adaptive"] and opts["operator"] == "gram" and opts["lambda"] > 0:
            from ..errors import PinnInputError

            raise PinnInputError(f"-{prefix}tao_sav_operator gram: needs one scalar Δt; A-SAV's Δt̂ is elementwise "
                                 "(allowed with -tao_sav_adaptive: identity)")
        return opts

    def report_fields(self) -> dict[str, Any]:
        return {"energy": self.energy}  # the modified energy r² per iteration

    def uses_ksp(self) -> bool:
        return self.opts["operator"] == "gram"

    def setUp(self, tao: PETSc.TAO) -> None:
        super().setUp(tao)
        if self.opts["operator"] == "gram" and self.opts["lambda"] != 0.0:
            self.check_operator(tao, "hessian")

    def destroy(self, tao: PETSc.TAO) -> None:
        if self._M is not None:
            self._M.destroy()
            self._M = None
        super().destroy(tao)

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII(f"  {type(self).__name__}: " + " ".join(f"{k}={v}" for k, v in self.opts.items()) + "\n")
        if self.energy:
            viewer.printfASCII(f"  modified energy r² = {self.energy[-1]:.6e}\n")
        # the λG operator's KSP is printed by TaoView after this (once, with its prefix)

    def restart_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """r, the A-SAV step count and moments: what an exact restart needs besides θ."""
        if not self._started:
            return {}
        state = super().restart_state(tao)
        if not self.opts["adaptive"]:
            state.pop("m", None)
            state.pop("v", None)
        return state

    # -- the step ----------------------------------------------------------------------------
    def _apply_A(self, tao: PETSc.TAO, x: PETSc.Vec, w: PETSc.Vec, d: PETSc.Vec, dts: PETSc.Vec | None) -> str:
        """d ← Δt (I + Δt𝓛)⁻¹ w (A-SAV: Δt̂ ⊙ w / (1 + λΔt̂)); returns why it failed, or ""."""
        dt, lam = self.opts["dt"], self.opts["lambda"]
        if dts is not None:
            dts.copy(d)
            d.scale(lam)
            d.shift(1.0)
            d.pointwiseDivide(dts, d)  # Δt̂ / (1 + λΔt̂)
            d.pointwiseMult(d, w)
        elif self.opts["operator"] == "identity" or lam == 0.0:
            w.copy(d)
            d.scale(dt / (1.0 + dt * lam))
        else:
            H, Hp, _ = tao.getHessian()
            if self._M is None:
                self._M = proximal_mat(H, dt * lam)
            tao.computeHessian(x, H, Hp)  # 𝓛 = λG linearised at θₙ
            ctx = self._M.getPythonContext()
            ctx.alpha, ctx.sigma = dt * lam, 0.0
            ksp = self.ksp(tao)
            ksp.setOperators(self._M, self._M)
            ksp.solve(w, d)
            self.stats["ksp_its"] += ksp.getIterationNumber()
            d.scale(dt)
        if not math.isfinite(d.norm()):
            return "non-finite (I + Δt𝓛)⁻¹N"
        return ""

    def new_stats(self) -> dict[str, Any]:
        o = self.opts
        return {"type": o["type"], "adaptive": bool(o["adaptive"]), "operator": o["operator"], "xi": [],
                "restarts": 0, "ksp_its": 0}

    def preSolve(self, tao: PETSc.TAO, x: PETSc.Vec) -> None:
        if self.opts["operator"] == "gram" and self.opts["lambda"] != 0.0:
            self.check_operator(tao, "hessian")
        self.m.set(0.0)
        self.v.set(0.0)
        self.r, self.t, self._started = math.nan, 0, False
        self.energy.clear()

    def load_restart_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        super().load_restart_state(tao, state)
        self._resumed_r = "r" in state

    def started(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> float:
        if not getattr(self, "_resumed_r", False):
            self.r = math.sqrt(f + self.opts["C"]) if math.isfinite(f) else math.nan
        self._resumed_r = False
        self._started = True
        self.energy.append(self.r * self.r)
        return f

    def step(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> tuple[float, float] | None:
        o = self.opts
        kind, adaptive, C, dt = o["type"], o["adaptive"], o["C"], o["dt"]
        b1, b2, eps = o["beta1"], o["beta2"], o["eps"]
        g, w, d = self.g, self.w, self.d
        m, v, dts = (self.m, self.v, self.dts) if adaptive else (None, None, None)
        its, r = self.its, self.r
        t = self.t + 1
        q = math.sqrt(f + C)  # √(L(θₙ) + C)
        if kind == "ressav" and ((o["restart"] == "every" and its % o["restart_every"] == 0)
                                 or (o["restart"] == "lower" and q < r)):
            r = q
            self.stats["restarts"] += 1
        if adaptive:
            assert m is not None and v is not None and dts is not None
            m.scale(b1)
            m.axpy(1 - b1, g)
            g.copy(w)
            w.pointwiseMult(w, w)
            v.scale(b2)
            v.axpy(1 - b2, w)
            v.copy(dts)  # Δt̂ = Δt / √(v / (1 − β2ᵗ) + ε)
            dts.scale(1.0 / (1 - b2**t))
            dts.shift(eps)
            dts.sqrtabs()
            dts.reciprocal()
            dts.scale(dt)
            m.copy(w)
            w.scale(1.0 / (1 - b1**t))  # N̂ = m̂
        else:
            g.copy(w)
        why = self._apply_A(tao, x, w, d, dts)
        if why:
            self.stop(tao, R.DIVERGED_NAN, f"step {its + 1}: {why}; θ kept at iterate {its}")
            return None
        s = w.dot(d)  # Δt (N, A N) ≥ 0
        r_new = r / (1.0 + s / (2.0 * (f + C)))
        x.axpy(-r_new / q, d)
        f_new = tao.computeObjectiveGradient(x, self.g_new)
        if not math.isfinite(f_new):
            return f_new, dt  # the base class restores θₙ and stops
        if kind == "relsav":
            r_new = self._relax(x, self._prev, d, dts, r_new, f_new)
        self.r = r_new
        self.g, self.g_new = self.g_new, g
        return f_new, dt

    def accepted(self, f: float) -> None:
        self.t += 1
        self.energy.append(self.r * self.r)

    def nonfinite_message(self, f: float) -> str:
        return (f"non-finite loss after SAV step {self.its + 1}: stopped, θ restored to iterate {self.its} "
                f"(loss {f:.3e})")

    def _relax(self, x: PETSc.Vec, prev: PETSc.Vec, d: PETSc.Vec, dts: PETSc.Vec | None, r_t: float,
               f_new: float) -> float:
        """RelSAV (paper eq. 22c–24): r = ξ r̃ + (1 − ξ) r̂ with the smallest ξ ∈ [0, 1] such that
        r² − r̃² ≤ η ‖θₙ₊₁ − θₙ‖²/Δt (elementwise Δt̂ for A-SAV)."""
        x.copy(d)  # d is free after the step: δ = θₙ₊₁ − θₙ
        d.axpy(-1.0, prev)
        dd = d.dot(d) / self.opts["dt"] if dts is None else _weighted_sq(d, dts)
        r_h = math.sqrt(f_new + self.opts["C"])
        # the smallest root of eq. (24), in closed form: r(ξ) = r̂ + ξ(r̃ − r̂) must satisfy
        # r(ξ)² ≤ B = r̃² + η‖δ‖²/Δt, so r = min(r̂, √B) (ξ = 0 when r̃ ≥ r̂); free of the
        # cancellation in b² − 4ac when r ≪ r̂
        r_new = min(r_h, math.sqrt(r_t * r_t + self.opts["eta"] * dd))
        xi = (r_h - r_new) / (r_h - r_t) if r_h > r_t else 0.0
        self.stats["xi"].append(xi)
        return r_new


def _weighted_sq(d: PETSc.Vec, dts: PETSc.Vec) -> float:
    """Σ δᵢ² / Δt̂ᵢ."""
    w = d.duplicate()
    w.pointwiseDivide(d, dts)
    out = w.dot(d)
    w.destroy()
    return out


class ResSAV(SAV):
    """Restart SAV (Algorithm 3): r restarted from √(L(θₙ) + C)."""

    default_type = "ressav"


class RelSAV(SAV):
    """Relaxed SAV (Algorithm 4): r relaxed toward √(L(θₙ₊₁) + C) within the energy bound."""

    default_type = "relsav"


class ASAV(SAV):
    """Adaptive SAV (Algorithm 5): Adam's moments give N̂ and the elementwise Δt̂."""

    default_type = "sav"
    default_adaptive = True
