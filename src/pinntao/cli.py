"""``python -m pinntao``: train one problem chosen by PETSc options, print a summary,
optionally write a JSON report. ``-help`` lists every pinntao option with its default."""

from __future__ import annotations

import json
import sys
from typing import Any

from .errors import PinnInputError
from .options import Option, OptionSet, nonnegative, positive

DEVICES = ("auto", "cpu", "cuda")


def _problem_names() -> list[str]:
    from .problems import PROBLEMS

    return sorted(PROBLEMS)


def _activation_names() -> list[str]:
    from .models import ACTIVATIONS

    return sorted(ACTIVATIONS)


def cli_options() -> OptionSet:
    from .objective import GRAM_MODES, HESSIAN_TYPES
    from .presets import PRESETS
    from .problems.base import SAMPLINGS

    return OptionSet(
        "pinntao",
        "pinn_",
        [
            Option("problem", "str", "poisson2d", "PDE problem to train", choices=_problem_names()),
            Option("layers", "ints", None, "hidden layer widths, e.g. 20,20,20,20 (default: the problem's)"),
            Option("activation", "str", "tanh", "activation function", choices=_activation_names()),
            Option(
                "n_interior",
                "int",
                None,
                "interior collocation points (default: the problem's)",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "n_boundary",
                "int",
                None,
                "boundary collocation points (default: the problem's)",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "n_initial",
                "int",
                None,
                "initial-time points, time-dependent problems (default: the problem's)",
                check=positive,
                check_text="> 0",
            ),
            Option("sampling", "str", "uniform", "how collocation points are drawn", choices=list(SAMPLINGS)),
            Option("seed", "int", 0, "seed of the collocation points and of θ₀"),
            Option("device", "str", "auto", "torch device (auto: cuda when available)", choices=list(DEVICES)),
            Option(
                "threads",
                "int",
                0,
                "torch threads per rank (0: cores ÷ ranks on the node)",
                check=nonnegative,
                check_text=">= 0",
            ),
            Option("hessian", "str", "gauss_newton", "operator TAO's Newton solvers use", choices=list(HESSIAN_TYPES)),
            Option(
                "gram",
                "str",
                "auto",
                "Gram products from an explicit J or matrix-free (auto: explicit if J fits -pinn_gram_memory_mb)",
                choices=list(GRAM_MODES),
            ),
            Option(
                "gram_memory_mb",
                "float",
                1024.0,
                "per-rank memory budget for an explicit Jacobian",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "optimizer",
                "str",
                "",
                "named bundle of PETSc options (a preset); raw options override it",
                choices=["", *sorted(PRESETS)],
            ),
            Option("optimizer_view", "bool", False, "print the options the preset expands to"),
            Option(
                "monitor_every",
                "int",
                10,
                "record loss and rel. L2 in the history every k iterations",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "time_limit",
                "float",
                0.0,
                "stop after this many seconds (0: no limit)",
                check=nonnegative,
                check_text=">= 0",
            ),
            Option("report", "str", "", "write a JSON report to this file"),
            Option("checkpoint", "str", "", "write θ (.npy) here every -pinn_checkpoint_every iterations, atomically"),
            Option("checkpoint_every", "int", 100, "iterations between checkpoints", check=positive, check_text="> 0"),
            Option("load", "str", "", "start from θ saved in this .npy file"),
        ],
    )


def problem_defaults(name: str) -> dict[str, float]:
    """The float keyword parameters of a built-in problem's factory, with their defaults."""
    import inspect

    from .problems import PROBLEMS

    sig = inspect.signature(PROBLEMS[name])
    return {k: float(p.default) for k, p in sig.parameters.items() if isinstance(p.default, (int, float))}


def read_problem_params(name: str) -> dict[str, float]:
    """``-pinn_param_<key> value`` for the chosen problem (e.g. -pinn_param_k 4 for helmholtz2d)."""
    from petsc4py import PETSc

    db, allowed, out = PETSc.Options(), problem_defaults(name), {}
    for key in db.getAll():
        if key.startswith("pinn_param_"):
            param = key[len("pinn_param_"):]
            if param not in allowed:
                raise PinnInputError(
                    f"-{key}: problem {name!r} has no parameter {param!r}; allowed: {', '.join(allowed) or 'none'}"
                )
            try:
                out[param] = float(db.getString(key))
            except ValueError:
                raise PinnInputError(f"-{key}: expected a number, got {db.getString(key)!r}") from None
    return out


def problem_params_help() -> str:
    from .problems import PROBLEMS

    lines = ["problem parameters (-pinn_param_<name> value):"]
    for name in sorted(PROBLEMS):
        params = problem_defaults(name)
        if params:
            lines.append(f"  {name}: " + ", ".join(f"-pinn_param_{k} <{v:g}>" for k, v in params.items()))
    return "\n".join(lines)


