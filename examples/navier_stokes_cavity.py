"""Lid-driven cavity at Re = 100: steady incompressible Navier-Stokes, a 3-output PINN (u, v, p).

    mpiexec -n 2 python examples/navier_stokes_cavity.py                        # default: SNGD, 600 s
    mpiexec -n 2 python examples/navier_stokes_cavity.py -pinn_time_limit 870   # the 15-minute target run
    mpiexec -n 2 python examples/navier_stokes_cavity.py -pinn_optimizer engd -pinn_time_limit 300
    python examples/navier_stokes_cavity.py -pinn_time_limit 60 -cavity_figure cavity.png

The problem (``cavity2d``, velocity-pressure form) and its finite-difference reference (computed
once and cached) come from pinntao.problems. Printed: the relative L2 error of the velocity
magnitude on the 101² reference grid and the largest deviation of the centerline velocities from
Ghia, Ghia & Shin (1982, Tables I and II, Re = 100), for the PINN and for the reference itself.
Rank 0 writes the figure (-cavity_figure, default cavity.png): |velocity| with streamlines for the
PINN and the reference, the error, and both centerline profiles against the table. Network and
points: -cavity_width 30 -cavity_depth 4 -cavity_n_interior 3000 -cavity_n_boundary 800
-cavity_w_boundary 10 (the defaults; the best of the 200 s trials in docs/benchmarks.md).
"""

import sys

import petsc4py

petsc4py.init(sys.argv)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao import PinnObjective, Trainer, get_problem, signals  # noqa: E402
from pinntao.comm import configure_threads  # noqa: E402
from pinntao.models import build_model  # noqa: E402
from pinntao.problems.cavity import GHIA_U_RE100, GHIA_V_RE100, ghia_deviation, reference_values  # noqa: E402

comm = PETSc.COMM_WORLD
opts = PETSc.Options()
signals.install()
configure_threads(comm.tompi4py(), opts.getInt("pinn_threads", 0))
if not opts.hasName("pinn_time_limit") and not opts.hasName("tao_max_it"):
    opts.setValue("pinn_time_limit", "600")  # this program's default budget
if not opts.hasName("tao_max_it"):
    opts.setValue("tao_max_it", "100000")
width = opts.getInt("cavity_width", 30)
depth = opts.getInt("cavity_depth", 4)

problem = get_problem("cavity2d", {"w_boundary": opts.getReal("cavity_w_boundary", 10.0)})
model = build_model("mlp", problem.dim, (width,) * depth, "tanh", torch.float64, "cpu", out_dim=problem.fields)
obj = PinnObjective(problem, model, comm=comm, counts={"interior": opts.getInt("cavity_n_interior", 3000),
                                                        "boundary": opts.getInt("cavity_n_boundary", 800)}, seed=0)
trainer = Trainer(obj, optimizer="sngd", monitor_every=20)
x, res = trainer.solve()

theta = obj.gather(x)  # collective: every rank evaluates below, rank 0 plots


def pinn_uv(points: np.ndarray) -> np.ndarray:
    return obj.evaluate(theta, points)


dev = ghia_deviation(pinn_uv)
dev_ref = ghia_deviation(lambda p: reference_values(p))
PETSc.Sys.Print(
    f"cavity2d Re=100: P={obj.n_params} N={obj.n_points} (rows {obj.n_rows}) ranks={comm.getSize()} "
    f"method={trainer.method or '-'} tao={trainer.tao_type}\n"
    f"  iterations={res.iterations} reason={res.converged_reason} loss={res.loss:.3e} "
    f"rel_l2(|u|)={res.rel_l2:.3e} ghia_max_dev={dev:.3e} (reference: {dev_ref:.3e}) wall={res.wall_s:.1f}s"
)

if comm.getRank() == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 101
    g = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(g, g, indexing="xy")
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    pinn, ref = pinn_uv(pts), reference_values(pts)
    speed = [np.hypot(a[:, 0], a[:, 1]).reshape(n, n) for a in (pinn, ref)]
    fig, ax = plt.subplots(1, 5, figsize=(22, 4.2), constrained_layout=True)
    for k, (name, a, s) in enumerate((("PINN", pinn, speed[0]), ("reference (FD, 201²)", ref, speed[1]))):
        im = ax[k].imshow(s, origin="lower", extent=(0, 1, 0, 1), vmin=0, vmax=1, cmap="viridis")
        ax[k].streamplot(g, g, a[:, 0].reshape(n, n), a[:, 1].reshape(n, n), color="w", density=1.0, linewidth=0.6)
        ax[k].set_title(f"|velocity|, {name}")
        fig.colorbar(im, ax=ax[k])
    im = ax[2].imshow(np.abs(speed[0] - speed[1]), origin="lower", extent=(0, 1, 0, 1), cmap="magma")
    ax[2].set_title(f"| |u_θ| − |u_ref| |, rel. L2 {res.rel_l2:.2e}")
    fig.colorbar(im, ax=ax[2])
    line = np.linspace(0.0, 1.0, 201)
    vert = np.stack([np.full_like(line, 0.5), line], axis=1)
    horiz = np.stack([line, np.full_like(line, 0.5)], axis=1)
    ax[3].plot(reference_values(vert)[:, 0], line, "k-", label="reference")
    ax[3].plot(pinn_uv(vert)[:, 0], line, "r--", label="PINN")
    ax[3].plot(GHIA_U_RE100[:, 1], GHIA_U_RE100[:, 0], "bo", ms=4, label="Ghia et al. 1982")
    ax[3].set_xlabel("u(0.5, y)")
    ax[3].set_ylabel("y")
    ax[3].legend()
    ax[4].plot(line, reference_values(horiz)[:, 1], "k-", label="reference")
    ax[4].plot(line, pinn_uv(horiz)[:, 1], "r--", label="PINN")
    ax[4].plot(GHIA_V_RE100[:, 0], GHIA_V_RE100[:, 1], "bo", ms=4, label="Ghia et al. 1982")
    ax[4].set_xlabel("x")
    ax[4].set_ylabel("v(x, 0.5)")
    ax[4].legend()
    fig.suptitle(f"lid-driven cavity, Re = 100: {trainer.method or trainer.tao_type}, {res.iterations} iterations, "
                 f"{res.wall_s:.0f} s on {comm.getSize()} ranks; max centerline deviation from Ghia {dev:.2e}")
    path = opts.getString("cavity_figure", "cavity.png")
    fig.savefig(path, dpi=100)
    print(f"  figure: {path}")
sys.exit(res.exit_code)
