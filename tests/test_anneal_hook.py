"""The annealing TaoSetUpdate hook (TAO's own solvers): no evaluation on iterations without an
event, none beyond the per-block gradient pass at a weight update; f stays continuous and the
gradient TAO keeps is that of the new weighted loss; weight bounds clamp λ."""

import numpy as np
import pytest
from helpers import perturbed_theta, tiny_objective

from pinntao.sampling import ADAPT_OPTIONS, Adaptation
from pinntao.train import Trainer
from pinntao.weights import annealed_weights


def _opts(**kw):
    return {o.name: o.default for o in ADAPT_OPTIONS} | kw


def test_annealing_hook_costs_only_the_block_gradients():
    obj = tiny_objective("heat1d", layers=(5, 4), n_int=23, n_bnd=9)
    tr = Trainer(obj, optimizer="lbfgs")
    x = perturbed_theta(obj)
    tr.tao.setSolution(x)
    tr.tao.setUp()
    ad = Adaptation(obj, _opts(weights="annealing", weights_every=10))
    ad.attach(tr.tao)
    g = tr.tao.getGradient()[0] or obj.create_vec()
    f_old = tr.tao.computeObjectiveGradient(x, g)  # L + offset, offset 0
    counts = dict(obj.counts)
    ad._update(tr.tao, 3)  # no event due
    assert obj.counts == counts and ad.weights == {"interior": 1.0, "boundary": 1.0, "initial": 1.0}
    ad._update(tr.tao, 10)  # a weight update
    assert obj.counts == counts  # L before, L after and ∇L after came from the block pass
    assert ad.weights["boundary"] != pytest.approx(1.0, rel=1e-3)
    ref = obj.create_vec()
    loss_new = obj.objective_gradient(None, x, ref)  # the loss with the new weights, evaluated afresh
    assert loss_new + ad.offset == pytest.approx(f_old, rel=1e-12)  # f continuous across the update
    np.testing.assert_allclose(g.getArray(), ref.getArray(), rtol=1e-10, atol=1e-12 * np.abs(ref.getArray()).max())


def test_annealed_weight_bounds():
    grads = {"r": np.array([4.0, -2.0]), "b": np.array([1e-6, 1e-6]), "c": np.array([1e6, 1e6])}
    kinds = {"r": "interior", "b": "boundary", "c": "boundary"}
    free = annealed_weights(grads, kinds, {"r": 1.0, "b": 1.0, "c": 1.0}, 1.0)
    assert free["b"] == pytest.approx(4e6) and free["c"] == pytest.approx(4e-6)
    clamped = annealed_weights(grads, kinds, {"r": 1.0, "b": 1.0, "c": 1.0}, 1.0, bounds=(1.0, 1e3))
    assert clamped == {"r": 1.0, "b": 1e3, "c": 1.0}
