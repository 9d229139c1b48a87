"""Run TAO on a PinnObjective: monitors, history, NaN guard, time limit, signals, checkpoints.

:class:`Trainer` owns a TAO configured from the options database like any PETSc solver
(``-tao_type``, ``-tao_monitor``, ``-tao_max_it`` ...). Its monitor records the history, keeps
a copy of the last finite iterate and writes atomic checkpoints (a failed write warns once and
training goes on). Every stop decision (time limit, SIGINT/SIGTERM, a failure in the monitor)
is agreed by all ranks. The θ returned always has a finite loss, recomputed after any restore.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from petsc4py import PETSc

from . import signals
from .causal import CAUSAL_OPTIONS
from .checkpoint import (
    RESTART_FORMAT,
    load_initial,
    read_restart,
    restart_path,
    save_checkpoint,
    save_restart,
    save_theta,
)
from .comm import abort_all, agreed_stop, max_flags, rank0_decides
from .errors import EXIT_FAILED, EXIT_OK, EXIT_OUTPUT, PinnInputError, RunFailedError, describe_exception, root_cause
from .io import OutputFile, check_writable, json_bytes
from .objective import HESSIAN_TYPES, INITS, PinnObjective
from .options import Option, OptionSet, help_requested, nonnegative, positive
from .presets import PRESETS, preset_defaults
from .sampling import ADAPT_OPTIONS

__all__ = ["BUDGET_REASONS", "RESTART_FORMAT", "Result", "Trainer", "check_output", "read_restart", "reason_name",
           "restart_path", "save_checkpoint", "save_restart"]

R = PETSc.TAO.ConvergedReason
_REASONS = {int(v): k for k, v in vars(R).items() if not k.startswith("_") and isinstance(v, int)}
BUDGET_REASONS = (int(R.DIVERGED_MAXITS), int(R.DIVERGED_MAXFCN))  # TAO calls a spent budget "diverged"


def reason_name(reason: int) -> str:
    """TAO converged reason as PETSc spells it, e.g. CONVERGED_GATOL."""
    return _REASONS.get(int(reason), str(int(reason)))


@dataclass
class Result:
    """What a solve did: final state, history rows [iteration, wall_s, loss, rel_l2].

    ``status``: ``ok`` (converged or a budget spent), ``diverged`` (DIVERGED_* or no finite
    loss), ``loss_increased`` (final loss above the initial one) or ``interrupted`` (a signal).
    """

    iterations: int
    converged_reason: str
    loss: float
    rel_l2: float
    wall_s: float
    history: list[list[float]] = field(default_factory=list)
    message: str = ""
    initial_loss: float = math.nan
    status: str = "ok"
    signal: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    output_failed: bool = False
    compared: dict[str, Any] = field(default_factory=dict)  # what the status compared: quantity, initial, final

    @property
    def exit_code(self) -> int:
        """0 ok, 3 failed (diverged / loss increased), 4 an output could not be written,
        128 + signal when interrupted."""
        if self.signal:
            return signals.exit_code(self.signal)
        if self.status != "ok":
            return EXIT_FAILED
        return EXIT_OUTPUT if self.output_failed else EXIT_OK


def read_restart_agreed(mpicomm: Any, path: str, flag: str = "-pinn_restart") -> tuple[dict, dict]:
    """A restart file read on rank 0 and broadcast: (arrays, meta), or one PinnInputError on every rank."""
    data, msg = None, None
    if mpicomm.Get_rank() == 0:
        try:
            data = read_restart(path, flag)
        except PinnInputError as exc:
            msg = str(exc)
    if mpicomm.Get_size() > 1:
        msg = mpicomm.bcast(msg, root=0)
        data = mpicomm.bcast(data, root=0) if msg is None else None
    if msg:
        raise PinnInputError(msg)
    return data


def check_output(mpicomm: Any, path: str, flag: str) -> None:
    """Refuse an output path before any work (PinnInputError on every rank): rank 0 checks it
    (regular file or new name, writable directory) and broadcasts the verdict."""
    if not path:
        return
    msg = rank0_decides(mpicomm, lambda: check_writable(path) and None)
    if msg:
        raise PinnInputError(f"{flag}: cannot write {path!r}: {msg}")


def _clock(seconds: float) -> str:
    """12.3s, 4m05s, 2h03m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def _view_options(db: Any, applied: list[tuple[str, str]], given: set[str], prefix: str) -> str:
    """The options in effect for a Trainer's solver: the preset's keys with the value the database
    holds now (marked where the user's value won), then the user's other options under the prefix."""
    lines, seen = [], set()
    for key, preset_value in applied:
        value = db.getString(key, preset_value)
        mark = f"   (yours; preset: {preset_value})" if key in given and value != preset_value else ""
        lines.append(f"  -{key} {value}{mark}")
        seen.add(key)
    skip = ("pinn_", "help", "options_", "log_", "malloc", "h")
    for key in sorted(given - seen):
        rest = key[len(prefix):] if key.startswith(prefix) else None
        if rest and not rest.startswith(skip):
            lines.append(f"  -{key} {db.getString(key, '')}   (yours)")
    return "\n".join(lines)


