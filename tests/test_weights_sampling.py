"""Annealed loss weights match a hand computation; batches and RAD points are functions of
(seed, iteration) only and identical on 1 and 2 ranks; RAD favours large residuals; SAV keeps its
energy bound on mini-batches; bad input is one clear error."""

import itertools
import json
import time

import numpy as np
import pytest
import torch
from conftest import petsc_options, run_pinntao
from helpers import check_on_one_and_two_ranks, interrupted_and_resumed, perturbed_theta, tiny_objective

from pinntao.models import autograd_jet
from pinntao.sampling import (
    ADAPT_OPTIONS,
    Adaptation,
    batch_counts,
    draw_batch,
    rad_points,
    redraw_points,
    set_points,
)
from pinntao.train import Trainer
from pinntao.weights import annealed_weights, block_gradients


def _opts(**kw):
    return {o.name: o.default for o in ADAPT_OPTIONS} | kw


def _hand_block_losses(obj, theta):
    """½ (w_b/N_b) Σ R_b(x)² per block from autograd jets of u_θ (not pinntao's Residual)."""
    pts = obj.problem.sample(obj.global_counts, obj.seed)
    out = {}
    for b in obj.problem.blocks:
        x = torch.as_tensor(pts[b.name])
        jet = autograd_jet(lambda p: obj.model.u(theta, p[None])[0], x, b.order)
        r = b.residual(jet, x)
        out[b.name] = 0.5 * b.weight / x.shape[0] * (r * r).sum()
    return out


def test_annealed_weights_match_hand_computation():
    obj = tiny_objective("heat1d", layers=(5, 4), n_int=23, n_bnd=9)  # blocks interior, boundary, initial
    theta = obj.gather(perturbed_theta(obj)).requires_grad_(True)
    losses = _hand_block_losses(obj, theta)
    hand = {k: torch.autograd.grad(v, theta, retain_graph=True)[0].detach().numpy() for k, v in losses.items()}
    g_max = np.abs(hand["interior"]).max()
    lam = {"interior": 1.0, "boundary": 1.0, "initial": 1.0}
    expect = {"interior": 1.0} | {k: 0.1 * 1.0 + 0.9 * g_max / np.abs(hand[k]).mean() for k in ("boundary", "initial")}
    th = theta.detach()
    got = annealed_weights(block_gradients(obj, th, lam), {b.name: b.kind for b in obj.problem.blocks}, lam, 0.9)
    for k in expect:
        assert got[k] == pytest.approx(expect[k], rel=1e-12)
    assert got["boundary"] != pytest.approx(1.0, rel=1e-3)  # the update moved the weight
    # a second update from those weights: the gradients of the multiplied loss are divided back out,
    # so λ̂ is the same and λ = 0.1 λ_old + 0.9 λ̂
    set_points(obj, obj.problem.sample(obj.global_counts, obj.seed), got)
    again = annealed_weights(block_gradients(obj, th, got), {b.name: b.kind for b in obj.problem.blocks}, got, 0.9)
    for k in ("boundary", "initial"):
        assert again[k] == pytest.approx(0.1 * got[k] + 0.9 * (expect[k] - 0.1) / 0.9, rel=1e-12)
    # -pinn_weights_mean weighted: the denominator is mean |∇(λᵢLᵢ)| = λᵢ mean |∇Lᵢ|
    kinds = {b.name: b.kind for b in obj.problem.blocks}
    alt = annealed_weights(block_gradients(obj, th, got), kinds, got, 0.9, weighted_mean=True)
    for k in ("boundary", "initial"):
        assert alt[k] == pytest.approx(0.1 * got[k] + 0.9 * (expect[k] - 0.1) / 0.9 / got[k], rel=1e-12)
    # the weighted loss the solvers see is ½ Σ λ_b (w_b/N_b) ‖R_b‖²
    want = sum(got[k] * v.item() for k, v in losses.items())
    assert obj.loss_full(th) == pytest.approx(want, rel=1e-12)


