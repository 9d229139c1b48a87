"""Helmholtz equation of the gradient-pathologies paper."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem

PI = math.pi


#: recommended set-up (applied by the CLI where the user gave none; docs/hard_problems.md): Fourier
#: features at the source's wave numbers a1, a2 (filled from the problem's parameters) and SNGD
RECOMMENDED = {"pinn_arch": "multiscale_mlp", "pinn_ff_scales": "{a1:g},{a2:g}", "pinn_optimizer": "sngd_lm"}

def helmholtz2d(k: float = 1.0, a1: float = 1.0, a2: float = 4.0) -> Problem:
    """Δu + k²u = q on [−1, 1]², u = sin(a1 πx) sin(a2 πy), Dirichlet data from u
    (gradient-pathologies paper: k = 1, a1 = 1, a2 = 4)."""
    box = Box((-1.0, -1.0), (1.0, 1.0))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(a1 * PI * x[:, 0]) * torch.sin(a2 * PI * x[:, 1])

    def q(x: torch.Tensor) -> torch.Tensor:
        return (k**2 - (a1 * PI) ** 2 - (a2 * PI) ** 2) * exact(x)

    return Problem(
        name="helmholtz2d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: j.laplacian() + k**2 * j.u - q(x)),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.u - exact(x),
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 2000, "boundary": 400},
        default_layers=(50, 50, 50),
        recommended=dict(RECOMMENDED),
        description=helmholtz2d.__doc__ or "",
        params={"k": k, "a1": a1, "a2": a2},
    )
