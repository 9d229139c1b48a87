"""Problems: the exact solution has ~0 residual, samplers land in the right places."""

import numpy as np
import pytest
import torch

from pinntao.errors import PinnInputError
from pinntao.models import autograd_jet
from pinntao.problems import PROBLEMS, Box, get_problem


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_exact_solution_has_zero_residual(name):
    prob = get_problem(name)
    if prob.reference:
        pytest.skip("numerical reference solution: checked in test_problems_zoo.py")
    pts = prob.sample({}, seed=1)
    for block in prob.blocks:
        x = torch.as_tensor(pts[block.name][:50], dtype=torch.float64)
        jet = autograd_jet(lambda p: prob.exact(p[None])[0], x, block.order, block.pairs(prob.dim))
        r = block.residual(jet, x)
        assert r.shape == (x.shape[0],)
        assert r.abs().max().item() < 1e-10, f"{name}/{block.name}: exact solution leaves residual {r.abs().max()}"


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_residual_detects_a_wrong_solution(name):
    """The interior residual of a perturbed solution is not zero (the check above can fail)."""
    prob = get_problem(name)
    pts = prob.sample({}, seed=1)
    block = prob.blocks[0]
    x = torch.as_tensor(pts[block.name][:50], dtype=torch.float64)
    if prob.reference:
        pytest.skip("numerical reference solution")
    jet = autograd_jet(lambda p: prob.exact(p[None])[0] + 0.1 * torch.sin(3 * p.sum()), x, block.order,
                       block.pairs(prob.dim))
    assert block.residual(jet, x).abs().max().item() > 1e-3


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("sampling", ["uniform", "halton", "sobol"])
def test_samplers_shapes_and_domain(name, sampling):
    prob = get_problem(name)
    pts = prob.sample({}, seed=0, sampling=sampling)
    lo, hi = np.array(prob.domain.lo), np.array(prob.domain.hi)
    for block in prob.blocks:
        x = pts[block.name]
        assert x.shape == (prob.default_counts[block.kind], prob.dim)
        assert np.all(x >= lo - 1e-15) and np.all(x <= hi + 1e-15)
        assert prob.domain.contains(x, tol=1e-12).all()
        if block.kind == "boundary" and not isinstance(prob.domain, Box):  # on ∂Ω: a step outward leaves Ω
            nrm = prob.domain.normal(torch.as_tensor(x)).numpy()
            assert not prob.domain.contains(x + 1e-7 * nrm).any()
        elif block.kind in ("boundary", "initial"):
            on_face = np.isclose(x, lo) | np.isclose(x, hi)
            assert np.all(on_face.any(axis=1)), f"{block.name} points off the boundary"


def test_points_depend_only_on_seed():
    prob = get_problem("poisson2d")
    a, b, c = prob.sample({}, 4), prob.sample({}, 4), prob.sample({}, 5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["interior"], c["interior"])


def test_unknown_problem_lists_allowed():
    with pytest.raises(PinnInputError, match=r"allowed: .*poisson2d"):
        get_problem("poisson9d")


def test_nonpositive_count_rejected():
    with pytest.raises(PinnInputError, match="must be > 0"):
        get_problem("poisson2d").sample({"interior": 0}, 0)
