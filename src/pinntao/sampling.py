"""What the loss is evaluated on, changed during training: mini-batches, residual-based adaptive
sampling (RAD) and annealed loss weights (:mod:`pinntao.weights`), driven by a TAO monitor.

- **Mini-batches** (``-pinn_batch_size B -pinn_batch_every k``): every k iterations a fresh batch of
  B of the current global points (split over the blocks in proportion to their sizes), drawn
  without replacement from a generator seeded by (seed, batch index): the same global batch on
  any rank count. Block scales use the batch counts, so the batch loss estimates the full loss.
- **RAD** (``-pinn_resample rad``, Wu et al. 2023, in the review): every k iterations each interior
  block gets new points drawn without replacement from a seeded pool of candidates with density
  p(x) ∝ |R(x)|^β / mean |R|^β + c. Every rank evaluates the whole pool (redundantly), so the
  choice is the same on any rank count.
- **Fresh draws** (``-pinn_resample redraw``): every k iterations each interior block gets as many
  new points from its sampler (``-pinn_sampling``), from a generator seeded by (seed, k-index): the
  same global set on any rank count, so a solver cannot fit one fixed point set.
- Both resamplings stop when fewer than ``-pinn_resample_settle`` iterations (default: the resample
  interval) are expected to remain before ``-tao_max_it`` or ``-pinn_time_limit``: points drawn
  then would be the final points with hardly a fit to them (a run that ended 13 iterations after
  a draw reported twice the error it had before it).
- **Weights** (``-pinn_weights annealing``): Algorithm 1 of the gradient-pathologies paper.
- **Causal weights** (``-pinn_causal_slabs M``, :mod:`pinntao.causal`): per-point residual weights
  over time slabs, w_i = exp(−ε Σ_{k<i} L_k), every ``-pinn_causal_every`` iterations; or
  time-marching (``-pinn_causal_mode march``): w_i = 1 on a growing window of slabs, 0 beyond.

Changing points or weights changes L under the solver: each event tells a python TAO context
with ``objective_changed`` (SAV and the natural-gradient types recompute L and ∇L). TAO's own
line-search solvers get a shifted, continuous f and fresh L-BFGS pairs instead (see docs/index.md).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from petsc4py import PETSc

from .causal import CAUSAL_OPTIONS, CausalWeights
from .comm import max_flags, split_range
from .errors import PinnInputError
from .options import Option, nonnegative, positive
from .residual import Residual
from .weights import RESIDUAL_KIND, annealed_weights, block_gradients_and_losses, weighted_loss_gradient

WEIGHTINGS = ("none", "annealing")
RESAMPLINGS = ("none", "rad", "redraw")

#: -pinn_ options of this module (part of the pinntao option set)
ADAPT_OPTIONS = [
    Option("weights", "str", "none", "loss weights: none, or annealing (gradient-pathologies paper, Algorithm 1)",
           choices=list(WEIGHTINGS)),
    Option("weights_every", "int", 10, "annealing: iterations between weight updates", check=positive,
           check_text="> 0"),
    Option("weights_alpha", "float", 0.9, "annealing: λ ← (1 − α)λ + αλ̂", check=lambda v: 0 < v <= 1,
           check_text="in (0, 1]"),
    Option("weights_mean", "str", "unweighted", "annealing denominator: unweighted: mean |∇Lᵢ| (the paper's text); "
           "weighted: mean |∇(λᵢLᵢ)| (the authors' code; fixed point λ = √(max/mean), milder)",
           choices=["unweighted", "weighted"]),
    Option("weights_share", "str", "block", "annealing: one λ per block, or per kind (kind: boundary, initial, ...: "
           "u(0) and u_t(0) share one, as in the authors' code)", choices=["block", "kind"]),
    Option("weights_min", "float", 0.0, "annealing: lower bound of every annealed λ (0: none); e.g. 1 keeps a "
           "boundary condition from being weighted below the PDE", check=nonnegative, check_text=">= 0"),
    Option("weights_max", "float", 0.0, "annealing: upper bound of every annealed λ (0: none)", check=nonnegative,
           check_text=">= 0"),
    Option("batch_size", "int", 0, "mini-batch: points per batch over all blocks (0: all points, no batching)",
           check=nonnegative, check_text=">= 0"),
    Option("batch_every", "int", 1, "mini-batch: iterations per batch", check=positive, check_text="> 0"),
    Option("resample", "str", "none", "resampling of the interior points: none, rad (p ∝ |R|^β / mean + c) or "
           "redraw (fresh points of -pinn_sampling from a new seed)", choices=list(RESAMPLINGS)),
    Option("resample_every", "int", 500, "resampling: iterations between resamples", check=positive,
           check_text="> 0"),
    Option("resample_settle", "int", -1, "resampling: none when fewer than this many iterations are expected to "
           "remain (-tao_max_it, -pinn_time_limit), so the final θ has been fitted to its points "
           "(-1: -pinn_resample_every; 0: resample up to the end)", check=lambda v: v >= -1, check_text=">= -1"),
    Option("rad_beta", "float", 1.0, "RAD exponent β", check=nonnegative, check_text=">= 0"),
    Option("rad_c", "float", 1.0, "RAD offset c (c → ∞: uniform)", check=nonnegative, check_text=">= 0"),
    Option("rad_pool", "int", 0, "RAD candidate pool size (0: 10 × the block's point count)", check=nonnegative,
           check_text=">= 0"),
]


def local_slices(obj: Any, points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This rank's contiguous slice of the stacked global point list (the PinnObjective rule)."""
    blocks = obj.problem.blocks
    start, stop = split_range(sum(points[b.name].shape[0] for b in blocks), obj.size, obj.rank)
    local, offset = {}, 0
    for b in blocks:
        v = points[b.name]
        lo, hi = max(start - offset, 0), min(stop - offset, v.shape[0])
        local[b.name] = v[lo : max(lo, hi)]
        offset += v.shape[0]
    return local


