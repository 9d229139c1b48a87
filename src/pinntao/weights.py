"""Learning-rate annealing of the loss weights (the gradient-pathologies paper's Algorithm 1).

L = L_r + Σᵢ λᵢ Lᵢ, L_r the PDE (interior) blocks, Lᵢ the boundary / initial blocks with their
problem weights. Every k iterations

    λ̂ᵢ = max_θ |∇_θ L_r| / mean_θ |∇_θ Lᵢ|,    λᵢ ← (1 − α) λᵢ + α λ̂ᵢ   (α = 0.9),

so that no block's gradient is dwarfed by the PDE residual's. The paper's text takes the mean of
the *unweighted* block gradient (λᵢ outside the mean; the default here). The authors' code
differentiates the weighted term λᵢLᵢ (``-pinn_weights_mean weighted``), keeps 0.9 of the old λ
(α = 0.1 here) and gives u(0) and u_t(0) one λ (``-pinn_weights_share kind``).
In pinntao λᵢ multiplies the block's scale √(wᵢ/Nᵢ) in r, so every solver sees the reweighted
least-squares problem: for Gauss-Newton / natural gradient, G = JᵀWJ with W the block weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.func import grad_and_value

RESIDUAL_KIND = "interior"  # blocks of this kind form L_r; the others get annealed weights


def block_gradients_and_losses(obj, theta: Tensor, multipliers: dict[str, float]
                               ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(∇_θ Lᵢ of every block, as :func:`block_gradients`; and every block's Lᵢ, both without the
    annealed multiplier), from one forward and one backward pass per block and one Allreduce of
    the (blocks × (P + 1)) stack: together about one gradient evaluation. The loss in force is
    Σᵢ λᵢLᵢ and its gradient Σᵢ λᵢ∇Lᵢ for any λ, so a weight update needs no other evaluation."""
    res = obj.residual
    rows = []
    for lb in res.blocks:
        if lb.x.shape[0] == 0:
            rows.append(torch.zeros(theta.shape[0] + 1, dtype=theta.dtype, device=theta.device))
            continue

        def loss(th: Tensor, lb=lb) -> Tensor:
            r = res._block_residual(th, lb, lb.x)
            return 0.5 * torch.dot(r, r)

        g, v = grad_and_value(loss)(theta)
        rows.append(torch.cat([g, v.reshape(1)]) / multipliers.get(lb.block.name, 1.0))
    total = obj._sum(torch.stack(rows))
    names = [lb.block.name for lb in res.blocks]
    return ({n: np.asarray(total[i, :-1]) for i, n in enumerate(names)},
            {n: float(total[i, -1]) for i, n in enumerate(names)})


def weighted_loss_gradient(grads: dict[str, np.ndarray], losses: dict[str, float],
                           weights: dict[str, float]) -> tuple[float, np.ndarray]:
    """(Σᵢ λᵢLᵢ, Σᵢ λᵢ∇Lᵢ) from the per-block values of :func:`block_gradients_and_losses`."""
    loss = sum(weights[n] * v for n, v in losses.items())
    return float(loss), np.sum([weights[n] * g for n, g in grads.items()], axis=0)


def block_gradients(obj, theta: Tensor, multipliers: dict[str, float]) -> dict[str, np.ndarray]:
    """∇_θ Lᵢ of every block's loss Lᵢ = ½ (wᵢ/Nᵢ) ‖Rᵢ‖² (without the annealed multiplier),
    summed over ranks in one Allreduce; a dict block name → (P,) array, the same on every rank."""
    return block_gradients_and_losses(obj, theta, multipliers)[0]


def annealed_weights(grads: dict[str, np.ndarray], kinds: dict[str, str], weights: dict[str, float],
                     alpha: float, weighted_mean: bool = False,
                     bounds: tuple[float, float] = (0.0, math.inf), share: str = "block") -> dict[str, float]:
    """One update of Algorithm 1: new λ for every non-residual block (residual blocks keep 1).
    ``weighted_mean``: the denominator is ``mean |∇(λᵢLᵢ)|`` (the authors' code, which differentiates
    the weighted term; fixed point λ = √(max/mean)) instead of the text's ``mean |∇Lᵢ|``. A block
    whose gradient vanishes keeps its λ. ``share="kind"``: one λ per block kind (``boundary``,
    ``initial``, …) from the gradient of the kind's summed loss, as the paper's codes weight
    u(0) and u_t(0) together; ``"block"``: one λ per block. ``bounds`` (λ_min, λ_max) clamps every
    new λ (``-pinn_weights_min`` / ``-pinn_weights_max``): a floor keeps annealing from switching a
    boundary condition off."""
    residual = [g for name, g in grads.items() if kinds[name] == RESIDUAL_KIND]
    if not residual:
        return dict(weights)
    g_max = float(np.abs(np.sum(residual, axis=0)).max())
    groups: dict[str, list[str]] = {}
    for name in grads:
        if kinds[name] != RESIDUAL_KIND:
            groups.setdefault(kinds[name] if share == "kind" else name, []).append(name)
    out = dict(weights)
    for names in groups.values():
        lam = weights[names[0]]  # a shared group starts from (and keeps) one λ
        g = np.sum([grads[n] * (weights[n] / lam if share == "kind" else 1.0) for n in names], axis=0)
        mean = float(np.abs(g).mean()) * (lam if weighted_mean else 1.0)
        new = lam
        if mean > 0 and np.isfinite(mean) and np.isfinite(g_max):
            new = (1.0 - alpha) * lam + alpha * g_max / mean
        for n in names:
            out[n] = float(min(max(new, bounds[0]), bounds[1]))
    return out
