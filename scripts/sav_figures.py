"""Energy and error per iteration of the SAV-family runs of a bench group (issue 10's Burgers target).

    python scripts/sav_figures.py bench-out/i10_burgers    # writes fig_sav_energy.png there

Left: the modified energy r² (report key ``energy``) of the SAV runs; right: rel. L2 per iteration of
every run (the report's history), Adam included.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(group: Path) -> None:
    runs = sorted((group / "runs").glob("*.json"))
    fig, (ax_e, ax_r) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in runs:
        rep = json.loads(path.read_text())
        label = path.stem.split("__")[1]
        style = "-" if "sav" in label else "--"
        if rep.get("energy"):
            ax_e.semilogy(range(len(rep["energy"])), rep["energy"], style, label=label)
        hist = [h for h in rep.get("history", []) if h[3] == h[3]]  # drop NaN rows
        if hist:
            ax_r.semilogy([h[0] for h in hist], [h[3] for h in hist], style, label=label)
    ax_e.set(xlabel="iteration", ylabel="modified energy r²", title="SAV family: r² per iteration")
    ax_r.set(xlabel="iteration", ylabel="rel. L2 error", title="error per iteration")
    for ax in (ax_e, ax_r):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(group / "fig_sav_energy.png", dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
