"""Anisotropic diffusion with a mixed derivative: −∇·(A∇u) = f, A = [[1, a], [a, 1]] (|a| < 1)."""

from __future__ import annotations

import math

import torch

from ..errors import PinnInputError
from .base import Block, Box, Problem

PI = math.pi


def anisotropic_poisson2d(a: float = 0.5) -> Problem:
    """−(u_xx + 2a u_xy + u_yy) = f on [0, 1]², u = 0 on the boundary, u = sin(πx) sin(πy):
    f = 2π² (sin πx sin πy − a cos πx cos πy). The block asks the jet for the mixed pair (0, 1)."""
    if not abs(a) < 1:
        raise PinnInputError(f"anisotropic_poisson2d: the operator is elliptic only for |a| < 1, got a={a}")
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

    def forcing(x: torch.Tensor) -> torch.Tensor:
        c = torch.cos(PI * x[:, 0]) * torch.cos(PI * x[:, 1])
        return 2 * PI**2 * (exact(x) - a * c)

    return Problem(
        name="anisotropic_poisson2d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, mixed=[(0, 1)],
                  residual=lambda j, x: -(j.laplacian() + 2 * a * j.d2(0, 1)) - forcing(x)),
            Block("boundary", "boundary", lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                  residual=lambda j, x: j.u, order=0),
        ],
        exact=exact,
        default_counts={"interior": 900, "boundary": 120},
        default_layers=(20, 20, 20, 20),
        description=anisotropic_poisson2d.__doc__ or "",
        params={"a": a},
    )
