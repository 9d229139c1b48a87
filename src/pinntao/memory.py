"""An up-front, coarse estimate of a run's memory per rank, checked against what the node has,
so an impossible network or point count is refused in a second instead of failing in torch."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

_GIB = 2.0**30


def mlp_params(dim: int, layers: Sequence[int]) -> int:
    """Parameter count of the MLP dim → layers → 1 (weights and biases)."""
    widths = [dim, *layers, 1]
    return sum((a + 1) * b for a, b in itertools.pairwise(widths))


def estimate(
    dim: int,
    layers: Sequence[int],
    n_points: int,
    ranks: int,
    *,
    gram_explicit_mb: float = 0.0,
    sketch_rank: int = 0,
    dense_gram: bool = False,
    kernel: bool = False,
) -> dict[str, float]:
    """Bytes per rank by component. Deliberately rough (factors cover torch's saved tensors):
    θ-sized work vectors, the global point set, forward-jet activations for this rank's points,
    an explicit Jacobian, a sketch of ``sketch_rank`` columns, a dense Gram matrix (ENGD), the
    kernel solve of pinntao.solvers.Spring (all N rows of J and the N × N kernel and its factor
    on every rank)."""
    P = mlp_params(dim, layers)
    n_local = -(-n_points // max(1, ranks))
    parts = {
        "parameters": 40.0 * P * 8,
        "points": 2.0 * n_points * dim * 8,
        "activations": 6.0 * n_local * (1 + 2 * dim) * sum(layers) * 8,
    }
    if gram_explicit_mb > 0:
        parts["jacobian"] = min(n_local * P * 8.0, gram_explicit_mb * 2**20) * 2
    if sketch_rank > 0:
        parts["sketch"] = 4.0 * P * (sketch_rank + 10) * 8
    if dense_gram:
        k = min(P, n_points)
        parts["dense_gram"] = 3.0 * k * k * 8 + n_points * P * 8.0
    if kernel:  # (the nystrom kernel solve keeps J only; the estimate covers the Cholesky one)
        parts["kernel"] = n_points * P * 8.0 + 2.0 * n_points * n_points * 8
    return parts


def available_bytes(ranks_on_node: int = 1) -> float:
    """Memory this rank may use: MemAvailable (and the cgroup limit, if lower) ÷ ranks on the node."""
    avail = float("inf")
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            raw = fh.read().strip()
        if raw != "max":
            used = 0.0
            if os.path.exists("/sys/fs/cgroup/memory.current"):
                with open("/sys/fs/cgroup/memory.current") as fh:
                    used = float(fh.read().strip())
            avail = min(avail, float(raw) - used)
    except (OSError, ValueError):
        pass
    return avail / max(1, ranks_on_node)


ADVICE = {
    "parameters": "smaller -pinn_layers",
    "points": "fewer points (-pinn_n_interior, -pinn_n_boundary, -pinn_n_initial)",
    "activations": "fewer points (-pinn_n_interior ...), narrower -pinn_layers, or more ranks",
    "jacobian": "-pinn_gram matfree or a smaller -pinn_gram_memory_mb",
    "sketch": "a smaller -tao_ng_pc_sketch_rank",
    "dense_gram": "a sketched method (-pinn_optimizer sngd) instead of ENGD",
    "kernel": "fewer points, -tao_spring_solve nystrom (no N × N kernel), or a sketched method (-pinn_optimizer sngd)",
}


def refusal(parts: dict[str, float], available: float) -> str | None:
    """The error message if the estimate exceeds ``available`` bytes, else None."""
    total = sum(parts.values())
    if total <= available:
        return None
    worst = max(parts, key=parts.__getitem__)
    detail = ", ".join(f"{k} {v / _GIB:.3g}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    return (f"this run needs about {total / _GIB:.3g} GiB per rank ({detail}) but only "
            f"{available / _GIB:.3g} GiB is available; use {ADVICE[worst]}")
