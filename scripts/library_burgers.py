"""The DeepXDE Burgers recipe, timed and scored on pinntao's reference (issue 21's baseline).

DeepXDE's example (3x20 tanh, Glorot normal, 2,540 + 80 + 160 points, Adam lr 1e-3 for 15,000
iterations, then L-BFGS), float64 and one torch thread, scored by the relative L2 error on
pinntao's burgers1d evaluation grid (101 x 101 on (t, x) in [0, 1] x [-1, 1], Cole-Hopf
reference), so it compares with pinntao's ``rel_l2`` on the same points. DeepXDE trains on
t in [0, 0.99]; the error on that part of the grid is printed as well.

DeepXDE is not a pinntao dependency: run it in an environment of its own, e.g.

    pip install --target /tmp/dx deepxde scikit-learn scikit-optimize
    PYTHONPATH=/tmp/dx DDE_BACKEND=pytorch .venv/bin/python scripts/library_burgers.py --seed 0 --out dx.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--adam-its", type=int, default=15000)
    ap.add_argument("--out", default="", help="JSON file for the result")
    args = ap.parse_args()
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    torch.set_num_threads(1)
    try:
        import deepxde as dde
    except ImportError:
        print("library_burgers.py: deepxde is not installed (see the docstring for how)", file=sys.stderr)
        return 2
    from pinntao.problems import get_problem

    dde.config.set_default_float("float64")
    dde.config.set_random_seed(args.seed)
    nu = 0.01 / np.pi
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 0.99))

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - nu * dy_xx

    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=2540, num_boundary=80, num_initial=160)
    net = dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)

    problem = get_problem("burgers1d")
    tx = problem.eval_points()  # pinntao's (t, x) grid
    u_ref = problem.exact(torch.as_tensor(tx)).numpy().ravel()
    xt = tx[:, ::-1].copy()  # DeepXDE's inputs are (x, t)

    def errors() -> tuple[float, float]:
        u = model.predict(xt).ravel()
        full = float(np.linalg.norm(u - u_ref) / np.linalg.norm(u_ref))
        m = tx[:, 0] <= 0.99
        part = float(np.linalg.norm(u[m] - u_ref[m]) / np.linalg.norm(u_ref[m]))
        return full, part

    t0 = time.perf_counter()
    model.compile("adam", lr=1e-3)
    model.train(iterations=args.adam_its, display_every=5000)
    t_adam = time.perf_counter() - t0
    err_adam = errors()
    model.compile("L-BFGS")
    model.train(display_every=5000)
    wall = time.perf_counter() - t0
    full, part = errors()
    res = {"seed": args.seed, "wall_s": wall, "adam_s": t_adam, "rel_l2_after_adam": err_adam[0],
           "rel_l2": full, "rel_l2_t_le_0.99": part, "deepxde": dde.__version__, "torch": torch.__version__}
    print(json.dumps(res))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
