"""The modified MLP: its forward jet equals nested autograd, its PDE residual equals the autograd
fallback's to 1e-12, -pinn_arch selects it, and bad shapes are one clear error."""

import json

import numpy as np
import pytest
import torch
from conftest import run_pinntao
from torch import nn

from pinntao.errors import PinnInputError
from pinntao.models import ACTIVATIONS, FlatModel, ModifiedMLP, autograd_jet, build_model
from pinntao.problems import get_problem
from pinntao.residual import Residual


def _theta(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return model.initial_theta(seed) + 0.3 * torch.randn(model.n_params, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_jet_matches_autograd(activation, dim):
    model = build_model("modified_mlp", dim, (6, 6, 6), activation, torch.float64, "cpu")
    theta = _theta(model)
    x = torch.rand(13, dim, dtype=torch.float64) * 2 - 1
    fast = model.jet(theta, x, 2)
    ref = autograd_jet(lambda p: model.u(theta, p[None])[0], x, 2)
    torch.testing.assert_close(fast.u, ref.u, rtol=0, atol=1e-13)
    torch.testing.assert_close(fast.du, ref.du, rtol=0, atol=1e-13)
    torch.testing.assert_close(fast.d2u, ref.d2u, rtol=0, atol=1e-12)
    one = model.jet(theta, x, 1)
    assert one.d2u is None
    torch.testing.assert_close(one.du, ref.du, rtol=0, atol=1e-13)


@pytest.mark.parametrize("arch", ["mlp", "modified_mlp"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_input_map_jet_matches_autograd(arch, dim):
    """-pinn_input_scale box: the jet in x (chain rule through x̃ = s(x − c)) equals nested autograd
    of u(x), mixed pairs included, and the map sends the box's corners to ±1."""
    lo, hi = [-1.0, 0.0, 2.0][:dim], [3.0, 0.5, 2.25][:dim]
    model = build_model(arch, dim, (6, 6, 6), "tanh", torch.float64, "cpu", options={"input_scale": "box"},
                        box=(lo, hi))
    plain = build_model(arch, dim, (6, 6, 6), "tanh", torch.float64, "cpu")
    theta = _theta(model)
    lo_t, hi_t = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
    x = lo_t + (hi_t - lo_t) * torch.rand(13, dim, dtype=torch.float64)
    mixed = tuple((i, j) for i in range(dim) for j in range(i + 1, dim))
    fast = model.jet(theta, x, 2, mixed)
    ref = autograd_jet(lambda p: model.u(theta, p[None])[0], x, 2, mixed)
    for a, b in ((fast.u, ref.u), (fast.du, ref.du), (fast.d2u, ref.d2u), (fast.dmix, ref.dmix)):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * float(b.abs().max()))
    # the same θ on the raw inputs is another function: u(x) = plain(2(x − lo)/(hi − lo) − 1)
    torch.testing.assert_close(model.u(theta, x), plain.u(theta, 2 * (x - lo_t) / (hi_t - lo_t) - 1), rtol=0,
                               atol=1e-14)
    assert model.n_params == plain.n_params  # the map is fixed, not part of θ


def test_input_map_refused_with_fourier_features():
    with pytest.raises(PinnInputError, match="input_scale box: not with -pinn_arch fourier_mlp"):
        build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options={"input_scale": "box"},
                    box=((0, 0), (1, 1)))
    with pytest.raises(PinnInputError, match="hi > lo"):
        build_model("mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options={"input_scale": "box"},
                    box=((0, 1), (1, 1)))


def test_gates_matter():
    """The encoders change u (so the comparison above exercises the gated path)."""
    model = build_model("modified_mlp", 2, (5, 5), "tanh", torch.float64, "cpu")
    theta = _theta(model)
    x = torch.rand(7, 2, dtype=torch.float64)
    params = model.unflatten(theta.clone())
    params["u_in.bias"] += 0.5
    moved = torch.cat([p.flatten() for p in params.values()])
    assert (model.u(moved, x) - model.u(theta, x)).abs().max() > 1e-3


class _Wrapped(nn.Module):
    """Hides the jet: FlatModel falls back to nested autograd for this module."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("problem", ["helmholtz2d", "burgers1d", "heat1d"])
def test_residual_matches_autograd_fallback(problem):
    prob = get_problem(problem)
    torch.manual_seed(0)
    net = ModifiedMLP(prob.dim, (8, 8, 8), "tanh")
    fast, slow = FlatModel(net), FlatModel(_Wrapped(net))
    assert fast.n_params == slow.n_params
    theta = _theta(fast)
    pts = prob.sample({"interior": 40, "boundary": 10, "initial": 10}, seed=2)
    counts = {k: v.shape[0] for k, v in pts.items()}
    r_fast = Residual(prob, fast, pts, counts)(theta)
    r_slow = Residual(prob, slow, pts, counts)(theta)
    torch.testing.assert_close(r_fast, r_slow, rtol=0, atol=1e-12)
    assert r_fast.abs().max() > 1e-2


def test_parameter_count_and_layout():
    model = build_model("modified_mlp", 2, (4, 4, 4), "tanh", torch.float64, "cpu")
    # W¹ (2→4), two gates (4→4), output (4→1), encoders U, V (2→4 each)
    assert model.n_params == (2 * 4 + 4) + 2 * (4 * 4 + 4) + (4 + 1) + 2 * (2 * 4 + 4)
    assert model.names[-4:] == ["u_in.weight", "u_in.bias", "v_in.weight", "v_in.bias"]


@pytest.mark.parametrize("hidden", [(5,), (5, 6)])
def test_bad_shapes(hidden):
    with pytest.raises(PinnInputError, match="at least 2 hidden layers of equal width"):
        ModifiedMLP(2, hidden)


def test_unknown_arch():
    with pytest.raises(PinnInputError, match="allowed: mlp, modified_mlp"):
        build_model("resnet", 2, (4, 4), "tanh", torch.float64, "cpu")


def test_cli_arch(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_arch", "modified_mlp", "-pinn_layers", "8,8",
                       "-tao_max_it", "20", "-pinn_report", str(rep))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(rep.read_text())
    assert data["arch"] == "modified_mlp" and data["n_params"] == (8 + 8) + (64 + 8) + 9 + 2 * 16
    assert np.isfinite(data["loss"]) and data["loss"] < data["initial_loss"]
    bad = run_pinntao("-pinn_problem", "poisson1d", "-pinn_arch", "kan")
    assert bad.returncode == 2 and "-pinn_arch: unknown value 'kan'; allowed: mlp, modified_mlp" in bad.stderr