def test_annealed_weights_shared_by_kind():
    """-pinn_weights_share kind: u(0) and u_t(0) (both of kind initial) get one λ from the gradient of
    their summed loss, as the authors' Klein-Gordon code weights them; the boundary keeps its own."""
    obj = tiny_objective("klein_gordon1d", layers=(5, 4), n_int=23, n_bnd=9)
    theta = obj.gather(perturbed_theta(obj)).requires_grad_(True)
    losses = _hand_block_losses(obj, theta)
    hand = {k: torch.autograd.grad(v, theta, retain_graph=True)[0].detach().numpy() for k, v in losses.items()}
    g_max = np.abs(hand["interior"]).max()
    g_init = hand["initial"] + hand["initial_velocity"]
    kinds = {b.name: b.kind for b in obj.problem.blocks}
    lam = dict.fromkeys(kinds, 1.0)
    th = theta.detach()
    got = annealed_weights(block_gradients(obj, th, lam), kinds, lam, 0.9, share="kind")
    assert got["initial"] == got["initial_velocity"] == pytest.approx(0.1 + 0.9 * g_max / np.abs(g_init).mean(),
                                                                      rel=1e-12)
    assert got["boundary"] == pytest.approx(0.1 + 0.9 * g_max / np.abs(hand["boundary"]).mean(), rel=1e-12)
    apart = annealed_weights(block_gradients(obj, th, lam), kinds, lam, 0.9)  # one λ per block
    assert apart["initial"] != pytest.approx(apart["initial_velocity"], rel=1e-3)
    # the authors' denominator mean |∇(λ Σ L)| with the shared λ in force
    set_points(obj, obj.problem.sample(obj.global_counts, obj.seed), got)
    lam2 = got["initial"]
    alt = annealed_weights(block_gradients(obj, th, got), kinds, got, 0.1, weighted_mean=True, share="kind")
    want = 0.9 * lam2 + 0.1 * g_max / (lam2 * np.abs(g_init).mean())
    assert alt["initial"] == alt["initial_velocity"] == pytest.approx(want, rel=1e-12)


def test_batches_are_seeded_and_proportional():
    obj = tiny_objective("heat1d", layers=(4,), n_int=50, n_bnd=20)
    full = obj.problem.sample(obj.global_counts, obj.seed)
    assert batch_counts({"a": 50, "b": 20, "c": 20}, 30) == {"a": 17, "b": 7, "c": 6}
    assert batch_counts({"a": 100, "b": 2}, 10) == {"a": 9, "b": 1}  # at least one point per block
    b1, b2, b3 = draw_batch(full, 30, 7, 4), draw_batch(full, 30, 7, 4), draw_batch(full, 30, 7, 5)
    assert all(np.array_equal(b1[k], b2[k]) for k in b1)
    assert not np.array_equal(b1["interior"], b3["interior"])
    assert sum(v.shape[0] for v in b1.values()) == 30
    for k, v in b1.items():  # distinct rows of the full set
        rows = {tuple(r) for r in full[k]}
        assert all(tuple(r) in rows for r in v) and len({tuple(r) for r in v}) == v.shape[0]


def test_rad_prefers_large_residuals_and_c_flattens():
    obj = tiny_objective("poisson2d", layers=(6, 6), n_int=60, n_bnd=12)
    theta = obj.gather(perturbed_theta(obj))
    sharp, info = rad_points(obj, theta, "interior", 60, 2000, beta=2.0, c=0.0, seed=1, index=1)
    assert sharp.shape == (60, 2) and len({tuple(r) for r in sharp}) == 60
    assert info["chosen_mean_abs_residual"] > 1.3 * info["pool_mean_abs_residual"]
    _, flat = rad_points(obj, theta, "interior", 60, 2000, beta=2.0, c=1e6, seed=1, index=1)
    assert flat["chosen_mean_abs_residual"] < 1.15 * flat["pool_mean_abs_residual"]
    again, _ = rad_points(obj, theta, "interior", 60, 2000, beta=2.0, c=0.0, seed=1, index=1)
    assert np.array_equal(again, sharp)


