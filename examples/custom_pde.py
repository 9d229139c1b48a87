"""A user-defined PDE, no change to pinntao: a reaction-diffusion problem on the unit square

    −Δu + u = f,  u = g on the boundary,  exact u = exp(x) sin(πy),

written as residual blocks on the network's jet, trained with any solver chosen by options:

    python examples/custom_pde.py -pinn_optimizer sngd -tao_max_it 200
    mpiexec -n 2 python examples/custom_pde.py -tao_type nls -tao_max_it 50
"""

import math
import sys

import petsc4py

petsc4py.init(sys.argv)

import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao import Block, Box, PinnObjective, Problem, Trainer, build_mlp  # noqa: E402
from pinntao.comm import configure_threads  # noqa: E402


def exact(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x[:, 0]) * torch.sin(math.pi * x[:, 1])


def forcing(x: torch.Tensor) -> torch.Tensor:
    # −Δu + u with u = eˣ sin(πy): −(eˣ sin − π² eˣ sin) + eˣ sin = π² eˣ sin(πy)
    return math.pi**2 * exact(x)


box = Box((0.0, 0.0), (1.0, 1.0))
problem = Problem(
    name="reaction_diffusion",
    domain=box,
    blocks=[
        Block("interior", "interior", box.interior, residual=lambda jet, x: -jet.laplacian() + jet.u - forcing(x)),
        Block(
            "boundary",
            "boundary",
            lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
            residual=lambda jet, x: jet.u - exact(x),
            order=0,
            weight=10.0,
        ),
    ],
    exact=exact,
    default_counts={"interior": 400, "boundary": 80},
)

opts = PETSc.Options()
configure_threads(PETSc.COMM_WORLD.tompi4py())
if not opts.hasName("tao_max_it"):
    opts.setValue("tao_max_it", "100")
model = build_mlp(2, (16, 16), "tanh", torch.float64, "cpu")
obj = PinnObjective(problem, model, seed=0)
x, res = Trainer(obj, optimizer="sngd").solve()  # SNGD unless -pinn_optimizer / -tao_type say otherwise
PETSc.Sys.Print(
    f"{problem.name}: P={obj.n_params} iterations={res.iterations} loss={res.loss:.3e} "
    f"rel_l2={res.rel_l2:.3e} ({res.converged_reason})"
)
