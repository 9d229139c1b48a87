"""Poisson problems −Δu = f with Dirichlet data on the unit interval and square."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem

PI = math.pi


def poisson1d() -> Problem:
    """−u'' = π² sin(πx) on [0, 1], u(0) = u(1) = 0; u = sin(πx)."""
    box = Box((0.0,), (1.0,))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0])

    return Problem(
        name="poisson1d",
        domain=box,
        blocks=[
            Block(
                "interior", "interior", box.interior, residual=lambda j, x: -j.dd(0) - PI**2 * torch.sin(PI * x[:, 0])
            ),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.u - exact(x),
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 100, "boundary": 2},
        default_layers=(16, 16),
        description=poisson1d.__doc__ or "",
    )


def poisson2d() -> Problem:
    """−Δu = 2π² sin(πx) sin(πy) on [0, 1]², u = 0 on the boundary; u = sin(πx) sin(πy)."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

    return Problem(
        name="poisson2d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: -j.laplacian() - 2 * PI**2 * exact(x)),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.u,
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 900, "boundary": 120},
        default_layers=(20, 20, 20, 20),
        description=poisson2d.__doc__ or "",
    )
