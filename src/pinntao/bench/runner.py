"""Benchmark matrix: problem × method × seed, one subprocess and one JSON report per run.

    python -m pinntao.bench --problems poisson2d,heat1d --methods sngd,engd,lbfgs,adam,torch_lbfgs \\
        --seeds 0,1,2 --max-it 2000 --time-limit 300 --out bench-out

A method is a preset name (``-pinn_optimizer NAME``), a plain-PyTorch baseline (torch_adam,
torch_lbfgs) or ``label=<raw PETSc options>``. Finished runs are kept: re-running the same
command resumes where an interrupted bench stopped. Results: runs/*.json, results.csv,
tables.md, and figures (error vs wall time / iteration, solution fields of the best run).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EXIT_FAILED
from ..presets import PRESETS
from ..problems import PROBLEMS
from .baselines import METHODS as TORCH_METHODS
from .papers import paper_result

# methods of many cheap iterations: capped by --max-it-first-order
FIRST_ORDER = frozenset({"adam", "lbfgs", "isgd", "isgd_adam", "isgd_lbfgs", "adam_lbfgs"})


@dataclass(frozen=True)
class Method:
    label: str
    kind: str  # preset | torch | raw
    options: tuple[str, ...] = ()


class BenchInputError(ValueError):
    pass


def parse_method(spec: str) -> Method:
    if "=" in spec:
        label, raw = spec.split("=", 1)
        if not label:
            raise BenchInputError(f"method {spec!r}: empty label before '='")
        return Method(label, "raw", tuple(shlex.split(raw)))
    if spec in TORCH_METHODS:
        return Method(spec, "torch")
    if spec in PRESETS:
        return Method(spec, "preset", ("-pinn_optimizer", spec))
    raise BenchInputError(
        f"unknown method {spec!r}; allowed: {', '.join(sorted(PRESETS))}, {', '.join(TORCH_METHODS)}, "
        "or label=<options>"
    )


def run_path(out: Path, problem: str, method: Method, seed: int) -> Path:
    return out / "runs" / f"{problem}__{method.label}__s{seed}.json"


def command(problem: str, method: Method, seed: int, a: argparse.Namespace, report: Path) -> list[str]:
    if method.kind == "torch":
        cmd = [
            sys.executable,
            "-m",
            "pinntao.bench.baselines",
            "--problem",
            problem,
            "--method",
            method.label,
            "--seed",
            str(seed),
            "--max-it",
            str(a.max_it_first_order),
            "--time-limit",
            str(a.time_limit),
            "--report",
            str(report),
        ]
        if a.layers:
            cmd += ["--layers", a.layers]
        return cmd
    max_it = a.max_it_first_order if method.label in FIRST_ORDER else a.max_it
    cmd = [
        sys.executable,
        "-m",
        "pinntao",
        "-pinn_problem",
        problem,
        "-pinn_seed",
        str(seed),
        "-tao_max_it",
        str(max_it),
        "-pinn_time_limit",
        str(a.time_limit),
        "-pinn_report",
        str(report),
        "-pinn_checkpoint",
        str(report.with_suffix(".npy")),
        "-pinn_checkpoint_every",
        "1000000000",
        *method.options,
        *([] if getattr(a, "recommended", False) else ["-pinn_recommended", "0"]),
        *shlex.split(a.extra),
    ]
    if a.layers:
        cmd += ["-pinn_layers", a.layers]
    if a.np > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(a.np), *cmd]
    return cmd


def run_matrix(
    a: argparse.Namespace, problems: list[str], methods: list[Method], seeds: list[int], out: Path
) -> list[dict[str, Any]]:
    reports = []
    total = len(problems) * len(methods) * len(seeds)
    k = 0
    for p in problems:
        for m in methods:
            for s in seeds:
                k += 1
                path = run_path(out, p, m, s)
                if path.exists():
                    print(f"[{k}/{total}] {p} {m.label} seed={s}: done before, kept", flush=True)
                else:
                    t0 = time.perf_counter()
                    tmp = path.with_suffix(".json.partial")
                    proc = subprocess.run(
                        command(p, m, s, a, tmp),
                        capture_output=True,
                        text=True,
                        timeout=a.time_limit * 3 + 600 if a.time_limit else None,
                    )
                    # exit 3: the solve failed (DIVERGED_*); its report is a result like any other
                    if proc.returncode not in (0, EXIT_FAILED) or not tmp.exists():
                        print(
                            f"[{k}/{total}] {p} {m.label} seed={s}: FAILED (exit {proc.returncode})\n"
                            + proc.stderr[-2000:],
                            flush=True,
                        )
                        continue
                    npy = tmp.with_suffix(".npy")
                    if npy.exists():
                        os.replace(npy, path.with_suffix(".npy"))
                    os.replace(tmp, path)  # a run counts as done only once its report is complete
                    print(f"[{k}/{total}] {p} {m.label} seed={s}: {time.perf_counter() - t0:.1f}s", flush=True)
                rep = json.loads(path.read_text())
                rep["label"], rep["seed"] = m.label, s
                reports.append(rep)
    return reports


def time_to(history: list[list[float]], threshold: float) -> float | None:
    for _its, wall, _loss, err in history:
        if err <= threshold:
            return wall
    return None


def summarize(reports: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    import numpy as np

    rows = []
    keys = sorted({(r["problem"], r["label"]) for r in reports}, key=lambda t: (t[0], t[1]))
    for prob, label in keys:
        rs = [r for r in reports if r["problem"] == prob and r["label"] == label]
        errs = np.array([r["rel_l2"] for r in rs])
        tta = [time_to(r["history"], threshold) for r in rs]
        reached = [t for t in tta if t is not None]
        rank = [
            r["solver_stats"]["pc"]["ranks"][-1] for r in rs if r.get("solver_stats", {}).get("pc", {}).get("ranks")
        ]
        rows.append(
            {
                "problem": prob,
                "method": label,
                "seeds": len(rs),
                "failed": sorted({r["converged_reason"] for r in rs if r["converged_reason"].startswith("DIVERGED")
                                  and r["converged_reason"] not in ("DIVERGED_MAXITS", "DIVERGED_MAXFCN")}),
                "n_params": rs[0]["n_params"],
                "rel_l2_median": float(np.median(errs)),
                "rel_l2_min": float(errs.min()),
                "rel_l2_max": float(errs.max()),
                "max_err_median": float(np.median([r.get("max_err", np.nan) for r in rs])),
                "loss_median": float(np.median([r["loss"] for r in rs])),
                "iterations_median": int(np.median([r["iterations"] for r in rs])),
                "wall_s_median": float(np.median([r["wall_s"] for r in rs])),
                "s_per_it": float(np.median([r["wall_s"] / max(r["iterations"], 1) for r in rs])),
                "time_to_threshold_s": float(np.median(reached)) if len(reached) == len(rs) else None,
                "rank": int(np.median(rank)) if rank else None,
                "paper": paper_result(prob, label, rs[0]["n_params"]),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], threshold: float) -> str:
    out = []
    for prob in dict.fromkeys(r["problem"] for r in rows):
        rs = [r for r in rows if r["problem"] == prob]
        out += [
            f"### {prob} (P = {rs[0]['n_params']})",
            "",
            f"| method | seeds | rel. L2 median [min, max] | max err / max abs u | loss | its | wall s | s/it "
            f"| time to {threshold:g} s | kept rank | paper |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(rs, key=lambda r: r["rel_l2_median"]):
            tta = f"{r['time_to_threshold_s']:.1f}" if r["time_to_threshold_s"] is not None else "not reached"
            failed = f" ({', '.join(r['failed'])})" if r["failed"] else ""
            out.append(
                f"| {r['method']}{failed} | {r['seeds']} | {r['rel_l2_median']:.2e} "
                f"[{r['rel_l2_min']:.1e}, {r['rel_l2_max']:.1e}] | {r['max_err_median']:.2e} "
                f"| {r['loss_median']:.1e} | {r['iterations_median']} | {r['wall_s_median']:.1f} | {r['s_per_it']:.3f} "
                f"| {tta} | {r['rank'] if r['rank'] is not None else ''} | {r['paper'] or ''} |"
            )
        out.append("")
    return "\n".join(out)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m pinntao.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--problems", default="poisson2d")
    ap.add_argument(
        "--methods",
        default="sngd,engd,lbfgs,adam,torch_lbfgs,torch_adam",
        help="comma-separated; a raw method 'label=<options>' must be passed with --method instead",
    )
    ap.add_argument(
        "--method",
        action="append",
        default=[],
        help="one more method, e.g. 'sngd_r100=-pinn_optimizer sngd -tao_ng_pc_sketch_rank 100'",
    )
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--max-it", type=int, default=1000, help="iteration cap for second-order methods")
    ap.add_argument(
        "--max-it-first-order", type=int, default=20000, help="iteration cap for adam/lbfgs and torch baselines"
    )
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per run (0: none)")
    ap.add_argument("--threshold", type=float, default=1e-3, help="rel. L2 for the time-to-accuracy column")
    ap.add_argument("--layers", default="", help="override every problem's hidden layers")
    ap.add_argument("--extra", default="", help="options added to every pinntao run")
    ap.add_argument("--np", type=int, default=1, help="MPI ranks per pinntao run")
    ap.add_argument("--recommended", action="store_true", help="keep each problem's recommended set-up (default: "
                    "off, -pinn_recommended 0: every method on the same bare network, points and weights)")
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--overhead", action="store_true", help="also measure the bridge overhead per f+g evaluation")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--quick", action="store_true", help="CI-sized smoke run: poisson1d, 3 methods, 20 iterations")
    a = ap.parse_args(argv)
    if a.quick:
        a.problems, a.methods, a.seeds = "poisson1d", "lbfgs,sngd,torch_adam", "0"
        a.max_it, a.max_it_first_order, a.time_limit = 20, 20, 60.0
        a.overhead = True
    return a


def validate(a: argparse.Namespace) -> tuple[list[str], list[Method], list[int], Path]:
    problems = [p for p in a.problems.split(",") if p]
    for p in problems:
        if p not in PROBLEMS:
            raise BenchInputError(f"unknown problem {p!r}; allowed: {', '.join(sorted(PROBLEMS))}")
    methods = [parse_method(m) for m in a.methods.split(",") if m] + [parse_method(m) for m in a.method]
    if not problems or not methods:
        raise BenchInputError("need at least one problem and one method")
    try:
        seeds = [int(s) for s in a.seeds.split(",") if s]
    except ValueError:
        raise BenchInputError(f"--seeds: expected comma-separated integers, got {a.seeds!r}") from None
    for name in ("max_it", "max_it_first_order", "np"):
        if getattr(a, name) <= 0:
            raise BenchInputError(f"--{name.replace('_', '-')} must be > 0, got {getattr(a, name)}")
    if a.time_limit < 0 or a.threshold <= 0:
        raise BenchInputError("--time-limit must be >= 0 and --threshold > 0")
    out = Path(a.out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BenchInputError(f"--out {a.out!r} is not writable: {exc}") from None
    return problems, methods, seeds, out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        problems, methods, seeds, out = validate(a)
    except BenchInputError as exc:
        print(f"pinntao.bench: error: {exc}", file=sys.stderr)
        return 2
    reports = run_matrix(a, problems, methods, seeds, out)
    if not reports:
        print("pinntao.bench: error: no run finished", file=sys.stderr)
        return 1
    rows = summarize(reports, a.threshold)
    write_csv(rows, out / "results.csv")
    text = markdown(rows, a.threshold)
    if a.overhead:
        from .overhead import measure, overhead_markdown

        text += "\n" + overhead_markdown([measure(p, layers=a.layers) for p in problems])
    (out / "tables.md").write_text(text)
    print(text)
    if not a.no_figures:
        from .figures import error_figures, field_figure

        for p in problems:
            error_figures([r for r in reports if r["problem"] == p], out / f"fig_{p}_error.png", a.threshold)
            field_figure([r for r in reports if r["problem"] == p], out, out / f"fig_{p}_fields.png")
    return 0
