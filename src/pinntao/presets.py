"""Named bundles of PETSc options, chosen by ``-pinn_optimizer NAME``.

A preset is a set of object defaults, as a PETSc object sets its own: the owner (the Trainer, a
schedule stage) holds them in the options database only while it configures its objects
(:func:`preset_defaults`) and removes them afterwards, so an unrelated TAO, a second Trainer or a
user's KSP never sees them and ``-options_left`` reports none. A preset only fills options the
user has not set, so any raw option overrides it. Adding a method = adding an entry here (and, if
TAO lacks it, one class in solvers/ on :class:`pinntao.solvers.base.Solver`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import PinnInputError

_NG = [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.NaturalGradient"), ("pinn_hessian", "gauss_newton")]
_ISGD = [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.ImplicitGD")]
_ADAM = [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.Adam"), ("tao_adam_lr", "1e-3")]
# natural-gradient stopping: a least-squares loss near zero has a tiny gradient long before it has
# converged (TAO's gatol 1e-8 stopped ENGD at rel. L2 1e-6), so stop when the loss stalls instead;
# an explicit -tao_gatol / -tao_grtol still wins
_NG_STOP = [("tao_gatol", "0"), ("tao_grtol", "0"), ("tao_ng_stall_its", "200"), ("tao_ng_stall_rtol", "1e-3")]
_SKETCH = [("tao_ng_ksp_type", "preonly"), ("tao_ng_pc_type", "python"),
           ("tao_ng_pc_python_type", "pinntao.pc.SketchedPseudoInverse")]
# the scale-aware two-pass sketch: eigenvalues kept when λ > 1e-15 λ_max, no absolute cut
_REL_CUT = [("tao_ng_pc_sketch_passes", "2"), ("tao_ng_pc_sketch_rtol", "1e-15"), ("tao_ng_pc_sketch_tol", "1e-300")]
# the Jacobian sketch (a randomized SVD of J, λ = σ²) resolves eigenvalues far below eps·λ_max: a deeper cut (the
# default sngd)
_JAC_CUT = [("tao_ng_pc_sketch_jacobian", "1"), ("tao_ng_pc_sketch_rtol", "1e-18"), ("tao_ng_pc_sketch_tol", "1e-300")]
# Levenberg-Marquardt: μ = c·L with c from the gain ratio, accept-first line search
_LM = [("tao_ng_linesearch", "backtrack"), ("tao_ng_damping", "adaptive"), ("tao_ng_damping_init", "1")]
_KERNEL = [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.Spring"), ("pinn_hessian", "gauss_newton")]
_SPRING = [*_KERNEL, *_LM, *_NG_STOP]
# the public Woodbury-ENGD code: (JJᵀ + μI)y = r with μ = 1e-10 and the grid line search; the
# damping grows only after a rejected step (a safeguard, not a brake), and returns to 1e-10
_WOODBURY = [*_KERNEL, ("tao_ng_linesearch", "grid"), ("tao_ng_damping", "safeguard"),
             ("tao_ng_damping_floor", "1e-10"), *_NG_STOP]

PRESETS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "adam": (
        "Adam (TAO python type), learning rate 1e-3",
        _ADAM,
    ),
    "lbfgs": ("TAO L-BFGS (lmvm) with More-Thuente line search", [("tao_type", "lmvm")]),
    "newton": (
        "Newton-Krylov (nls) on the exact Hessian, Steihaug CG",
        [("tao_type", "nls"), ("pinn_hessian", "exact")],
    ),
    "gn": (
        "Gauss-Newton: nls on G = JᵀJ with CG, no preconditioner",
        [
            ("tao_type", "nls"),
            ("pinn_hessian", "gauss_newton"),
            ("tao_nls_ksp_type", "cg"),
            ("tao_nls_pc_type", "none"),
        ],
    ),
    "brgn": (
        "TAO's regularized Gauss-Newton (brgn, l2prox) on the residual Vec and the shell Jacobian",
        [("tao_type", "brgn")],
    ),
    "sngd": (
        "sketched natural gradient, scale-aware: a randomized SVD of J (Q = orth(JᵀΩ), Ω a CountSketch when N >= 4k, "
        "λ = σ² from the SVD of J Q: eigenvalues resolved far below eps·λ_max), relative cut λ > 1e-18 λ_max (no "
        "absolute cut), Levenberg-Marquardt damping μ = c·L (c from the gain ratio) with geodesic acceleration (a bent "
        "path is a rejection), warm-started accept-first line search, stops when the loss stalls",
        [*_NG, *_SKETCH, *_JAC_CUT, *_LM, ("tao_ng_geodesic", "1"), *_NG_STOP],
    ),
    "sngd_gram": (
        "sngd with the two-pass sketch of G instead of J (relative cut λ > 1e-15 λ_max: the rounding floor of G's "
        "products); takes -tao_ng_pc_sketch_warm and -tao_ng_pc_sketch_passes 1 (the default until 2026-12-03, "
        "second sitting)",
        [*_NG, *_SKETCH, *_REL_CUT, *_LM, ("tao_ng_geodesic", "1"), *_NG_STOP],
    ),
    "sngd_lm": (
        "sngd_gram without geodesic acceleration: straight Levenberg-Marquardt steps on the sketch of G (the default "
        "until 2026-12-03)",
        [*_NG, *_SKETCH, *_REL_CUT, *_LM, *_NG_STOP],
    ),
    "sngd_sg": (
        "sngd with the safeguard rule: undamped steps and the best-of-grid line search; a step that finds no "
        "decrease or only one shorter than η = 2.5e-4 is retried with μ = c·L (c from 1e-2), and c falls 10× per "
        "accepted damped step, back to 0",
        [*_NG, *_SKETCH, *_REL_CUT, ("tao_ng_damping", "safeguard"), ("tao_ng_damping_eta_min", "2.5e-4"),
         ("tao_ng_damping_decay", "0.1"), *_NG_STOP],
    ),
    "sngd_paper": (
        "the sketched-NG paper's Algorithm 1 as published: two-pass sketch, absolute cut 1e-13, no damping, "
        "best-of-grid line search η = 0.5^j",
        [*_NG, *_SKETCH, ("tao_ng_pc_sketch_passes", "2"), *_NG_STOP],
    ),
    "sngd_damped": ("SNGD with the damped pseudo-inverse (G_r + μI)⁻¹, μ = 1e-10: robust from a cold start",
                    [*_NG, ("tao_ng_ksp_type", "preonly"), ("tao_ng_pc_type", "python"),
                     ("tao_ng_pc_python_type", "pinntao.pc.SketchedPseudoInverse"), ("tao_ng_pc_sketch_passes", "2"),
                     ("tao_ng_pc_sketch_mu", "1e-10"), *_NG_STOP]),
    "sngd1": (
        "sketched natural gradient, one-pass sketch",
        [
            *_NG,
            ("tao_ng_ksp_type", "preonly"),
            ("tao_ng_pc_type", "python"),
            ("tao_ng_pc_python_type", "pinntao.pc.SketchedPseudoInverse"),
            ("tao_ng_pc_sketch_passes", "1"),
            *_NG_STOP,
        ],
    ),
    "engd": (
        "energy natural gradient: exact pseudo-inverse of G (dense or kernel form), grid line search",
        [*_NG, ("tao_ng_ksp_type", "preonly"), ("tao_ng_pc_type", "python"),
         ("tao_ng_pc_python_type", "pinntao.pc.ExactPseudoInverse"), *_NG_STOP],
    ),
    "engd_kernel": (
        "ENGD in kernel (Woodbury) form d = Jᵀ(JJᵀ + μI)⁻¹r, Cholesky of the N × N kernel, μ = 1e-10 (raised "
        "only after a rejected step), grid line search: the published Woodbury ENGD",
        [*_WOODBURY, ("tao_spring_momentum", "0"), ("tao_spring_solve", "cholesky")],
    ),
    "engd_kernel_lm": (
        "kernel ENGD with Levenberg-Marquardt μ = c·L and the accept-first line search (engd_kernel before "
        "the safeguard damping)",
        [*_SPRING, ("tao_spring_momentum", "0"), ("tao_spring_solve", "cholesky")],
    ),
    "spring": (
        "SPRING: the kernel step with momentum β = 0.9 carried through the Woodbury solve, LM damping",
        [*_SPRING, ("tao_spring_momentum", "0.9"), ("tao_spring_solve", "cholesky")],
    ),
    "spring_nystrom": (
        "SPRING with the kernel solve by CG preconditioned with a randomized Nyström factor of JJᵀ (K never formed)",
        [*_SPRING, ("tao_spring_momentum", "0.9"), ("tao_spring_solve", "nystrom")],
    ),
    # gn_nystrom (nls + NystromPC) was removed: NLS's trust-region CG measures its radius in the PC's
    # norm, and the Nyström weights 1/(λ + μ) spread over ~13 decades on G, so the radius means
    # nothing (poisson2d: rel. L2 0.55 after 120 s, 1.2 after 40 s). ngcg is the same Gauss-Newton-CG
    # with the Nyström PC, globalised by LM damping instead (poisson2d: 2e-5 in 40 s).
    "ngcg": (
        "natural gradient with CG on the damped G + μI (Levenberg-Marquardt μ = c·L), Nyström-preconditioned, "
        "true-residual norm, accept-first line search",
        [
            *_NG,
            ("tao_ng_ksp_type", "cg"),
            ("tao_ng_ksp_max_it", "100"),
            ("tao_ng_ksp_rtol", "1e-10"),
            ("tao_ng_pc_type", "python"),
            ("tao_ng_pc_python_type", "pinntao.pc.NystromPC"),
            *_LM,
            *_NG_STOP,
        ],
    ),
    "isgd": (
        "implicit gradient descent: each step solves argmin ½‖θ − θₙ‖² + αL(θ) by 20 L-BFGS iterations; α = 0.1 "
        "growing ×1.5 per step (pseudo-transient continuation; -tao_isgd_alpha_growth 1: the paper's constant α)",
        [*_ISGD, ("tao_isgd_type", "proximal"), ("tao_isgd_alpha", "0.1"), ("tao_isgd_alpha_growth", "1.5"),
         ("isgd_inner_tao_type", "lmvm"), ("isgd_inner_tao_max_it", "20")],
    ),
    "isgd_linearized": (
        "linearized implicit step θ − α(I + αG)⁻¹∇L through the sketched proximal PC (Woodbury); α = 0.1, ×2 after "
        "a decrease, ÷2 and retried otherwise (Levenberg-Marquardt with μ = 1/α)",
        [*_ISGD, ("pinn_hessian", "gauss_newton"), ("tao_isgd_type", "linearized"), ("tao_isgd_alpha", "0.1"),
         ("tao_isgd_alpha_growth", "2"), ("tao_isgd_ksp_type", "preonly"), ("tao_isgd_pc_type", "python"),
         ("tao_isgd_pc_python_type", "pinntao.pc.ProximalPC"), ("tao_isgd_pc_prox_type", "sketch")],
    ),
}

_SCHEDULE = [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.Schedule")]


def _schedule(text: str, stages: list[str], rule: list[tuple[str, str]], stage_opts: list[tuple[str, str]]):
    """A schedule preset, written out in full: its stages' presets under their prefixes."""
    opts, override = [*_SCHEDULE, ("tao_schedule_stages", ",".join(stages)), *rule], dict(stage_opts)
    for name in stages:
        for k, v in PRESETS[name][1]:
            if not k.startswith("pinn_"):
                opts.append((f"{name}_{k}", override.pop(f"{name}_{k}", v)))
    return text, [*opts, *override.items()]


