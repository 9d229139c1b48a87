"""Solver schedules as a TAO python type: run TAO solvers one after another on the same θ.

``-tao_type python -tao_python_type pinntao.solvers.Schedule -tao_schedule_stages isgd,lbfgs``.
Each stage is a nested Tao named by a preset (``-pinn_optimizer`` names); its options live under
the prefix ``<tao prefix><stage>_`` (``-isgd_tao_isgd_alpha 0.5``, ``-adam_tao_adam_lr 1e-4``,
``-lbfgs_tao_lmvm_mat_lmvm_hist_size 20``), and the preset fills only what is not set there.
A stage ends after its ``-tao_schedule_its`` iterations, when its loss (or gradient norm) has
plateaued (``-tao_schedule_plateau_window``/``_rtol``), or by its own options (e.g.
``-adam_tao_max_it``); the next stage starts from its θ. The schedule's own Tao sees one
continuous iteration count: its monitors (``-tao_monitor``, the Trainer's time limit and
checkpoints) and its tolerances and ``-tao_max_it`` apply across all stages.
"""

from __future__ import annotations

import math
from typing import Any

from petsc4py import PETSc

from ..errors import PinnInputError
from ..objective import HessianContext
from ..options import Option, OptionSet, check_tao_type, nonnegative, positive
from .base import Solver

R = PETSc.TAO.ConvergedReason
PLATEAU_ON = ("loss", "gnorm")
_UNLIMITED = 2**31 - 2


