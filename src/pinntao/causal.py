"""Causal training of evolution problems (Wang, Sankaran & Perdikaris 2022, "Respecting causality").

The time interval [t₀, t₁] is cut into M equal slabs; L_i is the mean squared PDE residual of the
interior points in slab i (all interior blocks, summed over ranks). The residual of a point in
slab i is weighted by

    w_i = exp(−ε Σ_{k<i} L_k),    w_1 = 1,

so a later time only counts once the earlier ones are resolved. w is a constant to the solvers
(no gradient flows through it): it enters r as a per-point factor √w_i on the interior rows and
is recomputed every k iterations by :class:`pinntao.sampling.Adaptation`, which tells the solver
that L changed, exactly like annealed weights and RAD. Once min_i w_i > δ the causality
parameter ε moves to the next value of its schedule (the paper: 10⁻², 10⁻¹, 1, 10, 10²).

Time-marching (``-pinn_causal_mode march``, a curriculum over the same slabs): w_i = 1 for the
slabs i ≤ m of a growing window and 0 beyond; m moves on by one at an update once the window's
loss (the mean of its L_i) is below ``-pinn_causal_march_tol``, and at the latest
``-pinn_causal_march_every`` iterations after the last move, until every slab is in the window.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap

from .errors import PinnInputError
from .options import Option, nonnegative, positive
from .problems.base import Block, Problem
from .weights import RESIDUAL_KIND


def parse_floats(text: str) -> tuple[float, ...]:
    """'1e-2,0.1,1' → (0.01, 0.1, 1.0); ValueError for anything else."""
    vals = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v != "")
    if not vals:
        raise ValueError("empty list")
    return vals


def _eps_ok(text: str) -> bool:
    try:
        vals = parse_floats(text)
    except ValueError:
        return False
    return all(math.isfinite(v) and v >= 0 for v in vals) and list(vals) == sorted(vals)


CAUSAL_MODES = ("causal", "march")

#: -pinn_ options of causal training (part of the pinntao option set)
CAUSAL_OPTIONS = [
    Option("causal_slabs", "int", 0, "causal training of an evolution problem: number M of time slabs "
           "(0: off)", check=nonnegative, check_text=">= 0"),
    Option("causal_eps", "str", "0.01,0.1,1,10,100", "causal: schedule of the causality parameter ε in "
           "w_i = exp(−ε Σ_{k<i} L_k), comma separated", check=_eps_ok,
           check_text="a comma-separated increasing list of numbers >= 0"),
    Option("causal_every", "int", 10, "causal: iterations between weight updates", check=positive,
           check_text="> 0"),
    Option("causal_delta", "float", 0.99, "causal: move to the next ε once every w_i > δ",
           check=lambda v: 0 < v <= 1, check_text="in (0, 1]"),
    Option("causal_mode", "str", "causal", "causal: the slab weights: causal (w_i = exp(−ε Σ_{k<i} L_k)) or "
           "march (time-marching: w_i = 1 for the slabs of a growing window, 0 beyond)", choices=list(CAUSAL_MODES)),
    Option("causal_march_tol", "float", 1e-4, "march: the window takes the next slab once the mean of its slab "
           "losses L_i is below this (0: only by -pinn_causal_march_every)", check=nonnegative, check_text=">= 0"),
    Option("causal_march_every", "int", 1000, "march: the window takes the next slab at the latest this many "
           "iterations after its last move (0: only by -pinn_causal_march_tol)", check=nonnegative,
           check_text=">= 0"),
]


class CausalWeights:
    """Slab weights w (M,) of one problem and the weighted problem whose interior residuals carry √w."""

    def __init__(self, problem: Problem, opts: dict[str, Any]) -> None:
        self.M = int(opts.get("causal_slabs", 0))
        axis = getattr(problem, "time_axis", None)
        if axis is None:
            raise PinnInputError(f"-pinn_causal_slabs: problem {problem.name!r} has no time axis; allowed: 0 "
                                 "(causal training is for evolution problems)")
        self.axis = int(axis)
        self.t0, self.t1 = float(problem.domain.lo[self.axis]), float(problem.domain.hi[self.axis])
        self.eps = parse_floats(opts.get("causal_eps", "0.01,0.1,1,10,100"))
        self.delta = float(opts.get("causal_delta", 0.99))
        self.level = 0  # index of the current ε in the schedule
        self.mode = str(opts.get("causal_mode", "causal"))
        if self.mode not in CAUSAL_MODES:
            raise PinnInputError(f"-pinn_causal_mode: unknown value {self.mode!r}; allowed: {', '.join(CAUSAL_MODES)}")
        self.march_tol = float(opts.get("causal_march_tol", 1e-4))
        self.march_every = int(opts.get("causal_march_every", 1000))
        if self.mode == "march" and self.march_tol <= 0 and self.march_every <= 0:
            raise PinnInputError("-pinn_causal_march_every: 0 with -pinn_causal_march_tol 0 never grows the window; "
                                 "allowed: one of them > 0")
        self.window = 0  # march: the last slab m in the window
        self.since = 0  # march: the iteration of the window's last move
        self.w = np.ones(self.M)
        self.losses = np.zeros(self.M)
        self.base = problem
        self._sqrt_w = torch.ones(self.M, dtype=torch.float64)  # read by the weighted residuals
        self.history: list[dict[str, Any]] = []
        if self.mode == "march":
            self.set_weights(self.window_weights(self.window, self.M))

    # -- the weighted problem -------------------------------------------------------------------
    def slab(self, x: Tensor) -> Tensor:
        """Slab index (long) of points x (..., d) by their time coordinate; t₁ belongs to the last slab."""
        t = x[..., self.axis]
        i = torch.floor((t - self.t0) * (self.M / (self.t1 - self.t0)))
        return i.clamp(0, self.M - 1).long()

    def factor(self, x: Tensor) -> Tensor:
        """√w of the slab of every point (n,) (a constant: no gradient through w)."""
        return self._sqrt_w.to(dtype=x.dtype, device=x.device)[self.slab(x)]

    def _weighted(self, b: Block) -> Block:
        if b.residual is not None:
            res = b.residual

            def weighted(jet: Any, x: Tensor) -> Tensor:
                r = res(jet, x)
                f = self.factor(x)
                return r * (f if r.ndim == 1 else f[:, None])

            return dataclasses.replace(b, residual=weighted)
        pres = b.point_residual

        def weighted_point(u: Any, p: Tensor) -> Tensor:
            return pres(u, p) * self.factor(p[None])[0]  # type: ignore[misc]

        return dataclasses.replace(b, point_residual=weighted_point)

    def problem(self) -> Problem:
        """A copy of the problem whose interior blocks' residuals are multiplied by √w_i."""
        blocks = [self._weighted(b) if b.kind == RESIDUAL_KIND else b for b in self.base.blocks]
        return dataclasses.replace(self.base, blocks=blocks)

    # -- the weights ---------------------------------------------------------------------------
    def slab_losses(self, obj: Any, theta: Tensor) -> np.ndarray:
        """L_i = mean of ‖R(x)‖² over the interior points x in slab i (global: one Allreduce of the
        per-slab sums and counts; the same on any rank count)."""
        model = obj.model
        sums = torch.zeros(2 * self.M, dtype=torch.float64, device=model.device)
        for lb in obj.residual.blocks:
            b, x = lb.block, lb.x
            if b.kind != RESIDUAL_KIND or not x.shape[0]:
                continue
            base = next(bb for bb in self.base.blocks if bb.name == b.name)
            with torch.no_grad():
                if base.residual is not None:
                    r = base.residual(model.jet(theta, x, base.order, lb.pairs, pure=lb.pure), x)
                else:
                    u = model.point_function(model.unflatten(theta))
                    r = vmap(lambda p, base=base, u=u: base.point_residual(u, p))(x)
            r = r.reshape(x.shape[0], -1).to(torch.float64)
            if lb.cscale is not None:
                r = r * lb.cscale.to(r)
            idx = self.slab(x)
            sums[: self.M].index_add_(0, idx, (r * r).sum(1))
            sums[self.M :].index_add_(0, idx, torch.ones_like(idx, dtype=torch.float64))
        total = np.asarray(obj._sum(sums), dtype=np.float64)  # numpy from PinnObjective._sum
        s, n = total[: self.M], total[self.M :]
        return np.where(n > 0, s / np.maximum(n, 1.0), 0.0)

    @staticmethod
    def weights_for(losses: np.ndarray, eps: float) -> np.ndarray:
        """w_i = exp(−ε Σ_{k<i} L_k)."""
        before = np.concatenate([[0.0], np.cumsum(losses)[:-1]])
        return np.exp(-eps * before)

    @staticmethod
    def window_weights(m: int, M: int) -> np.ndarray:
        """w_i = 1 for i ≤ m, 0 beyond (0-based slabs)."""
        return (np.arange(M) <= m).astype(np.float64)

    @property
    def marching(self) -> bool:
        """March mode with slabs still outside the window."""
        return self.mode == "march" and self.window < self.M - 1

    def due(self, its: int, every: int) -> bool:
        """Whether an update falls on iteration ``its``: every ``every`` iterations; in march mode
        also when the window has waited -pinn_causal_march_every, and never once it is full."""
        if self.mode != "march":
            return its % every == 0
        if not self.marching:
            return False
        return its % every == 0 or (self.march_every > 0 and its - self.since >= self.march_every)

    def update(self, obj: Any, theta: Tensor, its: int) -> bool:
        """New weights at θ; True when they changed. Causal: ε moves on (possibly several steps)
        while every w_i > δ. March: the window takes the next slab once its loss is below the
        tolerance or it waited long enough."""
        self.losses = self.slab_losses(obj, theta)
        if self.mode == "march":
            return self._march(its)
        w = self.weights_for(self.losses, self.eps[self.level])
        while w.min() > self.delta and self.level + 1 < len(self.eps):
            self.level += 1
            w = self.weights_for(self.losses, self.eps[self.level])
        self.set_weights(w)
        self.history.append({"iteration": int(its), "eps": self.eps[self.level], "min_weight": float(w.min()),
                             "slab_loss_max": float(self.losses.max())})
        return True

    def _march(self, its: int) -> bool:
        loss = float(self.losses[: self.window + 1].mean())
        grow = self.marching and (loss < self.march_tol
                                  or (self.march_every > 0 and its - self.since >= self.march_every))
        if grow:
            self.window += 1
            self.since = int(its)
            self.set_weights(self.window_weights(self.window, self.M))
        self.history.append({"iteration": int(its), "window": self.window + 1, "window_loss": loss,
                             "slab_loss_max": float(self.losses.max())})
        return grow

    def set_weights(self, w: np.ndarray) -> None:
        self.w = np.asarray(w, dtype=np.float64).copy()
        self._sqrt_w.copy_(torch.as_tensor(np.sqrt(self.w)))

    # -- restart -------------------------------------------------------------------------------
    def restart_state(self) -> dict[str, np.ndarray]:
        state = {"causal_w": self.w.copy(), "causal_level": np.array(self.level)}
        if self.mode == "march":
            state.update({"causal_window": np.array(self.window), "causal_since": np.array(self.since)})
        return state

    def load_restart_state(self, state: dict[str, np.ndarray]) -> None:
        if "causal_w" in state:
            w = np.asarray(state["causal_w"], dtype=np.float64)
            if w.shape != (self.M,):
                raise PinnInputError(f"-pinn_restart: the restart state holds {w.shape[0]} causal slabs, "
                                     f"this run has -pinn_causal_slabs {self.M}")
            self.set_weights(w)
            self.level = min(int(state["causal_level"]), len(self.eps) - 1)
            if self.mode == "march" and "causal_window" in state:
                self.window = min(int(state["causal_window"]), self.M - 1)
                self.since = int(state["causal_since"])

    def report(self) -> dict[str, Any]:
        if self.mode == "march":
            return {"slabs": self.M, "mode": "march", "tol": self.march_tol, "every": self.march_every,
                    "updates": self.history}
        return {"slabs": self.M, "schedule": list(self.eps), "updates": self.history}