PRESETS.update(
    isgd_adam=_schedule(
        "the ISGD paper's 'ISGD, Adam': 100 implicit steps (α = 0.5 growing ×1.5, inner L-BFGS), then Adam with "
        "lr 1e-4 (1e-3 undoes the implicit stage's accuracy near a minimiser)",
        ["isgd", "adam"], [("tao_schedule_its", "100")], [("isgd_tao_isgd_alpha", "0.5"), ("adam_tao_adam_lr", "1e-4")],
    ),
    isgd_lbfgs=_schedule(
        "the ISGD paper's 'ISGD, L-BFGS': 100 implicit steps (α = 0.5 growing ×1.5, inner L-BFGS), then L-BFGS",
        ["isgd", "lbfgs"], [("tao_schedule_its", "100")], [("isgd_tao_isgd_alpha", "0.5")],
    ),
    adam_lbfgs=_schedule(
        "the review's Adam → L-BFGS switch when the loss has plateaued (less than 1 % decrease over 500 its)",
        ["adam", "lbfgs"], [("tao_schedule_plateau_window", "500"), ("tao_schedule_plateau_rtol", "1e-2")], [],
    ),
)

_SAV = [("tao_type", "python")]
PRESETS.update(
    sav=("SAV (the SAV paper's Algorithm 2): energy-stable explicit step, 𝓛 = λI, Δt 0.01, C 1, λ 4",
         [*_SAV, ("tao_python_type", "pinntao.solvers.SAV")]),
    ressav=("restart SAV (Algorithm 3): r ← √(L + C) every step",
            [*_SAV, ("tao_python_type", "pinntao.solvers.ResSAV")]),
    relsav=("relaxed SAV (Algorithm 4, η = 0.99): r relaxed toward √(L + C), energy still non-increasing",
            [*_SAV, ("tao_python_type", "pinntao.solvers.RelSAV")]),
    asav=("adaptive SAV (Algorithm 5): Adam's moments give N̂ and Δt̂ = Δt/√(v̂ + ε), Δt 0.01",
          [*_SAV, ("tao_python_type", "pinntao.solvers.ASAV")]),
)


