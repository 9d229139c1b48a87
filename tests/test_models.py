"""The forward jet of the MLP equals nested autograd; the flat-θ binding is exact."""

import pytest
import torch

from pinntao.errors import PinnInputError
from pinntao.models import ACTIVATIONS, MLP, FlatModel, autograd_jet, build_mlp


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_jet_matches_autograd(activation, dim):
    model = build_mlp(dim, (7, 5, 6), activation, torch.float64, "cpu")
    theta = model.initial_theta(3) + 0.1 * torch.randn(model.n_params, dtype=torch.float64)
    x = torch.rand(11, dim, dtype=torch.float64)
    fast = model.jet(theta, x, 2)
    ref = autograd_jet(lambda p: model.u(theta, p[None])[0], x, 2)
    torch.testing.assert_close(fast.u, ref.u, rtol=0, atol=1e-13)
    torch.testing.assert_close(fast.du, ref.du, rtol=0, atol=1e-13)
    torch.testing.assert_close(fast.d2u, ref.d2u, rtol=0, atol=1e-12)


def test_generic_module_uses_autograd_fallback():
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    model = FlatModel(net)
    theta = model.initial_theta(0)
    x = torch.rand(5, 2, dtype=torch.float64)
    jet = model.jet(theta, x, 2)
    assert jet.d2u.shape == (5, 2)
    # compare the Laplacian with a finite difference of u
    h = 1e-4
    e = torch.eye(2, dtype=torch.float64)
    fd = sum(
        (model.u(theta, x + h * e[i]) - 2 * model.u(theta, x) + model.u(theta, x - h * e[i])) / h**2 for i in range(2)
    )
    torch.testing.assert_close(jet.laplacian(), fd, rtol=0, atol=1e-6)


def test_flat_theta_round_trip():
    model = build_mlp(2, (4, 4), "tanh", torch.float64, "cpu")
    theta = torch.arange(model.n_params, dtype=torch.float64)
    params = model.unflatten(theta)
    assert torch.equal(torch.cat([p.flatten() for p in params.values()]), theta)
    assert model.n_params == 2 * 4 + 4 + 4 * 4 + 4 + 4 + 1


def test_initial_theta_is_seeded():
    model = build_mlp(2, (4,), "tanh", torch.float64, "cpu")
    assert torch.equal(model.initial_theta(5), model.initial_theta(5))
    assert not torch.equal(model.initial_theta(5), model.initial_theta(6))


@pytest.mark.parametrize("bad", [dict(activation="relu6"), dict(hidden=(0, 3)), dict(hidden=())])
def test_bad_model_input(bad):
    kw = dict(in_dim=2, hidden=(4,), activation="tanh") | bad
    with pytest.raises(PinnInputError) as err:
        MLP(**kw)
    assert "allowed" in str(err.value) or "positive" in str(err.value)