def test_relsav_energy_bound_holds_on_mini_batches_with_annealing():
    obj = tiny_objective("heat1d", layers=(6, 6), n_int=40, n_bnd=10)
    with petsc_options(tao_type="python", tao_python_type="pinntao.solvers.RelSAV", tao_max_it=30,
                       tao_sav_dt=0.5):
        trainer = Trainer(obj, monitor_every=1)
        adapt = Adaptation(obj, _opts(batch_size=25, batch_every=3, weights="annealing", weights_every=5))
        adapt.attach(trainer.tao)
        x, res = trainer.solve()
    e = np.asarray(trainer.tao.getPythonContext().energy)
    assert len(e) == 31 and np.all(np.diff(e) <= 1e-14 * e[:-1])
    assert adapt.batch_info["drawn"] == 1 + 30 // 3
    assert [w["iteration"] for w in adapt.history["weights"]] == [0, 5, 10, 15, 20, 25, 30]
    # the Trainer's initial and final loss are the problem's loss on all points with unit weights
    adapt.finish()
    assert res.loss == pytest.approx(adapt.reference_loss(obj.gather(x)), rel=1e-12)


@pytest.mark.mpi
def test_batches_rad_and_weights_identical_on_one_and_two_ranks():
    one, two = check_on_one_and_two_ranks("adapt_check.py")
    assert one["size"] == 1 and two["size"] == 2
    for key in ("rad0", "batch3", "first_batch", "last_batch", "full"):  # bitwise: functions of (seed, iteration)
        assert one[key] == two[key], key
    assert one["resample"] == two["resample"] == [3, 6]
    assert len(one["weights"]) == len(two["weights"]) == 4
    for a, b in zip(one["weights"], two["weights"], strict=True):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-10) for k in a)
    np.testing.assert_allclose(two["energy"], one["energy"], rtol=1e-10)
    np.testing.assert_allclose(two["history"], one["history"], rtol=1e-9)


def test_report_records_events(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "sav", "-tao_max_it", "20",
                       "-pinn_weights", "annealing", "-pinn_weights_every", "5", "-pinn_resample", "rad",
                       "-pinn_resample_every", "10", "-pinn_batch_size", "40", "-pinn_report", str(rep))
    assert proc.returncode in (0, 3), proc.stderr  # 3: the unit-weight loss may rise while boundaries are fitted
    data = json.loads(rep.read_text())
    assert [w["iteration"] for w in data["weights"]] == [0, 5, 10, 15, 20]
    assert [e["iteration"] for e in data["resample"]] == [10]  # none after the last iteration
    assert data["resample_skipped"] == [20]
    assert data["batches"] == {"size": 40, "every": 1, "drawn": 21}


@pytest.mark.parametrize(
    "args, expect",
    [
        (["-pinn_weights", "gradnorm"], "-pinn_weights: unknown value 'gradnorm'; allowed: none, annealing"),
        (["-pinn_weights_every", "0"], "-pinn_weights_every: 0 is not allowed; must be > 0"),
        (["-pinn_weights_alpha", "1.5"], "must be in (0, 1]"),
        (["-pinn_batch_size", "100000"], "-pinn_batch_size: 100000 is more than the 102 collocation points; "
                                         "allowed: 1..102"),
        (["-pinn_batch_size", "1"], "fewer than one point per block"),
        (["-pinn_batch_every", "-1"], "-pinn_batch_every: -1 is not allowed; must be > 0"),
        (["-pinn_resample_every", "0"], "-pinn_resample_every: 0 is not allowed; must be > 0"),
        (["-pinn_rad_beta", "-1"], "-pinn_rad_beta: -1.0 is not allowed; must be >= 0"),
        (["-pinn_rad_c", "-0.1"], "-pinn_rad_c: -0.1 is not allowed; must be >= 0"),
        (["-pinn_resample", "rad", "-pinn_rad_pool", "50"], "-pinn_rad_pool: 50 candidates cannot give the 100"),
        (["-pinn_batch_size", "50", "-tao_type", "brgn"], "not with -tao_type brgn"),
    ],
)
def test_bad_input_is_one_clear_error(args, expect):
    proc = run_pinntao("-pinn_problem", "poisson1d", "-tao_max_it", "2", *args)
    assert proc.returncode == 2, proc.stderr
    assert "pinntao: error:" in proc.stderr and expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_lmvm_with_annealing_runs_through_the_update_hook():
    """TAO's own solvers get the events from TaoSetUpdate (before each iteration), with ∇L refreshed."""
    obj = tiny_objective("poisson1d", layers=(8, 8), n_int=30, n_bnd=2)
    with petsc_options(tao_type="lmvm", tao_max_it=40):
        trainer = Trainer(obj, monitor_every=1)
        adapt = Adaptation(obj, _opts(weights="annealing", weights_every=10))
        adapt.attach(trainer.tao)
        _, res = trainer.solve()
    assert res.iterations == 40 and res.status == "ok", res
    assert [w["iteration"] for w in adapt.history["weights"]] == [0, 10, 20, 30]
    assert adapt.history["weights"][1]["boundary"] != adapt.history["weights"][0]["boundary"]


