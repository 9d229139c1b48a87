"""Plain-PyTorch baselines of the same algorithms (torch.optim.Adam, torch.optim.LBFGS with
strong-Wolfe line search) on the same points, network and θ₀ as a pinntao run, without PETSc.
They write the same JSON report as ``python -m pinntao`` so the bench can put them side by side.

    python -m pinntao.bench.baselines --problem poisson2d --method torch_lbfgs --report r.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import torch

from ..comm import available_cores
from ..models import build_mlp
from ..problems import get_problem
from ..residual import Residual

METHODS = ("torch_adam", "torch_lbfgs")


def rel_l2(problem: Any, model: Any, theta: torch.Tensor) -> float:
    x = torch.as_tensor(problem.eval_points(), dtype=theta.dtype)
    with torch.no_grad():
        u, ue = model.u(theta, x), problem.exact(x)
    return float(torch.linalg.norm(u - ue) / torch.linalg.norm(ue))


def run(
    problem_name: str,
    method: str,
    *,
    seed: int = 0,
    layers: tuple[int, ...] | None = None,
    counts: dict[str, int] | None = None,
    max_it: int = 1000,
    time_limit: float = 0.0,
    lr: float = 1e-3,
    monitor_every: int = 10,
    params: dict[str, float] | None = None,
) -> dict[str, Any]:
    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; allowed: {', '.join(METHODS)}")
    torch.set_num_threads(available_cores())
    problem = get_problem(problem_name, params) if params else get_problem(problem_name)
    layers = tuple(layers or problem.default_layers)
    model = build_mlp(problem.dim, layers, "tanh", torch.float64, "cpu")
    pts = problem.sample(counts or {}, seed)
    res = Residual(problem, model, pts, {k: v.shape[0] for k, v in pts.items()})
    theta = model.initial_theta(seed).clone().requires_grad_(True)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = res.loss(theta)
        loss.backward()
        return loss

    if method == "torch_adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([theta], lr=lr)
    else:
        # torch's LBFGS keeps its history across step() calls but stalls when each call does a
        # single iteration; one call runs `monitor_every` iterations (counted by its state)
        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=monitor_every, history_size=10, tolerance_grad=0.0,
                                tolerance_change=0.0, line_search_fn="strong_wolfe")
    history: list[list[float]] = []
    t0 = time.perf_counter()
    reason, its, loss = "DIVERGED_MAXITS", 0, float("nan")
    while True:
        with torch.no_grad():
            loss = float(res.loss(theta))
        history.append([its, time.perf_counter() - t0, loss, rel_l2(problem, model, theta.detach())])
        if not math.isfinite(loss):
            reason = "DIVERGED_NAN"
            break
        if its >= max_it:
            break
        if time_limit > 0 and time.perf_counter() - t0 > time_limit:
            reason = "CONVERGED_USER"
            break
        if method == "torch_adam":
            for _ in range(min(monitor_every, max_it - its)):
                opt.step(closure)
            its = min(its + monitor_every, max_it)
        else:
            opt.param_groups[0]["max_iter"] = min(monitor_every, max_it - its)
            opt.step(closure)
            its = int(opt.state[theta]["n_iter"])
    wall = time.perf_counter() - t0
    with torch.no_grad():
        loss = float(res.loss(theta))
    err = rel_l2(problem, model, theta.detach())
    if history[-1][0] != its:
        history.append([its, wall, loss, err])
    return {
        "problem": problem.name,
        "n_params": model.n_params,
        "layers": list(layers),
        "activation": "tanh",
        "n_points": {k: int(v.shape[0]) for k, v in pts.items()},
        "ranks": 1,
        "device": "cpu",
        "tao_type": "none",
        "method": method,
        "seed": seed,
        "iterations": its,
        "converged_reason": reason,
        "message": "time limit reached" if reason == "CONVERGED_USER" else "",
        "loss": loss,
        "rel_l2": err,
        "wall_s": wall,
        "history": history,
        "theta": theta.detach().numpy().tolist(),
        "versions": {"torch": torch.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pinntao.bench.baselines", description=__doc__)
    ap.add_argument("--problem", required=True)
    ap.add_argument("--method", required=True, choices=METHODS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", default="")
    ap.add_argument("--max-it", type=int, default=1000)
    ap.add_argument("--time-limit", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--monitor-every", type=int, default=10)
    ap.add_argument("--param", action="append", default=[], help="problem parameter key=value")
    ap.add_argument("--report", required=True)
    a = ap.parse_args(argv)
    layers = tuple(int(w) for w in a.layers.split(",")) if a.layers else None
    params = {k: float(v) for k, v in (p.split("=", 1) for p in a.param)}
    rep = run(
        a.problem,
        a.method,
        seed=a.seed,
        layers=layers,
        max_it=a.max_it,
        time_limit=a.time_limit,
        lr=a.lr,
        monitor_every=a.monitor_every,
        params=params or None,
    )
    with open(a.report, "w") as fh:
        json.dump(rep, fh)
    print(
        f"{a.method} {a.problem}: iterations={rep['iterations']} loss={rep['loss']:.3e} rel_l2={rep['rel_l2']:.3e} "
        f"wall={rep['wall_s']:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
