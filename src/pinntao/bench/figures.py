"""Matplotlib figures for the bench: error vs wall time / iteration; fields of the best run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_figures(reports: list[dict[str, Any]], path: Path, threshold: float | None) -> None:
    """rel. L2 against wall time and against iteration, one colour per method; a dotted line at
    ``threshold`` unless it is None."""
    if not reports:
        return
    plt = _plt()
    fig, (ax_t, ax_i) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    labels = sorted({r["label"] for r in reports})
    colors = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels)}
    for r in reports:
        h = np.asarray(r["history"], dtype=float)
        if h.size == 0:
            continue
        kw = {
            "color": colors[r["label"]],
            "lw": 1.2,
            "label": r["label"] if r["seed"] == min(q["seed"] for q in reports if q["label"] == r["label"]) else None,
        }
        ax_t.loglog(np.maximum(h[:, 1], 1e-3), h[:, 3], **kw)
        ax_i.semilogy(h[:, 0], h[:, 3], **kw)
    for ax, xl in ((ax_t, "wall time [s]"), (ax_i, "iteration")):
        if threshold is not None:
            ax.axhline(threshold, color="gray", ls=":", lw=0.8)
        ax.set_xlabel(xl)
        ax.set_ylabel("relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
    ax_i.legend(fontsize=8)
    fig.suptitle(f"{reports[0]['problem']}: error vs time and iteration")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _theta(rep: dict[str, Any], out: Path) -> np.ndarray | None:
    if "theta" in rep:
        return np.asarray(rep["theta"])
    npy = out / "runs" / f"{rep['problem']}__{rep['label']}__s{rep['seed']}.npy"
    return np.load(npy) if npy.exists() else None


def field_figure(reports: list[dict[str, Any]], out: Path, path: Path) -> None:
    """Network solution, exact solution and error of the most accurate run."""
    import torch

    from ..models import build_model
    from ..problems import get_problem

    ranked = sorted(reports, key=lambda r: r["rel_l2"])
    best = next(((r, th) for r in ranked if (th := _theta(r, out)) is not None), None)
    if best is None:
        return
    rep, theta = best
    prob = get_problem(rep["problem"])
    model = build_model(rep.get("arch", "mlp"), prob.dim, rep["layers"], rep.get("activation", "tanh"),
                        torch.float64, "cpu", out_dim=prob.fields, options=rep.get("embedding"),
                        seed=rep.get("seed", 0), box=(prob.domain.lo, prob.domain.hi))
    th = torch.as_tensor(theta, dtype=torch.float64)
    x = torch.as_tensor(prob.eval_points(), dtype=torch.float64)
    with torch.no_grad():  # a system shows the compared quantity (e.g. the velocity magnitude)
        u, ue = prob.compared(model.u(th, x)).numpy(), prob.compared(prob.exact(x)).numpy()
    plt = _plt()
    title = f"{rep['problem']} — {rep['label']} (seed {rep['seed']}), rel. L2 {rep['rel_l2']:.2e}"
    if prob.dim == 1:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
        xs = x[:, 0].numpy()
        a.plot(xs, ue, "k-", lw=2, label="exact")
        a.plot(xs, u, "r--", lw=1.2, label="PINN")
        a.legend()
        b.semilogy(xs, np.abs(u - ue) + 1e-300)
        b.set_title("|error|")
    else:
        n = round(len(x) ** 0.5)
        ext = [prob.domain.lo[1], prob.domain.hi[1], prob.domain.lo[0], prob.domain.hi[0]]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
        for ax, data, name in zip(axes, (u, ue, np.abs(u - ue)), ("PINN", "exact", "|error|"), strict=False):
            if n * n == len(x):
                im = ax.imshow(data.reshape(n, n), origin="lower", extent=ext, aspect="auto")
            else:  # a non-box domain: its evaluation points are the grid nodes inside it
                im = ax.scatter(x[:, 1], x[:, 0], c=data, s=3, marker="s")
            ax.set_title(name)
            ax.set_xlabel("x₂")
            ax.set_ylabel("x₁")
            fig.colorbar(im, ax=ax)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