def weighted_residual(obj: Any, points: dict[str, np.ndarray], multipliers: dict[str, float]) -> Residual:
    """This rank's residual on these global points with block weights × multipliers."""
    counts = {k: int(v.shape[0]) for k, v in points.items()}
    res = Residual(obj.problem, obj.model, local_slices(obj, points), counts)
    for lb in res.blocks:
        lb.scale = math.sqrt(multipliers.get(lb.block.name, 1.0) * lb.block.weight / counts[lb.block.name])
    return res


def set_points(obj: Any, points: dict[str, np.ndarray], multipliers: dict[str, float]) -> None:
    """Evaluate the objective on these global points with block weights × multipliers (a batch may
    have fewer points than the full set: then TAO brgn's residual Vec no longer fits, see attach)."""
    res = weighted_residual(obj, points, multipliers)
    obj.residual, obj.n_local = res, res.n_local
    obj._jac = obj._r_at = obj._image = None  # the cached J, r and J Q belong to the old points / weights
    obj.points_version = getattr(obj, "points_version", 0) + 1


def batch_counts(counts: dict[str, int], size: int) -> dict[str, int]:
    """Split a batch of ``size`` points over the blocks in proportion to their counts (largest
    remainder, at least one point per block)."""
    names = list(counts)
    total = sum(counts.values())
    quota = np.array([size * counts[n] / total for n in names])
    out = np.maximum(np.floor(quota).astype(int), 1)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    for i in order:
        if out.sum() >= size:
            break
        if out[i] < counts[names[i]]:
            out[i] += 1
    return {n: int(min(c, counts[n])) for n, c in zip(names, out, strict=True)}


def draw_batch(points: dict[str, np.ndarray], size: int, seed: int, index: int) -> dict[str, np.ndarray]:
    """Batch ``index``: a function of (points, size, seed, index) only."""
    sizes = batch_counts({k: v.shape[0] for k, v in points.items()}, size)
    rng = np.random.default_rng([seed, 0xBA7C, index])
    return {k: v[np.sort(rng.choice(v.shape[0], sizes[k], replace=False))] for k, v in points.items()}


