"""The public Woodbury-ENGD code's error measure on a θ that pinntao saved, beside pinntao's own.

That code (rla_pinns, `pinn_utils.l2_error`) prints "L2 Error" = sqrt(mean((u_θ − u*)²)) over
10·N_Ω points drawn uniformly in Ω: an absolute RMS error, not relative. On poisson2d
(u* = sin(πx) sin(πy) on [0, 1]², RMS(u*) = 1/2) it is half the relative L² error that pinntao
reports, so its figures are compared here in its own measure.

    python -m pinntao -pinn_problem poisson2d -pinn_layers 64 -pinn_optimizer engd_kernel \
        -tao_max_it 901 -tao_ng_stall_its 0 -pinn_save th.npy
    python scripts/public_l2.py th.npy --layers 64
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pinntao import build_mlp, get_problem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("theta", help="θ saved by -pinn_save NAME.npy")
    ap.add_argument("--problem", default="poisson2d")
    ap.add_argument("--layers", default="20,20,20,20", help="hidden widths, as -pinn_layers")
    ap.add_argument("--points", type=int, default=9000, help="uniform points in Ω (the public code: 10·N_Ω)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    problem = get_problem(a.problem)
    model = build_mlp(problem.dim, [int(w) for w in a.layers.split(",")], "tanh", torch.float64, "cpu")
    theta = torch.as_tensor(np.load(a.theta), dtype=torch.float64)
    if theta.numel() != model.n_params:
        raise SystemExit(f"public_l2: {a.theta} holds {theta.numel()} parameters; --layers {a.layers} has "
                         f"{model.n_params}")
    lo, hi = (torch.as_tensor(v, dtype=torch.float64) for v in (problem.domain.lo, problem.domain.hi))
    x = lo + (hi - lo) * torch.rand(a.points, problem.dim, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(a.seed))
    with torch.no_grad():
        u, ref = model.u(theta, x), problem.exact(x)
    rms_err, rms_ref = float(((u - ref) ** 2).mean().sqrt()), float((ref**2).mean().sqrt())
    print(f"{a.theta}: P = {model.n_params}, {a.points} uniform points: absolute RMS error {rms_err:.3e} "
          f"(the public code's 'L2 Error'), RMS(u*) {rms_ref:.4f}, relative {rms_err / rms_ref:.3e}")


if __name__ == "__main__":
    main()
