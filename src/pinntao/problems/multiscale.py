"""Multiscale Poisson problems of the implicit-SGD paper (Adam and L-BFGS struggle on them)."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem

PI = math.pi


def poisson1d_multiscale() -> Problem:
    """−u'' = f on [0, 1], u = sin(2πx) + 0.1 sin(50πx), u(0) = u(1) = 0 (ISGD paper; its net is
    5 × 200, the default here is 3 × 50)."""
    box = Box((0.0,), (1.0,))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(2 * PI * x[:, 0]) + 0.1 * torch.sin(50 * PI * x[:, 0])

    def f(x: torch.Tensor) -> torch.Tensor:
        return (2 * PI) ** 2 * torch.sin(2 * PI * x[:, 0]) + 0.1 * (50 * PI) ** 2 * torch.sin(50 * PI * x[:, 0])

    return Problem(
        name="poisson1d_multiscale",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: -j.dd(0) - f(x)),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.u - exact(x),
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 1000, "boundary": 2},
        default_layers=(50, 50, 50),
        recommended=dict(RECOMMENDED_1D),
        description=poisson1d_multiscale.__doc__ or "",
    )


#: recommended set-ups (applied by the CLI where the user gave none; docs/hard_problems.md): Fourier
#: features at the source's wave numbers and SNGD
RECOMMENDED_1D = {"pinn_arch": "multiscale_mlp", "pinn_ff_scales": "2,50", "pinn_optimizer": "sngd_lm"}
RECOMMENDED_2D = {"pinn_arch": "multiscale_mlp", "pinn_ff_scales": "1,10", "pinn_optimizer": "sngd_lm"}

def poisson2d_multiscale() -> Problem:
    """−Δu = f on [0, 1]², u = sin(πx) sin(πy) + 0.1 sin(10πx) sin(10πy), u = 0 on the boundary
    (ISGD paper)."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1]) + 0.1 * torch.sin(10 * PI * x[:, 0]) * torch.sin(
            10 * PI * x[:, 1]
        )

    def f(x: torch.Tensor) -> torch.Tensor:
        low = 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])
        high = 0.1 * 200 * PI**2 * torch.sin(10 * PI * x[:, 0]) * torch.sin(10 * PI * x[:, 1])
        return low + high

    return Problem(
        name="poisson2d_multiscale",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: -j.laplacian() - f(x)),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.u,
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 2000, "boundary": 400},
        default_layers=(30, 30, 30, 30),
        recommended=dict(RECOMMENDED_2D),
        description=poisson2d_multiscale.__doc__ or "",
    )
