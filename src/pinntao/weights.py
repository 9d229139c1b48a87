"""Learning-rate annealing of the loss weights (the gradient-pathologies paper's Algorithm 1).

L = L_r + Σᵢ λᵢ Lᵢ, L_r the PDE (interior) blocks, Lᵢ the boundary / initial blocks with their
problem weights. Every k iterations

    λ̂ᵢ = max_θ |∇_θ L_r| / mean_θ |∇_θ Lᵢ|,    λᵢ ← (1 − α) λᵢ + α λ̂ᵢ   (α = 0.9),

so that no block's gradient is dwarfed by the PDE residual's. The paper's text and code take
the mean of the *unweighted* block gradient (λᵢ outside the mean); that is what is done here.
In pinntao λᵢ multiplies the block's scale √(wᵢ/Nᵢ) in r, so every solver sees the reweighted
least-squares problem: for Gauss-Newton / natural gradient, G = JᵀWJ with W the block weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.func import grad

RESIDUAL_KIND = "interior"  # blocks of this kind form L_r; the others get annealed weights


def block_gradients(obj, theta: Tensor, multipliers: dict[str, float]) -> dict[str, np.ndarray]:
    """∇_θ Lᵢ of every block's loss Lᵢ = ½ (wᵢ/Nᵢ) ‖Rᵢ‖² (without the annealed multiplier),
    summed over ranks in one Allreduce; a dict block name → (P,) array, the same on every rank."""
    res = obj.residual
    rows = []
    for lb in res.blocks:
        if lb.x.shape[0] == 0:
            rows.append(torch.zeros_like(theta))
            continue

        def loss(th: Tensor, lb=lb) -> Tensor:
            r = res._block_residual(th, lb, lb.x)
            return 0.5 * torch.dot(r, r)

        rows.append(grad(loss)(theta) / multipliers.get(lb.block.name, 1.0))
    total = obj._sum(torch.stack(rows))
    return {lb.block.name: np.asarray(total[i]) for i, lb in enumerate(res.blocks)}


def annealed_weights(grads: dict[str, np.ndarray], kinds: dict[str, str], weights: dict[str, float],
                     alpha: float, weighted_mean: bool = False,
                     bounds: tuple[float, float] = (0.0, math.inf)) -> dict[str, float]:
    """One update of Algorithm 1: new λ for every non-residual block (residual blocks keep 1).
    ``weighted_mean``: the denominator is ``mean |∇(λᵢLᵢ)|`` (the issue's reading; fixed point
    λ = √(max/mean)) instead of the paper's ``mean |∇Lᵢ|``. A block whose gradient vanishes keeps its λ.
    ``bounds`` (λ_min, λ_max) clamps every new λ (``-pinn_weights_min`` / ``-pinn_weights_max``): a
    floor keeps annealing from switching a boundary condition off."""
    residual = [g for name, g in grads.items() if kinds[name] == RESIDUAL_KIND]
    if not residual:
        return dict(weights)
    g_max = float(np.abs(np.sum(residual, axis=0)).max())
    out = dict(weights)
    for name, g in grads.items():
        if kinds[name] == RESIDUAL_KIND:
            continue
        mean = float(np.abs(g).mean()) * (weights[name] if weighted_mean else 1.0)
        if mean > 0 and np.isfinite(mean) and np.isfinite(g_max):
            out[name] = (1.0 - alpha) * weights[name] + alpha * g_max / mean
        out[name] = float(min(max(out[name], bounds[0]), bounds[1]))
    return out
