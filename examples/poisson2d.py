"""Main example: −Δu = 2π² sin(πx) sin(πy) on the unit square with a 4×20 tanh PINN.

    mpiexec -n 2 python examples/poisson2d.py                       # sketched natural gradient (SNGD)
    mpiexec -n 2 python examples/poisson2d.py -pinn_optimizer gn    # Newton-Krylov (nls) on G = JᵀJ
    python examples/poisson2d.py -tao_type lmvm -tao_max_it 2000 -tao_monitor

Everything is a PETSc option: -tao_type, -tao_max_it, -tao_nls_ksp_type, -pc_python_type ...
The script shows the API a PETSc user embeds: PinnObjective (the TAO objective and its
operators) and Trainer (a TAO with monitors, history and NaN guard).
"""

import sys

import petsc4py

petsc4py.init(sys.argv)

import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao import build_mlp, get_problem, signals  # noqa: E402
from pinntao.comm import configure_threads  # noqa: E402
from pinntao.io import OutputFile, json_bytes  # noqa: E402
from pinntao.objective import PinnObjective  # noqa: E402
from pinntao.presets import apply_preset  # noqa: E402
from pinntao.train import Trainer  # noqa: E402

comm = PETSc.COMM_WORLD
opts = PETSc.Options()
signals.install()  # Ctrl-C / SIGTERM: stop at the next iteration, agreed by every rank
configure_threads(comm.tompi4py(), opts.getInt("pinn_threads", 0))

# defaults for this example; anything given on the command line wins
preset = opts.getString("pinn_optimizer", "sngd")
apply_preset(preset)
if not opts.hasName("tao_max_it"):
    opts.setValue("tao_max_it", "200")
if preset == "gn" and not opts.hasName("tao_nls_ksp_max_it"):
    opts.setValue("tao_nls_ksp_max_it", "200")

problem = get_problem("poisson2d")
model = build_mlp(problem.dim, (20, 20, 20, 20), "tanh", torch.float64, "cpu")
obj = PinnObjective(problem, model, comm=comm, counts={"interior": 900, "boundary": 120}, seed=0)
trainer = Trainer(obj, hessian=opts.getString("pinn_hessian", "gauss_newton"), monitor_every=20)
x, res = trainer.solve()

PETSc.Sys.Print(
    f"poisson2d: P={obj.n_params} N={obj.n_points} ranks={comm.getSize()} method={preset} tao={trainer.tao_type}\n"
    f"  iterations={res.iterations} reason={res.converged_reason} loss={res.loss:.3e} "
    f"rel_l2={res.rel_l2:.3e} wall={res.wall_s:.1f}s" + (f"  ({res.message})" if res.message else "")
)
report = opts.getString("pinn_report", "")
if report and comm.getRank() == 0:  # atomic, strict JSON; a failed write warns and never destroys the old file
    OutputFile(report, "report").write(
        lambda fh: fh.write(
            json_bytes(
                {
                    "problem": "poisson2d",
                    "method": preset,
                    "tao_type": trainer.tao_type,
                    "n_params": obj.n_params,
                    "ranks": comm.getSize(),
                    "iterations": res.iterations,
                    "converged_reason": res.converged_reason,
                    "status": res.status,
                    "loss": res.loss,
                    "rel_l2": res.rel_l2,
                    "wall_s": res.wall_s,
                    "history": res.history,
                }
            )
        )
    )
sys.exit(res.exit_code)  # 0 ok, 3 diverged or loss increased, 130/143 interrupted (docs/faults.md)
