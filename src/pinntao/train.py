"""Run TAO on a PinnObjective: monitors, history, NaN guard, time limit, checkpoints.

:class:`Trainer` owns a TAO configured from the options database like any PETSc solver
(``-tao_type``, ``-tao_monitor``, ``-tao_max_it`` ...). Its monitor records the history, keeps
the last finite iterate, and writes atomic checkpoints; a NaN/Inf loss ends the solve with
TAO's DIVERGED_NAN and the last good θ restored.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from petsc4py import PETSc

from .objective import PinnObjective

_REASONS = {
    int(v): k for k, v in vars(PETSc.TAO.ConvergedReason).items() if not k.startswith("_") and isinstance(v, int)
}


def reason_name(reason: int) -> str:
    """TAO converged reason as PETSc spells it, e.g. CONVERGED_GATOL."""
    return _REASONS.get(int(reason), str(int(reason)))


@dataclass
class Result:
    """What a solve did: final state, history rows [iteration, wall_s, loss, rel_l2]."""

    iterations: int
    converged_reason: str
    loss: float
    rel_l2: float
    wall_s: float
    history: list[list[float]] = field(default_factory=list)
    message: str = ""


def save_checkpoint(path: str, theta: np.ndarray) -> None:
    """Write θ to ``path`` (.npy) atomically: a temp file in the same directory, then rename."""
    if not np.all(np.isfinite(theta)):
        raise ValueError("refusing to checkpoint a non-finite θ")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as fh:
        np.save(fh, theta)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Trainer:
    """TAO on a :class:`PinnObjective`, set up from the options database.

    ``tao_type`` is only the default; ``-tao_type`` (or a preset) overrides it.
    """

    def __init__(
        self,
        objective: PinnObjective,
        *,
        tao: PETSc.TAO | None = None,
        tao_type: str = "lmvm",
        hessian: str = "gauss_newton",
        monitor_every: int = 10,
        time_limit: float = 0.0,
        checkpoint: str = "",
        checkpoint_every: int = 100,
        prefix: str | None = None,
    ) -> None:
        self.obj = objective
        self.tao = tao if tao is not None else PETSc.TAO().create(comm=objective.comm)
        if prefix:
            self.tao.setOptionsPrefix(prefix)
        if tao is None:
            self.tao.setType(tao_type)
        objective.setup_tao(self.tao, hessian)
        self.monitor_every = max(1, int(monitor_every))
        self.time_limit = float(time_limit)
        self.checkpoint, self.checkpoint_every = checkpoint, max(1, int(checkpoint_every))
        self.history: list[list[float]] = []
        self._last_good: PETSc.Vec | None = None
        self._t0 = 0.0
        self._last_its = -1
        self.tao.setMonitor(self._monitor)
        self.tao.setFromOptions()

    @property
    def tao_type(self) -> str:
        return self.tao.getType()

    def _theta_full(self, x: PETSc.Vec) -> np.ndarray:
        return self.obj.gather(x).cpu().numpy()

    def _monitor(self, tao: PETSc.TAO) -> None:
        its, f, _gnorm, _cnorm, _xdiff, _reason = tao.getSolutionStatus()
        x = tao.getSolution()
        self._last_its = its
        if not math.isfinite(f):
            return  # keep the previous good iterate; TAO stops with DIVERGED_NAN
        if self._last_good is None:
            self._last_good = x.duplicate()
        x.copy(self._last_good)
        wall = time.perf_counter() - self._t0
        if its % self.monitor_every == 0:
            self.history.append([its, wall, f, self.obj.rel_l2(x)])
        if self.checkpoint and its % self.checkpoint_every == 0:
            self.write_checkpoint(x)
        if self.time_limit > 0 and wall > self.time_limit:
            tao.setConvergedReason(PETSc.TAO.ConvergedReason.CONVERGED_USER)
            self._message = f"time limit {self.time_limit:g} s reached"

    def write_checkpoint(self, x: PETSc.Vec) -> None:
        full = self._theta_full(x)
        if self.obj.rank == 0 and np.all(np.isfinite(full)):
            save_checkpoint(self.checkpoint, full)

    def solve(self, x: PETSc.Vec | None = None) -> tuple[PETSc.Vec, Result]:
        """Minimise from x (default: the model's initial θ); x holds the result."""
        x = x if x is not None else self.obj.initial_vec()
        self.history, self._last_good, self._message = [], None, ""
        self.obj.nonfinite = False
        self.obj.warmup(x)  # torch.func's one-time set-up (~2 s) stays out of the solve's wall time
        self._t0 = time.perf_counter()
        self.tao.setSolution(x)
        try:
            self.tao.solve()
        except PETSc.Error:
            # TAO raises on a non-finite value at an iterate it must accept; anything else is real
            if not self.obj.nonfinite:
                raise
            self.tao.setConvergedReason(PETSc.TAO.ConvergedReason.DIVERGED_NAN)
        wall = time.perf_counter() - self._t0
        its = self.tao.getIterationNumber()
        reason = self.tao.getConvergedReason()
        f = self.tao.getObjectiveValue()
        finite = math.isfinite(f) and bool(np.all(np.isfinite(self._theta_full(x))))
        if not finite:
            if self._last_good is not None:
                self._last_good.copy(x)
            if reason >= 0:  # the solver did not notice; say what happened
                reason = PETSc.TAO.ConvergedReason.DIVERGED_NAN
                self.tao.setConvergedReason(reason)
            self._message = "non-finite loss: stopped, θ restored to the last finite iterate"
        ctx_msg = getattr(self.tao.getPythonContext(), "message", "") if self.tao_type == "python" else ""
        if ctx_msg and not self._message:
            self._message = ctx_msg
        elif self.obj.nonfinite and not self._message:
            self._message = "non-finite loss met during the solve (rejected by the line search)"
        loss = self.obj.loss_full(self.obj.gather(x))
        err = self.obj.rel_l2(x)
        if not self.history or self.history[-1][0] != its:
            self.history.append([its, wall, loss, err])
        if self.checkpoint:
            self.write_checkpoint(x)
        return x, Result(its, reason_name(reason), loss, err, wall, self.history, self._message)

    def describe(self) -> dict[str, Any]:
        return {"tao_type": self.tao_type}
