"""The papers' reported relative L2 errors, shown beside ours (../shared/methods.md).

Sketched-NG paper (A100, fp64, mean of 5 seeds): heat1d A1 and poisson2d; nonlinear and
transport from its Section 5; Adam / BFGS rows are the paper's baselines.
"""

from __future__ import annotations

_PAPER: dict[tuple[str, str], str] = {
    ("poisson2d", "adam"): "4.67e-4 (Adam)",
    ("poisson2d", "lbfgs"): "8.0e-6 (BFGS)",
    ("poisson2d", "engd"): "5.16e-7 (8.85 min)",
    ("poisson2d", "sngd"): "9.46e-9 (1.52 min)",
    ("poisson2d", "sngd1"): "9.46e-9 (SNGD)",
    ("heat1d", "adam"): "1.39e-3 (Adam)",
    ("heat1d", "lbfgs"): "1.99e-4 (BFGS)",
    ("heat1d", "engd"): "2.78e-6",
    ("heat1d", "sngd1"): "3.62e-7",
    ("heat1d", "sngd"): "1.49e-7",
    ("nonlinear1d_neumann", "sngd"): "3.66e-8",
    ("nonlinear1d_neumann", "engd"): "7.39e-8",
    ("nonlinear1d_neumann", "lbfgs"): "1.2e-7 (BFGS)",
    ("transport1d", "sngd"): "2.7e-4 – 8.1e-4",
    ("transport1d", "lbfgs"): "2.2e-3 – 7.7e-2 (BFGS)",
    ("transport1d", "adam"): "≈ 1.3 (Adam)",
}
_ALIASES = {"torch_adam": "adam", "torch_lbfgs": "lbfgs", "sngd_paper": "sngd", "engd_kernel": "engd"}


def paper_result(problem: str, method: str) -> str | None:
    return _PAPER.get((problem, _ALIASES.get(method, method)))
