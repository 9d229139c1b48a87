"""``python -m pinntao``: train one problem chosen by PETSc options, print a summary,
optionally write a JSON report. ``-help`` lists every pinntao option with its default."""

from __future__ import annotations

import difflib
import math
import os
import sys
from typing import Any

from .errors import PinnInputError
from .options import Option, OptionSet, positive

DEVICES = ("auto", "cpu", "cuda")


def _problem_names() -> list[str]:
    from .problems import PROBLEMS

    return sorted(PROBLEMS)


def _activation_names() -> list[str]:
    from .models import ACTIVATIONS

    return sorted(ACTIVATIONS)


def cli_options() -> OptionSet:
    from .models import ARCHITECTURES, EMBEDDING_OPTIONS
    from .objective import GRAM_MODES
    from .problems.base import SAMPLINGS
    from .train import Trainer

    return OptionSet(
        "pinntao",
        "pinn_",
        [
            Option("problem", "str", "poisson2d", "PDE problem to train", choices=_problem_names()),
            Option("recommended", "bool", True, "apply the problem's recommended set-up (listed by -help) to "
                   "the options you did not give"),
            Option("layers", "ints", None, "hidden layer widths, e.g. 20,20,20,20 (default: the problem's)"),
            Option("activation", "str", "tanh", "activation function", choices=_activation_names()),
            Option("arch", "str", "mlp", "network: mlp, or the gradient-pathologies paper's modified MLP "
                   "(encoders U, V gate every hidden layer; equal widths, >= 2 layers); fourier_/multiscale_ "
                   "before either: after fixed random / axis-aligned Fourier features (-pinn_ff_*)",
                   choices=list(ARCHITECTURES)),
            *EMBEDDING_OPTIONS,
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
            Option("seed", "int", 0, "seed of the collocation points and of θ₀", check=valid_seed,
                   check_text="an integer in [0, 2**63)"),
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
            *Trainer.options.options.values(),  # run settings, restart, device, threads, adaptive training
            Option("reference", "str", "", "score against reference data in FILE instead of the problem's exact "
                   "solution: .npz (x, u), .npy, .csv or whitespace text; columns = the input coordinates in the "
                   "problem's order, then the outputs (docs: Your own problem)"),
        ],
    )


def valid_seed(v: int) -> bool:
    return 0 <= v < 2**63


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
            if not math.isfinite(out[param]):
                raise PinnInputError(f"-{key}: must be a finite number, got {db.getString(key)!r}")
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


def check_argv(args: list[str]) -> bool:
    """Reject positional arguments and GNU-style ``--options``; True when ``--help``/``-h`` asks for help."""
    prev_is_name = False
    for tok in args:
        if tok in ("--help", "-h", "-help"):
            return True
        is_name = tok.startswith("-") and len(tok) > 1 and not _is_number(tok)
        if tok.startswith("--"):
            raise PinnInputError(f"unknown argument {tok!r}: pinntao options take one dash, e.g. "
                                 f"-{tok.lstrip('-')} (see -help)")
        if not is_name and not prev_is_name:
            raise PinnInputError(f"unexpected argument {tok!r}: pinntao takes only options, e.g. "
                                 f"-pinn_problem {tok} (see -help)")
        prev_is_name = is_name
    return False


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def check_unknown_options(options: OptionSet) -> None:
    """Every ``-pinn_*`` option given must exist (``-pinn_param_*`` is checked per problem)."""
    from petsc4py import PETSc

    known = [options.prefix + name for name in options.options]
    for key in sorted(PETSc.Options().getAll()):
        if key.startswith(options.prefix) and key not in known and not key.startswith("pinn_param_"):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"; did you mean -{close[0]}?" if close else "; -help lists them all"
            raise PinnInputError(f"-{key}: unknown option{hint}")


def check_petsc_options() -> None:
    """Options PETSc would reject inside a traceback, or silently ignore, checked up front."""
    from petsc4py import PETSc

    from .options import check_tao_type

    check_tao_type("")
    db = PETSc.Options()
    for key in ("tao_max_it", "tao_max_funcs"):
        if db.hasName(key):
            raw = db.getString(key, "")
            try:
                val = int(raw)
            except ValueError:
                raise PinnInputError(f"-{key}: expected an integer, got {raw!r}") from None
            if key == "tao_max_it" and val < 0:
                raise PinnInputError(f"-{key}: must be >= 0 (0: evaluate θ only), got {val}")
            if key == "tao_max_funcs" and val < 1 and val != -1:
                raise PinnInputError(f"-{key}: must be >= 1, got {val}")


