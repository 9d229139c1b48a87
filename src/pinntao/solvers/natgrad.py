"""Natural-gradient / Gauss-Newton line-search method as a TAO python type.

Each iteration linearises the Hessian operator at θ (TAO's Hessian callback: the Gram
matrix G = JᵀJ by default), solves G d = ∇L with the Tao's KSP, and steps θ ← θ − η d.
The KSP and PC pick the method by options:

- SNGD: ``-tao_ng_ksp_type preonly -tao_ng_pc_type python -tao_ng_pc_python_type pinntao.pc.SketchedPseudoInverse``
- ENGD: ``-tao_ng_ksp_type preonly -tao_ng_pc_type python -tao_ng_pc_python_type pinntao.pc.ExactPseudoInverse``
- Gauss-Newton-CG: ``-tao_ng_ksp_type cg`` (optionally ``-tao_ng_pc_python_type pinntao.pc.NystromPC``)

The KSP's options prefix is the Tao's prefix + ``tao_ng_`` (as TAO's nls gives its KSP ``tao_nls_``),
so two prefixed natural-gradient solves in one program are configured apart.

η comes from the papers' grid line search (η = base^j, j = 0..steps−1, all candidates
evaluated in one batched pass; the best one wins) or from the Tao's own TaoLineSearch
(``-tao_ng_linesearch tao``, then ``-tao_ls_type`` picks it). A non-finite direction, a
non-descent direction or no decrease ends the solve with a TAO diverged reason; θ stays at
the last accepted iterate.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from petsc4py import PETSc

from ..options import Option, OptionSet, help_requested, positive

LINESEARCHES = ("grid", "tao")
R = PETSc.TAO.ConvergedReason


class NaturalGradient:
    """TAO python context: ``-tao_type python -tao_python_type pinntao.solvers.NaturalGradient``."""

    options = OptionSet(
        "Natural-gradient TAO (pinntao.solvers.NaturalGradient)",
        "tao_ng_",
        [
            Option(
                "linesearch",
                "str",
                "grid",
                "grid: best of η = base^j in one batched pass; tao: the Tao's TaoLineSearch",
                choices=list(LINESEARCHES),
            ),
            Option("ls_steps", "int", 31, "grid line search: number of candidates", check=positive, check_text="> 0"),
            Option(
                "ls_chunk",
                "int",
                4,
                "grid line search: candidates per batched pass; stops at the first interior "
                "minimum (= ls_steps: exhaustive)",
                check=positive,
                check_text="> 0",
            ),
            Option(
                "ls_base",
                "float",
                0.5,
                "grid line search: η = base^j",
                check=lambda v: 0 < v < 1,
                check_text="in (0, 1)",
            ),
        ],
    )
    default_pc = "pinntao.pc.SketchedPseudoInverse"

    def __init__(self) -> None:
        self.opts: dict[str, Any] = {}
        self.message = ""
        self.stats: dict[str, Any] = {}

    def restart_state(self, tao: PETSc.TAO) -> dict[str, Any]:
        return pc_restart_state(tao)

    def load_restart_state(self, tao: PETSc.TAO, state: dict[str, Any]) -> None:
        load_pc_restart_state(tao, state)

    def create(self, tao: PETSc.TAO) -> None:
        ksp = tao.getKSP()
        ksp.setOptionsPrefix(ksp_prefix(tao))
        ksp.setType(PETSc.KSP.Type.PREONLY)
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonType(self.default_pc)

    def setFromOptions(self, tao: PETSc.TAO) -> None:
        prefix = tao.getOptionsPrefix() or ""
        if help_requested():
            self.options.print_help(tao.getComm(), prefix)
        self.opts = self.options.read(prefix)
        ksp = tao.getKSP()
        ksp.setOptionsPrefix(ksp_prefix(tao))  # again: the Tao's prefix may be set after its type
        ksp.setFromOptions()

    def setUp(self, tao: PETSc.TAO) -> None:
        if not self.opts:
            self.opts = self.options.read(tao.getOptionsPrefix() or "")

    def view(self, tao: PETSc.TAO, viewer: PETSc.Viewer) -> None:
        viewer.printfASCII(
            "  natural-gradient step d = KSP(G) ∇L, " + " ".join(f"{k}={v}" for k, v in self.opts.items()) + "\n"
        )
        tao.getKSP().view(viewer)

    # -- the iteration ---------------------------------------------------------------------
    def _objective_of(self, H: PETSc.Mat) -> Any:
        ctx = H.getPythonContext() if H.getType() == PETSc.Mat.Type.PYTHON else None
        return getattr(ctx, "obj", None)

    def _stop(self, tao: PETSc.TAO, reason: int, message: str) -> None:
        self.message = message
        self.stats["message"] = message
        PETSc.Sys.Print(f"  NaturalGradient: {message}", comm=tao.getComm())
        tao.setConvergedReason(reason)

    def _grid_search(self, tao: PETSc.TAO, obj: Any, x: PETSc.Vec, d: PETSc.Vec, f: float, work: PETSc.Vec) -> float:
        """argmin_j L(θ − base^j d) over the grid, evaluated ``ls_chunk`` candidates at a time
        (one batched pass each), from η = 1 down. It stops once a chunk holds a decrease that is
        not at the chunk's smallest η: along a descent direction L(θ − η d) then rises again
        toward f as η → 0 (set ls_chunk = ls_steps for the exhaustive grid)."""
        etas = self.opts["ls_base"] ** np.arange(self.opts["ls_steps"], dtype=np.float64)
        theta = dt = None
        if obj is not None:
            theta, dt = obj.gather(x), obj.gather(d)
        best_f, best_eta = f, 0.0
        chunk = self.opts["ls_chunk"]
        for start in range(0, etas.size, chunk):
            cand = etas[start : start + chunk]
            if obj is not None:
                fs = obj.losses_along(theta, dt, torch.as_tensor(cand, dtype=theta.dtype, device=theta.device))
            else:  # a foreign objective: one evaluation per candidate
                fs = []
                for eta in cand:
                    x.copy(work)
                    work.axpy(-eta, d)
                    fs.append(tao.computeObjective(work))
                fs = np.asarray(fs)
            self.stats["ls_evals"] = self.stats.get("ls_evals", 0) + cand.size
            fs = np.where(np.isfinite(fs), fs, np.inf)
            j = int(np.argmin(fs))
            if fs[j] < best_f:
                best_f, best_eta = float(fs[j]), float(cand[j])
                if j < cand.size - 1:
                    break
            elif best_eta > 0:
                break
        return best_eta

    def solve(self, tao: PETSc.TAO) -> None:
        x = tao.getSolution()
        g, d, work = x.duplicate(), x.duplicate(), x.duplicate()
        H, Hp, _ = tao.getHessian()
        obj = self._objective_of(H)
        ksp = tao.getKSP()
        ls = tao.getLineSearch() if self.opts["linesearch"] == "tao" else None
        if ls is not None:
            ls.useTAORoutine(tao)
        max_it = tao.getMaximumIterations()
        self.message, self.stats = (
            "",
            {"ksp_its": 0, "eta": [], "time_s": {"direction": 0.0, "linesearch": 0.0, "gradient": 0.0}},
        )
        clock = self.stats["time_s"]

        f = tao.computeObjectiveGradient(x, g)
        its = 0
        tao.setIterationNumber(0)
        tao.monitor(its, f, g.norm(), 0.0, 0.0)
        reason = tao.checkConverged()
        while reason == R.CONTINUE_ITERATING:
            if its >= max_it:
                tao.setConvergedReason(R.DIVERGED_MAXITS)
                break
            t0 = time.perf_counter()
            tao.computeHessian(x, H, Hp)
            ksp.setOperators(H, Hp)
            ksp.solve(g, d)
            clock["direction"] += time.perf_counter() - t0
            self.stats["ksp_its"] += ksp.getIterationNumber()
            slope = g.dot(d)
            if ksp.getConvergedReason() < 0 and not math.isfinite(d.norm()):
                self._stop(
                    tao, R.DIVERGED_NAN, f"KSP failed ({ksp.getConvergedReason()}): non-finite direction, step rejected"
                )
                break
            if not math.isfinite(slope):
                self._stop(tao, R.DIVERGED_NAN, "non-finite direction, step rejected")
                break
            if slope <= 0:
                self._stop(tao, R.DIVERGED_LS_FAILURE, f"not a descent direction (∇Lᵀd = {slope:.3e}), step rejected")
                break
            if ls is None:
                t0 = time.perf_counter()
                eta = self._grid_search(tao, obj, x, d, f, work)
                clock["linesearch"] += time.perf_counter() - t0
                if eta == 0.0:
                    self._stop(tao, R.DIVERGED_LS_FAILURE, "grid line search found no decrease")
                    break
                x.axpy(-eta, d)
                t0 = time.perf_counter()
                f = tao.computeObjectiveGradient(x, g)
                clock["gradient"] += time.perf_counter() - t0
            else:
                x.copy(work)
                d.scale(-1.0)
                f_new, eta, lsr = ls.apply(x, g, d)
                if lsr < 0 or not math.isfinite(f_new):
                    work.copy(x)
                    f = tao.computeObjectiveGradient(x, g)
                    self._stop(tao, R.DIVERGED_LS_FAILURE, f"TAO line search failed (reason {lsr})")
                    break
                f = f_new
            self.stats["eta"].append(eta)
            its += 1
            tao.setIterationNumber(its)
            tao.monitor(its, f, g.norm(), 0.0, eta)
            reason = tao.checkConverged()
        pc_ctx = ksp.getPC().getPythonContext() if ksp.getPC().getType() == PETSc.PC.Type.PYTHON else None
        if pc_ctx is not None and hasattr(pc_ctx, "stats"):
            self.stats["pc"] = pc_ctx.stats


def ksp_prefix(tao: PETSc.TAO) -> str:
    """Options prefix of a NaturalGradient Tao's KSP: ``<tao prefix>tao_ng_``."""
    return (tao.getOptionsPrefix() or "") + NaturalGradient.options.prefix


def pc_restart_state(tao: PETSc.TAO) -> dict[str, Any]:
    """What an exact restart needs besides θ from a Tao's sketch PC: its adaptive size and its count
    of factorisations (the seed of the next test matrix)."""
    pc = tao.getKSP().getPC()
    ctx = pc.getPythonContext() if pc.getType() == PETSc.PC.Type.PYTHON else None
    if ctx is None or not hasattr(ctx, "stats"):
        return {}
    return {"pc_k": float(getattr(ctx, "k", 0)), "pc_factorizations": float(ctx.stats.get("factorizations", 0)),
            "pc_changes": float(getattr(ctx, "_changes", 0))}


def load_pc_restart_state(tao: PETSc.TAO, state: dict[str, Any]) -> None:
    """Put the sketch PC back where :func:`pc_restart_state` found it (before the next solve)."""
    pc = tao.getKSP().getPC()
    ctx = pc.getPythonContext() if pc.getType() == PETSc.PC.Type.PYTHON else None
    if ctx is None or "pc_factorizations" not in state:
        return
    if hasattr(ctx, "k"):
        ctx.k = int(state["pc_k"])
    ctx.stats["factorizations"] = int(state["pc_factorizations"])
    ctx._changes = int(state["pc_changes"])