def resolve_device(name: str) -> str:
    import torch

    if name not in DEVICES:
        raise PinnInputError(f"-pinn_device: unknown value {name!r}; allowed: {', '.join(DEVICES)}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise PinnInputError("-pinn_device cuda: no CUDA device is available to torch; use cpu or auto")
    return name


def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Build problem, model, objective and TAO from parsed options; train; return the report."""
    import numpy as np
    import torch
    from petsc4py import PETSc

    from .comm import configure_threads
    from .models import build_mlp
    from .objective import PinnObjective
    from .problems import get_problem
    from .train import Trainer

    comm = PETSc.COMM_WORLD
    threads = configure_threads(comm.tompi4py(), opts["threads"])
    device = resolve_device(opts["device"])
    problem = get_problem(opts["problem"], read_problem_params(opts["problem"]) or None)
    layers = opts["layers"] or problem.default_layers
    model = build_mlp(problem.dim, layers, opts["activation"], torch.float64, device)
    counts = {k: opts[f"n_{k}"] for k in ("interior", "boundary", "initial") if opts.get(f"n_{k}")}
    obj = PinnObjective(
        problem,
        model,
        comm=comm,
        counts=counts,
        seed=opts["seed"],
        sampling=opts["sampling"],
        gram=opts["gram"],
        gram_memory_mb=opts["gram_memory_mb"],
    )
    method = opts["optimizer"]
    trainer = Trainer(
        obj,
        hessian=opts["hessian"],
        monitor_every=opts["monitor_every"],
        time_limit=opts["time_limit"],
        checkpoint=opts["checkpoint"],
        checkpoint_every=opts["checkpoint_every"],
    )
    x = obj.initial_vec()
    if opts["load"]:
        try:
            theta0 = np.load(opts["load"])
        except OSError as exc:
            raise PinnInputError(f"-pinn_load: cannot read {opts['load']!r}: {exc}") from None
        if theta0.shape != (obj.n_params,):
            raise PinnInputError(
                f"-pinn_load: {opts['load']!r} holds shape {theta0.shape}, the network needs ({obj.n_params},)"
            )
        obj.set_from_full(x, theta0.astype(np.float64))
    x, res = trainer.solve(x)
    report = {
        "problem": problem.name,
        "n_params": obj.n_params,
        "layers": list(layers),
        "activation": opts["activation"],
        "n_points": obj.global_counts,
        "ranks": comm.getSize(),
        "threads_per_rank": threads,
        "device": device,
        "tao_type": trainer.tao_type,
        "method": method or trainer.tao_type,
        "hessian": opts["hessian"],
        "gram": obj.gram_mode,
        "seed": opts["seed"],
        "iterations": res.iterations,
        "converged_reason": res.converged_reason,
        "message": res.message,
        "loss": res.loss,
        "rel_l2": res.rel_l2,
        "wall_s": res.wall_s,
        "evaluations": dict(obj.counts),
        "history": res.history,
        "versions": {"torch": torch.__version__, "petsc": ".".join(map(str, PETSc.Sys.getVersion()))},
    }
    extra = getattr(trainer.tao.getPythonContext(), "stats", None) if trainer.tao_type == "python" else None
    if extra:
        report["solver_stats"] = extra
    return report


def summary(rep: dict[str, Any]) -> str:
    msg = f"  ({rep['message']})" if rep.get("message") else ""
    return (
        f"pinntao {rep['problem']}: method={rep['method']} tao={rep['tao_type']} P={rep['n_params']} "
        f"N={sum(rep['n_points'].values())} ranks={rep['ranks']}\n"
        f"  iterations={rep['iterations']} reason={rep['converged_reason']} loss={rep['loss']:.3e} "
        f"rel_l2={rep['rel_l2']:.3e} wall={rep['wall_s']:.1f}s{msg}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    import petsc4py

    petsc4py.init(argv)
    from petsc4py import PETSc

    from .options import help_requested

    comm = PETSc.COMM_WORLD
    try:
        options = cli_options()
        if help_requested():
            options.print_help(comm)
            from .presets import print_help as presets_help

            presets_help(comm)
            from .docs import object_option_sets

            for oset in object_option_sets():
                oset.print_help(comm)
            PETSc.Sys.Print(problem_params_help(), comm=comm)
            tao = PETSc.TAO().create(comm=comm)  # let PETSc list the TAO/KSP/PC options too
            tao.setType("lmvm")
            tao.setFromOptions()
            tao.destroy()
            return 0
        method = options.read()["optimizer"]  # validates every option early
        if method:
            from .presets import apply_preset

            applied = apply_preset(method)  # fills only what the user did not set
            if PETSc.Options().getBool("pinn_optimizer_view", False):
                PETSc.Sys.Print(f"preset {method}: " + " ".join(f"-{k} {v}" for k, v in applied), comm=comm)
        opts = options.read()
        rep = run(opts)
    except PinnInputError as exc:
        if comm.getRank() == 0:
            print(f"pinntao: error: {exc}", file=sys.stderr)
        return 2
    except PETSc.Error:
        if PinnInputError.last is None:  # a genuine PETSc failure: let its traceback show
            raise
        if comm.getRank() == 0:
            print(f"pinntao: error: {PinnInputError.last}", file=sys.stderr)
        return 2
    PETSc.Sys.Print(summary(rep), comm=comm)
    if opts["report"] and comm.getRank() == 0:
        try:
            with open(opts["report"], "w") as fh:
                json.dump(rep, fh, indent=1)
        except OSError as exc:
            print(f"pinntao: error: -pinn_report: cannot write {opts['report']!r}: {exc}", file=sys.stderr)
            return 2
    return 0