def preset_options(name: str) -> list[tuple[str, str]]:
    try:
        return list(PRESETS[name][1])
    except KeyError:
        raise PinnInputError(
            f"-pinn_optimizer: unknown preset {name!r}; allowed: {', '.join(sorted(PRESETS))}"
        ) from None


def expansion(name: str, *, prefix: str = "", objective_level: bool = True) -> list[tuple[str, str]]:
    """The preset's (option, value) pairs under ``prefix``. ``objective_level=False`` drops the
    ``pinn_*`` options (a nested solver, e.g. a schedule stage, shares its owner's objective)."""
    return [(prefix + k, v) for k, v in preset_options(name) if objective_level or not k.startswith("pinn_")]


def apply_preset(name: str, db: Any = None, *, prefix: str = "", objective_level: bool = True) -> list[tuple[str, str]]:
    """Insert the preset's options that the user has not set into ``db`` (default: the global
    database), each under ``prefix``, and leave them there; return the expansion. For a script
    that configures its own objects from a database it owns; the Trainer uses
    :func:`preset_defaults`, which leaves nothing behind."""
    from petsc4py import PETSc

    db = db if db is not None else PETSc.Options()
    opts = expansion(name, prefix=prefix, objective_level=objective_level)
    for key, value in opts:
        if not db.hasName(key):
            db.setValue(key, value)
    return opts


@contextmanager
def preset_defaults(name: str, *, prefix: str = "", objective_level: bool = True,
                    db: Any = None) -> Iterator[list[tuple[str, str]]]:
    """The preset's options as defaults while the owner configures its objects (``setFromOptions``
    inside the ``with``): inserted where the user set nothing, removed on exit. Yields the expansion."""
    from petsc4py import PETSc

    db = db if db is not None else PETSc.Options()
    opts = expansion(name, prefix=prefix, objective_level=objective_level) if name else []
    inserted = []
    for key, value in opts:
        if not db.hasName(key):
            db.setValue(key, value)
            inserted.append(key)
    try:
        yield opts
    finally:
        for key in inserted:
            db.delValue(key)


def print_help(comm: Any = None) -> None:
    from petsc4py import PETSc

    lines = ["pinntao presets (-pinn_optimizer NAME; raw options override):"]
    for name, (text, opts) in sorted(PRESETS.items()):
        lines.append(f"  {name}: {text}\n      " + " ".join(f"-{k} {v}" for k, v in opts))
    PETSc.Sys.Print("\n".join(lines), comm=comm)