def petsc_error_text(exc: Exception) -> str:
    """The specific message of a petsc4py error (its last PETSc message line, without the code)."""
    lines = [ln.split("] ", 1)[-1].strip() for ln in str(exc).splitlines() if ln.startswith("[")]
    msgs = [ln for ln in lines if "() at " not in ln]
    text = msgs[-1] if msgs else str(exc).splitlines()[0]
    code = getattr(exc, "ierr", None)
    return text[: -len(f" {code}")] if code is not None and text.endswith(f" {code}") else text


def check_memory(problem: Any, layers: tuple[int, ...], counts: dict[str, int], opts: dict[str, Any], mpi: Any) -> None:
    """Refuse (PinnInputError on every rank) a run whose estimated memory exceeds what the node has."""
    from petsc4py import PETSc

    from . import memory

    n_points = problem.n_points(counts)
    db = PETSc.Options()
    from .presets import preset_options

    chosen = dict(preset_options(opts["optimizer"])) if opts.get("optimizer") else {}
    chosen.update(db.getAll())  # the preset is applied by the Trainer, later; the user's options win
    from .registry import memory_traits

    traits = memory_traits(chosen)
    ranks = [v for k, v in db.getAll().items() if k.endswith("pc_sketch_rank") or k.endswith("pc_prox_rank")]
    raw = ranks[0] if ranks else "50"
    rank = int(raw) if raw.isdigit() else 50  # a malformed value is reported by the PC itself
    sketch = rank if traits["sketch"] else 0
    P = memory.mlp_params(problem.dim, layers)
    explicit = opts["gram"] == "explicit" or (opts["gram"] == "auto" and
                                              -(-n_points // mpi.Get_size()) * P * 8 / 2**20 <= opts["gram_memory_mb"])
    parts = memory.estimate(problem.dim, layers, n_points, mpi.Get_size(),
                            gram_explicit_mb=opts["gram_memory_mb"] if explicit else 0.0,
                            sketch_rank=sketch, dense_gram=traits["dense"], kernel=traits["kernel"])
    from mpi4py import MPI

    local = mpi.Split_type(MPI.COMM_TYPE_SHARED)
    per_node = local.Get_size()
    local.Free()
    msg = memory.refusal(parts, memory.available_bytes(per_node))
    msg = mpi.bcast(msg, root=0) if mpi.Get_size() > 1 else msg
    if msg:
        raise PinnInputError(msg)


_NOT_RESTORED = ("pinn_restart", "pinn_load", "help", "h", "options_file")


def read_restart_options(mpi: Any) -> tuple[dict, dict] | None:
    """``-pinn_restart PATH``: the restart file (read on rank 0, broadcast); its stored options
    are inserted where the user gave none, so the resumed run is the interrupted one."""
    from petsc4py import PETSc

    from .train import read_restart_agreed

    db = PETSc.Options()
    if not db.hasName("pinn_restart"):
        return None
    arrays, meta = read_restart_agreed(mpi, db.getString("pinn_restart", ""))
    if db.hasName("pinn_load"):
        raise PinnInputError("-pinn_restart and -pinn_load exclude each other")
    old = meta.get("method", meta["options"].get("pinn_optimizer", ""))
    if db.hasName("pinn_optimizer") and db.getString("pinn_optimizer", "") != old:
        raise PinnInputError(f"-pinn_restart: the checkpoint was written by -pinn_optimizer {old or '(none)'}, this "
                             f"run asks for {db.getString('pinn_optimizer', '')}; a restart continues the same solver "
                             "(start a new run from its θ with -pinn_load)")
    for key, value in meta["options"].items():
        if key not in _NOT_RESTORED and not db.hasName(key):
            db.setValue(key, value)
    return arrays, meta


def run(opts: dict[str, Any], restart: tuple[dict, dict] | None = None) -> dict[str, Any]:
    """Build problem, model, objective and TAO from parsed options; train; return the report."""
    import torch
    from petsc4py import PETSc

    from .comm import configure_threads
    from .models import EMBEDDING_OPTIONS, build_model
    from .objective import PinnObjective
    from .problems import get_problem
    from .train import Trainer

    comm = PETSc.COMM_WORLD
    threads = configure_threads(comm.tompi4py(), opts["threads"])
    device = resolve_device(opts["device"])
    problem = get_problem(opts["problem"], read_problem_params(opts["problem"]) or None)
    if opts.get("reference"):  # reference data replace the problem's exact solution in every error
        from .reference import read_reference

        problem = problem.with_reference(*read_reference(opts["reference"], problem))
    layers = opts["layers"] or problem.default_layers
    counts = {k: opts[f"n_{k}"] for k in ("interior", "boundary", "initial") if opts.get(f"n_{k}")}
    check_memory(problem, tuple(layers), counts, opts, comm.tompi4py())  # before the network is allocated
    model = build_model(opts["arch"], problem.dim, layers, opts["activation"], torch.float64, device,
                        out_dim=problem.fields, options=opts, seed=opts["seed"],
                        box=(problem.domain.lo, problem.domain.hi))
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
    PinnInputError.last = None
    try:
        trainer = Trainer(obj)  # reads -pinn_optimizer, -pinn_time_limit, -pinn_checkpoint, -pinn_report ...
        x = trainer.initial_vec()
        trainer.tao.setSolution(x)
        trainer.tao.setUp()
    except PETSc.Error as exc:
        if PinnInputError.last is not None:
            raise PinnInputError.last from None
        raise PinnInputError(f"PETSc rejected the options: {petsc_error_text(exc)}") from None
    if restart is not None:
        x = trainer.resume(*restart)
    trainer.report_fields.update({"layers": list(layers), "arch": opts["arch"], "activation": opts["activation"],
                                  "threads_per_rank": threads, "device": device})
    if opts["arch"].startswith(("fourier_", "multiscale_")):  # what rebuilds the same B (with the seed)
        trainer.report_fields["embedding"] = {o.name: opts[o.name] for o in EMBEDDING_OPTIONS}
    from .sampling import HeldOut

    trainer.report_metrics["heldout_loss"] = HeldOut(obj, problem, opts["seed"])  # fitting points, not the PDE?
    trainer.solve(x)  # the Trainer applies -pinn_weights, -pinn_resample*, -pinn_batch_size, -pinn_causal_*
    return trainer.report


STATUS_TEXT = {
    "diverged": "FAILED: the solver diverged",
    "loss_increased": "FAILED: the final loss is above the initial loss",
    "interrupted": "INTERRUPTED",
}


def summary(rep: dict[str, Any]) -> str:
    msg = f"  ({rep['message']})" if rep.get("message") else ""
    status = STATUS_TEXT.get(rep.get("status", "ok"), "")
    if rep.get("status") == "loss_increased" and rep.get("compared"):
        status += f" (compared: {rep['compared']['quantity']})"
    if not status and rep.get("exit_code") == 4:
        status = "OUTPUT FAILED: the report or the final checkpoint could not be written"
    status = f"\n  {status} (exit {rep['exit_code']})" if status else ""
    return (
        f"pinntao {rep['problem']}: method={rep['method']} tao={rep['tao_type']} P={rep['n_params']} "
        f"N={sum(rep['n_points'].values())} ranks={rep['ranks']}\n"
        f"  iterations={rep['iterations']} reason={rep['converged_reason']} loss={_num(rep['loss'])} "
        f"rel_l2={_num(rep['rel_l2'])} wall={rep['wall_s']:.1f}s{msg}{status}"
    )


def _num(v: float) -> str:
    return f"{v:.3e}" if isinstance(v, float) else str(v)


def print_help(comm: Any) -> None:
    """-help: every pinntao option, the presets, the python objects' options, PETSc's TAO options."""
    from petsc4py import PETSc

    from .presets import print_help as presets_help
    from .registry import object_option_sets

    cli_options().print_help(comm, current=True)
    presets_help(comm)
    for oset, owner in object_option_sets():
        oset.print_help(comm, owner, current=True)
    PETSc.Sys.Print(problem_params_help(), comm=comm)
    from .problems import recommended_help

    PETSc.Sys.Print(recommended_help(), comm=comm)
    db = PETSc.Options()
    if not db.hasName("help"):
        db.setValue("help", "")  # --help / -h: make PETSc list its own options too
    tao = PETSc.TAO().create(comm=comm)
    tao.setType("lmvm")
    tao.setFromOptions()
    tao.destroy()


def _rank_from_env() -> int:
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def init_petsc(argv: list[str]) -> str | None:
    """petsc4py.init(argv), with PETSc's multi-line error block (bad -options_file) turned into
    one message; returns it, or None on success."""
    import tempfile

    import petsc4py

    from .io import check_options_files

    bad = check_options_files(argv)  # regular files, no include cycle: before PETSc reads them
    if bad:
        return bad
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as cap:
        os.dup2(cap.fileno(), 2)
        try:
            petsc4py.init(["-help" if tok in ("--help", "-h") else tok for tok in argv])  # none "left" unused
            err = None
        except Exception as exc:
            err = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        cap.seek(0)
        text = cap.read().decode(errors="replace")
    if err is None:
        sys.stderr.write(text)
        return None
    lines = [ln.split("PETSC ERROR:", 1)[1].strip() for ln in text.splitlines() if "PETSC ERROR:" in ln]
    lines = [ln for ln in lines if ln and not ln.startswith(("-", "See ", "PETSc Release", "Configure", "#"))
             and " with " not in ln]
    return "PETSc could not start: " + (lines[0] if lines else str(err))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    failed = init_petsc(argv)
    if failed:
        if _rank_from_env() == 0:
            print(f"pinntao: error: {failed}", file=sys.stderr)
        return 2
    from petsc4py import PETSc

    from . import signals
    from .errors import EXIT_ERROR, EXIT_INPUT, EXIT_OK, RunFailedError

    comm = PETSc.COMM_WORLD
    mpi, rank = comm.tompi4py(), comm.getRank()

    def error(msg: object, code: int) -> int:
        PETSc.Options().setValue("options_left", "0")  # no "Option left" noise under the one error line
        if rank == 0:
            print(f"pinntao: error: {msg}", file=sys.stderr, flush=True)
        return code

    signals.install()
    try:
        from .options import help_requested

        if check_argv(argv[1:]) or help_requested():
            print_help(comm)
            return EXIT_OK
        options = cli_options()
        check_unknown_options(options)
        restart = read_restart_options(mpi)
        from .problems import apply_recommended

        # the problem's set-up (for its -pinn_param_* values), where the user gave none
        recommended = apply_recommended(PETSc.Options(), params=read_problem_params)
        opts = options.read()  # validates every option early
        if recommended and opts["optimizer_view"]:
            PETSc.Sys.Print(f"{opts['problem']}: recommended set-up applied: "
                            + " ".join(f"-{k} {v}" for k, v in recommended), comm=comm)
        check_petsc_options()
        rep = run(opts, restart)
    except PinnInputError as exc:
        return error(exc, EXIT_INPUT)
    except PETSc.Error as exc:
        if PinnInputError.last is not None:
            return error(PinnInputError.last, EXIT_INPUT)
        return _internal_error(mpi, f"PETSc error: {petsc_error_text(exc)}")
    except RunFailedError as exc:
        return error(f"the run stopped: {exc}", EXIT_ERROR)
    except KeyboardInterrupt:
        code = signals.exit_code(signals.received() or 2)
        if comm.getSize() > 1:
            from .comm import abort_all

            abort_all(mpi, "interrupted twice: abandoned without a final checkpoint or report", code)
        return error("interrupted twice: abandoned without a final checkpoint or report", code)
    except Exception as exc:
        from .errors import describe_exception

        return _internal_error(mpi, describe_exception(exc))
    code = rep["exit_code"]  # 4 when the report, θ file or final checkpoint could not be written
    PETSc.Sys.Print(summary(rep), comm=comm)
    return code


def _internal_error(mpi: Any, message: str) -> int:
    """A bug or an unexpected failure: traceback, one line; on several ranks abort them all."""
    import traceback

    from .comm import abort_all
    from .errors import EXIT_ERROR

    traceback.print_exc(file=sys.stderr)
    if mpi.Get_size() > 1:
        abort_all(mpi, message, EXIT_ERROR)
    print(f"pinntao: error: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR
