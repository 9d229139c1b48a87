"""Run under mpiexec by test_kernel_ngd.py: the kernel (Woodbury) step of pinntao.solvers.Spring
at a fixed θ with fixed damping μ, against the dense damped step (JᵀJ + μI)⁻¹Jᵀr computed on
one rank from the same global points; prints (rank 0) JSON with the relative difference."""

import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from helpers import perturbed_theta, tiny_objective  # noqa: E402

from pinntao.objective import PinnObjective  # noqa: E402

MU = 1e-3


def main() -> None:
    torch.set_num_threads(1)
    solve = sys.argv[1]
    obj = tiny_objective(layers=(6, 6), n_int=21, n_bnd=9)  # N = 30 < P = 67, odd counts
    x = perturbed_theta(obj)
    tao = PETSc.TAO().create(comm=obj.comm)
    obj.setup_tao(tao)
    tao.setType("python")
    tao.setPythonType("pinntao.solvers.Spring")
    db = PETSc.Options()
    db.setValue("tao_spring_solve", solve)
    db.setValue("tao_spring_cg_rtol", "1e-13")
    tao.setFromOptions()
    tao.setSolution(x)
    ctx = tao.getPythonContext()
    ctx.stats = {"time_s": dict.fromkeys(("jacobian", "factor", "direction"), 0.0)}
    g, d = x.duplicate(), x.duplicate()
    f = tao.computeObjectiveGradient(x, g)
    msg = ctx.direction(tao, x, g, d, f, MU, True)
    sc, full = PETSc.Scatter.toAll(d)
    sc.scatter(d, full)
    step = full.getArray().copy()
    # dense reference on this rank alone, same global points
    counts = {"interior": 21, "boundary": 9, "initial": 9}
    ref_obj = PinnObjective(obj.problem, obj.model, comm=PETSc.COMM_SELF, counts=counts, seed=0)
    theta = obj.gather(x)
    J = torch.func.jacrev(ref_obj.residual)(theta)
    r = ref_obj.residual(theta)
    ref = torch.linalg.solve(J.T @ J + MU * torch.eye(J.shape[1], dtype=J.dtype), J.T @ r).numpy()
    err = float(np.abs(step - ref).max() / np.abs(ref).max())
    if obj.rank == 0:
        print("JSON" + json.dumps({"size": obj.size, "message": msg, "rel_err": err, "n": obj.n_points}))


if __name__ == "__main__":
    main()
