"""The papers' problem set: parameters, the Burgers reference, stable exact solutions."""

import math

import numpy as np
import pytest
import torch

from pinntao.errors import PinnInputError
from pinntao.problems import PROBLEMS, get_problem, problem_params
from pinntao.problems.burgers import reference_burgers

NU = 0.01 / math.pi


def test_zoo_is_registered():
    assert {"poisson1d_multiscale", "poisson2d", "poisson2d_multiscale", "heat1d", "helmholtz2d",
            "singular_perturbation", "nonlinear1d_neumann", "transport1d", "burgers1d"} <= set(PROBLEMS)


def test_parameters_override_and_are_validated():
    assert problem_params("helmholtz2d") == {"k": 1.0, "a1": 1.0, "a2": 4.0}
    x = torch.tensor([[0.3, 0.2]], dtype=torch.float64)
    base, other = get_problem("helmholtz2d"), get_problem("helmholtz2d", {"a2": 2.0})
    assert base.exact(x).item() != pytest.approx(other.exact(x).item())
    with pytest.raises(PinnInputError, match="allowed: k, a1, a2"):
        get_problem("helmholtz2d", {"omega": 3.0})
    assert problem_params("poisson2d") == {}


@pytest.mark.parametrize("eps", [0.01, 0.001])
def test_singular_perturbation_exact_is_finite_with_layer(eps):
    prob = get_problem("singular_perturbation", {"eps": eps})
    x = torch.linspace(0, 1, 2001, dtype=torch.float64)[:, None]
    y = prob.exact(x)
    assert torch.isfinite(y).all()
    assert abs(y[0]) < 1e-14 and abs(y[-1]) < 1e-12
    assert y.max() > 0.9  # y ≈ x away from the boundary layer at x = 1


def test_transport_paper_size():
    from pinntao.models import build_mlp

    prob = get_problem("transport1d")
    assert build_mlp(prob.dim, prob.default_layers, "tanh", torch.float64, "cpu").n_params == 1341


def test_burgers_reference_initial_and_boundary_data():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for xb in (-1.0, 1.0):
        u = reference_burgers(torch.stack([t, torch.full_like(t, xb)], 1), NU)
        assert u.abs().max() < 1e-6
    x = torch.linspace(-1, 1, 41, dtype=torch.float64)
    u0 = reference_burgers(torch.stack([torch.full_like(x, 1e-8), x], 1), NU)
    torch.testing.assert_close(u0, -torch.sin(math.pi * x), rtol=0, atol=1e-6)


def test_burgers_reference_converges_under_refinement():
    gen = torch.Generator().manual_seed(0)
    tx = torch.rand(200, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2.0]) - torch.tensor([0.0, 1.0])
    coarse, mid, fine = (reference_burgers(tx, NU, nodes=n) for n in (61, 241, 3201))
    e_coarse, e_mid = (coarse - fine).abs().max(), (mid - fine).abs().max()
    assert e_coarse > 1e-7  # too few nodes is visibly wrong...
    assert e_mid < 1e-12  # ...and the trapezoidal rule converges spectrally


def test_burgers_reference_solves_the_pde():
    """Finite differences of the reference satisfy u_t + u u_x − ν u_xx ≈ 0 away from t = 0."""
    t = torch.linspace(0.2, 0.8, 7, dtype=torch.float64)
    x = torch.linspace(-0.9, 0.9, 37, dtype=torch.float64)
    T, X = torch.meshgrid(t, x, indexing="ij")
    h = 1e-4

    def u(dt=0.0, dx=0.0):
        return reference_burgers(torch.stack([(T + dt).ravel(), (X + dx).ravel()], 1), NU).reshape(T.shape)

    u0 = u()
    ut = (u(dt=h) - u(dt=-h)) / (2 * h)
    ux = (u(dx=h) - u(dx=-h)) / (2 * h)
    uxx = (u(dx=h) - 2 * u0 + u(dx=-h)) / h**2
    res = ut + u0 * ux - NU * uxx
    scale = ut.abs().max() + (u0 * ux).abs().max()
    assert res.abs().max() < 1e-4 * scale
    assert np.isfinite(res.numpy()).all()
