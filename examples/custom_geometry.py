"""Poisson on a plate with holes, built from set operations on domains (no new Domain class):

    −Δu = f on Ω = [0, 1]² minus four disks,  exact u = sin(πx) sin(πy) + x y,

Dirichlet data on the plate's edges and on three holes, a Neumann condition ∂u/∂n = g on the
fourth hole (``hole0``; its normal points into the hole, out of Ω). Boundary pieces are named,
so each block samples only its own:

    python examples/custom_geometry.py -tao_max_it 200
    mpiexec -n 2 python examples/custom_geometry.py -pinn_optimizer sngd
"""

import math
import sys

import petsc4py

petsc4py.init(sys.argv)

import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao import Block, PinnObjective, Problem, Trainer, build_mlp  # noqa: E402
from pinntao.comm import configure_threads  # noqa: E402
from pinntao.domains import Ball, Box, Difference  # noqa: E402

PI = math.pi


def exact(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1]) + x[:, 0] * x[:, 1]


def grad_exact(x: torch.Tensor) -> torch.Tensor:
    s, c = torch.sin(PI * x), torch.cos(PI * x)
    return torch.stack([PI * c[:, 0] * s[:, 1] + x[:, 1], PI * s[:, 0] * c[:, 1] + x[:, 0]], dim=1)


plate = Difference(Box((0.0, 0.0), (1.0, 1.0)),
                   *(Ball((cx, cy), 0.1) for cx in (0.3, 0.7) for cy in (0.3, 0.7)))
# plate.piece_names: outer.x0_lo, outer.x0_hi, outer.x1_lo, outer.x1_hi, hole0, hole1, hole2, hole3

problem = Problem(
    name="plate_with_holes",
    domain=plate,
    blocks=[
        Block("interior", "interior", plate.interior,
              residual=lambda jet, x: -jet.laplacian() - 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])),
        Block("dirichlet", "boundary", plate.sampler("outer", "hole1", "hole2", "hole3"),
              residual=lambda jet, x: jet.u - exact(x), order=0, weight=10.0),
        Block("neumann", "boundary", plate.sampler("hole0"), order=1, weight=10.0,
              residual=lambda jet, x: ((jet.du - grad_exact(x)) * plate.normal(x)).sum(1)),
    ],
    exact=exact,
    default_counts={"interior": 500, "boundary": 120},
)

opts = PETSc.Options()
configure_threads(PETSc.COMM_WORLD.tompi4py())
if not opts.hasName("tao_max_it"):
    opts.setValue("tao_max_it", "100")
model = build_mlp(2, (16, 16), "tanh", torch.float64, "cpu")
obj = PinnObjective(problem, model, seed=0)
x, res = Trainer(obj, optimizer="sngd").solve()
PETSc.Sys.Print(
    f"{problem.name}: P={obj.n_params} N={obj.n_points} iterations={res.iterations} loss={res.loss:.3e} "
    f"rel_l2={res.rel_l2:.3e} ({res.converged_reason})"
)
