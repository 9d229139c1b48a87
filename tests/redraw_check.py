"""Run under mpiexec by test_weights_sampling.py: fresh draws of the interior points (-pinn_resample
redraw) during a short Adam run; rank 0 prints the global points and losses as JSON for comparing
1 and 2 ranks."""

import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from helpers import tiny_objective  # noqa: E402

from pinntao.train import Trainer  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    obj = tiny_objective("heat1d", layers=(6, 6), n_int=37, n_bnd=13, sampling="sobol")
    db = PETSc.Options()
    for k, v in {"pinn_resample": "redraw", "pinn_resample_every": "3", "tao_max_it": "7", "pinn_resample_settle": "0",
                 "tao_gatol": "0", "tao_grtol": "0"}.items():
        db.setValue(k, v)
    trainer = Trainer(obj, optimizer="adam", monitor_every=1)
    _, res = trainer.solve()
    lb = next(b for b in obj.residual.blocks if b.block.name == "interior")
    live = np.concatenate(obj.mpi.allgather(lb.x.numpy()))  # the points the objective evaluates now
    out = {"size": obj.size, "full": {k: v.tolist() for k, v in trainer.adaptation.full.items()},
           "live": live.tolist(), "resample": [e["iteration"] for e in trainer.adaptation.history["resample"]],
           "history": [h[2] for h in res.history]}
    if obj.rank == 0:
        print("JSON" + json.dumps(out))


if __name__ == "__main__":
    main()
