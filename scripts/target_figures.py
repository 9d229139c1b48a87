"""Error-vs-time figures of CLI target runs (docs/hard_problems.md), one per problem, from their
``-pinn_report`` files: rel. L² against wall time and iteration, the run's label as legend.

    python scripts/target_figures.py docs/figures/targets21 h.json:recommended h_old.json:isgd_lbfgs ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pinntao.bench.figures import error_figures


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    prefix, by_problem = argv[0], {}
    for item in argv[1:]:
        path, _, label = item.partition(":")
        rep = json.loads(Path(path).read_text())
        rep.update(label=label or Path(path).stem, seed=rep.get("seed", 0))
        by_problem.setdefault(rep["problem"], []).append(rep)
    for problem, reports in sorted(by_problem.items()):
        out = Path(f"{prefix}_{problem}_error.png")
        error_figures(reports, out, threshold=None)
        print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
