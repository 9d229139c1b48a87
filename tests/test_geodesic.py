"""Geodesic acceleration (``-tao_ng_geodesic``): the residual's second derivative along d against
differences and autograd, the corrected step against a dense computation, Transtrum's acceptance
test, bad combinations refused."""

import pytest
import torch
from conftest import petsc_options, run_pinntao
from helpers import perturbed_theta, tiny_objective

from pinntao.presets import preset_options
from pinntao.train import Trainer


@pytest.mark.parametrize("gram", ["explicit", "matfree"])
def test_second_derivative_along_d(gram):
    """r_dd = d²/dt² r(θ − t d) at 0: exact (forward over forward) against a central difference,
    the one-sided form converging to it as O(h), J d and Jᵀ r_dd against autograd's dense J."""
    obj = tiny_objective(layers=(5, 4), gram=gram)
    assert obj.gram_mode == gram
    theta = obj.gather(perturbed_theta(obj))
    d = 0.3 * torch.randn(obj.n_params, generator=torch.Generator().manual_seed(3), dtype=theta.dtype)
    r0, Jd, rdd, b = obj.second_derivative_along(theta, d, 0.0)
    eps = 1e-3
    central = (obj.residual(theta + eps * d) - 2 * obj.residual(theta) + obj.residual(theta - eps * d)) / eps**2
    scale = rdd.abs().max()
    assert scale > 1e-3
    assert (rdd - central).abs().max() < 1e-5 * scale
    J = torch.func.jacrev(obj.residual)(theta)
    torch.testing.assert_close(r0, obj.residual(theta), rtol=0, atol=0)
    torch.testing.assert_close(Jd, J @ d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b, J.T @ rdd, rtol=1e-10, atol=1e-10 * b.abs().max().item())
    errs = [(obj.second_derivative_along(theta, d, h)[2] - rdd).abs().max() / scale for h in (1e-2, 1e-3)]
    assert errs[1] < 0.2 * errs[0] and errs[1] < 1e-2, errs


def test_geodesic_step_is_the_dense_correction():
    """One step with fixed damping μ: θ₁ = θ₀ − ηd − ½η²a, d = (G + μI)⁻¹∇L, a = (G + μI)⁻¹Jᵀr_dd."""
    obj = tiny_objective(layers=(5, 4))
    mu = 1e-3
    opts = dict(preset_options("engd")) | {"tao_max_it": "1", "tao_ng_damping": "fixed", "tao_ng_damping_init": str(mu),
                                          "tao_ng_pc_engd_rtol": "1e-14", "tao_ng_geodesic": "1",
                                          "tao_ng_geodesic_h": "0", "tao_ng_geodesic_alpha": "0"}
    with petsc_options(**opts):
        trainer = Trainer(obj)
    x0 = perturbed_theta(obj)
    theta0 = obj.gather(x0).clone()
    x, res = trainer.solve(x0)
    assert res.iterations == 1
    eta = trainer.tao.getPythonContext().stats["eta"][0]
    J = torch.func.jacrev(obj.residual)(theta0)
    r = obj.residual(theta0)
    A = J.T @ J + mu * torch.eye(obj.n_params, dtype=J.dtype)
    d = torch.linalg.solve(A, J.T @ r)
    rdd = torch.func.jvp(lambda th: torch.func.jvp(obj.residual, (th,), (d,))[1], (theta0,), (d,))[1]
    a = torch.linalg.solve(A, J.T @ rdd)
    assert a.norm() > 1e-3 * d.norm()  # the correction is not negligible here
    want = theta0 - eta * d - 0.5 * eta**2 * a
    err = (obj.gather(x) - want).norm()
    assert err < 1e-6 * (0.5 * eta**2 * a).norm() and err < 1e-8 * want.norm(), (err, eta, a.norm())


def _run(preset, **extra):
    obj = tiny_objective("poisson1d", layers=(8, 8), n_int=40, n_bnd=2)
    opts = dict(preset_options(preset)) | {"tao_max_it": "15"} | {k: str(v) for k, v in extra.items()}
    with petsc_options(**opts):
        trainer = Trainer(obj)
    _, res = trainer.solve()
    return res, trainer.tao.getPythonContext().stats


def test_a_bent_path_is_dropped_or_damped():
    """Transtrum's test 2‖a‖/‖d‖ ≤ α: with α → 0 every correction fails it. Without damping the
    correction is dropped (the run is the plain one, bit for bit); with LM damping the step is
    retried with more damping."""
    plain, _ = _run("sngd_paper")
    dropped, st = _run("sngd_paper", tao_ng_geodesic=1, tao_ng_geodesic_alpha=1e-300)
    assert st["geodesic_dropped"] == dropped.iterations == plain.iterations
    assert [h[2] for h in dropped.history] == [h[2] for h in plain.history]
    kept, st = _run("sngd_paper", tao_ng_geodesic=1, tao_ng_geodesic_alpha=0)
    assert st["geodesic_dropped"] == 0 and kept.history[-1][2] != plain.history[-1][2]
    lm, st = _run("sngd_lm", tao_ng_geodesic=1, tao_ng_geodesic_alpha=1e-300)
    _, st0 = _run("sngd_lm")
    # every path bends: each iteration damps 6 times (-tao_ng_retries), then steps without the correction
    assert st["retries"] == 7 * lm.iterations and st["geodesic_dropped"] == lm.iterations > 0, st["retries"]
    assert min(st["mu"]) > max(st0["mu"])


def test_geodesic_refuses_the_tao_line_search():
    """A TaoLineSearch searches along a line, not the parabola: one line, exit 2, no training."""
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_layers", "4", "-pinn_optimizer", "sngd",
                       "-tao_ng_linesearch", "tao", "-tao_max_it", "2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "-tao_ng_geodesic: the parabolic step needs -tao_ng_linesearch grid or backtrack" in proc.stderr
    assert "iterations=" not in proc.stdout


def test_geodesic_refuses_the_kernel_step():
    """SPRING / kernel ENGD solve with their own kernel factor, not the KSP the correction uses."""
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_layers", "4", "-pinn_optimizer", "engd_kernel",
                       "-tao_ng_geodesic", "1", "-tao_max_it", "2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "-tao_ng_geodesic: Spring solves with its own kernel step" in proc.stderr

