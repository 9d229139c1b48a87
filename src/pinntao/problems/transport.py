"""Linear transport (advection) with a fast wave speed: the sketched-NG paper's hard case."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem


def transport1d(c: float = 30.0) -> Problem:
    """u_t + c u_x = 0 on (t, x) ∈ [0, 1] × [0, 2π], u(0, x) = sin x, u = sin(x − ct).

    The paper's periodic boundary is imposed here as Dirichlet data from u at x = 0 and x = 2π
    (a block's residual sees only its own points), which pins the same solution."""
    box = Box((0.0, 0.0), (1.0, 2 * math.pi))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x[:, 1] - c * x[:, 0])

    return Problem(
        name="transport1d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: j.d(0) + c * j.d(1), order=1),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, [(1, 0), (1, 1)], s),
                residual=lambda j, x: j.u - exact(x),
                order=0,
            ),
            Block(
                "initial",
                "initial",
                lambda n, rng, s: box.faces(n, rng, [(0, 0)], s),
                residual=lambda j, x: j.u - torch.sin(x[:, 1]),
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 1000, "boundary": 200, "initial": 200},
        default_layers=(20, 20, 20, 20),
        time_axis=0,
        description=transport1d.__doc__ or "",
        params={"c": c},
    )
