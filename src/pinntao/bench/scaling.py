"""Per-iteration cost of SNGD and ENGD as the network grows, and the cost of one sketch
against objective+gradient evaluations.

    python -m pinntao.bench.scaling --out bench-out/scaling

poisson2d (900 + 120 points), three hidden layers of width w (P ≈ 300 ... 100,000). Each
method runs a few iterations through ``python -m pinntao``; ENGD is skipped where its factor
would not fit the time budget.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WIDTHS = {300: 9, 1300: 20, 5300: 41, 20000: 81, 100000: 182}


def n_params(w: int, depth: int = 3, d: int = 2) -> int:
    return d * w + w + (depth - 1) * (w * w + w) + w + 1


def iteration_time(method: str, w: int, its: int, out: Path, timeout: float) -> dict[str, Any] | None:
    rep = out / f"{method}_w{w}.json"
    if not rep.exists():
        cmd = [sys.executable, "-m", "pinntao", "-pinn_problem", "poisson2d", "-pinn_layers", f"{w},{w},{w}",
               "-pinn_optimizer", method, "-tao_max_it", str(its), "-pinn_report", str(rep),
               "-pinn_gram_memory_mb", "4096"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return None
    r = json.loads(rep.read_text())
    st = r.get("solver_stats", {})
    return {"s_per_it": r["wall_s"] / max(r["iterations"], 1), "rank": (st.get("pc", {}).get("ranks") or [None])[-1],
            "P": r["n_params"], "its": r["iterations"]}


def sketch_ratio(w: int, reps: int = 3) -> dict[str, float]:
    """Wall time of one two-pass rank-k sketch (J built, A = Jᵀ(JM), QR, (JQ)ᵀ(JQ), eig)
    divided by k objective+gradient evaluations, at θ₀."""
    import petsc4py

    petsc4py.init()
    import torch

    from ..comm import available_cores
    from ..models import build_mlp
    from ..objective import PinnObjective
    from ..problems import get_problem
    from ..sketch import gaussian, randomized_eig

    torch.set_num_threads(available_cores())
    prob = get_problem("poisson2d")
    obj = PinnObjective(prob, build_mlp(2, (w, w, w), "tanh", torch.float64, "cpu"), gram_memory_mb=4096)
    theta = obj.model.initial_theta(0)
    obj.residual.loss_grad(theta)
    t0 = time.perf_counter()
    for _ in range(reps):
        obj.gradient_full(theta)
    t_fg = (time.perf_counter() - t0) / reps
    k = min(200, obj.n_params)
    t0 = time.perf_counter()
    for i in range(reps):
        obj._jac = None  # a new linearisation point each time: J is rebuilt
        M = gaussian(obj.n_params, k, i, theta)
        randomized_eig(lambda m: obj.gram(theta, m), M, passes=2, form=lambda q: obj.gram_form(theta, q))
    t_sk = (time.perf_counter() - t0) / reps
    return {"P": obj.n_params, "k": k, "sketch_s": t_sk, "fg_s": t_fg, "ratio": t_sk / (k * t_fg)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pinntao.bench.scaling", description=__doc__)
    ap.add_argument("--out", default="bench-out/scaling")
    ap.add_argument("--its", type=int, default=5)
    ap.add_argument("--max-p", type=int, default=100000)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per (method, size) run")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| P (widths) | SNGD s/it | kept rank | ENGD s/it | ENGD / SNGD | sketch (k = 200) / (k f+g) |",
             "|---|---|---|---|---|---|"]
    for target, w in WIDTHS.items():
        if target > a.max_p:
            continue
        s = iteration_time("sngd", w, a.its, out, a.timeout)
        e = iteration_time("engd", w, a.its, out, a.timeout) if target <= 20000 else None
        ratio = sketch_ratio(w)
        fmt = lambda r: f"{r['s_per_it']:.3f}" if r else "skipped (time/memory)"  # noqa: E731
        quot = f"{e['s_per_it'] / s['s_per_it']:.1f}×" if (s and e) else ""
        lines.append(f"| {n_params(w)} (3×{w}) | {fmt(s)} | {s['rank'] if s else ''} | {fmt(e)} | {quot} "
                     f"| {ratio['ratio']:.2f} ({ratio['sketch_s']:.3f} s vs {ratio['fg_s'] * 1e3:.1f} ms) |")
        print(lines[-1], flush=True)
    (out / "scaling.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
