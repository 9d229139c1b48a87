"""Run under mpiexec by test_domains.py: loss, gradient, G v, the residual Vec and a hash of the
global points for a system (cavity2d) or a polygon-domain problem, at fixed θ."""

import hashlib
import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao.models import build_mlp  # noqa: E402
from pinntao.objective import PinnObjective  # noqa: E402
from pinntao.problems import get_problem  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    name = sys.argv[1]
    prob = get_problem(name, {"ref_n": 32})
    model = build_mlp(prob.dim, (6, 5), "tanh", torch.float64, "cpu", out_dim=prob.fields)
    obj = PinnObjective(prob, model, comm=PETSc.COMM_WORLD, counts={"interior": 37, "boundary": 13}, seed=4)
    x = obj.initial_vec()
    a, b = x.getOwnershipRange()
    x.setArray(x.getArray() + 0.3 * np.random.default_rng(1).standard_normal(obj.n_params)[a:b])
    g = obj.create_vec()
    f = obj.objective_gradient(None, x, g)
    obj.set_linearization(x)
    v = obj.create_vec()
    v.setArray(np.cos(np.arange(obj.n_params))[a:b])
    gv = obj.create_vec()
    obj.gram_mat().mult(v, gv)
    R = obj.create_residual_vec()
    obj.residual_function(None, x, R)

    def full(vec: PETSc.Vec) -> list[float]:
        sc, out = PETSc.Scatter.toZero(vec)
        sc.scatter(vec, out)
        return out.getArray().tolist()

    pts = prob.sample({"interior": 37, "boundary": 13}, 4)
    digest = hashlib.sha256(b"".join(pts[k].tobytes() for k in sorted(pts))).hexdigest()
    out = {"size": obj.size, "loss": f, "grad": full(g), "gram_v": full(gv), "residual": full(R),
           "rel_l2": obj.rel_l2(x), "points": digest}
    if obj.rank == 0:
        print("JSON" + json.dumps(out))


if __name__ == "__main__":
    main()
