"""Causal training: slab losses and weights by hand, the weighted loss and its gradient equal a direct
computation, ε moves on its schedule, and a run gives the same losses on 1 and 2 ranks."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import run_pinntao
from helpers import interrupted_and_resumed, reports_on_one_and_two_ranks

from pinntao.causal import CausalWeights, parse_floats
from pinntao.errors import PinnInputError
from pinntao.models import build_model
from pinntao.problems import get_problem
from pinntao.problems.base import Block, Box, Problem
from pinntao.residual import Residual

BOX = Box((0.0, -1.0), (1.0, 1.0))


def _time_problem(residual):
    """A (t, x) problem whose interior residual is given; one boundary block (never weighted)."""
    return Problem(
        name="toy", domain=BOX,
        blocks=[Block("interior", "interior", BOX.interior, residual=residual, order=0),
                Block("boundary", "boundary", lambda n, rng, s: BOX.faces(n, rng, [(1, 0)], s),
                      residual=lambda j, x: j.u, order=0)],
        exact=lambda x: x[:, 0] * 0, default_counts={"interior": 4, "boundary": 2}, time_axis=0)


def _fake_objective(problem, model, pts):
    counts = {k: v.shape[0] for k, v in pts.items()}
    return SimpleNamespace(model=model, residual=Residual(problem, model, pts, counts), _sum=lambda t: t.numpy())


PTS = {"interior": np.array([[0.1, 0.0], [0.3, 0.5], [0.6, -0.2], [0.8, 0.9]]),
       "boundary": np.array([[0.2, -1.0], [0.7, -1.0]])}


def test_weights_by_hand():
    """R(t, x) = t: L_1 = (0.1² + 0.3²)/2 = 0.05, L_2 = (0.6² + 0.8²)/2 = 0.5; w = (1, e^{−ε·0.05})."""
    prob = _time_problem(lambda j, x: x[:, 0])
    model = build_model("mlp", 2, (3,), "tanh", torch.float64, "cpu")
    cw = CausalWeights(prob, {"causal_slabs": 2, "causal_eps": "10", "causal_delta": 0.99})
    obj = _fake_objective(prob, model, PTS)
    cw.update(obj, model.initial_theta(0), its=0)
    np.testing.assert_allclose(cw.losses, [0.05, 0.5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(cw.w, [1.0, math.exp(-10 * 0.05)], rtol=1e-15, atol=0)
    # three slabs: t = 0.1, 0.3 in slab 1, 0.6 in slab 2, 0.8 in slab 3
    cw3 = CausalWeights(prob, {"causal_slabs": 3, "causal_eps": "2"})
    cw3.update(obj, model.initial_theta(0), its=0)
    np.testing.assert_allclose(cw3.losses, [0.05, 0.36, 0.64], rtol=0, atol=1e-15)
    np.testing.assert_allclose(cw3.w, [1.0, math.exp(-2 * 0.05), math.exp(-2 * 0.41)], rtol=1e-15, atol=0)


def test_weighted_loss_and_gradient_match_direct_computation():
    prob = get_problem("burgers1d")
    model = build_model("mlp", 2, (5, 5), "tanh", torch.float64, "cpu")
    theta = model.initial_theta(1) + 0.1
    pts = prob.sample({"interior": 40, "boundary": 8, "initial": 8}, seed=3)
    counts = {k: v.shape[0] for k, v in pts.items()}
    cw = CausalWeights(prob, {"causal_slabs": 4, "causal_eps": "1"})
    cw.update(_fake_objective(prob, model, pts), theta, its=0)
    assert cw.w.min() < 0.999  # weights are not all 1: the comparison below sees them
    weighted = Residual(cw.problem(), model, pts, counts)
    L, g = weighted.loss_grad(theta)

    nu = prob.params["nu"]
    x = torch.as_tensor(pts["interior"])
    slab = np.minimum((pts["interior"][:, 0] * 4).astype(int), 3)
    w = torch.as_tensor(cw.w[slab])  # plain numbers: no gradient through w

    def direct(th):
        j = model.jet(th, x, 2)
        r = j.d(0) + j.u * j.d(1) - nu * j.dd(1)
        total = 0.5 * (w * r * r).sum() / counts["interior"]
        for name in ("boundary", "initial"):
            xb = torch.as_tensor(pts[name])
            rb = model.u(th, xb) + (torch.sin(math.pi * xb[:, 1]) if name == "initial" else 0)
            total = total + 0.5 * (rb * rb).sum() / counts[name]
        return total

    torch.testing.assert_close(L, direct(theta), rtol=1e-13, atol=0)
    torch.testing.assert_close(g, torch.func.grad(direct)(theta), rtol=1e-11, atol=1e-14)
    # and slab losses are the unweighted mean squared residual per slab
    with torch.no_grad():
        j = model.jet(theta, x, 2)
        r2 = ((j.d(0) + j.u * j.d(1) - nu * j.dd(1)) ** 2).numpy()
    np.testing.assert_allclose(cw.losses, [r2[slab == i].mean() for i in range(4)], rtol=1e-13)


def test_eps_schedule_moves_on_when_all_weights_near_one():
    prob = _time_problem(lambda j, x: 1e-3 * x[:, 0])  # L ~ 1e-7: every w ≈ 1 until ε is large
    model = build_model("mlp", 2, (3,), "tanh", torch.float64, "cpu")
    obj = _fake_objective(prob, model, PTS)
    cw = CausalWeights(prob, {"causal_slabs": 2, "causal_eps": "0.01,1,1e5,1e7", "causal_delta": 0.99})
    cw.update(obj, model.initial_theta(0), its=0)
    # ε = 1e5: w_2 = exp(−1e5 · 5e-8) ≈ 0.995 > δ, so on to 1e7: w_2 = exp(−0.5) < δ, stop there
    assert cw.level == 3 and cw.eps[cw.level] == 1e7
    np.testing.assert_allclose(cw.w[1], math.exp(-1e7 * 0.5 * (1e-3**2) * (0.1**2 + 0.3**2)), rtol=1e-12)
    state = cw.restart_state()
    again = CausalWeights(prob, {"causal_slabs": 2, "causal_eps": "0.01,1,1e5,1e7"})
    again.load_restart_state(state)
    assert again.level == 3 and np.array_equal(again.w, cw.w)
    assert torch.equal(again.factor(torch.as_tensor(PTS["interior"])), cw.factor(torch.as_tensor(PTS["interior"])))


def test_problem_without_time_is_one_clear_error():
    with pytest.raises(PinnInputError, match="-pinn_causal_slabs: problem 'poisson2d' has no time axis"):
        CausalWeights(get_problem("poisson2d"), {"causal_slabs": 4})


def test_parse_floats():
    assert parse_floats("1e-2, 0.1,1") == (0.01, 0.1, 1.0)
    with pytest.raises(ValueError):
        parse_floats("")


BASE = ["-pinn_problem", "heat1d", "-pinn_layers", "6,6", "-pinn_n_interior", "40", "-pinn_n_boundary", "6",
        "-pinn_n_initial", "6", "-pinn_causal_slabs", "4", "-pinn_causal_eps", "1,100"]


def _args(tmp_path, name, *extra):
    return [*BASE, "-pinn_causal_every", "2", "-tao_max_it", "6", "-pinn_report", str(tmp_path / name), *extra]


@pytest.mark.parametrize("solver", [["-pinn_optimizer", "adam"], ["-tao_type", "lmvm"]])
def test_cli_one_and_two_ranks_agree(tmp_path, solver):
    r1, r2 = reports_on_one_and_two_ranks(tmp_path, lambda name: _args(tmp_path, name, *solver))
    c1, c2 = r1["causal"], r2["causal"]
    assert c1["slabs"] == 4 and len(c1["updates"]) >= 3
    assert c1["updates"][0]["min_weight"] < 1.0  # the weights are active
    for a, b in zip(c1["updates"], c2["updates"], strict=True):
        assert a["iteration"] == b["iteration"] and a["eps"] == b["eps"]
        assert abs(a["min_weight"] - b["min_weight"]) <= 1e-10
    l1, l2 = [row[2] for row in r1["history"]], [row[2] for row in r2["history"]]
    assert len(l1) == len(l2) > 1
    for a, b in zip(l1, l2, strict=True):
        assert abs(a - b) <= 1e-10 * abs(a)


def test_cli_rejects_causal_on_a_steady_problem():
    bad = run_pinntao("-pinn_problem", "poisson1d", "-pinn_causal_slabs", "4", "-tao_max_it", "1", timeout=120)
    assert bad.returncode == 2
    assert "-pinn_causal_slabs" in bad.stderr and "no time axis" in bad.stderr


def test_restart_keeps_weights_and_the_global_update_grid(tmp_path):
    """Interrupted at 8 (updates every 3: the weights of iteration 6 are live) and resumed: the loss
    history equals the uninterrupted run's (needs the saved weights and the global count)."""
    base = [*BASE, "-pinn_causal_every", "3", "-pinn_optimizer", "adam", "-tao_gatol", "0", "-tao_grtol", "0"]
    rf, rr = interrupted_and_resumed(tmp_path, base, 16)
    assert [u["iteration"] for u in rf["causal"]["updates"]] == [0, 3, 6, 9, 12, 15]
    assert [u["iteration"] for u in rr["causal"]["updates"]] == [9, 12, 15]
    assert [h[0] for h in rr["history"]] == [h[0] for h in rf["history"]]
    np.testing.assert_allclose([h[2] for h in rr["history"]], [h[2] for h in rf["history"]], rtol=1e-12)
    assert rr["loss"] == pytest.approx(rf["loss"], rel=1e-12, abs=0)


