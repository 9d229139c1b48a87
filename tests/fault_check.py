"""Run under mpiexec by test_faults.py: faults on one rank must never leave another waiting.

Modes (first argument): ``vanish`` (the checkpoint directory disappears after set-up: training
goes on, the failures are counted), ``monitor_raise`` (rank 1's monitor raises: every rank
stops with the same error), ``objective_raise`` (rank 1's residual raises inside TAO: the job
aborts with one clear line).
"""

import json
import os
import shutil
import sys

import petsc4py

petsc4py.init(sys.argv)
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from helpers import tiny_objective  # noqa: E402

from pinntao.errors import RunFailedError  # noqa: E402
from pinntao.train import Trainer  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    mode, workdir = sys.argv[1], sys.argv[2]
    obj = tiny_objective("poisson1d", layers=(6,), n_int=21, n_bnd=2)
    opts = PETSc.Options()
    opts.setValue("tao_max_it", "12")
    if mode == "vanish":
        ckdir = os.path.join(workdir, "ck")
        if obj.rank == 0:
            os.makedirs(ckdir)
        obj.mpi.Barrier()
        trainer = Trainer(obj, checkpoint=os.path.join(ckdir, "theta.npy"), checkpoint_every=2, monitor_every=1)
        obj.mpi.Barrier()
        if obj.rank == 0:
            shutil.rmtree(ckdir)
        _, res = trainer.solve()
        if obj.rank == 0:
            print("JSON" + json.dumps({"iterations": res.iterations, "outputs": res.outputs, "message": res.message,
                                       "files": os.listdir(workdir)}))
        return
    trainer = Trainer(obj, monitor_every=1000)
    if mode == "monitor_raise" and obj.rank == 1:
        observe = trainer._observe

        def failing(tao, its, f, x):
            if its == 3:
                raise RuntimeError("injected monitor failure")
            observe(tao, its, f, x)

        trainer._observe = failing
    if mode == "objective_raise" and obj.rank == 1:
        residual_grad = obj.residual.residual_grad  # the gradient pass (r and Jᵀr) of PinnObjective
        calls = [0]

        def failing_residual_grad(theta):
            calls[0] += 1
            if calls[0] == 4:
                raise RuntimeError("injected residual failure")
            return residual_grad(theta)

        obj.residual.residual_grad = failing_residual_grad
    try:
        trainer.solve()
    except RunFailedError as exc:
        print(f"RunFailedError on rank {obj.rank}: {exc}", flush=True)
        sys.exit(1)
    print(f"rank {obj.rank} finished without an error", flush=True)


if __name__ == "__main__":
    main()
