"""Fourier-feature architectures: their forward jet equals nested autograd (first, pure and mixed
second derivatives), B is fixed, seeded and outside θ, the CLI builds them and rejects bad input."""


import pytest
import torch
from conftest import run_pinntao
from helpers import reports_on_one_and_two_ranks

from pinntao.errors import PinnInputError
from pinntao.models import ARCHITECTURES, FourierEmbedding, autograd_jet, build_model, fourier_embedding

FF = {"ff_features": 3, "ff_sigma": 1.3, "ff_scales": (1, 3)}
EMBEDDED = [a for a in ARCHITECTURES if a.startswith(("fourier_", "multiscale_"))]


def _theta(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return model.initial_theta(seed) + 0.3 * torch.randn(model.n_params, generator=gen, dtype=torch.float64)


def _close(a, b, rel=1e-12):
    """|a − b| ≤ rel × max|b| (derivatives of sin(2πs x) grow like (2πs)²)."""
    scale = max(float(b.abs().max()), 1.0)
    assert float((a - b).abs().max()) <= rel * scale, (float((a - b).abs().max()), scale)


@pytest.mark.parametrize("arch", EMBEDDED)
@pytest.mark.parametrize("dim,keep", [(1, ()), (2, ()), (3, (0,))])
def test_jet_matches_autograd(arch, dim, keep):
    model = build_model(arch, dim, (5, 5), "tanh", torch.float64, "cpu", options={**FF, "ff_keep": keep}, seed=1)
    theta = _theta(model)
    x = torch.rand(11, dim, dtype=torch.float64) * 2 - 1
    mixed = tuple((i, j) for i in range(dim) for j in range(i + 1, dim))
    fast = model.jet(theta, x, 2, mixed)
    ref = autograd_jet(lambda p: model.u(theta, p[None])[0], x, 2, mixed)
    _close(fast.u, ref.u)
    _close(fast.du, ref.du)
    _close(fast.d2u, ref.d2u)
    if mixed:
        _close(fast.dmix, ref.dmix)
    one = model.jet(theta, x, 1)
    assert one.d2u is None
    _close(one.du, ref.du)
    assert float(fast.d2u.abs().max()) > 1e-2  # not a vacuous comparison


def test_embedding_jet_alone():
    """γ's own channels against autograd of γ (every feature, mixed included)."""
    B = torch.tensor([[0.5, -1.2], [2.0, 0.3], [0.0, 1.0]], dtype=torch.float64)
    emb = FourierEmbedding(B, keep=(1,))
    x = torch.rand(6, 2, dtype=torch.float64)
    e, de, d2e, me = emb.jet(B, x, 2, ((0, 1),))
    torch.testing.assert_close(e, emb(x), rtol=0, atol=1e-14)
    for f in range(emb.out_dim):
        ref = autograd_jet(lambda p, f=f: emb(p[None])[0, f], x, 2, ((0, 1),))
        torch.testing.assert_close(de[:, :, f], ref.du, rtol=0, atol=1e-13)
        torch.testing.assert_close(d2e[:, :, f], ref.d2u, rtol=0, atol=1e-12)
        torch.testing.assert_close(me[:, 0, f], ref.dmix[:, 0], rtol=0, atol=1e-12)


def test_frequencies_fixed_seeded_and_outside_theta():
    a = build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options=FF, seed=5)
    b = build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options=FF, seed=5)
    c = build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options=FF, seed=6)
    plain = build_model("mlp", 6, (4, 4), "tanh", torch.float64, "cpu")  # 2F = 6 inputs
    assert a.n_params == plain.n_params  # B is not in θ
    assert "embedding.B" in a.frozen and a.frozen["embedding.B"].shape == (3, 2)
    assert torch.equal(a.frozen["embedding.B"], b.frozen["embedding.B"])
    assert not torch.equal(a.frozen["embedding.B"], c.frozen["embedding.B"])
    sig = build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu",
                      options={**FF, "ff_features": 4000, "ff_sigma": 3.0}, seed=0).frozen["embedding.B"]
    assert abs(float(sig.std()) - 3.0) < 0.15  # B ~ N(0, σ²)


def test_trainable_frequencies_in_theta_and_gradient_flows():
    m = build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options={**FF, "ff_train": True}, seed=5)
    fixed = build_model("fourier_mlp", 2, (4, 4), "tanh", torch.float64, "cpu", options=FF, seed=5)
    assert m.n_params == fixed.n_params + 6
    theta = m.initial_theta(0)
    assert torch.equal(m.unflatten(theta)["embedding.B"], fixed.frozen["embedding.B"])  # starts at its draw
    x = torch.rand(5, 2, dtype=torch.float64)
    g = torch.func.grad(lambda th: m.jet(th, x, 2).d2u.sum())(theta)
    start = sum(m.sizes[: m.names.index("embedding.B")])
    assert float(g[start : start + 6].abs().max()) > 0


def test_multiscale_rows_axis_aligned():
    emb = fourier_embedding("multiscale", 3, {"ff_scales": (1, 4), "ff_keep": (0,)}, seed=0)
    assert emb.B.tolist() == [[0, 0.5, 0], [0, 2, 0], [0, 0, 0.5], [0, 0, 2]]  # cos(πs x_i): B = s/2
    x = torch.tensor([[0.3, 0.2, 0.7]], dtype=torch.float64)
    torch.testing.assert_close(emb(x)[0, 1:5], torch.cos(torch.pi * torch.tensor([0.2, 0.8, 0.7, 2.8],
                                                                                  dtype=torch.float64)))
    assert emb.out_dim == 1 + 2 * 4 and not emb.B.requires_grad


@pytest.mark.parametrize("opts", [{"ff_keep": (0, 1)}, {"ff_keep": (2,)}, {"ff_keep": (0, 0)}])
def test_bad_keep_is_one_clear_error(opts):
    with pytest.raises(PinnInputError, match="-pinn_ff_keep"):
        fourier_embedding("fourier", 2, opts, seed=0)


def _cli_args(tmp_path, name, arch="fourier_mlp"):
    return ["-pinn_problem", "poisson1d", "-pinn_arch", arch, "-pinn_ff_features", "4", "-pinn_ff_sigma", "2",
            "-pinn_layers", "6", "-pinn_n_interior", "17", "-pinn_n_boundary", "2", "-tao_max_it", "4",
            "-pinn_report", str(tmp_path / name)]


def test_cli_one_and_two_ranks_agree(tmp_path):
    """Same B on every rank: a 2-rank run reproduces the 1-rank loss history."""
    r1, r2 = reports_on_one_and_two_ranks(tmp_path, lambda name: _cli_args(tmp_path, name))
    assert r1["arch"] == "fourier_mlp" and r1["embedding"]["ff_sigma"] == 2.0 and r1["embedding"]["ff_features"] == 4
    l1 = [row[2] for row in r1["history"]]
    l2 = [row[2] for row in r2["history"]]
    assert len(l1) == len(l2) > 1
    for a, b in zip(l1, l2, strict=True):
        assert abs(a - b) <= 1e-10 * max(abs(a), 1e-300)


def test_cli_rejects_bad_embedding_option(tmp_path):
    bad = run_pinntao(*_cli_args(tmp_path, "bad.json"), "-pinn_ff_sigma", "-1", timeout=120)
    assert bad.returncode == 2
    assert "-pinn_ff_sigma" in bad.stderr and "> 0" in bad.stderr
