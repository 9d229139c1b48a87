"""Klein-Gordon equation of the gradient-pathologies paper; coordinates are (t, x)."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem

PI = math.pi


#: recommended set-up (applied by the CLI where the user gave none): the gradient-pathologies paper's
#: M4 as its authors' code runs it — modified MLP on inputs mapped to [−1, 1]², learning-rate
#: annealing of the weighted terms with 0.9 of the old λ kept and one λ per block kind, Adam on
#: batches of 256 holding as many boundary and initial points as interior ones (docs/hard_problems.md)
RECOMMENDED = {"pinn_arch": "modified_mlp", "pinn_input_scale": "box", "pinn_weights": "annealing",
               "pinn_weights_mean": "weighted", "pinn_weights_alpha": "0.1", "pinn_weights_share": "kind",
               "pinn_n_boundary": "2000", "pinn_n_initial": "1000", "pinn_batch_size": "256",
               "pinn_optimizer": "adam"}

def klein_gordon1d(alpha: float = -1.0, beta: float = 0.0, gamma: float = 1.0) -> Problem:
    """u_tt + α u_xx + β u + γ u³ = f on (t, x) ∈ [0, 1]² (α = −1, β = 0, γ = 1: u_tt − u_xx + u³ = f),
    u = x cos(5πt) + (xt)³; Dirichlet data at x ∈ {0, 1}, u(0, x) = x and u_t(0, x) = 0
    (gradient-pathologies paper, its Klein-Gordon example)."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(p: torch.Tensor) -> torch.Tensor:
        t, x = p[:, 0], p[:, 1]
        return x * torch.cos(5 * PI * t) + (x * t) ** 3

    def forcing(p: torch.Tensor) -> torch.Tensor:
        t, x = p[:, 0], p[:, 1]
        u_tt = -25 * PI**2 * x * torch.cos(5 * PI * t) + 6 * x**3 * t
        u_xx = 6 * x * t**3
        return u_tt + alpha * u_xx + beta * exact(p) + gamma * exact(p) ** 3

    def interior(j, p: torch.Tensor) -> torch.Tensor:
        return j.dd(0) + alpha * j.dd(1) + beta * j.u + gamma * j.u**3 - forcing(p)

    return Problem(
        name="klein_gordon1d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=interior),
            Block("boundary", "boundary", lambda n, rng, s: box.faces(n, rng, [(1, 0), (1, 1)], s),
                  residual=lambda j, p: j.u - exact(p), order=0),
            Block("initial", "initial", lambda n, rng, s: box.faces(n, rng, [(0, 0)], s),
                  residual=lambda j, p: j.u - p[:, 1], order=0),
            Block("initial_velocity", "initial", lambda n, rng, s: box.faces(n, rng, [(0, 0)], s),
                  residual=lambda j, p: j.d(0), order=1),
        ],
        exact=exact,
        default_counts={"interior": 2000, "boundary": 200, "initial": 100},
        default_layers=(50, 50, 50),
        time_axis=0,
        recommended=dict(RECOMMENDED),
        description=klein_gordon1d.__doc__ or "",
        params={"alpha": alpha, "beta": beta, "gamma": gamma},
    )
