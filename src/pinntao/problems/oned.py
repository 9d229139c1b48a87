"""One-dimensional problems: a singularly perturbed convection-diffusion equation (ISGD paper)
and a nonlinear equation with Neumann data (sketched-NG paper)."""

from __future__ import annotations

import math

import torch

from .base import Block, Box, Problem

PI = math.pi


def singular_perturbation(eps: float = 0.01) -> Problem:
    """−ε y'' + y' = 1 on [0, 1], y(0) = y(1) = 0; y = x − (e^{(x−1)/ε} − e^{−1/ε}) / (1 − e^{−1/ε})
    (a boundary layer of width ε at x = 1; ε = 0.01 is the hard case)."""
    box = Box((0.0,), (1.0,))
    tail = math.exp(-1.0 / eps)  # underflows harmlessly to 0 for small ε

    def exact(x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] - (torch.exp((x[:, 0] - 1.0) / eps) - tail) / (1.0 - tail)

    return Problem(
        name="singular_perturbation",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: -eps * j.dd(0) + j.d(0) - 1.0),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.u,
                order=0,
            ),
        ],
        exact=exact,
        default_counts={"interior": 1000, "boundary": 2},
        default_layers=(20, 20, 20),
        description=singular_perturbation.__doc__ or "",
        params={"eps": eps},
    )


def nonlinear1d_neumann() -> Problem:
    """−u'' + u³ = f on [0, 1], u = cos(πx), Neumann data u'(0) = u'(1) = 0 (sketched-NG paper)."""
    box = Box((0.0,), (1.0,))

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.cos(PI * x[:, 0])

    def f(x: torch.Tensor) -> torch.Tensor:
        c = torch.cos(PI * x[:, 0])
        return PI**2 * c + c**3

    return Problem(
        name="nonlinear1d_neumann",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=lambda j, x: -j.dd(0) + j.u**3 - f(x)),
            Block(
                "boundary",
                "boundary",
                lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                residual=lambda j, x: j.d(0),
                order=1,
            ),
        ],
        exact=exact,
        default_counts={"interior": 200, "boundary": 2},
        default_layers=(20, 20, 20),
        description=nonlinear1d_neumann.__doc__ or "",
    )
