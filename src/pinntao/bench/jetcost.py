"""Cost of the forward jet by derivative order, as multiples of one forward pass, and the
per-iteration cost of SNGD on a mixed-derivative problem against a Laplacian-only one.

    python -m pinntao.bench.jetcost                 # jet table (markdown)
    python -m pinntao.bench.jetcost --sngd 60       # + SNGD s/iteration, anisotropic_poisson2d vs poisson2d

Timings are the minimum over repetitions (the machine is shared: the minimum is the least
disturbed run); each SNGD comparison alternates the two problems so both see the same load.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable


def _best(calls: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Minimum time of each call over ``reps`` rounds; the calls alternate within a round, so a
    burst of load from other processes hits all of them alike."""
    for f in calls.values():
        f()
    out = {k: float("inf") for k in calls}
    for _ in range(reps):
        for k, f in calls.items():
            t = time.perf_counter()
            f()
            out[k] = min(out[k], time.perf_counter() - t)
    return out


def jet_table(reps: int = 15) -> list[dict]:
    """Forward pass, gradient (order 1), Laplacian (order 2, pure second derivatives) and the full
    Hessian (order 2, mixed='all') for tanh MLPs with P ≈ 1,300–5,100 and 1,000–4,000 points."""
    import torch

    from ..models import build_model, mixed_pairs

    rows = []
    for dim, width, depth, n, out in [(2, 20, 4, 1000, 1), (2, 40, 4, 2000, 1), (3, 40, 4, 2000, 1),
                                      (2, 40, 3, 4000, 3)]:
        m = build_model("mlp", dim, (width,) * depth, "tanh", torch.float64, "cpu", out_dim=out)
        th = m.initial_theta(0)
        x = torch.rand(n, dim, dtype=torch.float64)
        pairs = mixed_pairs("all", dim)
        calls = {"forward": (m.u, (th, x)), "gradient": (m.jet, (th, x, 1)), "laplacian": (m.jet, (th, x, 2)),
                 "hessian": (m.jet, (th, x, 2, pairs))}
        with torch.no_grad():
            t = _best({k: (lambda f=f, a=a: f(*a)) for k, (f, a) in calls.items()}, reps)
        t0 = t.pop("forward")
        rows.append({"d": dim, "layers": f"{depth}×{width}", "fields": out, "P": m.n_params, "points": n,
                     "forward_ms": 1e3 * t0, **{k: v / t0 for k, v in t.items()}})
    return rows


def sngd_iteration(problem: str, its: int) -> float:
    """Median seconds per SNGD iteration (1 rank, the problem's defaults) from the history."""
    import petsc4py

    petsc4py.init([])
    import torch
    from petsc4py import PETSc

    from ..models import build_model
    from ..objective import PinnObjective
    from ..problems import get_problem
    from ..train import Trainer

    prob = get_problem(problem)
    model = build_model("mlp", prob.dim, prob.default_layers, "tanh", torch.float64, "cpu", out_dim=prob.fields)
    obj = PinnObjective(prob, model, comm=PETSc.COMM_SELF, seed=0)
    opts = PETSc.Options()
    opts.setValue("tao_max_it", str(its))
    stamps: list[float] = []
    trainer = Trainer(obj, optimizer="sngd", monitor_every=1000000)
    trainer.tao.setMonitor(lambda tao: stamps.append(time.perf_counter()))
    trainer.solve()
    opts.delValue("tao_max_it")
    steps = [b - a for a, b in itertools.pairwise(stamps[1:])]  # skip set-up and the first step
    return statistics.median(steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--sngd", type=int, default=0, help="SNGD iterations per comparison run (0: skip)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print("| d | layers | fields | P | points | forward (ms) | gradient | Laplacian | full Hessian |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in jet_table(args.reps):
        print(f"| {r['d']} | {r['layers']} | {r['fields']} | {r['P']:,} | {r['points']:,} | {r['forward_ms']:.2f} | "
              f"{r['gradient']:.1f}× | {r['laplacian']:.1f}× | {r['hessian']:.1f}× |")
    if args.sngd:
        best = {"poisson2d": float("inf"), "anisotropic_poisson2d": float("inf")}
        for _ in range(args.rounds):
            for name in best:
                best[name] = min(best[name], sngd_iteration(name, args.sngd))
        ratio = best["anisotropic_poisson2d"] / best["poisson2d"]
        print(f"\nSNGD s/iteration (median over {args.sngd} its, best of {args.rounds} alternating runs): "
              f"poisson2d {best['poisson2d']:.3f}, anisotropic_poisson2d {best['anisotropic_poisson2d']:.3f}, "
              f"ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