def test_lmvm_sees_a_continuous_loss_across_resamples():
    """TAO's line searches keep f from before an event: f is shifted by a constant at each event, so
    the L-BFGS run goes on through RAD resamples instead of failing its next line search."""
    obj = tiny_objective("poisson2d", layers=(6, 6), n_int=40, n_bnd=12)
    with petsc_options(tao_type="lmvm", tao_max_it=25):
        trainer = Trainer(obj, monitor_every=1)
        adapt = Adaptation(obj, _opts(resample="rad", resample_every=5, rad_pool=400))
        adapt.attach(trainer.tao)
        _, res = trainer.solve()
    assert res.iterations == 25 and res.converged_reason == "DIVERGED_MAXITS", res
    assert [e["iteration"] for e in adapt.history["resample"]] == [5, 10, 15, 20]
    assert adapt.offset != 0.0
    f = [h[2] for h in res.history]  # the Tao's (shifted) f never jumps up at an event
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(f))


# -- fresh draws (-pinn_resample redraw) ----------------------------------------------------------

def test_redraw_replaces_the_interior_points_at_the_right_iterations():
    obj = tiny_objective("heat1d", layers=(4,), n_int=20, n_bnd=6, sampling="halton")
    adapt = Adaptation(obj, resample="redraw", resample_every=5)
    adapt.start()
    theta = obj.gather(obj.initial_vec())
    first = {k: v.copy() for k, v in adapt.full.items()}
    changed = [its for its in range(13) if adapt.update(its, theta)]
    assert changed == [5, 10] and [e["iteration"] for e in adapt.history["resample"]] == [5, 10]
    # after iteration 10: the interior points are redraw 2 (a function of seed and index), the others kept
    rng = np.random.default_rng([obj.seed, 0x4ED4A, 2])
    block = next(b for b in obj.problem.blocks if b.name == "interior")
    np.testing.assert_array_equal(adapt.full["interior"], block.sample(20, rng, "halton"))
    assert obj.problem.domain.contains(adapt.full["interior"]).all()
    assert not np.isin(adapt.full["interior"][:, 0], first["interior"][:, 0]).any()  # all new
    for name in ("boundary", "initial"):
        np.testing.assert_array_equal(adapt.full[name], first[name])
    np.testing.assert_array_equal(redraw_points(obj.problem, first, obj.seed, 2, "halton")["interior"],
                                  adapt.full["interior"])
    assert not np.array_equal(redraw_points(obj.problem, first, obj.seed, 1, "halton")["interior"],
                              adapt.full["interior"])
    live = next(b for b in obj.residual.blocks if b.block.name == "interior").x.numpy()  # 1 rank: all points
    np.testing.assert_array_equal(live, adapt.full["interior"])
    assert adapt.compared_what().startswith("loss of θ₀ and of the final θ on the final points")


@pytest.mark.mpi
def test_redraw_identical_on_one_and_two_ranks():
    one, two = check_on_one_and_two_ranks("redraw_check.py")
    assert one["size"] == 1 and two["size"] == 2
    assert one["resample"] == two["resample"] == [3, 6]
    assert one["full"] == two["full"] and one["live"] == two["live"] == one["full"]["interior"]  # bitwise
    np.testing.assert_allclose(two["history"], one["history"], rtol=1e-10)