def rad_points(obj: Any, theta: torch.Tensor, name: str, n: int, pool: int, beta: float, c: float, seed: int,
               index: int, sampling: str = "uniform") -> tuple[np.ndarray, dict[str, float]]:
    """n new points for block ``name``: a seeded pool, ``p ∝ |R|^β / mean |R|^β + c``, drawn without
    replacement. The whole pool is evaluated on every rank (the same choice on any rank count)."""
    lb = next(b for b in obj.residual.blocks if b.block.name == name)
    rng = np.random.default_rng([seed, 0x5AD, index])
    cand = np.ascontiguousarray(lb.block.sample(pool, rng, sampling), dtype=np.float64)
    x = torch.as_tensor(cand, dtype=obj.model.dtype, device=obj.model.device)
    with torch.no_grad():
        r = obj.residual._block_residual(theta, lb, x).reshape(x.shape[0], -1).norm(dim=1).cpu().numpy()
    w = r**beta
    mean = w.mean()
    p = (w / mean if mean > 0 and np.isfinite(mean) else np.zeros_like(w)) + c
    if not np.all(np.isfinite(p)) or p.sum() <= 0:
        p = np.ones_like(p)
    idx = np.sort(np.random.default_rng([seed, 0x5AE, index]).choice(pool, n, replace=False, p=p / p.sum()))
    scale = lb.scale if lb.scale > 0 else 1.0
    info = {"pool_mean_abs_residual": float(r.mean() / scale), "pool_max_abs_residual": float(r.max() / scale),
            "chosen_mean_abs_residual": float(r[idx].mean() / scale)}
    return cand[idx], info


def redraw_points(problem: Any, points: dict[str, np.ndarray], seed: int, index: int,
                  sampling: str = "uniform") -> dict[str, np.ndarray]:
    """Redraw ``index``: every interior block gets as many fresh points from its sampler, from a
    generator seeded by (seed, index) only (the same on any rank count); the other blocks keep theirs."""
    rng = np.random.default_rng([seed, 0x4ED4A, index])
    out = dict(points)
    for b in problem.blocks:
        if b.kind == RESIDUAL_KIND:
            out[b.name] = np.ascontiguousarray(b.sample(points[b.name].shape[0], rng, sampling), dtype=np.float64)
    return out


