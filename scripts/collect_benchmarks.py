"""Assemble the measured tables and figures of bench-out/ into docs/benchmarks.md.

    python scripts/collect_benchmarks.py        # after scripts/run_benchmarks.sh

Everything between the GENERATED markers in docs/benchmarks.md is replaced; the text around it
(the discussion of the numbers) is kept. ``python scripts/collect_benchmarks.py isgd`` refreshes
only the implicit-steps block (the ``isgd_*`` groups of scripts/run_benchmarks.sh), ``… ng`` only
the natural-gradient block (the ``ng_*`` groups).
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT, DOC, FIG = ROOT / "bench-out", ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "figures"
BEGIN, END = "<!-- GENERATED: begin -->", "<!-- GENERATED: end -->"
ISGD_BEGIN, ISGD_END = "<!-- GENERATED isgd: begin -->", "<!-- GENERATED isgd: end -->"
NG_BEGIN, NG_END = "<!-- GENERATED ng: begin -->", "<!-- GENERATED ng: end -->"
NG_GROUPS = [
    ("ng_poisson2d", "Poisson 2D, 4×20 tanh (P = 1,341), 900 + 120 points, 90 s per run"),
    ("ng_heat1d", "Heat equation A1, 1×65 tanh (P = 261), 120 s per run"),
    ("ng_heat1d_a2", "Heat equation A2, 3×50 tanh (P = 5,301), 120 s per run"),
    ("ng_targets", "Nonlinear Neumann, transport (c = 30), multiscale Poisson 1D, 90 s per run"),
    ("ng_zoo", "The zoo at equal wall time: default sngd against engd, 30 s per run"),
    ("ng_ranks_np1_t1", "Reproducibility: poisson2d, 8,000 + 800 points, 40 sngd iterations, 1 rank × 1 thread"),
    ("ng_ranks_np2_t1", "Reproducibility: the same on 2 ranks × 1 thread"),
    ("ng_ranks_np1_t2", "Reproducibility: the same on 1 rank × 2 threads"),
]
GROUPS = [
    ("poisson2d", "Poisson 2D, 4×20 tanh (P = 1,341), 900 + 120 points, 120 s per run"),
    ("heat1d", "Heat equation, A1 network 1×65 (P = 261), 900 + 100 + 100 points, 90 s per run"),
    ("heat1d_a2", "Heat equation, A2 network 3×50 (P = 5,301), 120 s per run"),
    ("targets", "Nonlinear Neumann and transport (c = 30), 90 s per run"),
    ("zoo", "Every other problem, 20 s per run (smoke-level budgets: rankings, not converged errors)"),
    ("ranks_np1", "Rank scaling: poisson2d SNGD, 100 iterations, 1 MPI rank × 2 torch threads"),
    ("ranks_np2", "Rank scaling: poisson2d SNGD, 100 iterations, 2 MPI ranks × 1 torch thread"),
]
ISGD_GROUPS = [
    ("isgd_sp_eps2", "ISGD paper 4.1: singular perturbation ε = 2, 4×50 tanh (P = 7,801), 400 + 2 points, "
                     "60 s per run"),
    ("isgd_sp_eps0.01", "ISGD paper 4.1: singular perturbation ε = 0.01, 4×50 tanh, 400 + 2 points, 60 s per run"),
    ("isgd_poisson2d", "ISGD paper 4.2: multiscale Poisson 2D, 4×30 tanh, 2000 + 400 points, 120 s per run"),
    ("isgd_helmholtz", "ISGD paper 4.3: Helmholtz k = 4, u = sin(πx) sin(4πy) on [−1, 1]², 3×50 tanh, "
                       "2000 + 400 points, 120 s per run"),
    ("isgd_long_helmholtz", "Helmholtz k = 4 again, the best schedule with 600 s"),
    ("isgd_long_poisson2d", "Multiscale Poisson 2D again, the best schedule with 600 s"),
    ("isgd_1d_small", "Multiscale Poisson 1D with the zoo's 3×50 tanh (P = 5,251), 1000 + 2 points, 120 s per run"),
    ("isgd_1d", "ISGD paper Fig. 1: multiscale Poisson 1D, the paper's 5×200 tanh (P = 161,401), 1000 + 2 points, "
                "600 s per run"),
]


def group_sections(groups: list[tuple[str, str]]) -> list[str]:
    """Each group's tables and figures (copied into docs/figures), for the groups that have output."""
    parts: list[str] = []
    for group, title in groups:
        tables = OUT / group / "tables.md"
        if not tables.exists():
            continue
        parts += [f"## {title}", "", tables.read_text().replace("### ", "#### "), ""]
        for fig in sorted((OUT / group).glob("fig_*.png")):
            name = f"{group}_{fig.name}"
            shutil.copy(fig, FIG / name)
            parts.append(f"![{name}](figures/{name})")
        parts.append("")
    return parts


def replace_block(text: str, begin: str, end: str, parts: list[str]) -> str:
    """Replace what lies between the markers (appended at the end when they are missing)."""
    if begin not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return head + "\n".join([begin, *parts, end]) + tail


def main_isgd() -> None:
    """The implicit-steps groups only (their own block, so the other groups' tables stay)."""
    FIG.mkdir(exist_ok=True)
    parts = ["", "Each run: 1 MPI rank, 1 torch thread (`-pinn_threads 1`); the other core was busy with other",
             "work at times, so compare rows within a table, not across days.", "", *group_sections(ISGD_GROUPS)]
    DOC.write_text(replace_block(DOC.read_text(), ISGD_BEGIN, ISGD_END, parts))


def main_ng() -> None:
    """The natural-gradient groups only (``python scripts/collect_benchmarks.py ng``)."""
    FIG.mkdir(exist_ok=True)
    parts = ["", "Each run: 1 MPI rank (unless stated), 1 torch thread; the two cores were shared with other",
             "work, so compare rows within a table, not across days.", "", *group_sections(NG_GROUPS)]
    DOC.write_text(replace_block(DOC.read_text(), NG_BEGIN, NG_END, parts))


def main() -> None:
    import torch
    from petsc4py import PETSc

    FIG.mkdir(exist_ok=True)
    parts = ["",
             f"Machine: {platform.processor() or platform.machine()}, 2 cores, CPU only; torch {torch.__version__}, "
             f"PETSc {'.'.join(map(str, PETSc.Sys.getVersion()))}; one seed (0) per run; 1 MPI rank.", "",
             *group_sections(GROUPS)]
    scaling = OUT / "scaling" / "scaling.md"
    if scaling.exists():
        parts += ["## Iteration cost as P grows (poisson2d, 3 hidden layers, 5 iterations each, 1 rank)", "",
                  "The last column: one two-pass sketch with k = 200 columns, in units of k objective + gradient",
                  "evaluations (the issue's budget is ≤ 1).", "",
                  scaling.read_text(), ""]
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    DOC.write_text(replace_block(text, BEGIN, END, parts))


if __name__ == "__main__":
    import sys

    {"isgd": main_isgd, "ng": main_ng}.get(sys.argv[1] if sys.argv[1:] else "", main)()
