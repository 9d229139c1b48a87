"""SAV family: the modified energy r² never increases (SAV, RelSAV), each variant equals its
algorithm written out densely in numpy for three steps, a non-finite step keeps the last finite
θ, and bad options are one clear error."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import petsc_options, run_pinntao
from helpers import dense, tiny_objective

from pinntao.presets import preset_options
from pinntao.train import Trainer


def _train(obj, preset, **extra):
    opts = dict(preset_options(preset)) | {k: str(v) for k, v in extra.items()}
    with petsc_options(**opts):
        trainer = Trainer(obj, monitor_every=1)
        x, res = trainer.solve()
    return trainer, x, res


@pytest.mark.parametrize("preset", ["sav", "relsav"])
@pytest.mark.parametrize("dt", [1e-2, 1.0])
def test_energy_never_increases(preset, dt):
    """Theorems 1 and 2: r² is non-increasing for any Δt, also where gradient descent at that Δt
    would blow up (Δt = 1 on this net)."""
    obj = tiny_objective("poisson1d", layers=(8, 8), n_int=30, n_bnd=2)
    trainer, _x, res = _train(obj, preset, tao_max_it=60, tao_sav_dt=dt, tao_sav_C=1.0)
    energy = trainer.tao.getPythonContext().energy
    assert len(energy) == res.iterations + 1 == 61
    diffs = np.diff(energy)
    assert np.all(diffs <= 1e-14 * np.abs(energy[:-1])), diffs.max()
    assert energy[-1] < energy[0]
    assert math.isfinite(res.loss) and res.loss < res.initial_loss


def test_restart_sav_energy_can_rise_but_lower_rule_keeps_it_monotone():
    """ResSAV (every step) follows √(L + C), which is not monotone in general; the 'lower' rule only
    restarts downwards and so keeps r² non-increasing."""
    obj = tiny_objective("poisson1d", layers=(8, 8), n_int=30, n_bnd=2)
    trainer, _, _res = _train(obj, "ressav", tao_max_it=40, tao_sav_dt=0.5, tao_sav_restart="lower")
    e = np.asarray(trainer.tao.getPythonContext().energy)
    assert np.all(np.diff(e) <= 1e-14 * e[:-1])
    assert trainer.tao.getPythonContext().stats["restarts"] > 0


def _dense_sav(obj, theta0, steps, *, kind="sav", adaptive=False, operator="identity", dt=0.1, C=1.0, lam=4.0,
               eta=0.99, b1=0.9, b2=0.999, eps=1e-8):
    """Algorithms 2–5 of the SAV paper, written out with numpy arrays (dense G for 𝓛 = λG)."""

    def loss_grad(th):
        f, g = obj.gradient_full(torch.as_tensor(th))
        return f, g.numpy().copy()

    th = theta0.copy()
    f, g = loss_grad(th)
    r = math.sqrt(f + C)
    m, v = np.zeros_like(th), np.zeros_like(th)
    energy = [r * r]
    for n in range(1, steps + 1):
        q = math.sqrt(f + C)
        if kind == "ressav":
            r = q
        if adaptive:
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            N = m / (1 - b1**n)
            dth = dt / np.sqrt(v / (1 - b2**n) + eps)
            AN = dth * N / (1 + lam * dth)  # Δt̂ (I + Δt̂λ)⁻¹ N̂
            step_metric = 1.0 / dth
        else:
            N = g
            if operator == "gram":
                obj.set_linearization(_vec(obj, th))
                G = dense(obj.gram_mat(), obj.n_params)
                AN = dt * np.linalg.solve(np.eye(th.size) + dt * lam * G, N)
            else:
                AN = dt * N / (1 + dt * lam)
            step_metric = np.full_like(th, 1.0 / dt)
        r_t = r / (1 + N @ AN / (2 * (f + C)))
        new = th - r_t / q * AN
        f, g = loss_grad(new)
        if kind == "relsav":
            r_h = math.sqrt(f + C)
            dd = ((new - th) ** 2 * step_metric).sum()
            a, b, c = (r_t - r_h) ** 2, 2 * r_h * (r_t - r_h), r_h**2 - r_t**2 - eta * dd
            xi = 0.0 if a == 0 or c <= 0 else max(0.0, (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a))
            r_t = xi * r_t + (1 - xi) * r_h
        th, r = new, r_t
        energy.append(r * r)
    return th, energy


def _vec(obj, arr):
    x = obj.create_vec()
    obj.set_from_full(x, arr)
    return x


@pytest.mark.parametrize(
    "preset, extra, dense_kw",
    [
        ("asav", {}, {"adaptive": True}),
        ("sav", {}, {}),
        ("ressav", {}, {"kind": "ressav"}),
        ("relsav", {"tao_sav_dt": 2.0}, {"kind": "relsav", "dt": 2.0}),
        ("asav", {"tao_sav_type": "relsav", "tao_sav_dt": 0.05}, {"kind": "relsav", "adaptive": True, "dt": 0.05}),
        ("sav", {"tao_sav_operator": "gram", "tao_sav_pc_prox_type": "exact"}, {"operator": "gram"}),
    ],
)
def test_variant_equals_dense_algorithm_for_three_steps(preset, extra, dense_kw):
    obj = tiny_objective("poisson2d", layers=(5, 4), n_int=25, n_bnd=12)
    theta0 = obj.gather(obj.initial_vec()).numpy().copy()
    dt = dense_kw.get("dt", 0.1)
    trainer, x, res = _train(obj, preset, **({"tao_max_it": 3, "tao_sav_dt": dt} | extra))
    ref, energy = _dense_sav(obj, theta0, 3, **(dense_kw | {"dt": dt}))
    assert res.iterations == 3
    np.testing.assert_allclose(obj.gather(x).numpy(), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    # absolute tolerance on the scale of r₀²: the paper's quadratic formula for ξ (used by the
    # reference) cancels when r ≪ √(L + C); the solver uses its closed form
    np.testing.assert_allclose(trainer.tao.getPythonContext().energy, energy, rtol=1e-12,
                               atol=1e-13 * energy[0])
    # the dense reference moved θ: the comparison can fail
    assert np.abs(ref - theta0).max() > 1e-4


def test_non_finite_step_keeps_last_finite_theta():
    obj = tiny_objective("poisson1d", layers=(6,), n_int=20, n_bnd=2)
    calls = {"n": 0}
    real = obj.objective_gradient

    def poisoned(tao, x, g):
        calls["n"] += 1
        f = real(tao, x, g)
        return math.nan if calls["n"] == 4 else f

    obj.objective_gradient = poisoned
    _trainer, _x, res = _train(obj, "sav", tao_max_it=10)
    assert res.converged_reason == "DIVERGED_NAN", res
    assert res.iterations == 2 and math.isfinite(res.loss)
    assert "non-finite loss after SAV step 3" in res.message and "θ restored to iterate 2" in res.message


def test_report_has_energy_list(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "asav", "-tao_max_it", "5",
                       "-pinn_report", str(rep))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(rep.read_text())
    assert len(data["energy"]) == 6 and "energy" not in data.get("solver_stats", {})


@pytest.mark.parametrize(
    "args, expect",
    [
        (["-tao_sav_dt", "0"], "-tao_sav_dt: 0.0 is not allowed; must be > 0"),
        (["-tao_sav_C", "-1"], "-tao_sav_C: -1.0 is not allowed; must be > 0"),
        (["-tao_sav_lambda", "-0.5"], "-tao_sav_lambda: -0.5 is not allowed; must be >= 0"),
        (["-tao_sav_eta", "1.5"], "-tao_sav_eta: 1.5 is not allowed; must be in (0, 1]"),
        (["-tao_sav_eta", "0"], "must be in (0, 1]"),
        (["-tao_sav_restart_every", "0"], "-tao_sav_restart_every: 0 is not allowed; must be > 0"),
        (["-tao_sav_type", "fastsav"], "allowed: , sav, ressav, relsav"),
        (["-tao_sav_operator", "gram"], "A-SAV's Δt̂ is elementwise"),
    ],
)
def test_bad_input_is_one_clear_error(args, expect):
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "asav", "-tao_max_it", "2", *args)
    assert proc.returncode == 2, proc.stderr
    assert "pinntao: error:" in proc.stderr and expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("preset", ["asav", "relsav"])
def test_resumed_run_matches_uninterrupted(tmp_path, preset):
    """r, the A-SAV moments and the step count go into the restart state: a run checkpointed at
    iteration 8 and resumed follows the uninterrupted one."""
    small = ("-pinn_problem", "poisson1d", "-pinn_layers", "6", "-pinn_n_interior", "20", "-tao_gatol", "0",
             "-tao_grtol", "0", "-pinn_optimizer", preset, "-tao_sav_dt", "0.05")
    full, res, ck = tmp_path / "full.json", tmp_path / "res.json", tmp_path / "ck.npy"
    for args in ((*small, "-tao_max_it", "16", "-pinn_report", str(full)),
                 (*small, "-tao_max_it", "8", "-pinn_checkpoint", str(ck), "-pinn_checkpoint_every", "4"),
                 ("-pinn_restart", str(ck), "-tao_max_it", "16", "-pinn_report", str(res))):
        proc = run_pinntao(*args)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    a, b = json.loads(full.read_text()), json.loads(res.read_text())
    assert a["iterations"] == b["iterations"] == 16
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-12, abs=0)
    assert b["energy"] == pytest.approx(a["energy"][8:], rel=1e-12)
