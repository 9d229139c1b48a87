"""Assemble issue 10's benchmark groups (the ``i10_*`` groups of scripts/run_benchmarks.sh) into
their own GENERATED block of docs/benchmarks.md; the text around the block is kept.

    python scripts/collect_i10.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collect_benchmarks import DOC, FIG, group_sections, replace_block

BEGIN, END = "<!-- GENERATED i10: begin -->", "<!-- GENERATED i10: end -->"
GROUPS = [
    ("i10_helmholtz", "Helmholtz a1 = 1, a2 = 4 (k = 1), 3×50 tanh, 2000 + 400 points, Adam lr 1e-3 on batches of "
                      "256, 3000 iterations per run"),
    ("i10_helmholtz_long", "Helmholtz again, 10,000 iterations per run (the paper: 40,000)"),
    ("i10_kg", "Klein-Gordon, 3×50 tanh, 2000 + 200 + 2 × 100 points, Adam lr 1e-3 on batches of 256, "
               "3000 iterations per run"),
    ("i10_kg_long", "Klein-Gordon again, 10,000 iterations per run"),
    ("i10_burgers", "Burgers ν = 0.01/π, 5×32 tanh (P = 4,353), 2000 + 200 + 200 points, full batch, "
                    "1000 iterations per run; SAV family with C = 1e4, λ = 4"),
    ("i10_rad_sp", "Adaptive sampling: singular perturbation ε = 0.01, 3×20 tanh, 100 + 2 points, 3000 iterations"),
    ("i10_rad_burgers", "Adaptive sampling: Burgers, 5×32 tanh, 500 + 200 + 200 points, 2000 iterations"),
]


def main() -> None:
    FIG.mkdir(exist_ok=True)
    parts = ["", "Each run: 1 MPI rank, 1 torch thread, seed 0; the two cores were shared with other work, so",
             "wall times are only comparable within a table. Equal iteration counts, not equal time.", "",
             *group_sections(GROUPS)]
    DOC.write_text(replace_block(DOC.read_text(), BEGIN, END, parts))


if __name__ == "__main__":
    main()