def test_redraw_restart_reproduces_the_points(tmp_path):
    """Interrupted at 8 (the points of the draw at 6 are live) and resumed: every loss equals the
    uninterrupted run's (the saved points, then the draw at 9 from the same seed)."""
    base = ["-pinn_problem", "heat1d", "-pinn_layers", "6,6", "-pinn_n_interior", "40", "-pinn_n_boundary", "6",
            "-pinn_n_initial", "6", "-pinn_resample", "redraw", "-pinn_resample_every", "3", "-pinn_sampling",
            "sobol", "-pinn_resample_settle", "0", "-pinn_optimizer", "adam", "-pinn_monitor_every", "1",
            "-tao_gatol", "0", "-tao_grtol", "0"]
    rf, rr = interrupted_and_resumed(tmp_path, base, 11)
    assert [e["iteration"] for e in rf["resample"]] == [3, 6, 9] == [e["iteration"] for e in rr["resample"]]
    assert [h[0] for h in rr["history"]] == [h[0] for h in rf["history"]] == list(range(12))
    np.testing.assert_allclose([h[2] for h in rr["history"]], [h[2] for h in rf["history"]], rtol=1e-12)
    assert rr["loss"] == pytest.approx(rf["loss"], rel=1e-12, abs=0)


@pytest.mark.parametrize(("settle", "drawn", "skipped"),
                         [(None, [3, 6], [9]), ("5", [3], [6, 9]), ("0", [3, 6, 9], [])])
def test_no_fresh_points_without_time_to_fit_them(tmp_path, settle, drawn, skipped):
    """A draw fewer than -pinn_resample_settle iterations (default: the interval) before -tao_max_it is
    not made, so the final θ was fitted to the final points; 0 draws up to the end."""
    rep = tmp_path / "r.json"
    extra = ["-pinn_resample_settle", settle] if settle is not None else []
    proc = run_pinntao("-pinn_problem", "heat1d", "-pinn_layers", "6", "-pinn_n_interior", "30", "-pinn_n_boundary",
                       "6", "-pinn_n_initial", "6", "-pinn_resample", "redraw", "-pinn_resample_every", "3",
                       "-pinn_optimizer", "adam", "-tao_max_it", "10", "-tao_gatol", "0", "-tao_grtol", "0",
                       *extra, "-pinn_report", str(rep))
    assert proc.returncode in (0, 3), proc.stderr
    r = json.loads(rep.read_text())
    assert r["iterations"] == 10
    assert [e["iteration"] for e in r["resample"]] == drawn and r["resample_skipped"] == skipped


def test_time_limit_stops_resamples_before_the_expected_end():
    """With -pinn_time_limit the expected last iteration is the current one plus the time left at this
    run's mean rate (-tao_max_it if sooner); RAD stops a settle interval before it."""
    obj = tiny_objective("poisson2d", layers=(6,), n_int=40, n_bnd=12)
    with petsc_options(tao_type="lmvm", tao_max_it=1000):
        trainer = Trainer(obj, time_limit=30.0)
        adapt = Adaptation(obj, _opts(resample="rad", resample_every=50, rad_pool=400))
        trainer.adaptation = adapt
        trainer._attach_adaptation()
        trainer._offset, trainer._t0 = 0, time.perf_counter() - 10.0  # 10 s gone, 20 s left
        assert trainer._expected_last_iteration(100) == pytest.approx(300, rel=1e-2)  # 10 its/s
        assert trainer._expected_last_iteration(900) == 1000  # -tao_max_it first
        theta = obj.gather(obj.initial_vec())
        assert adapt.update(200, theta)  # 20 its/s: ~600 expected, 200 + 50 before it
        trainer._t0 = time.perf_counter() - 28.0  # 2 s left
        assert not adapt.update(300, theta)  # ~321 expected: 300 + 50 is past it, no RAD
    assert [e["iteration"] for e in adapt.history["resample"]] == [200] and adapt.history["resample_skipped"] == [300]
