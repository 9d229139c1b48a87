"""Run under mpiexec by test_kernel_ngd.py: ``engd`` (kernel form, N < P) on poisson1d for a few
iterations from the same θ₀ and points; prints (rank 0) JSON with the loss history, so the 1-rank
and 2-rank runs can be compared."""

import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao.models import build_mlp  # noqa: E402
from pinntao.objective import PinnObjective  # noqa: E402
from pinntao.presets import apply_preset  # noqa: E402
from pinntao.problems import get_problem  # noqa: E402
from pinntao.train import Trainer  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    preset, its = sys.argv[1], sys.argv[2]
    prob = get_problem("poisson1d")
    model = build_mlp(1, (16, 16), "tanh", torch.float64, "cpu")  # P = 321
    obj = PinnObjective(prob, model, comm=PETSc.COMM_WORLD, counts={"interior": 100, "boundary": 2}, seed=0)
    apply_preset(preset)
    PETSc.Options().setValue("tao_max_it", its)
    trainer = Trainer(obj, monitor_every=1)
    _, res = trainer.solve()
    if obj.rank == 0:
        print("JSON" + json.dumps({"size": obj.size, "n": obj.n_points, "p": obj.n_params,
                                   "history": [h[2] for h in res.history], "reason": res.converged_reason}))


if __name__ == "__main__":
    main()
