"""The one base class of pinntao's TAO python types: protocol, iteration loop, restart state.

A solver subclasses :class:`Solver`, declares its :class:`~pinntao.options.OptionSet` and its
restart state as data (``state_vecs``: Vecs in the parameter layout; ``state_scalars``: numbers
or lists of numbers), and writes :meth:`Solver.step`. The base class owns what every solver
shared before: PETSc's Create/SetFromOptions/SetUp/View/Destroy split (``-help`` from the
class's options, misspelt options refused, work Vecs made once), and the loop of
``TaoSolve``: evaluate, monitor, convergence test, iteration cap, re-evaluation when a monitor
changed the objective (:meth:`objective_changed`), restore of the last iterate after a
non-finite step, and a stop with a TAO reason and one message (:meth:`stop`).
See docs/writing_a_solver.md.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from petsc4py import PETSc

from ..errors import PinnInputError
from ..options import OptionSet, help_requested

R = PETSc.TAO.ConvergedReason
_BIG = 1e308  # strict JSON has no inf: restart scalars store ±inf as ±1e308


def pinn_operator(tao: PETSc.TAO) -> Any:
    """The PinnObjective behind the Tao's Hessian operator, or None (no Hessian, or a foreign one)."""
    H = tao.getHessian()[0]
    if H is None or not H.handle or H.getType() != PETSc.Mat.Type.PYTHON:
        return None
    return getattr(H.getPythonContext(), "obj", None)


