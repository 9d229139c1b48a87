"""Heat equation u_t = κ u_xx; coordinates are (t, x)."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem

PI = math.pi


def heat1d(kappa: float = 0.25) -> Problem:
    """u_t = ¼ u_xx on (t, x) ∈ [0, 1]², u(0, x) = sin(πx), u = 0 at x ∈ {0, 1};
    u = exp(−π² t / 4) sin(πx) (the sketched-NG paper's heat problem)."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-kappa * PI**2 * x[:, 0]) * torch.sin(PI * x[:, 1])

    return Problem(
        name="heat1d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: j.d(0) - kappa * j.dd(1),
                  pure=(1,)),  # u_xx only: no u_tt through the network
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, [(1, 0), (1, 1)], s),
                residual=lambda j, x: j.u,
                order=0,
            ),
            Block(
                "initial",
                "initial",
                lambda n, rng, s: box.faces(n, rng, [(0, 0)], s),
                residual=lambda j, x: j.u - torch.sin(PI * x[:, 1]),
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 900, "boundary": 100, "initial": 100},
        default_layers=(65,),
        time_axis=0,
        description=heat1d.__doc__ or "",
        params={"kappa": kappa},
    )