class Schedule(Solver):
    """TAO python context running its stages' Taos in turn, carrying θ across."""

    options = OptionSet(
        "Solver schedule (pinntao.solvers.Schedule)",
        "tao_schedule_",
        [
            Option("stages", "str", "", "comma-separated stages, each a preset name; stage S reads its options "
                   "under the prefix S_"),
            Option("its", "ints", None, "iterations of every stage but the last, e.g. 200 or 200,1000"),
            Option("plateau_window", "int", 0, "switch when the loss (gnorm) fell by less than plateau_rtol over "
                   "this many iterations (0: off)", check=nonnegative, check_text=">= 0"),
            Option("plateau_rtol", "float", 1e-3, "relative decrease that counts as progress over the window",
                   check=positive, check_text="> 0"),
            Option("plateau_on", "str", "loss", "quantity the plateau test watches", choices=list(PLATEAU_ON)),
        ],
    )

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.stages: list[PETSc.TAO] = []
        self._outer: PETSc.TAO | None = None
        self._offset = 0
        self._index = 0
        self._trace: list[float] = []
        self._done = R.CONTINUE_ITERATING
        self._base = 0  # iterations the current stage did before a restart
        self._first = 0  # the stage a (resumed) solve starts in

    # -- exact restart ---------------------------------------------------------------------
    def restart_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """The running stage, its iterations so far and its solver's own state (keys ``s_*``).
        A plateau window restarts empty after a resume."""
        if not self.stages or self._outer is None:
            return {}
        st = self.stages[self._index]
        ctx = st.getPythonContext() if st.getType() == PETSc.TAO.Type.PYTHON else None
        inner = ctx.restart_state(st) if hasattr(ctx, "restart_state") else {}
        return {"stage": float(self._index), "stage_its": float(self._base + st.getIterationNumber()),
                **{f"s_{k}": v for k, v in inner.items()}}

    def load_restart_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        self._pending = state if "stage" in state else None

    def objective_changed(self, tao: PETSc.TAO) -> None:
        """The loss changed: the running stage re-evaluates (if it is a pinntao type)."""
        if self.stages:
            st = self.stages[self._index]
            ctx = st.getPythonContext() if st.getType() == PETSc.TAO.Type.PYTHON else None
            if hasattr(ctx, "objective_changed"):
                ctx.objective_changed(st)

    def resume_note(self, tao: PETSc.TAO) -> str:
        """What the resumed stage cannot restore ("" if nothing): a built-in TAO stage's private state."""
        if not self._pending or not self.stages:
            return ""
        i = int(self._pending["stage"])
        st = self.stages[i]
        if st.getType() != PETSc.TAO.Type.PYTHON:
            return (f"stage {self.names[i]!r} (TAO {st.getType()}) keeps its internal state (e.g. the L-BFGS "
                    "history) private; it restarts empty")
        ctx = st.getPythonContext()
        return f"stage {self.names[i]!r}: {ctx.resume_note(st)}" if hasattr(ctx, "resume_note") and \
            ctx.resume_note(st) else ""

    # -- configuration ---------------------------------------------------------------------
    def configure(self, tao: PETSc.TAO) -> None:
        self.names = self._stage_names(tao.getOptionsPrefix() or "")
        self._build(tao)

    def _stage_names(self, prefix: str) -> list[str]:
        from ..presets import PRESETS

        names = [s for s in self.opts["stages"].replace(" ", "").split(",") if s]
        flag = f"-{prefix}tao_schedule_"
        if not names:
            raise PinnInputError(f"{flag}stages: give one or more stages; allowed: {', '.join(sorted(PRESETS))}")
        unknown = [s for s in names if s not in PRESETS]
        if unknown:
            raise PinnInputError(f"{flag}stages: unknown stage {unknown[0]!r}; allowed: {', '.join(sorted(PRESETS))}")
        dup = {s for s in names if names.count(s) > 1}
        if dup:
            raise PinnInputError(f"{flag}stages: stage {sorted(dup)[0]!r} appears twice; each stage needs its own "
                                 "prefix (define a second preset or use raw options)")
        its = self.opts["its"]
        if its is not None and len(its) != len(names) - 1:
            raise PinnInputError(f"{flag}its: {len(names)} stages need {len(names) - 1} iteration counts "
                                 f"(every stage but the last), got {len(its)}")
        if len(names) > 1 and its is None and self.opts["plateau_window"] == 0:
            raise PinnInputError(f"{flag}its or {flag}plateau_window: stage {names[0]!r} has no rule to end it")
        return names

    def _build(self, tao: PETSc.TAO) -> None:
        from ..presets import preset_defaults

        for st in self.stages:
            st.destroy()
        self.stages = []
        prefix = tao.getOptionsPrefix() or ""
        H, P, _ = tao.getHessian()
        obj = _objective_of(H)
        for name in self.names:
            sp = f"{prefix}{name}_"
            st = PETSc.TAO().create(comm=tao.getComm())
            st.setOptionsPrefix(sp)
            st.setType(PETSc.TAO.Type.LMVM)
            st.setMaximumIterations(_UNLIMITED)  # the schedule's -tao_max_it and switch rules govern
            st.setMaximumFunctionEvaluations(PETSc.UNLIMITED)
            st.setTolerances(gatol=0.0, grtol=0.0, gttol=0.0)  # the schedule's own tolerances apply
            if obj is not None:
                obj.setup_tao(st, "exact" if isinstance(H.getPythonContext(), HessianContext) else "gauss_newton")
            else:
                _forward_callbacks(tao, st, H, P)
            st.setMonitor(self._stage_monitor)
            with preset_defaults(name, prefix=sp, objective_level=False):  # the stage's defaults, not left behind
                check_tao_type(sp)
                st.setFromOptions()
            self.stages.append(st)

    def setUp(self, tao: PETSc.TAO) -> None:
        if not self.stages:
            self.setFromOptions(tao)

    def destroy(self, tao: PETSc.TAO) -> None:
        for st in self.stages:
            st.destroy()
        self.stages = []
        super().destroy(tao)

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII(f"  schedule of {len(self.stages)} stages: {' -> '.join(self.names)}; "
                           + " ".join(f"{k}={v}" for k, v in self.opts.items() if k != "stages") + "\n")
        for name, st in zip(self.names, self.stages, strict=False):
            viewer.printfASCII(f"  stage {name!r} (prefix {st.getOptionsPrefix()}):\n")
            st.view(viewer)

    # -- the run ---------------------------------------------------------------------------
    def _stage_monitor(self, st: PETSc.TAO) -> None:
        its, f, gnorm, cnorm, xdiff, _ = st.getSolutionStatus()
        outer = self._outer
        assert outer is not None
        total = self._offset + its
        if its > 0 or self._index == self._first:  # a later stage's iteration 0 is the previous stage's last
            outer.setIterationNumber(total)
            outer.monitor(total, f, gnorm, cnorm, xdiff)
            reason = outer.checkConverged()
            if reason != R.CONTINUE_ITERATING:
                self._done = reason
                st.setConvergedReason(R.CONVERGED_USER)
                return
        if self._index == len(self.stages) - 1:
            return
        its_rule = self.opts["its"]
        if its_rule is not None and self._base + its >= its_rule[self._index]:
            self._switch(st, f"{self._base + its} iterations")
            return
        window = self.opts["plateau_window"]
        if window:
            q = f if self.opts["plateau_on"] == "loss" else gnorm
            self._trace.append(q)
            if len(self._trace) > window:
                old = self._trace[-window - 1]
                if math.isfinite(q) and old - q <= self.opts["plateau_rtol"] * abs(old):
                    self._switch(st, f"{self.opts['plateau_on']} plateau over {window} iterations")

    def _switch(self, st: PETSc.TAO, why: str) -> None:
        self.stats["stages"][-1]["switch"] = why
        st.setConvergedReason(R.CONVERGED_USER)

    def solve(self, tao: PETSc.TAO) -> None:
        from ..train import reason_name

        if not self.stages:
            self.setFromOptions(tao)
        self._outer = tao
        x = tao.getSolution()
        self._offset, self._done, self.message = 0, R.CONTINUE_ITERATING, ""
        self.stats = {"stages": []}
        tao.setConvergedReason(R.CONTINUE_ITERATING)
        resume, self._pending = self._pending, None
        self._first = int(resume["stage"]) if resume else 0
        for i, (name, st) in enumerate(zip(self.names, self.stages, strict=True)):
            if i < self._first:
                continue
            self._index, self._trace, self._base = i, [], 0
            if resume and i == self._first:
                self._base = int(resume["stage_its"])
                ctx = st.getPythonContext() if st.getType() == PETSc.TAO.Type.PYTHON else None
                if hasattr(ctx, "load_restart_state"):
                    ctx.load_restart_state(st, {k[2:]: v for k, v in resume.items() if k.startswith("s_")})
            self.stats["stages"].append({"name": name, "start": self._offset})
            st.setSolution(x)
            st.solve()
            reason = st.getConvergedReason()
            n = st.getIterationNumber()
            self._offset += n
            info = self.stats["stages"][-1]
            info.update(iterations=n, reason=reason_name(self._done if self._done != R.CONTINUE_ITERATING else reason))
            ctx = st.getPythonContext() if st.getType() == PETSc.TAO.Type.PYTHON else None
            if getattr(ctx, "stats", None):
                info["stats"] = ctx.stats
            if getattr(ctx, "message", ""):
                info["message"] = ctx.message
            if self._done != R.CONTINUE_ITERATING:
                break
            if reason == R.DIVERGED_NAN:  # θ is the stage's last finite iterate; nothing later can use it
                self._done = reason
                break
            if i == len(self.stages) - 1:
                self._done = reason
        tao.setIterationNumber(self._offset)
        tao.setConvergedReason(self._done)
        parts = []
        for s in self.stats["stages"]:
            end = s.get("switch") or s["reason"]
            parts.append(f"{s['name']} {s['iterations']} its ({end}{': ' + s['message'] if 'message' in s else ''})")
        self.message = "stages: " + "; ".join(parts)


def _objective_of(H: PETSc.Mat | None) -> Any:
    if H is None or H.getType() != PETSc.Mat.Type.PYTHON:
        return None
    return getattr(H.getPythonContext(), "obj", None)


def _forward_callbacks(outer: PETSc.TAO, st: PETSc.TAO, H: PETSc.Mat | None, P: PETSc.Mat | None) -> None:
    """A foreign objective: the stage evaluates through the schedule's own Tao callbacks."""
    st.setObjective(lambda t, y: outer.computeObjective(y))
    st.setObjectiveGradient(lambda t, y, g: outer.computeObjectiveGradient(y, g), None)
    st.setGradient(lambda t, y, g: outer.computeGradient(y, g), None)
    if H is not None and H.getType() is not None:
        st.setHessian(lambda t, y, A, B: outer.computeHessian(y, A, B), H, P)
