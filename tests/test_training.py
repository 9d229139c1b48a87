"""TAO solvers train the network: lmvm and nls each cut the poisson2d error ≥ 100×;
brgn works through the residual/Jacobian shells; NaN losses end the solve cleanly."""

import numpy as np
import pytest
import torch
from conftest import petsc_options
from helpers import tiny_objective

from pinntao.models import build_mlp
from pinntao.objective import PinnObjective
from pinntao.problems import Block, Problem, get_problem
from pinntao.train import Trainer, save_checkpoint


def _poisson2d(layers=(20, 20), n_int=400, n_bnd=80):
    prob = get_problem("poisson2d")
    model = build_mlp(2, layers, "tanh", torch.float64, "cpu")
    return PinnObjective(prob, model, counts={"interior": n_int, "boundary": n_bnd}, seed=0)


@pytest.mark.parametrize(
    "opts",
    [
        {"tao_type": "lmvm", "tao_max_it": 1000, "tao_lmvm_mat_lmvm_hist_size": 20},
        {"tao_type": "nls", "tao_max_it": 60, "tao_nls_ksp_type": "cg", "tao_nls_ksp_max_it": 200},
    ],
    ids=["lmvm", "nls"],
)
def test_solver_reduces_error_100x(opts):
    obj = _poisson2d()
    with petsc_options(**opts):
        trainer = Trainer(obj, monitor_every=1000)
    e0 = obj.rel_l2(obj.initial_vec())
    _, res = trainer.solve()
    assert res.rel_l2 < e0 / 100, (e0, res.rel_l2, res.converged_reason)


def test_brgn_trains():
    obj = _poisson2d(layers=(10, 10), n_int=200, n_bnd=40)
    with petsc_options(tao_type="brgn", tao_max_it=60):
        trainer = Trainer(obj)
    e0 = obj.rel_l2(obj.initial_vec())
    _, res = trainer.solve()
    assert res.rel_l2 < e0 / 10, (e0, res)


def _nan_problem() -> Problem:
    """poisson1d whose residual turns NaN as soon as |u| exceeds 0.5 anywhere."""
    base = get_problem("poisson1d")
    interior = base.blocks[0]

    def residual(jet, x):
        r = interior.residual(jet, x)
        bad = jet.u.detach().abs().max() > 0.5
        return r + torch.where(bad, float("nan"), 0.0)  # NaN in the value, finite gradient path

    blocks = [Block("interior", "interior", interior.sample, residual=residual), base.blocks[1]]
    return Problem("nan1d", base.domain, blocks, base.exact, base.default_counts, (8,))


@pytest.mark.parametrize("tao_type", ["lmvm", "nls"])
def test_nan_loss_stops_with_last_good_theta(tao_type, tmp_path):
    prob = _nan_problem()
    obj = PinnObjective(prob, build_mlp(1, (8,), "tanh", torch.float64, "cpu"))
    ckpt = tmp_path / "theta.npy"
    with petsc_options(tao_type=tao_type, tao_max_it=200):
        trainer = Trainer(obj, checkpoint=str(ckpt), checkpoint_every=1)
    x, res = trainer.solve()
    theta = obj.gather(x)
    assert torch.isfinite(theta).all()
    assert np.isfinite(res.loss) and obj.nonfinite
    assert res.message
    u = obj.model.u(theta, torch.linspace(0, 1, 101, dtype=torch.float64)[:, None])
    assert u.abs().max() <= 0.5 + 1e-12
    saved = np.load(ckpt)
    assert np.all(np.isfinite(saved)) and saved.shape == (obj.n_params,)


def test_checkpoint_refuses_nonfinite(tmp_path):
    path = tmp_path / "c.npy"
    save_checkpoint(str(path), np.ones(3))
    with pytest.raises(ValueError):
        save_checkpoint(str(path), np.array([1.0, np.nan]))
    np.testing.assert_array_equal(np.load(path), np.ones(3))  # old checkpoint intact


def test_time_limit_stops_solve():
    obj = tiny_objective(layers=(8, 8), n_int=100, n_bnd=20)
    with petsc_options(tao_type="lmvm", tao_max_it=100000, tao_gatol=0, tao_grtol=0, tao_gttol=0,
                       tao_max_funcs=10**9):  # TAO's default cap of 4,000 evaluations can come first
        trainer = Trainer(obj, time_limit=0.5)
    _, res = trainer.solve()
    assert res.converged_reason == "CONVERGED_USER" and "time limit" in res.message
    assert 0 < res.iterations < 100000
