"""Named bundles of PETSc options, chosen by ``-pinn_optimizer NAME``.

A preset only fills options the user has not set, so any raw option overrides it.
Adding a method = adding an entry here (and, if TAO lacks it, a class in solvers/).
"""

from __future__ import annotations

from typing import Any

from .errors import PinnInputError

_NG = [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.NaturalGradient"), ("pinn_hessian", "gauss_newton")]

PRESETS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "adam": (
        "Adam (TAO python type), learning rate 1e-3",
        [("tao_type", "python"), ("tao_python_type", "pinntao.solvers.Adam"), ("tao_adam_lr", "1e-3")],
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
        "sketched natural gradient (two-pass), the paper's Algorithm 1 with grid line search",
        [
            *_NG,
            ("ksp_type", "preonly"),
            ("pc_type", "python"),
            ("pc_python_type", "pinntao.pc.SketchedPseudoInverse"),
            ("pc_sketch_passes", "2"),
        ],
    ),
    "sngd_damped": ("SNGD with the damped pseudo-inverse (G_r + μI)⁻¹, μ = 1e-10: robust from a cold start",
                    [*_NG, ("ksp_type", "preonly"), ("pc_type", "python"),
                     ("pc_python_type", "pinntao.pc.SketchedPseudoInverse"), ("pc_sketch_passes", "2"),
                     ("pc_sketch_mu", "1e-10")]),
    "sngd1": (
        "sketched natural gradient, one-pass sketch",
        [
            *_NG,
            ("ksp_type", "preonly"),
            ("pc_type", "python"),
            ("pc_python_type", "pinntao.pc.SketchedPseudoInverse"),
            ("pc_sketch_passes", "1"),
        ],
    ),
    "engd": (
        "energy natural gradient: exact pseudo-inverse of G (dense or kernel form), grid line search",
        [*_NG, ("ksp_type", "preonly"), ("pc_type", "python"), ("pc_python_type", "pinntao.pc.ExactPseudoInverse")],
    ),
    "gn_nystrom": (
        "Gauss-Newton: nls on G with CG preconditioned by the damped Nyström sketch",
        [
            ("tao_type", "nls"),
            ("pinn_hessian", "gauss_newton"),
            ("tao_nls_ksp_type", "cg"),
            ("tao_nls_pc_type", "python"),
            ("tao_nls_pc_python_type", "pinntao.pc.NystromPC"),
        ],
    ),
    "ngcg": (
        "natural gradient with CG on G (Nyström-preconditioned) and grid line search",
        [
            *_NG,
            ("ksp_type", "cg"),
            ("ksp_max_it", "100"),
            ("ksp_rtol", "1e-10"),
            ("pc_type", "python"),
            ("pc_python_type", "pinntao.pc.NystromPC"),
        ],
    ),
}


def preset_options(name: str) -> list[tuple[str, str]]:
    try:
        return list(PRESETS[name][1])
    except KeyError:
        raise PinnInputError(
            f"-pinn_optimizer: unknown preset {name!r}; allowed: {', '.join(sorted(PRESETS))}"
        ) from None


def apply_preset(name: str, db: Any = None) -> list[tuple[str, str]]:
    """Insert the preset's options that the user has not set; return the full expansion."""
    from petsc4py import PETSc

    db = db if db is not None else PETSc.Options()
    opts = preset_options(name)
    for key, value in opts:
        if not db.hasName(key):
            db.setValue(key, value)
    return opts


def print_help(comm: Any = None) -> None:
    from petsc4py import PETSc

    lines = ["pinntao presets (-pinn_optimizer NAME; raw options override):"]
    for name, (text, opts) in sorted(PRESETS.items()):
        lines.append(f"  {name}: {text}\n      " + " ".join(f"-{k} {v}" for k, v in opts))
    PETSc.Sys.Print("\n".join(lines), comm=comm)