class Solver:
    """Base of a TAO python type: ``-tao_type python -tao_python_type pinntao.solvers.NAME``.

    Class attributes a subclass sets: ``options`` (its OptionSet, prefix ``tao_<name>_``),
    ``extra_options`` (more sets, e.g. a subclass's own), ``state_vecs``/``state_scalars``
    (attribute names saved in a restart file), ``work_vecs`` (θ-layout work Vecs made at the
    first solve and kept until destroy), ``ksp_suffix`` (the KSP's prefix after the Tao's, or
    None when the solver uses no KSP), ``needs_operator`` (``"pinntao"``: the Tao's Hessian must be
    a pinntao operator, :meth:`pinntao.PinnObjective.setup_tao`; ``"hessian"``: any Hessian Mat),
    ``restore_nonfinite`` (True: θ is copied before each step and put back when the step's loss
    is not finite).
    """

    options: ClassVar[OptionSet]
    extra_options: ClassVar[tuple[OptionSet, ...]] = ()
    state_vecs: ClassVar[tuple[str, ...]] = ()
    state_scalars: ClassVar[tuple[str, ...]] = ()
    work_vecs: ClassVar[tuple[str, ...]] = ("g",)
    ksp_suffix: ClassVar[str | None] = None
    lazy_ksp: ClassVar[bool] = False  # True: the KSP is made (and printed by -tao_view) only when the options use it
    default_ksp: ClassVar[tuple[str, str]] = ("preonly", "")  # KSP type, python PC type ('' : PC none)
    memory_model: ClassVar[str] = ""  # what the CLI's memory estimate counts ("kernel": an N × N solve)
    needs_operator: ClassVar[str] = ""  # "": none; "hessian": a Hessian Mat; "pinntao": a PinnObjective's
    restore_nonfinite: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from ..registry import register_solver

        register_solver(cls)

    def __init__(self) -> None:
        self.opts: dict[str, Any] = {}
        self.message = ""
        self.stats: dict[str, Any] = {}
        self.its = 0  # iterations completed in the current solve
        self._stale = False
        self._pending: dict[str, Any] | None = None
        self._work: list[PETSc.Vec] = []

    # -- options -----------------------------------------------------------------------------
    @classmethod
    def option_sets(cls) -> tuple[OptionSet, ...]:
        return (cls.options, *cls.extra_options)

    def read_options(self, prefix: str) -> dict[str, Any]:
        """This solver's options under the Tao's prefix (subclasses add derived defaults)."""
        out: dict[str, Any] = {}
        for oset in self.option_sets():
            out.update(oset.read(prefix))
        return out

    def _ensure_opts(self, tao: PETSc.TAO) -> None:
        if not self.opts:
            self.opts = self.read_options(tao.getOptionsPrefix() or "")

    def ksp_prefix(self, tao: PETSc.TAO) -> str:
        return (tao.getOptionsPrefix() or "") + (self.ksp_suffix or "")

    # -- PETSc's Create / SetFromOptions / SetUp / View / Destroy -----------------------------
    def create(self, tao: PETSc.TAO) -> None:
        if self.ksp_suffix is not None and not self.lazy_ksp:
            self._default_ksp(tao)

    def _default_ksp(self, tao: PETSc.TAO) -> None:
        """The KSP's prefix and this solver's default KSP and PC types (options override them)."""
        self._ksp_made = True
        ksp = tao.getKSP()
        ksp.setOptionsPrefix(self.ksp_prefix(tao))
        ksp.setType(self.default_ksp[0])
        pc = ksp.getPC()
        if self.default_ksp[1]:
            pc.setType(PETSc.PC.Type.PYTHON)
            pc.setPythonType(self.default_ksp[1])
        else:
            pc.setType(PETSc.PC.Type.NONE)

    def setFromOptions(self, tao: PETSc.TAO) -> None:
        prefix = tao.getOptionsPrefix() or ""
        if help_requested():
            for oset in self.option_sets():
                oset.print_help(tao.getComm(), prefix, current=True)
        for oset in self.option_sets():
            oset.check_unknown(prefix, ignore=("ksp_", "pc_"))
        self.opts = self.read_options(prefix)
        if self.ksp_suffix is not None and self.uses_ksp():
            ksp = self.ksp(tao)
            ksp.setOptionsPrefix(self.ksp_prefix(tao))  # again: the Tao's prefix may be set after its type
            ksp.setFromOptions()
        self.configure(tao)

    def ksp(self, tao: PETSc.TAO) -> PETSc.KSP:
        """The Tao's KSP, with this solver's prefix and defaults (made now if it is made lazily)."""
        if self.lazy_ksp and not getattr(self, "_ksp_made", False):
            self._default_ksp(tao)
        return tao.getKSP()

    def uses_ksp(self) -> bool:
        """Whether the current options use the Tao's KSP (its options are read only then)."""
        return True

    def configure(self, tao: PETSc.TAO) -> None:
        """Hook after the options are read (nested objects, defaults of sub-objects)."""

    def setUp(self, tao: PETSc.TAO) -> None:
        self._ensure_opts(tao)
        self.check_operator(tao)

    def check_operator(self, tao: PETSc.TAO, need: str = "") -> Any:
        """The pinntao operator the solver needs (``need``: what this configuration needs, default
        ``needs_operator``), or one PinnInputError naming what is missing."""
        need = need or self.needs_operator
        obj = pinn_operator(tao)
        H = tao.getHessian()[0]
        missing = H is None or not H.handle
        if (need == "pinntao" and obj is None) or (need == "hessian" and missing):
            what = "no Hessian" if missing else f"a Hessian Mat of type {H.getType()!r}"
            need = "a pinntao operator" if need == "pinntao" else "an operator"
            raise PinnInputError(
                f"{self.type_name()} needs {need} as the Tao's Hessian (PinnObjective.setup_tao(tao), or "
                f"TAOSetHessian); the Tao has {what}")
        return obj

    @classmethod
    def type_name(cls) -> str:
        return f"pinntao.solvers.{cls.__name__}"

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII(f"  {self.describe()}\n")
        viewer.printfASCII("  " + " ".join(f"{k}={v}" for k, v in self.current_options().items()) + "\n")
        if self.message:
            viewer.printfASCII(f"  last solve: {self.message}\n")

    def describe(self) -> str:
        """One line: the method (the first line of the class docstring)."""
        return f"{type(self).__name__}: " + (type(self).__doc__ or "").strip().splitlines()[0]

    def report_fields(self) -> dict[str, Any]:
        """Entries this solver adds to the run report (live objects, filled during the solve)."""
        return {}

    def current_options(self) -> dict[str, Any]:
        """The options as the solver uses them now (a solver may adapt one, e.g. ISGD's α)."""
        return dict(self.opts)

    def destroy(self, tao: PETSc.TAO) -> None:
        for v in self._work:
            v.destroy()
        self._work = []
        for name in self.work_vecs:
            setattr(self, name, None)

    # -- restart state, declared as data -------------------------------------------------------
    def restart_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """What an exact restart needs besides θ: the declared Vecs and scalars, plus extras."""
        out: dict[str, Any] = {}
        for name in self.state_scalars:
            val = getattr(self, name, None)
            if val is not None:
                out[name] = _encode(val)
        for name in self.state_vecs:
            vec = getattr(self, name, None)
            if vec is not None:
                out[name] = vec
        return {**out, **self.extra_state(tao)}

    def load_restart_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        """Keep a checkpoint's state for the next solve (applied after :meth:`preSolve`)."""
        self._pending = dict(state)
        self.load_extra_state(tao, state)

    def extra_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        """Restart state that is not an attribute (e.g. a PC's)."""
        return {}

    def load_extra_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        pass

    def _apply_pending(self, x: PETSc.Vec) -> bool:
        st, self._pending = self._pending, None
        if not st:
            return False
        a, b = x.getOwnershipRange()
        for name in self.state_scalars:
            if name in st:
                old = getattr(self, name, None)
                setattr(self, name, _decode(st[name], old))
        for name in self.state_vecs:
            vec = getattr(self, name, None)
            if name in st and vec is not None:
                vec.setArray(np.asarray(st[name], dtype=np.float64)[a:b])
        self.resumed(st)
        return True

    def resumed(self, state: dict[str, Any]) -> None:
        """Hook: a checkpoint's state was applied (for state that is not a declared attribute)."""

    # -- the loop ----------------------------------------------------------------------------
    def objective_changed(self, tao: PETSc.TAO) -> None:
        """A monitor changed the loss (new points, batch or loss weights): L and ∇L are evaluated
        again at θ before the next step, so the step compares like with like."""
        self._stale = True

    def stop(self, tao: PETSc.TAO, reason: int, message: str) -> None:
        """End the solve with a TAO reason and one message (printed, in the report)."""
        self.message = message
        self.stats["message"] = message
        PETSc.Sys.Print(f"  {type(self).__name__}: {message}", comm=tao.getComm())
        tao.setConvergedReason(reason)

    def evaluate(self, tao: PETSc.TAO, x: PETSc.Vec) -> float:
        """L(x), with ∇L(x) into ``self.g``."""
        return tao.computeObjectiveGradient(x, self.g)

    def _make_work(self, x: PETSc.Vec) -> None:
        if self._work and self._work[0].getSizes() == x.getSizes():
            return
        for v in self._work:
            v.destroy()
        names = self.work_vecs + (("_prev",) if self.restore_nonfinite else ())
        self._work = [x.duplicate() for _ in names]
        for name, v in zip(names, self._work, strict=True):
            setattr(self, name, v)

    def solve(self, tao: PETSc.TAO) -> None:
        self._ensure_opts(tao)
        self.check_operator(tao)
        x = tao.getSolution()
        self._make_work(x)
        self.message, self._stale, self.its = "", False, 0
        self.stats = self.new_stats()
        self.preSolve(tao, x)
        self._apply_pending(x)
        f = self.evaluate(tao, x)
        f = self.started(tao, x, f)
        tao.setIterationNumber(0)
        tao.monitor(0, f, self.g.norm(), 0.0, 0.0)
        reason = tao.checkConverged()
        max_it = tao.getMaximumIterations()
        while reason == R.CONTINUE_ITERATING:
            if self.its >= max_it:
                tao.setConvergedReason(R.DIVERGED_MAXITS)
                break
            if self._stale:  # a monitor changed the loss: L, ∇L at θ on the new one
                f = self.evaluate(tao, x)
                self._stale = False
                self.refreshed(f)
            if self.restore_nonfinite:
                x.copy(self._prev)  # restored by copy: undoing a step arithmetically loses θ on overflow
            out = self.step(tao, x, f)
            if out is None:  # the step called stop()
                break
            f, length = out
            if self.restore_nonfinite and not math.isfinite(f):
                self._prev.copy(x)
                f = self.evaluate(tao, x)
                tao.setIterationNumber(self.its)
                self.stop(tao, R.DIVERGED_NAN, self.nonfinite_message(f))
                break
            self.its += 1
            self.accepted(f)
            tao.setIterationNumber(self.its)
            tao.monitor(self.its, f, self.g.norm(), 0.0, length)
            reason = tao.checkConverged()
            if reason == R.CONTINUE_ITERATING:
                why = self.postStep(tao, f)
                if why:
                    self.stop(tao, R.CONVERGED_USER, why)
                    reason = R.CONVERGED_USER
        self.postSolve(tao)
        self.stats["iterations"] = self.its

    # hooks of the loop (petsc4py's TAOPYTHON names where it has them)
    def new_stats(self) -> dict[str, Any]:
        return {}

    def preSolve(self, tao: PETSc.TAO, x: PETSc.Vec) -> None:
        """Before the first evaluation: reset the per-solve state (a checkpoint's is applied after)."""

    def started(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> float:
        """After the first evaluation, before iteration 0's monitor; returns L."""
        return f

    def step(self, tao: PETSc.TAO, x: PETSc.Vec, f: float) -> tuple[float, float] | None:
        """One iteration from θ = x with L = f: update x in place, leave ∇L(x) in ``self.g`` and
        return (L(x), the step length for the monitor); or call :meth:`stop` and return None."""
        raise NotImplementedError

    def accepted(self, f: float) -> None:
        """After a step was taken and counted (``self.its`` is its number), before the monitor."""

    def refreshed(self, f: float) -> None:
        """After the re-evaluation that followed :meth:`objective_changed`."""

    def postStep(self, tao: PETSc.TAO, f: float) -> str:
        """After the monitor, when TAO's tests let the solve go on: a reason to stop, or ''."""
        return ""

    def postSolve(self, tao: PETSc.TAO) -> None:
        """After the loop."""

    def nonfinite_message(self, f: float) -> str:
        return (f"non-finite loss after step {self.its + 1}: stopped, θ restored to iterate {self.its} "
                f"(loss {f:.3e})")


def _encode(val: Any) -> Any:
    if isinstance(val, (list, tuple)):
        return [_encode(v) for v in val]
    if isinstance(val, bool):
        return float(val)
    if isinstance(val, float) and not math.isfinite(val):
        return _BIG if val > 0 else -_BIG
    return val


def _decode(val: Any, like: Any) -> Any:
    if isinstance(val, (list, tuple, np.ndarray)):
        return [_decode(v, 0.0) for v in val]
    v = float(val)
    if abs(v) >= _BIG:
        v = math.copysign(math.inf, v)
    if isinstance(like, bool):
        return bool(v)
    if isinstance(like, int):
        return int(v)
    return v


def require_pinn_operator(tao: PETSc.TAO, who: str) -> Any:
    """The PinnObjective behind the Tao's Hessian or one clear error (used where a solver needs it)."""
    obj = pinn_operator(tao)
    if obj is None:
        raise PinnInputError(f"{who} needs a pinntao operator as the Tao's Hessian (PinnObjective.setup_tao(tao))")
    return obj