# -- time-marching (-pinn_causal_mode march) ------------------------------------------------------

def _march(**kw):
    opts = {"causal_slabs": 3, "causal_mode": "march", "causal_march_tol": 0.1, "causal_march_every": 5} | kw
    return CausalWeights(_time_problem(lambda j, x: x[:, 0]), opts)


def test_march_window_grows_by_tolerance_and_by_count():
    """R = t, 3 slabs: L = (0.05, 0.36, 0.64). The window starts at slab 1; at iteration 0 its loss
    0.05 < tol 0.1 moves it on; (0.05 + 0.36)/2 > tol keeps it until 5 iterations after that move."""
    cw = _march()
    prob, model = cw.base, build_model("mlp", 2, (3,), "tanh", torch.float64, "cpu")
    obj, theta = _fake_objective(prob, model, PTS), model.initial_theta(0)
    np.testing.assert_array_equal(cw.w, [1, 0, 0])  # the window before any update
    assert cw.due(0, 2) and cw.update(obj, theta, 0)
    np.testing.assert_allclose(cw.losses, [0.05, 0.36, 0.64], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(cw.w, [1, 1, 0])
    assert cw.due(2, 2) and not cw.update(obj, theta, 2)  # 0.205 > tol, 2 < 5 iterations: no move
    np.testing.assert_array_equal(cw.w, [1, 1, 0])
    assert not cw.due(3, 2) and cw.due(5, 2)  # off the every-2 grid, but the window has waited 5
    assert cw.update(obj, theta, 5)
    np.testing.assert_array_equal(cw.w, [1, 1, 1])
    assert not cw.due(6, 2) and not cw.due(10, 2)  # every slab in: no more updates
    assert [(u["iteration"], u["window"]) for u in cw.history] == [(0, 2), (2, 2), (5, 3)]
    np.testing.assert_allclose([u["window_loss"] for u in cw.history], [0.05, 0.205, 0.205], rtol=1e-14)
    # by count only (tol 0), and by tolerance only (every 0): never by the other
    only_count = _march(causal_march_tol=0.0, causal_march_every=4)
    assert not only_count.update(obj, theta, 0) and only_count.update(obj, theta, 4) and only_count.window == 1
    only_tol = _march(causal_march_every=0)
    assert only_tol.update(obj, theta, 0) and not only_tol.update(obj, theta, 10**6) and only_tol.window == 1
    assert not only_tol.due(10**6 + 1, 2)


def test_march_weights_drop_the_slabs_outside_the_window():
    """The loss of the marched problem: the interior rows beyond the window weigh 0."""
    cw = _march()
    model = build_model("mlp", 2, (3,), "tanh", torch.float64, "cpu")
    theta, counts = model.initial_theta(0), {k: v.shape[0] for k, v in PTS.items()}
    weighted = Residual(cw.problem(), model, PTS, counts)
    first = weighted.loss(theta)  # window: slab 1 (t = 0.1, 0.3)
    cw.set_weights(cw.window_weights(2, 3))
    every = weighted.loss(theta)
    assert float(every) == pytest.approx(float(Residual(cw.base, model, PTS, counts).loss(theta)), rel=1e-15)
    assert float(every - first) == pytest.approx(0.5 * (0.6**2 + 0.8**2) / 4, rel=1e-13)


def test_march_restart_state_and_bad_settings():
    cw = _march()
    model = build_model("mlp", 2, (3,), "tanh", torch.float64, "cpu")
    cw.update(_fake_objective(cw.base, model, PTS), model.initial_theta(0), 7)
    again = _march()
    again.load_restart_state(cw.restart_state())
    assert (again.window, again.since) == (1, 7) and np.array_equal(again.w, cw.w)
    assert not again.due(11, 2) and again.due(12, 2)  # the count goes on from the saved move
    with pytest.raises(PinnInputError, match="never grows the window"):
        _march(causal_march_tol=0.0, causal_march_every=0)
    with pytest.raises(PinnInputError, match="-pinn_causal_mode: unknown value 'walk'; allowed: causal, march"):
        _march(causal_mode="walk")


MARCH = [*BASE, "-pinn_causal_mode", "march", "-pinn_causal_march_tol", "0", "-pinn_causal_march_every", "3",
         "-pinn_causal_every", "2", "-tao_gatol", "0", "-tao_grtol", "0"]


@pytest.mark.parametrize("solver", [["-pinn_optimizer", "adam"], ["-tao_type", "lmvm"]])
def test_march_cli_one_and_two_ranks_agree(tmp_path, solver):
    args = [*MARCH, "-tao_max_it", "12", *solver]
    r1, r2 = reports_on_one_and_two_ranks(tmp_path, lambda name: [*args, "-pinn_report", str(tmp_path / name)])
    c1, c2 = r1["causal"], r2["causal"]
    assert c1["mode"] == "march" and c1["slabs"] == 4 and r1["tao_type"] == ("lmvm" if "lmvm" in solver else "python")
    # tol 0: the window moves every 3 iterations (updates every 2 and at the moves) until all 4 slabs are in
    assert [(u["iteration"], u["window"]) for u in c1["updates"]] == [(0, 1), (2, 1), (3, 2), (4, 2), (6, 3),
                                                                     (8, 3), (9, 4)]
    assert [(u["iteration"], u["window"]) for u in c2["updates"]] == [(u["iteration"], u["window"])
                                                                     for u in c1["updates"]]
    np.testing.assert_allclose([u["window_loss"] for u in c2["updates"]], [u["window_loss"] for u in c1["updates"]],
                               rtol=1e-10)
    np.testing.assert_allclose([h[2] for h in r2["history"]], [h[2] for h in r1["history"]], rtol=1e-10)


def test_march_restart_resumes_the_window(tmp_path):
    """Interrupted at 8 (window of 3 slabs, last move at 6) and resumed: the window takes its 4th slab at
    9 (needs the saved window and the iteration of its last move) and the loss history equals the
    uninterrupted run's."""
    rf, rr = interrupted_and_resumed(tmp_path, [*MARCH, "-pinn_optimizer", "adam"], 14)
    assert [(u["iteration"], u["window"]) for u in rf["causal"]["updates"]][-3:] == [(6, 3), (8, 3), (9, 4)]
    assert rr["causal"]["updates"] == rf["causal"]["updates"][-1:]  # the resumed run's own updates
    assert [h[0] for h in rr["history"]] == [h[0] for h in rf["history"]]
    np.testing.assert_allclose([h[2] for h in rr["history"]], [h[2] for h in rf["history"]], rtol=1e-12)
    assert rr["loss"] == pytest.approx(rf["loss"], rel=1e-12, abs=0)