class Adaptation:
    """Batches, RAD resamples and annealed weights for one PinnObjective, applied by a TAO monitor
    (:meth:`attach`). Events are recorded for the report (:meth:`report`).

    The :class:`~pinntao.Trainer` builds one from ``-<prefix>pinn_weights``, ``_resample*``,
    ``_rad_*``, ``_batch_*``; a script may build its own::

        Adaptation(obj, weights="annealing", weights_every=10, resample="rad", resample_every=500,
                   batch_size=256, batch_every=1)

    Keywords (defaults as the options of the same name, see docs/options.md): ``weights`` (none,
    annealing), ``weights_every``, ``weights_alpha``, ``weights_mean``, ``weights_share``, ``batch_size`` (0: all
    points), ``batch_every``, ``resample`` (none, rad, redraw), ``resample_every``, ``rad_beta``, ``rad_c``,
    ``rad_pool``, ``resample_settle``, ``causal_slabs`` (0: off), ``causal_eps``, ``causal_every``, ``causal_delta``,
    ``causal_mode`` (causal, march), ``causal_march_tol``, ``causal_march_every``,
    ``seed`` (default: the objective's). Each value is checked like its option
    (``flag_prefix`` names the option in the error, e.g. ``-a_pinn_``). ``opts``: the same keys
    as a dict (older call form).
    """

    def __init__(self, obj: Any, opts: dict[str, Any] | None = None, *, flag_prefix: str = "-pinn_",
                 **settings: Any) -> None:
        defaults = {o.name: o.default for o in (*ADAPT_OPTIONS, *CAUSAL_OPTIONS)}
        merged = {**(opts or {}), **settings}
        unknown = sorted(set(settings) - set(defaults) - {"seed"})
        if unknown:
            raise TypeError(f"Adaptation: unknown keyword {unknown[0]!r}; allowed: {', '.join(defaults)}, seed")
        for o in (*ADAPT_OPTIONS, *CAUSAL_OPTIONS):
            if o.name in settings:
                o.validate(settings[o.name], flag_prefix + o.name)
        opts = {**defaults, **merged}
        self.obj, self.opts = obj, opts
        self.seed = int(opts.get("seed", obj.seed))
        self.kinds = {b.name: b.kind for b in obj.problem.blocks}
        self.weights = {b.name: 1.0 for b in obj.problem.blocks}
        self.full = obj.problem.sample(obj.global_counts, obj.seed, obj.sampling)
        n_all = sum(v.shape[0] for v in self.full.values())
        bsize = int(opts.get("batch_size", 0))
        if bsize > n_all:
            raise PinnInputError(f"-pinn_batch_size: {bsize} is more than the {n_all} collocation points; "
                                 f"allowed: 1..{n_all} (0: all points)")
        if bsize and bsize < len(self.full):
            raise PinnInputError(f"-pinn_batch_size: {bsize} is fewer than one point per block "
                                 f"({len(self.full)} blocks); allowed: {len(self.full)}..{n_all} (0: all points)")
        self.batch = bsize
        self.rad = opts.get("resample", "none") == "rad"
        self.redraw = opts.get("resample", "none") == "redraw"
        self.anneal = opts.get("weights", "none") == "annealing"
        lo, hi = float(opts.get("weights_min", 0.0)), float(opts.get("weights_max", 0.0))
        if hi and hi < lo:
            raise PinnInputError(f"-pinn_weights_max: {hi} is below -pinn_weights_min {lo}; allowed: >= {lo} "
                                 f"(0: no upper bound)")
        self.pool = {}
        if self.rad:
            for b in obj.problem.blocks:
                if b.kind == RESIDUAL_KIND:
                    n = self.full[b.name].shape[0]
                    pool = int(opts.get("rad_pool", 0)) or 10 * n
                    if pool < n:
                        raise PinnInputError(f"-pinn_rad_pool: {pool} candidates cannot give the {n} points of block "
                                             f"{b.name!r} without repeats; allowed: >= {n} (0: 10 × {n})")
                    self.pool[b.name] = pool
        self.causal = CausalWeights(obj.problem, opts) if int(opts.get("causal_slabs", 0)) else None
        #: the problem's own blocks (the causal weights live in obj.problem's interior residuals)
        self.base_problem = obj.problem
        self.history: dict[str, list] = {"weights": [], "resample": [], "resample_skipped": []}
        #: its → the expected last iteration of the run; the Trainer puts its estimate from -tao_max_it
        #: and -pinn_time_limit here
        self.last_iteration: Callable[[int], float] = self._last_by_max_it
        self._settled: tuple[int, bool] = (-1, True)
        self.batch_info = {"size": self.batch, "every": int(opts.get("batch_every", 1)), "drawn": 0}
        self.tao: PETSc.TAO | None = None
        self._batch_index: int | None = None
        self.offset = 0.0  # TAO built-ins: f = L + offset, continuous across events
        self.its_offset = 0  # iterations done before a restart: TAO counts from 0 again
        self.done = -1  # the last iteration whose events were applied (a restart must not repeat them)

    @property
    def active(self) -> bool:
        return bool(self.batch or self.rad or self.redraw or self.anneal or self.causal)

    def _resample_due(self, its: int) -> bool:
        """RAD or a fresh draw falls on iteration ``its`` and leaves time to fit the new points."""
        on_grid = (self.rad or self.redraw) and its > 0 and its % self.opts["resample_every"] == 0
        return bool(on_grid) and self._time_to_settle(its)

    def _time_to_settle(self, its: int) -> bool:
        """Whether ``resample_settle`` iterations are expected after ``its`` (collective, agreed by
        every rank: a time estimate differs between ranks; asked once per iteration)."""
        if self._settled[0] == its:
            return self._settled[1]
        settle = int(self.opts.get("resample_settle", -1))
        settle = self.opts["resample_every"] if settle < 0 else settle
        ok = True
        if settle:
            last = float(self.last_iteration(its))
            ok = not max_flags(self.obj.mpi, [0.0 if its + settle <= last else 1.0])[0]
        self._settled = (its, ok)
        return ok

    def _last_by_max_it(self, its: int) -> float:
        """-tao_max_it of the attached TAO, counted from the first run (no end before attach)."""
        return math.inf if self.tao is None else float(self.tao.getMaximumIterations() + self.its_offset)

    # -- events -----------------------------------------------------------------------------
    def _install(self, index: int | None = None) -> None:
        pts = draw_batch(self.full, self.batch, self.seed, index) if self.batch and index is not None else self.full
        set_points(self.obj, pts, self.weights)
        if self.batch and index is not None:
            self.batch_info["drawn"] += index != self._batch_index  # a refill (new weights, RAD) is no new batch
            self._batch_index = index

    def _notify(self) -> None:
        tao = self.tao
        if tao is not None and tao.getType() == "python":
            ctx = tao.getPythonContext()
            if hasattr(ctx, "objective_changed"):
                ctx.objective_changed(tao)

    def start(self) -> None:
        """Before the solve: the causally weighted problem (weights 1 until the first update), the
        first batch (index 0), annealing weights 1."""
        self._batch_index, self._settled = None, (-1, True)
        if self.causal is not None and self.obj.problem is self.base_problem:
            self.obj.problem = self.causal.problem()
            self._install()
        if self.batch:
            self._install(0)

    def update(self, its: int, theta: torch.Tensor) -> bool:
        """The events due at iteration ``its`` (θ the current iterate); True if L changed."""
        o, changed, refill = self.opts, False, False
        if its <= self.done:  # applied before the checkpoint this run resumed from
            return False
        self.done = its
        resample = self._resample_due(its)
        if self._settled == (its, False):  # on the resample grid, too late to fit new points
            self.history["resample_skipped"].append(its)
        if self.rad and resample:
            index = its // o["resample_every"]
            for name, pool in self.pool.items():
                n = self.full[name].shape[0]
                self.full[name], info = rad_points(self.obj, theta, name, n, pool, o["rad_beta"], o["rad_c"],
                                                   self.seed, index, self.obj.sampling)
                self.history["resample"].append({"iteration": its, "block": name, "points": n, **info})
            refill = changed = True
        if self.redraw and resample:
            index = its // o["resample_every"]
            self.full = redraw_points(self.base_problem, self.full, self.seed, index, self.obj.sampling)
            for b in self.base_problem.blocks:
                if b.kind == RESIDUAL_KIND:
                    self.history["resample"].append({"iteration": its, "block": b.name,
                                                     "points": int(self.full[b.name].shape[0])})
            refill = changed = True
        if self.anneal and its % o["weights_every"] == 0:
            grads, losses = block_gradients_and_losses(self.obj, theta, self.weights)
            before = weighted_loss_gradient(grads, losses, self.weights)[0]
            self.weights = annealed_weights(grads, self.kinds, self.weights, o["weights_alpha"],
                                            o.get("weights_mean") == "weighted",
                                            (o.get("weights_min", 0.0), o.get("weights_max", 0.0) or math.inf),
                                            o.get("weights_share", "block"))
            self.history["weights"].append({"iteration": its, **self.weights})
            #: (L before, L after, ∇L after) of the last weight update, for the TaoSetUpdate hook
            self.anneal_values = (before, *weighted_loss_gradient(grads, losses, self.weights))
            refill = changed = True
        if self.causal is not None and self.causal.due(its, o["causal_every"]) and self.causal.update(
                self.obj, theta, its):
            refill = changed = True
        if self.batch and its > 0 and its % o["batch_every"] == 0:
            self._install(its // o["batch_every"])
            refill, changed = False, True
        if refill:
            self._install(self._batch_index if self.batch else None)
        return changed

    def _monitor(self, tao: PETSc.TAO) -> None:
        its = tao.getSolutionStatus()[0] + self.its_offset
        if self.update(its, self.obj.gather(tao.getSolution())):
            self._notify()

    def attach(self, tao: PETSc.TAO) -> None:
        """Install the first batch and the monitor that applies later events (after the Trainer's).
        The objective's ``loss_full`` (the Trainer's initial and final loss) becomes
        :meth:`reference_loss`, so those two stay comparable while batches and weights change."""
        if self.batch and tao.getType() == "brgn":
            raise PinnInputError("-pinn_batch_size: not with -tao_type brgn (its residual Vec has the full length); "
                                 "allowed: 0 with brgn")
        self.tao = tao
        self.start()
        if tao.getType() == "python":
            tao.setMonitor(self._monitor)  # pinntao's types: objective_changed() makes them re-evaluate
        else:
            # TAO's own solvers: events before each iteration (TaoSetUpdate); f is shifted by a constant
            # so that it is continuous across an event, as their line searches keep f from before it
            g = tao.getGradient()[0]
            obj = self.obj
            tao.setObjective(lambda t, x: obj.objective(t, x) + self.offset)
            tao.setObjectiveGradient(lambda t, x, gv: obj.objective_gradient(t, x, gv) + self.offset, g)
            tao.setUpdate(self._update)
        self.obj.loss_full = self.reference_loss
        self.obj.compare_loss = self.compared_loss  # the Trainer's final status: θ₀ and θ on the same loss
        self.obj.compare_what = self.compared_what()

    def due(self, its: int) -> bool:
        """Whether :meth:`update` has an event at iteration ``its``."""
        o = self.opts
        return bool(self._resample_due(its)
                    or (self.anneal and its % o["weights_every"] == 0)
                    or (self.batch and its > 0 and its % o["batch_every"] == 0)
                    or (self.causal is not None and self.causal.due(its, o["causal_every"])))

    def _update(self, tao: PETSc.TAO, its: int) -> None:
        """TaoSetUpdate hook: nothing unless an event is due (no evaluation on other iterations);
        then L before, the event, and L and ∇L of the new loss in one pass (the offset keeps f
        continuous)."""
        its += self.its_offset  # iterations done before a restart
        if not self.due(its):
            return
        x = tao.getSolution()
        theta = self.obj.gather(x)
        o = self.opts
        points_change = self._resample_due(its) or (
            self.batch and its > 0 and its % o["batch_every"] == 0)
        causal_change = self.causal is not None and self.causal.due(its, o["causal_every"])
        # annealing alone: L before, L and ∇L after all come from the block gradients (no evaluation);
        # new points or causal weights: L before is evaluated here, L and ∇L after below
        before = self.obj.objective(tao, x) if points_change or causal_change else None
        if self.update(its, theta):
            g = tao.getGradient()[0]
            if before is None:
                before, after, grad = self.anneal_values
                self.offset += before - after
                if g is not None:  # lmvm/nls do not recompute after the hook: ∇L of the new loss
                    self.obj.set_from_full(g, grad)
            elif g is not None:
                self.offset += before - (tao.computeObjectiveGradient(x, g) - self.offset)
            else:
                self.offset += before - self.obj.objective(tao, x)
            if tao.getType() in ("lmvm", "blmvm"):  # curvature pairs of the old loss would mislead it
                try:
                    tao.getLMVMMat().resetLMVM(destructive=False)
                except PETSc.Error:
                    pass

    def reference_loss(self, theta: torch.Tensor) -> float:
        """The problem's own loss (unit annealing multipliers) on all current points, summed over ranks."""
        key = tuple(id(v) for v in self.full.values())
        if getattr(self, "_ref_key", None) != key:
            counts = {k: int(v.shape[0]) for k, v in self.full.items()}
            self._ref = Residual(self.base_problem, self.obj.model, local_slices(self.obj, self.full), counts)
            self._ref_key = key
        return float(self.obj._sum(self._ref.loss(theta).reshape(1))[0])

    def compared_what(self) -> str:
        changes = [w for w, on in (("points", self.rad or self.redraw), ("weights", self.anneal)) if on]
        base = "all points" if self.batch else "the points"
        return (f"loss of θ₀ and of the final θ on the final {' and '.join(changes)} ({base})" if changes
                else f"loss of θ₀ and of the final θ on {base}")

    def compared_loss(self, theta: torch.Tensor) -> float:
        """L with the final points and annealed weights on all points (not a batch), summed over
        ranks: the loss the run's status compares for θ₀ and the final θ, so like is compared with
        like after RAD moved the points or annealing changed the weights."""
        res = weighted_residual(self.obj, self.full, self.weights)
        return float(self.obj._sum(res.loss(theta).reshape(1))[0])

    # -- exact restart -------------------------------------------------------------------------
    def _kinds(self) -> dict[str, Any]:
        """Which events this run has (a restart file of another set starts them fresh)."""
        causal = {} if self.causal is None else {"causal": self.causal.M}
        if self.causal is not None and self.causal.mode != "causal":
            causal["causal_mode"] = self.causal.mode
        redraw = {"redraw": True} if self.redraw else {}
        return {"batch": self.batch, "rad": self.rad, "anneal": self.anneal, **redraw, **causal}

    def restart_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What an exact restart needs: the current points (RAD and redraws move them), the annealed weights, the
        batch index (batches are a function of the points, seed and index), the last iteration
        whose events ran, the built-in TAOs' f offset and the event history of the report."""
        points = self.full if self.rad or self.redraw else {}
        arrays = {f"adapt_points_{k}": np.asarray(v, dtype=np.float64) for k, v in points.items()}
        if self.causal is not None:  # the slab weights and the position in the ε schedule
            arrays.update({f"adapt_{k}": v for k, v in self.causal.restart_state().items()})
        meta = {"weights": dict(self.weights), "batch_index": self._batch_index, "drawn": self.batch_info["drawn"],
                "done": self.done, "offset": self.offset, "history": self.history, "kinds": self._kinds()}
        return arrays, {"adapt": meta}

    def load_restart_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Continue where :meth:`restart_state` left off (after :meth:`attach`, before the solve);
        a restart file without this state (written by a run without these events) is said in one
        line: the events start fresh from the resumed iteration."""
        self.its_offset = int(meta["iteration"])
        state = meta.get("adapt")
        if not isinstance(state, dict) or state.get("kinds") != self._kinds():
            if self.obj.rank == 0:
                print("pinntao: warning: -pinn_restart: the restart file holds no state for these batches, RAD or "
                      "weights (another run's options); they start fresh at the resumed iteration", file=sys.stderr,
                      flush=True)
            self.start()
            return
        try:
            if self.rad or self.redraw:
                full = {k: np.asarray(arrays[f"adapt_points_{k}"], dtype=np.float64) for k in self.full}
                if any(full[k].shape != self.full[k].shape for k in self.full):
                    raise ValueError("point sets of another shape")
                self.full = full
            weights = {k: float(state["weights"][k]) for k in self.weights}
            if not all(math.isfinite(w) and w > 0 for w in weights.values()):
                raise ValueError("non-positive weights")
            self.weights = weights
            if self.causal is not None:
                self.causal.load_restart_state({k[len("adapt_"):]: v for k, v in arrays.items()
                                                if k.startswith("adapt_causal_")})
            index = state["batch_index"]
            self._batch_index = None if index is None else int(index)
            self.done, self.offset = int(state["done"]), float(state["offset"])
            self.batch_info["drawn"] = int(state["drawn"])
            for key in self.history:
                self.history[key][:] = list(state["history"].get(key, []))
        except (KeyError, TypeError, ValueError) as exc:
            raise PinnInputError(f"-pinn_restart: the batch/RAD/weights state is malformed ({exc})") from None
        index, self._batch_index = self._batch_index, None
        self._install(index if self.batch else None)
        self.batch_info["drawn"] = int(state["drawn"])  # a re-install is no new batch
        self.obj.compare_what = self.compared_what()

    def finish(self) -> None:
        """After the solve: back to all current points (the final weights), for the final loss."""
        if self.batch:
            set_points(self.obj, self.full, self.weights)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.causal is not None:
            out["causal"] = self.causal.report()
        if self.anneal:
            out["weights"] = self.history["weights"]
        if self.rad or self.redraw:
            out["resample"] = self.history["resample"]
            out["resample_skipped"] = self.history["resample_skipped"]
        if self.batch:
            out["batches"] = self.batch_info
        return out


class HeldOut:
    """The problem's loss on a fresh, uniformly drawn point set of the training counts that no solver
    sees (seeded, the same on any rank count): far above the training loss, the network fits its
    collocation points rather than the PDE."""

    def __init__(self, obj: Any, problem: Any, seed: int) -> None:
        self.obj = obj
        kinds = {b.kind: obj.global_counts[b.name] for b in problem.blocks}  # sample() sizes blocks by kind
        pts = problem.sample(kinds, (int(seed) + 0x4E1D0FF) % 2**63, "uniform")
        counts = {k: int(v.shape[0]) for k, v in pts.items()}
        self.residual = Residual(problem, obj.model, local_slices(obj, pts), counts)

    def loss(self, theta: torch.Tensor) -> float:
        return float(self.obj._sum(self.residual.loss(theta).reshape(1))[0])

    def __call__(self, x: PETSc.Vec) -> float:
        """The held-out loss at the iterate x (collective)."""
        return self.loss(self.obj.gather(x))
