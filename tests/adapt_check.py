"""Run under mpiexec by test_weights_sampling.py: batches, RAD points and annealed weights of a short
SAV run (and RAD at the initial θ), printed by rank 0 as JSON for comparing 1 and 2 ranks."""

import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from helpers import tiny_objective  # noqa: E402

from pinntao.sampling import ADAPT_OPTIONS, Adaptation, draw_batch, rad_points  # noqa: E402
from pinntao.train import Trainer  # noqa: E402


def global_points(obj) -> dict[str, list]:
    """The objective's current global points per block (rank slices gathered in rank order)."""
    out = {}
    for lb in obj.residual.blocks:
        parts = obj.mpi.allgather(lb.x.numpy())
        out[lb.block.name] = np.concatenate(parts).tolist()
    return out


def main() -> None:
    torch.set_num_threads(1)
    obj = tiny_objective("heat1d", layers=(6, 6), n_int=37, n_bnd=13)
    theta0 = obj.gather(obj.initial_vec())
    rad0, _ = rad_points(obj, theta0, "interior", 37, 400, 2.0, 0.5, seed=5, index=1)
    opts = {o.name: o.default for o in ADAPT_OPTIONS} | {
        "weights": "annealing", "weights_every": 2, "batch_size": 29, "batch_every": 2, "resample": "rad",
        "resample_every": 3, "rad_pool": 200, "seed": 0,
        "resample_settle": 0}  # draws up to the end (the default stops them 3 iterations before it)
    db = PETSc.Options()
    for k, v in {"tao_type": "python", "tao_python_type": "pinntao.solvers.RelSAV", "tao_max_it": "7",
                 "tao_sav_dt": "0.05"}.items():
        db.setValue(k, v)
    trainer = Trainer(obj, monitor_every=1)
    adapt = Adaptation(obj, opts)
    adapt.attach(trainer.tao)
    first_batch = global_points(obj)
    _, res = trainer.solve()
    out = {
        "size": obj.size,
        "rad0": rad0.tolist(),
        "batch3": {k: v.tolist() for k, v in draw_batch(adapt.full, 29, 0, 3).items()},
        "first_batch": first_batch,
        "last_batch": global_points(obj),
        "full": {k: v.tolist() for k, v in adapt.full.items()},
        "weights": adapt.history["weights"],
        "resample": [e["iteration"] for e in adapt.history["resample"]],
        "energy": trainer.tao.getPythonContext().energy,
        "history": [h[2] for h in res.history],
    }
    if obj.rank == 0:
        print("JSON" + json.dumps(out))


if __name__ == "__main__":
    main()
