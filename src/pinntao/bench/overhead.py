"""Bridge overhead: one objective+gradient through the PETSc callback vs plain torch."""

from __future__ import annotations

import time
from typing import Any

import torch


def _best_ms(f, reps: int) -> float:
    f()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def measure(problem_name: str, layers: str = "", reps: int = 20) -> dict[str, Any]:
    """Best-of-``reps`` wall time (ms) of L, ∇L: pinntao's TAO callback (θ Vec → torch →
    Allreduce → gradient Vec) and plain torch on the same network and points, 1 rank."""
    import petsc4py

    petsc4py.init()
    from ..comm import available_cores
    from ..models import build_mlp
    from ..objective import PinnObjective
    from ..problems import get_problem

    torch.set_num_threads(available_cores())
    prob = get_problem(problem_name)
    hidden = tuple(int(w) for w in layers.split(",")) if layers else prob.default_layers
    model = build_mlp(prob.dim, hidden, "tanh", torch.float64, "cpu")
    obj = PinnObjective(prob, model, seed=0)
    x, g = obj.initial_vec(), obj.create_vec()
    theta = model.initial_theta(0)
    t_pinn = _best_ms(lambda: obj.objective_gradient(None, x, g), reps)
    t_torch = _best_ms(lambda: obj.residual.loss_grad(theta), reps)
    return {
        "problem": problem_name,
        "n_params": obj.n_params,
        "n_points": obj.n_points,
        "pinntao_ms": t_pinn,
        "torch_ms": t_torch,
        "overhead": t_pinn / t_torch,
    }


def overhead_markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "### Bridge overhead per objective + gradient evaluation (1 rank, best of 20)",
        "",
        "| problem | P | N | pinntao (TAO callback) ms | plain torch ms | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['problem']} | {r['n_params']} | {r['n_points']} | {r['pinntao_ms']:.2f} | "
            f"{r['torch_ms']:.2f} | {r['overhead']:.2f} |"
        )
    return "\n".join(out) + "\n"
