"""Main example: −Δu = 2π² sin(πx) sin(πy) on the unit square with a 4×20 tanh PINN.

    mpiexec -n 2 python examples/poisson2d.py                       # sketched natural gradient (SNGD)
    mpiexec -n 2 python examples/poisson2d.py -pinn_optimizer gn    # Newton-Krylov (nls) on G = JᵀJ
    python examples/poisson2d.py -tao_type lmvm -tao_max_it 2000 -tao_monitor   # your solver: no preset
    python examples/poisson2d.py -pinn_time_limit 30 -pinn_checkpoint th.npy -pinn_report r.json -pinn_save th.bin

Everything is a PETSc option: -tao_type, -tao_max_it, -tao_ng_pc_sketch_rank, and the run settings
the CLI has (-pinn_time_limit, -pinn_checkpoint, -pinn_report, -pinn_save, -pinn_vts ...), which the
Trainer reads. The script shows the API a PETSc user embeds: PinnObjective (the TAO objective and
its operators) and Trainer (a TAO with monitors, history, NaN guard and outputs).
"""

import sys

import petsc4py

petsc4py.init(sys.argv)

import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao import PinnObjective, Trainer, build_mlp, get_problem, signals  # noqa: E402
from pinntao.comm import configure_threads  # noqa: E402

comm = PETSc.COMM_WORLD
opts = PETSc.Options()
signals.install()  # Ctrl-C / SIGTERM: stop at the next iteration, agreed by every rank
configure_threads(comm.tompi4py(), opts.getInt("pinn_threads", 0))
if not opts.hasName("tao_max_it"):  # this program's default budget; -tao_max_it wins
    opts.setValue("tao_max_it", "200")

problem = get_problem("poisson2d")
model = build_mlp(problem.dim, (20, 20, 20, 20), "tanh", torch.float64, "cpu")
obj = PinnObjective(problem, model, comm=comm, counts={"interior": 900, "boundary": 120}, seed=0)
# SNGD unless the user picked a solver (-pinn_optimizer NAME or -tao_type TYPE)
trainer = Trainer(obj, optimizer="sngd", monitor_every=20)
x, res = trainer.solve()  # also writes -pinn_report / -pinn_save / -pinn_vts when given

PETSc.Sys.Print(
    f"poisson2d: P={obj.n_params} N={obj.n_points} ranks={comm.getSize()} method={trainer.method or '-'} "
    f"tao={trainer.tao_type}\n"
    f"  iterations={res.iterations} reason={res.converged_reason} loss={res.loss:.3e} "
    f"rel_l2={res.rel_l2:.3e} wall={res.wall_s:.1f}s" + (f"  ({res.message})" if res.message else "")
)
sys.exit(res.exit_code)  # 0 ok, 3 diverged or loss increased, 4 an output failed, 130/143 interrupted