class Trainer:
    """TAO on a :class:`PinnObjective`, set up from the options database under ``prefix``.

    Every keyword is a default that the matching option overrides, as ``-tao_type`` overrides
    ``tao_type``: ``-<prefix>pinn_optimizer``, ``-<prefix>pinn_time_limit``,
    ``-<prefix>pinn_checkpoint``, ``-<prefix>pinn_report`` ... (:data:`RUN_OPTIONS`), so any
    script built on a Trainer honours the CLI's run settings. A preset (``optimizer``) is written
    under the prefix only, and the ``optimizer`` keyword applies only when the user chose no
    solver (neither ``-<prefix>pinn_optimizer`` nor ``-<prefix>tao_type``). A Tao the Trainer
    creates has no cap on function evaluations (TAO's default 4000 would end long L-BFGS runs
    with DIVERGED_MAXFCN before ``-tao_max_it`` or the time limit); ``-tao_max_funcs`` sets one.
    """

    options = OptionSet(
        "Trainer run settings (pinntao.Trainer, under the Trainer's prefix: -<prefix>pinn_*)",
        "pinn_",
        [
            Option(
                "optimizer",
                "str",
                "",
                "named bundle of PETSc options (a preset), written under the Trainer's prefix; raw options override it",
                choices=["", *sorted(PRESETS)],
            ),
            Option("optimizer_view", "bool", False, "print the solver options in effect (the preset's and yours)"),
            Option("hessian", "str", "gauss_newton", "operator TAO's Newton solvers use", choices=list(HESSIAN_TYPES)),
            Option("init", "str", "glorot", "θ₀: glorot (Glorot-normal from -pinn_seed, zero biases, the same on any "
                   "rank count) or module (the nn.Module's own parameters)", choices=list(INITS)),
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
            Option(
                "progress",
                "int",
                0,
                "print a progress line (rank 0: iteration, loss, rel. L2, elapsed, ETA) every k iterations (0: off)",
                check=nonnegative,
                check_text=">= 0",
            ),
            Option("report", "str", "", "write a JSON report (strict JSON, atomic) to this file"),
            Option("checkpoint", "str", "", "write θ (.npy) here every -pinn_checkpoint_every iterations and at "
                   "the end, atomically"),
            Option("checkpoint_every", "int", 100, "iterations between checkpoints", check=positive, check_text="> 0"),
            Option("load", "str", "", "start from θ saved in this file (PETSc binary Vec, e.g. from -pinn_save or "
                   "-tao_view_solution binary:, or .npy)"),
            Option("save", "str", "", "write the final θ here, atomically: a PETSc binary Vec (VecLoad reads it, on "
                   "any rank count), or .npy when the name ends in .npy"),
            Option("vts", "str", "", "write u_θ and the exact/reference solution on a structured grid of the "
                   "domain to this VTK .vts file (ParaView)"),
            Option("vts_n", "int", 0, "grid nodes per dimension for -pinn_vts (0: the evaluation grid's)",
                   check=nonnegative, check_text=">= 0"),
            Option("restart", "str", "", "resume exactly from the state written beside -pinn_checkpoint PATH "
                   "(PATH or PATH.restart.npz); the CLI also restores its options unless given again"),
            Option("device", "str", "auto", "torch device (auto: cuda when available); a Trainer checks that its "
                   "objective's model is on it", choices=["auto", "cpu", "cuda"]),
            Option("threads", "int", 0, "torch threads per rank (0: cores ÷ ranks on the node)", check=nonnegative,
                   check_text=">= 0"),
            *ADAPT_OPTIONS,
            *CAUSAL_OPTIONS,
        ],
    )
    #: point counts are fixed when the PinnObjective is built (CLI/problem options); a Trainer only checks them
    point_options = ("n_interior", "n_boundary", "n_initial")

    def __init__(
        self,
        objective: PinnObjective,
        *,
        tao: PETSc.TAO | None = None,
        tao_type: str = "lmvm",
        optimizer: str = "",
        hessian: str | None = None,
        monitor_every: int | None = None,
        time_limit: float | None = None,
        checkpoint: str | None = None,
        checkpoint_every: int | None = None,
        prefix: str | None = None,
        progress_every: int | None = None,
        report: str | None = None,
    ) -> None:
        self.obj = objective
        self.prefix = prefix if prefix is not None else (tao.getOptionsPrefix() or "" if tao is not None else "")
        db = PETSc.Options()
        full = self.prefix + self.options.prefix
        given = {name for name in self.options.options if db.hasName(full + name)}
        defaults = {"optimizer": optimizer, "hessian": hessian, "monitor_every": monitor_every,
                    "time_limit": time_limit, "checkpoint": checkpoint, "checkpoint_every": checkpoint_every,
                    "progress": progress_every, "report": report}
        if help_requested():
            self.options.print_help(objective.comm, self.prefix, current=True)
        opts = self.options.read(self.prefix)
        for key, value in defaults.items():
            if key not in given and value is not None:
                opts[key] = self.options.options[key].convert(str(value), f"Trainer({key}=...)")
        if "optimizer" not in given and db.hasName(self.prefix + "tao_type"):
            opts["optimizer"] = ""  # the user chose a solver: the script's default preset steps aside
        self.settings = opts
        self.method = opts["optimizer"]
        self._check_objective_settings(db, given)
        user = {k for k in db.getAll() if k.startswith(self.prefix)}
        for flag in ("checkpoint", "report", "save", "vts"):
            check_output(objective.mpi, opts[flag], f"-{full}{flag}")
        checkpoint = opts["checkpoint"]
        self.tao = tao if tao is not None else PETSc.TAO().create(comm=objective.comm)
        if prefix:
            self.tao.setOptionsPrefix(prefix)
        if tao is None:
            self.tao.setType(tao_type)
            self.tao.setMaximumFunctionEvaluations(PETSc.UNLIMITED)
        self.monitor_every = opts["monitor_every"]
        self.progress_every = opts["progress"]
        self.time_limit = opts["time_limit"]
        self.checkpoint, self.checkpoint_every = checkpoint, opts["checkpoint_every"]
        self.report_fields: dict[str, Any] = {}  # extra report entries a caller adds (the CLI: layers, threads)
        #: extra report entries computed at the final iterate: name → collective callable(x) (e.g. heldout_loss)
        self.report_metrics: dict[str, Any] = {}
        self.report: dict[str, Any] = {}
        if checkpoint:
            check_output(objective.mpi, restart_path(checkpoint), "-pinn_checkpoint (restart state)")
        self._ckpt = OutputFile(checkpoint, "checkpoint") if checkpoint and objective.rank == 0 else None
        self._state_file = (OutputFile(restart_path(checkpoint), "restart state")
                            if checkpoint and objective.rank == 0 else None)
        self._resume: dict[str, Any] | None = None
        self.state_hooks: list[Any] = []  # more restart state (sampling.Adaptation): restart_state/load_restart_state
        self._theta0: np.ndarray | None = None  # θ₀, for a status that compares like with like
        self._restarted = False
        self._offset = 0
        self._wall0 = 0.0
        self._loss0 = math.nan
        self.history: list[list[float]] = []
        self._last_good: PETSc.Vec | None = None
        self._last_good_its = -1
        self._t0 = 0.0
        self._last_its = -1
        self._message = ""
        self._signal = 0
        self._failure = ""
        self.tao.setMonitor(self._monitor)
        # the preset: defaults of the objects this Trainer owns, in the database only while they read it
        with preset_defaults(self.method, prefix=self.prefix) as self.applied:
            if "hessian" not in given and db.hasName(full + "hessian"):  # the preset chose the operator
                opts["hessian"] = self.options.read(self.prefix)["hessian"]
            objective.setup_tao(self.tao, opts["hessian"])
            self.evaluate_only = self._set_from_options(db)
            view = _view_options(db, self.applied, user, self.prefix) if opts["optimizer_view"] else ""
        if opts["optimizer_view"]:
            PETSc.Sys.Print(f"{self.prefix or ''}pinn_optimizer {self.method or '(none)'}: options in effect\n"
                            + view, comm=objective.comm)
        from .sampling import Adaptation

        adapt = {o.name: opts[o.name] for o in (*ADAPT_OPTIONS, *CAUSAL_OPTIONS)}
        active = (adapt["weights"] != "none" or adapt["resample"] != "none" or adapt["batch_size"] > 0
                  or adapt["causal_slabs"] > 0)
        # batches, RAD, annealed weights, causal weights: bad values fail here, before training
        self.adaptation = Adaptation(objective, **adapt, flag_prefix=f"-{full}") if active else None
        self._attached = False

    def _set_from_options(self, db: Any) -> bool:
        """TaoSetFromOptions; ``-<prefix>tao_max_it 0`` (TAO refuses it) is an evaluate-only run: True."""
        key = self.prefix + "tao_max_it"
        raw = db.getString(key, "") if db.hasName(key) else ""
        zero = raw.strip() in ("0", "+0")
        if zero:
            db.delValue(key)
        try:
            self.tao.setFromOptions()
        finally:
            if zero:
                db.setValue(key, raw)
                PETSc.Options().getString(key, "")  # read: not reported by -options_left
        return zero

    def _check_objective_settings(self, db: Any, given: set[str]) -> None:
        """Run settings that belong to the objective: threads are applied, the device and point
        counts (fixed when the PinnObjective was built) must match it or are one clear error."""
        full = self.prefix + self.options.prefix
        obj = self.obj
        if "threads" in given:
            from .comm import configure_threads

            configure_threads(obj.mpi, self.settings["threads"])
        device = self.settings["device"]
        if "device" in given and device != "auto" and str(obj.model.device).split(":")[0] != device:
            raise PinnInputError(f"-{full}device {device}: the objective's model is on {obj.model.device}; the device "
                                 "is chosen when the model is built (build_model(..., device=...))")
        for name in self.point_options:
            key = full + name
            if not db.hasName(key):
                continue
            kind = name[2:]
            raw = db.getString(key, "")
            sizes = {obj.global_counts[b.name] for b in obj.problem.blocks if b.kind == kind}
            if sizes != {int(raw)} if raw.strip().lstrip("-").isdigit() else True:
                have = ", ".join(f"{b.name} {obj.global_counts[b.name]}" for b in obj.problem.blocks
                                 if b.kind == kind) or f"no {kind} block"
                raise PinnInputError(f"-{key} {raw}: point counts are fixed when the PinnObjective is built "
                                     f"(PinnObjective(..., counts={{'{kind}': n}}); the CLI does it); this objective "
                                     f"has {have}")

    def initial_vec(self) -> PETSc.Vec:
        """θ₀ as the options say: ``-pinn_load`` file, else ``-pinn_init`` (glorot from the seed or
        the module's own parameters). Read on rank 0 and broadcast; a bad file is a PinnInputError."""
        x = self.obj.initial_vec(init=self.settings["init"])
        if self.settings["load"]:
            load_initial(self.obj, x, self.settings["load"], f"-{self.prefix}pinn_load")
        return x

    @property
    def tao_type(self) -> str:
        return self.tao.getType()

    def _theta_full(self, x: PETSc.Vec) -> np.ndarray:
        return self.obj.gather(x).cpu().numpy()

    # -- the monitor: observe, then agree on stopping ------------------------------------------
    def _observe(self, tao: PETSc.TAO, its: int, f: float, x: PETSc.Vec) -> None:
        resumed_start = self._offset > 0 and its == 0  # recorded and checkpointed by the interrupted run
        its += self._offset
        self._last_its = its
        if not math.isfinite(f):
            return  # keep the previous good iterate; TAO stops with DIVERGED_NAN
        if self._last_good is None:
            self._last_good = x.duplicate()
        x.copy(self._last_good)
        self._last_good_its = its
        if resumed_start:
            return
        if its % self.monitor_every == 0:
            self.history.append([its, self._wall(), f, self.obj.rel_l2(x)])
        if self.checkpoint and its % self.checkpoint_every == 0:
            self.write_checkpoint(x, its, f)
        if self.progress_every and its % self.progress_every == 0:
            self._progress(tao, its, f, x)

    def _progress(self, tao: PETSc.TAO, its: int, f: float, x: PETSc.Vec) -> None:
        """One compact line on rank 0: iteration, loss, rel. L2, elapsed, ETA against the budget."""
        err = self.history[-1][3] if self.history and self.history[-1][0] == its else self.obj.rel_l2(x)
        if self.obj.rank != 0:
            return
        elapsed = time.perf_counter() - self._t0
        max_it = tao.getMaximumIterations() + self._offset
        done = its - self._offset
        etas = [(max_it - its) * elapsed / done] if done > 0 else []
        if self.time_limit > 0:
            etas.append(max(0.0, self.time_limit - elapsed))
        eta = f" eta {_clock(min(etas))}" if etas else ""
        print(f"pinntao: it {its}/{max_it} loss {f:.3e} rel_l2 {err:.3e} elapsed {_clock(self._wall())}{eta}",
              flush=True)

    def _monitor(self, tao: PETSc.TAO) -> None:
        its, f, _gnorm, _cnorm, _xdiff, _reason = tao.getSolutionStatus()
        failure = ""
        try:
            self._observe(tao, its, f, tao.getSolution())
        except Exception as exc:  # agreed below: every rank stops, the error is raised after the solve
            failure = f"{type(exc).__name__}: {exc}"
        over = self.time_limit > 0 and time.perf_counter() - self._t0 > self.time_limit
        sig, timeout, failed = agreed_stop(self.obj.mpi, signals.received(), over, failure)
        if failed:
            self._failure = failed
            tao.setConvergedReason(R.CONVERGED_USER)
        elif sig:
            self._signal = sig
            self._message = f"interrupted by {signals.name(self._signal)} after iteration {its + self._offset}"
            tao.setConvergedReason(R.CONVERGED_USER)
        elif timeout:
            self._message = f"time limit {self.time_limit:g} s reached"
            tao.setConvergedReason(R.CONVERGED_USER)

    def _expected_last_iteration(self, its: int) -> float:
        """The iteration this run is expected to end at: -tao_max_it, or sooner where
        -pinn_time_limit stops it first at this run's mean rate (resamples stop before it)."""
        last = float(self.tao.getMaximumIterations() + self._offset)
        done = its - self._offset
        if self.time_limit > 0 and done > 0:
            elapsed = max(time.perf_counter() - self._t0, 1e-9)
            last = min(last, its + (self.time_limit - elapsed) * done / elapsed)
        return last

    def _wall(self) -> float:
        return self._wall0 + time.perf_counter() - self._t0

    def write_checkpoint(self, x: PETSc.Vec, its: int | None = None, f: float | None = None) -> bool:
        """Write the restart state, then θ (rank 0, atomically each); True on every rank if both
        were written. Never raises for I/O: a failure warns once and is counted in :meth:`outputs`."""
        arrays, meta = self.restart_state(x, self._last_its if its is None else its, f)
        full = arrays["theta"]
        ok = True
        if self._ckpt is not None and self._state_file is not None:
            ok = bool(np.all(np.isfinite(full)))
            if ok:  # both attempted: each file keeps its own count of writes and failures
                state_ok = self._state_file.write(lambda fh: save_restart(fh, arrays, meta))
                ok = self._ckpt.write(lambda fh: np.save(fh, full, allow_pickle=False)) and state_ok
        return not max_flags(self.obj.mpi, [0.0 if ok else 1.0])[0]

    def outputs(self) -> dict[str, Any]:
        """Write counts and failures of the files this Trainer writes (rank 0 knows them)."""
        if self._ckpt is None or self._state_file is None:
            return {}
        return {"checkpoint": self._ckpt.status(), "restart_state": self._state_file.status()}

    # -- exact restart -----------------------------------------------------------------------
    def _solver_ctx(self) -> Any:
        return self.tao.getPythonContext() if self.tao_type == "python" else None

    def restart_state(self, x: PETSc.Vec, its: int, f: float | None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta) of a restart file at iterate x (collective: Vecs are gathered)."""
        arrays = {"theta": self._theta_full(x)}
        scalars: dict[str, float] = {}
        ctx = self._solver_ctx()
        for key, val in (ctx.restart_state(self.tao) if hasattr(ctx, "restart_state") else {}).items():
            if isinstance(val, PETSc.Vec):
                arrays[f"solver_{key}"] = self._theta_full(val)
            elif isinstance(val, np.ndarray):  # replicated on every rank (a sketch PC's basis)
                arrays[f"solver_{key}"] = val
            else:
                scalars[key] = val
        meta = {
            "format": RESTART_FORMAT, "iteration": int(its), "loss": f, "initial_loss": self._loss0,
            "wall_s": self._wall(), "history": self.history, "n_params": self.obj.n_params,
            "problem": self.obj.problem.name, "seed": self.obj.seed, "n_points": self.obj.global_counts,
            "tao_type": self.tao_type, "solver": type(ctx).__name__ if ctx is not None else self.tao_type,
            "method": self.method,
            "solver_scalars": scalars, "options": PETSc.Options().getAll(),
        }
        if self._theta0 is not None:
            arrays["theta0"] = self._theta0
        for hook in self.state_hooks:
            more_arrays, more_meta = hook.restart_state()
            arrays.update(more_arrays)
            meta.update(more_meta)
        return arrays, meta

    def resume(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> PETSc.Vec:
        """Continue from a restart file (see :func:`read_restart`): the next :meth:`solve` starts at
        its θ and iteration count with the solver's state restored. Returns θ as a Vec."""
        if meta["n_params"] != self.obj.n_params or meta["n_points"] != self.obj.global_counts:
            raise PinnInputError(
                f"-pinn_restart: the checkpoint is for {meta['n_params']} parameters and points "
                f"{meta['n_points']}, this run has {self.obj.n_params} and {self.obj.global_counts}"
            )
        flag = f"-{self.prefix}pinn_restart"
        old = meta.get("method", meta.get("options", {}).get(self.prefix + "pinn_optimizer", ""))
        if "method" in meta or old:
            if (old or "") != (self.method or ""):
                raise PinnInputError(f"{flag}: the checkpoint was written by -pinn_optimizer {old or '(none)'}, this "
                                     f"run asks for {self.method or '(none)'}; a restart continues the same solver "
                                     "(start a new run from its θ with -pinn_load)")
        solver = type(self._solver_ctx()).__name__ if self._solver_ctx() is not None else self.tao_type
        if meta["solver"] != solver:
            raise PinnInputError(f"{flag}: the checkpoint was written by {meta['solver']}, "
                                 f"this run uses {solver}")
        self._resume = {"arrays": arrays, "meta": meta}
        self._restarted = True
        x = self.obj.create_vec()
        self.obj.set_from_full(x, arrays["theta"])
        return x

    def _warn_inexact_resume(self, ctx: Any) -> None:
        """One line when the resumed run cannot follow the interrupted one exactly: what restarts fresh
        (a python context's ``resume_note(tao)``; TAO's built-in types keep their state private)."""
        if ctx is None:
            note = f"TAO {self.tao_type} keeps its internal state (e.g. the L-BFGS history) private; it restarts empty"
        else:
            note = ctx.resume_note(self.tao) if hasattr(ctx, "resume_note") else ""
        if note and self.obj.rank == 0:
            print(f"pinntao: warning: -pinn_restart: the resumed run is approximate: {note}", file=sys.stderr,
                  flush=True)

    # -- the solve ---------------------------------------------------------------------------
    def _run_tao(self) -> None:
        PinnInputError.last = None
        try:
            self.tao.solve()
        except PETSc.Error as exc:
            if isinstance(root_cause(exc), KeyboardInterrupt):  # a second signal, met inside a callback
                raise KeyboardInterrupt("interrupted twice") from None
            if PinnInputError.last is not None:
                raise  # an option error, met by every rank alike
            # TAO raises on a non-finite value at an iterate it must accept; anything else is real
            if not self.obj.nonfinite:
                self._fail_alone()
            self.tao.setConvergedReason(R.DIVERGED_NAN)
        except (PinnInputError, RunFailedError):
            raise
        except Exception:
            self._fail_alone()

    def _fail_alone(self) -> None:
        """An exception a single rank may have met: on several ranks abort them all (the others
        may wait in a collective forever); on one rank let it propagate."""
        if self.obj.size == 1:
            raise
        import sys
        import traceback

        traceback.print_exc(file=sys.stderr)
        abort_all(self.obj.mpi, f"during the solve: {describe_exception(sys.exc_info()[1])}")

    def solve(self, x: PETSc.Vec | None = None) -> tuple[PETSc.Vec, Result]:
        """Minimise from x (default: the model's initial θ, or the state given to :meth:`resume`);
        x holds the result."""
        if self.settings["restart"] and not self._restarted:  # -<prefix>pinn_restart in a script
            self.resume(*read_restart_agreed(self.obj.mpi, self.settings["restart"], f"-{self.prefix}pinn_restart"))
        self._attach_adaptation()
        self.history, self._last_good, self._last_good_its, self._message = [], None, -1, ""
        self._signal, self._failure, self._offset, self._wall0 = 0, "", 0, 0.0
        resume, self._resume = self._resume, None
        if resume is not None:
            meta = resume["meta"]
            x = x if x is not None else self.obj.create_vec()
            self.obj.set_from_full(x, resume["arrays"]["theta"])
            self._offset, self._wall0 = int(meta["iteration"]), float(meta["wall_s"])
            # the interrupted run's last row is off the -pinn_monitor_every grid unless it fell on it
            self.history = [list(row) for row in meta["history"] if int(row[0]) % self.monitor_every == 0]
            state = {k[len("solver_"):]: v for k, v in resume["arrays"].items() if k.startswith("solver_")}
            ctx = self._solver_ctx()
            if hasattr(ctx, "load_restart_state"):
                ctx.load_restart_state(self.tao, {**meta["solver_scalars"], **state})
            for hook in self.state_hooks:
                hook.load_restart_state(resume["arrays"], meta)
            self._warn_inexact_resume(ctx)
        x = x if x is not None else self.initial_vec()
        theta0 = resume["arrays"].get("theta0") if resume is not None else self._theta_full(x)
        self._theta0 = theta0 if theta0 is not None and theta0.shape == (self.obj.n_params,) else None
        self.obj.nonfinite = False
        loss0 = self.obj.loss_full(self.obj.gather(x))
        if resume is not None and resume["meta"]["initial_loss"] is not None:
            loss0 = float(resume["meta"]["initial_loss"])
        self._loss0 = loss0
        self.obj.warmup(x)  # torch.func's one-time set-up (~2 s) stays out of the solve's wall time
        self._t0 = time.perf_counter()
        self.tao.setSolution(x)
        max_it = 0 if self.evaluate_only else self.tao.getMaximumIterations()
        if self._offset < max_it:
            self.tao.setMaximumIterations(max_it - self._offset)  # -tao_max_it counts from the first run
            try:
                self._run_tao()
            finally:
                self.tao.setMaximumIterations(max_it)
            reason = int(self.tao.getConvergedReason())
        else:
            reason = int(R.DIVERGED_MAXITS)
        if self._failure:
            raise RunFailedError(self._failure)
        wall = self._wall()
        its = self._offset + (self.tao.getIterationNumber() if self._offset < max_it else 0)
        loss = self._final_loss(x)
        if not math.isfinite(loss):
            loss = self._restore(x)
            if reason >= 0:  # the solver did not notice; say what happened
                reason = int(R.DIVERGED_NAN)
                self.tao.setConvergedReason(reason)
        ctx_msg = getattr(self.tao.getPythonContext(), "message", "") if self.tao_type == "python" else ""
        if self.evaluate_only and not self._message:
            self._message = "evaluate-only run (-tao_max_it 0): θ evaluated, not trained"
        if ctx_msg and not self._message:
            self._message = ctx_msg
        elif self._message and ctx_msg and self._signal:
            self._message = f"{self._message}; {ctx_msg}"
        elif self.obj.nonfinite and not self._message:
            self._message = "non-finite loss met during the solve (rejected by the line search)"
        err = self.obj.rel_l2(x)
        if not self.history or self.history[-1][0] != its:
            self.history.append([its, wall, loss, err])
        compared = self._compared(x, loss, loss0)
        status = self._status(reason, compared["final"], compared["initial"])
        if self.checkpoint and not self.write_checkpoint(x, its, loss):
            self._message += ("; " if self._message else "") + "the final checkpoint could not be written"
        res = Result(its, reason_name(reason), loss, err, wall, self.history, self._message, loss0, status,
                     self._signal, self.outputs())
        res.output_failed = "final checkpoint could not" in self._message  # agreed by every rank
        res.compared = compared
        self._write_outputs(x, res)
        return x, res

    def _attach_adaptation(self) -> None:
        """Batches, RAD and annealed weights (-<prefix>pinn_weights, _resample, _batch_size): the
        monitor goes on after the Trainer's, once; the report gets their events."""
        adapt = self.adaptation
        if adapt is not None and adapt.active and not self._attached:
            adapt.attach(self.tao)
            adapt.last_iteration = self._expected_last_iteration
            self.state_hooks.append(adapt)  # its points, weights and batch index go into the restart state
            self.report_fields.update(adapt.report())  # live lists, filled during the solve
        self._attached = True
        ctx = self._solver_ctx()
        if ctx is not None and hasattr(ctx, "report_fields"):
            self.report_fields.update(ctx.report_fields())

    # -- outputs at the end of a solve --------------------------------------------------------
    def make_report(self, x: PETSc.Vec, res: Result) -> dict[str, Any]:
        """The JSON report of a finished solve (collective: errors are reduced over ranks)."""
        import torch

        obj = self.obj
        rep: dict[str, Any] = {
            "problem": obj.problem.name, "n_params": obj.n_params, "n_points": obj.global_counts,
            "ranks": obj.size, "device": str(obj.model.device), "prefix": self.prefix,
            "tao_type": self.tao_type, "method": self.method or self.tao_type, "hessian": self.settings["hessian"],
            "gram": obj.gram_mode, "seed": obj.seed, "iterations": res.iterations,
            "converged_reason": res.converged_reason, "status": res.status, "exit_code": res.exit_code,
            "message": res.message, "initial_loss": res.initial_loss, "loss": res.loss, "rel_l2": res.rel_l2,
            "max_err": obj.max_error(x), "wall_s": res.wall_s, "evaluations": dict(obj.counts),
            "history": res.history, "outputs": res.outputs, "compared": res.compared,
            "versions": {"torch": torch.__version__, "petsc": ".".join(map(str, PETSc.Sys.getVersion()))},
            **self.report_fields,
        }
        for key, metric in self.report_metrics.items():
            rep[key] = metric(x)
        if res.signal:
            rep["signal"] = res.signal
        extra = getattr(self._solver_ctx(), "stats", None)
        if extra:
            rep["solver_stats"] = extra
        return rep

    def _write_outputs(self, x: PETSc.Vec, res: Result) -> None:
        """-pinn_save, -pinn_vts, -pinn_report: each written atomically on rank 0; a failure is one
        error line and exit code 4 (agreed by every rank), never a damaged file."""
        full = self.prefix + self.options.prefix
        failed: list[str] = []
        theta = self._theta_full(x) if self.settings["save"] or self.settings["vts"] else None
        if self.settings["save"]:
            failed += self._write_rank0("save", lambda fh: save_theta(fh, self.settings["save"], theta))
        if self.settings["vts"]:
            from .export import vts_bytes

            data = vts_bytes(self.obj, x, self.settings["vts_n"])  # collective
            failed += self._write_rank0("vts", lambda fh: fh.write(data))
        self.report = self.make_report(x, res)
        if self.settings["report"]:
            failed += self._write_rank0("report", lambda fh: fh.write(json_bytes(self.report)))
        if max_flags(self.obj.mpi, [1.0 if failed else 0.0])[0]:
            res.output_failed = True
        self.report["exit_code"] = res.exit_code
        for flag, err in failed:
            print(f"pinntao: error: -{full}{flag}: cannot write {self.settings[flag]!r}: {err}", flush=True,
                  file=sys.stderr)

    def _write_rank0(self, flag: str, write: Any) -> list[tuple[str, str]]:
        if self.obj.rank != 0:
            return []
        out = OutputFile(self.settings[flag], flag, warn=False)
        return [] if out.write(write) else [(flag, str(out.last_error))]

    def _final_loss(self, x: PETSc.Vec) -> float:
        theta = self.obj.gather(x)
        loss = self.obj.loss_full(theta)
        finite = math.isfinite(loss) and bool(np.all(np.isfinite(theta.cpu().numpy())))
        return loss if finite else math.nan

    def _restore(self, x: PETSc.Vec) -> float:
        """x has a non-finite loss: put back the last finite iterate and recompute its loss."""
        if self._last_good is not None:
            self._last_good.copy(x)
            loss = self._final_loss(x)
            if math.isfinite(loss):
                self._message = (f"non-finite loss after iteration {self._last_good_its}: stopped, θ restored to "
                                 f"iteration {self._last_good_its} (loss {loss:.3e})")
                return loss
        self._message = "non-finite loss and no finite iterate to restore: θ is unusable"
        return math.nan

    def _compared(self, x: PETSc.Vec, loss: float, loss0: float) -> dict[str, Any]:
        """The two numbers the status compares: the losses of θ₀ and of the final θ, on the same points
        and weights. After RAD or annealing (the objective's ``compare_loss``) both are evaluated
        on the final points and weights; otherwise the initial and final loss are already alike."""
        what = getattr(self.obj, "compare_what", "")
        if what and self._theta0 is not None and math.isfinite(loss):
            import torch

            t0 = torch.as_tensor(self._theta0, dtype=self.obj.model.dtype, device=self.obj.model.device)
            return {"quantity": what, "initial": self.obj.compare_loss(t0),
                    "final": self.obj.compare_loss(self.obj.gather(x))}
        return {"quantity": "loss of θ₀ and of the final θ on the training points", "initial": loss0, "final": loss}

    def _status(self, reason: int, loss: float, loss0: float) -> str:
        if self._signal:
            return "interrupted"
        if not math.isfinite(loss) or (reason < 0 and reason not in BUDGET_REASONS):
            return "diverged"
        if math.isfinite(loss0) and loss > loss0:
            return "loss_increased"
        return "ok"

    def describe(self) -> dict[str, Any]:
        return {"tao_type": self.tao_type}
