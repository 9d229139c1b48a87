"""Run under mpiexec by test_mpi.py: print (rank 0) JSON with loss, gradient, G v and a short
training history at fixed θ and points, so the 1-rank and n-rank values can be compared."""

import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from helpers import perturbed_theta, tiny_objective  # noqa: E402

from pinntao.train import Trainer  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    problem = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "poisson2d"
    obj = tiny_objective(problem, layers=(6, 5), n_int=37, n_bnd=13)  # counts not divisible by 2 or 4
    x = perturbed_theta(obj)
    g = obj.create_vec()
    f = obj.objective_gradient(None, x, g)
    obj.set_linearization(x)
    v = obj.create_vec()
    v.setArray(np.cos(np.arange(obj.n_params))[slice(*v.getOwnershipRange())])
    gv = obj.create_vec()
    obj.gram_mat().mult(v, gv)
    hv = obj.create_vec()
    obj.hessian_mat().mult(v, hv)
    R = obj.create_residual_vec()
    obj.residual_function(None, x, R)

    def full(vec: PETSc.Vec) -> list[float]:
        sc, out = PETSc.Scatter.toZero(vec)
        sc.scatter(vec, out)
        return out.getArray().tolist()

    opts = PETSc.Options()
    if not opts.hasName("tao_max_it"):
        opts.setValue("tao_max_it", "15")
    trainer = Trainer(obj, tao_type=opts.getString("check_tao_type", "lmvm"), monitor_every=1)
    _, res = trainer.solve()
    out = {
        "size": obj.size,
        "loss": f,
        "grad": full(g),
        "gram_v": full(gv),
        "hess_v": full(hv),
        "residual": full(R),
        "rel_l2": obj.rel_l2(x),
        "history": [h[2] for h in res.history],
    }
    if obj.rank == 0:
        print("JSON" + json.dumps(out))


if __name__ == "__main__":
    main()
