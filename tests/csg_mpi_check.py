"""Run under mpiexec by test_csg.py: loss, gradient, residual Vec, rel. L2 and a hash of the global
points of a plate-with-holes problem (CSG domain, Dirichlet + Neumann pieces) at fixed θ."""

import hashlib
import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao.domains import Ball, Box, Difference, Polygon, Union  # noqa: E402
from pinntao.models import build_mlp  # noqa: E402
from pinntao.objective import PinnObjective  # noqa: E402
from pinntao.problems.base import Block, Problem  # noqa: E402


def plate_problem(sampling: str = "uniform") -> Problem:
    """A plate (a square united with a triangle) minus two disks: Dirichlet on the outer pieces,
    Neumann on one hole, for u = x² − y²."""
    plate = Difference(Union(Box((0.0, 0.0), (1.0, 1.0)), Polygon(((1.0, 0.0), (1.5, 0.5), (1.0, 1.0)))),
                       Ball((0.3, 0.3), 0.1), Ball((0.6, 0.7), 0.15), names=("plate", "a", "b"))

    def exact(x):
        return x[:, 0] ** 2 - x[:, 1] ** 2

    return Problem("csg_plate", plate, [
        Block("interior", "interior", plate.interior, residual=lambda j, x: -j.laplacian()),
        Block("dirichlet", "boundary", plate.sampler("plate", "b"), order=0, residual=lambda j, x: j.u - exact(x)),
        Block("neumann", "boundary", plate.sampler("a"), order=1,
              residual=lambda j, x: (j.du * plate.normal(x)).sum(1) - (2 * x * plate.normal(x) * torch.tensor(
                  [1.0, -1.0], dtype=x.dtype)).sum(1)),
    ], exact=exact, default_counts={"interior": 37, "boundary": 13}, eval_per_dim=15)


def main() -> None:
    torch.set_num_threads(1)
    prob = plate_problem(sys.argv[1] if len(sys.argv) > 1 else "uniform")
    model = build_mlp(prob.dim, (6, 5), "tanh", torch.float64, "cpu")
    obj = PinnObjective(prob, model, comm=PETSc.COMM_WORLD, seed=4, sampling=sys.argv[1])
    x = obj.initial_vec()
    a, b = x.getOwnershipRange()
    x.setArray(x.getArray() + 0.3 * np.random.default_rng(1).standard_normal(obj.n_params)[a:b])
    g = obj.create_vec()
    f = obj.objective_gradient(None, x, g)
    R = obj.create_residual_vec()
    obj.residual_function(None, x, R)

    def full(vec: PETSc.Vec) -> list[float]:
        sc, out = PETSc.Scatter.toZero(vec)
        sc.scatter(vec, out)
        return out.getArray().tolist()

    pts = prob.sample({}, 4, sys.argv[1])
    digest = hashlib.sha256(b"".join(pts[k].tobytes() for k in sorted(pts))).hexdigest()
    out = {"size": obj.size, "loss": f, "grad": full(g), "residual": full(R), "rel_l2": obj.rel_l2(x),
           "points": digest}
    if obj.rank == 0:
        print("JSON" + json.dumps(out))


if __name__ == "__main__":
    main()
