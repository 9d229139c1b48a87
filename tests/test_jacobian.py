"""The explicit Jacobian J = ∂r/∂θ: the taped assembly (one backward pass per block, rows as
outer products) against autograd's dense J and finite differences, on every architecture, on
systems and mixed derivatives; the fallback for what a tape cannot see; memory reuse."""

import dataclasses
from itertools import pairwise

import numpy as np
import pytest
import torch
from helpers import perturbed_theta, tiny_objective
from petsc4py import PETSc

from pinntao.models import build_model
from pinntao.objective import PinnObjective
from pinntao.problems import get_problem
from pinntao.residual import Residual

CASES = [
    ("poisson2d", "mlp", {}),
    ("heat1d", "mlp", {}),  # pure=(1,): ∂²/∂x² only, fewer channels on the tape
    ("burgers1d", "mlp", {"input_scale": "box"}),  # the same through the input map
    ("burgers1d", "modified_mlp", {}),
    ("burgers1d", "fourier_mlp", {"ff_features": 3, "ff_keep": (0,)}),
    ("poisson1d_multiscale", "multiscale_modified_mlp", {"ff_scales": (1, 4)}),
    ("anisotropic_poisson2d", "mlp", {}),  # mixed ∂²/∂x∂y
    ("cavity2d", "mlp", {}),  # 3 fields, 3 residual components per point
    ("cavity2d", "fourier_modified_mlp", {"ff_features": 2}),
    ("anisotropic_poisson2d", "mlp", {"input_scale": "box"}),  # inputs mapped onto [-1, 1]^d, mixed
    ("klein_gordon1d", "modified_mlp", {"input_scale": "box"}),
    ("cavity2d", "mlp", {"input_scale": "box"}),
]


def _residual(problem: str, arch: str, opts: dict, n: int = 6, seed: int = 0) -> tuple[Residual, torch.Tensor]:
    prob = get_problem(problem)
    model = build_model(arch, prob.dim, (5, 5), "tanh", torch.float64, "cpu", out_dim=prob.fields, options=opts,
                        box=(prob.domain.lo, prob.domain.hi))
    counts = {b.name: n for b in prob.blocks}
    res = Residual(prob, model, prob.sample(counts, seed), counts)
    gen = torch.Generator().manual_seed(seed + 1)
    theta = model.initial_theta(seed) + 0.3 * torch.randn(model.n_params, generator=gen, dtype=torch.float64)
    return res, theta


@pytest.mark.parametrize(("problem", "arch", "opts"), CASES)
def test_taped_jacobian_equals_autograd(problem, arch, opts):
    res, theta = _residual(problem, arch, opts)
    assert res.model.tapeable
    J = res.jacobian(theta)
    J_ref = torch.func.jacrev(res)(theta)  # the whole residual, reverse mode: independent of the tape
    assert J.shape == J_ref.shape == (res.n_local, res.n_params)
    assert not J.requires_grad
    np.testing.assert_allclose(J.numpy(), J_ref.numpy(), rtol=0, atol=1e-12 * float(J_ref.abs().max()))


def test_taped_jacobian_matches_finite_differences():
    res, theta = _residual("burgers1d", "mlp", {})
    J = res.jacobian(theta)
    v = torch.randn(res.n_params, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    h = 1e-6
    fd = (res(theta + h * v) - res(theta - h * v)) / (2 * h)
    np.testing.assert_allclose((J @ v).numpy(), fd.numpy(), rtol=1e-6, atol=1e-7)


def test_trained_frequencies_take_the_general_path():
    """Trainable Fourier frequencies enter through sin/cos, not a product a·Wᵀ: no tape, and J
    still equals autograd's."""
    res, theta = _residual("heat1d", "fourier_mlp", {"ff_features": 3, "ff_train": True})
    assert not res.model.tapeable
    np.testing.assert_allclose(res.jacobian(theta).numpy(), torch.func.jacrev(res)(theta).numpy(), rtol=0,
                               atol=1e-12)


def test_point_residual_block_beside_taped_blocks():
    """A block written as a point residual (nested autograd) is assembled per point, the jet
    blocks of the same problem by the tape; the stacked J is right."""
    prob = get_problem("poisson2d")
    interior = prob.blocks[0]

    def lap(u, p):
        return torch.func.hessian(u)(p).diagonal().sum() + 2 * torch.pi**2 * torch.sin(torch.pi * p[0]) * torch.sin(
            torch.pi * p[1])

    blocks = [dataclasses.replace(interior, residual=None, point_residual=lap), *prob.blocks[1:]]
    prob = dataclasses.replace(prob, blocks=blocks)
    model = build_model("mlp", 2, (4, 4), "tanh", torch.float64, "cpu")
    counts = {b.name: 5 for b in prob.blocks}
    res = Residual(prob, model, prob.sample(counts, 0), counts)
    theta = model.initial_theta(2)
    np.testing.assert_allclose(res.jacobian(theta).numpy(), torch.func.jacrev(res)(theta).numpy(), rtol=0,
                               atol=1e-12)


def test_new_linearisation_point_reuses_the_jacobian_memory():
    """The J at a previous θ is dead once θ moves: local_jacobian overwrites it (no N·P fresh
    allocation per iteration) and the values are those at the new θ."""
    obj = tiny_objective("heat1d", layers=(6, 5))
    x1 = perturbed_theta(obj, seed=1)
    x2 = perturbed_theta(obj, seed=2)
    t1, t2 = obj.gather(x1), obj.gather(x2)
    J1 = obj.local_jacobian(t1)
    ptr = J1.data_ptr()
    assert obj.local_jacobian(t1) is J1  # cached at the same θ
    J2 = obj.local_jacobian(t2)
    assert J2.data_ptr() == ptr
    np.testing.assert_allclose(J2.numpy(), torch.func.jacrev(obj.residual)(t2).numpy(), rtol=0, atol=1e-12)


def test_gram_from_taped_jacobian_on_two_blocks_of_points():
    """G = JᵀJ from the taped rows equals the matrix-free Gram product column by column."""
    prob = get_problem("heat1d")
    model = build_model("modified_mlp", prob.dim, (4, 4), "tanh", torch.float64, "cpu")
    counts = {"interior": 9, "boundary": 4, "initial": 4}
    obj = PinnObjective(prob, model, comm=PETSc.COMM_SELF, counts=counts, seed=3, gram="explicit")
    free = PinnObjective(prob, model, comm=PETSc.COMM_SELF, counts=counts, seed=3, gram="matfree")
    theta = model.initial_theta(4)
    eye = torch.eye(model.n_params, dtype=torch.float64)
    np.testing.assert_allclose(obj.gram(theta, eye).numpy(), free.gram(theta, eye).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("n", "c", "o", "i"), [(1100, 4, 32, 32), (40, 5, 20, 17), (40, 7, 20, 20), (40, 3, 20, 2)])
def test_outer_sum_writes_the_summed_outer_products_into_its_column_block(n, c, o, i, monkeypatch):
    """The row-chunked broadcast path (wide inputs, few channels; 1,100 rows of a 32 × 32 layer =
    five chunks, the last partial) and the bmm path write Σ_c dz[n, c]ᵀ a[n, c] into a strided
    block of J, nothing else, from the channels split into records as a tape holds them (the
    value channel, then stacks of the rest)."""
    import pinntao.residual as residual
    from pinntao.residual import _outer_sum

    if n < 1000:
        monkeypatch.setattr(residual, "CHUNKED_MIN_ENTRIES", 0)  # small blocks: the chunked path too

    gen = torch.Generator().manual_seed(3)
    dz = torch.randn(n, c, o, generator=gen, dtype=torch.float64)
    a = torch.randn(n, c, i, generator=gen, dtype=torch.float64)
    J = torch.full((n, o * i + 9), 7.0, dtype=torch.float64)
    bounds = [0, *range(1, c, 2), c]  # records of 1, 2, 2, ... channels
    split = list(pairwise(bounds))
    _outer_sum([dz[:, s:e] for s, e in split], [a[:, s:e] for s, e in split], J[:, 4:4 + o * i])
    ref = torch.einsum("nco,nci->noi", dz, a).reshape(n, o * i)
    torch.testing.assert_close(J[:, 4:4 + o * i], ref, rtol=1e-13, atol=1e-13)
    assert bool((J[:, :4] == 7.0).all()) and bool((J[:, 4 + o * i:] == 7.0).all())


def test_taped_jacobian_equals_autograd_with_wide_layers(monkeypatch):
    """Layers of width ≥ 16 take the chunked assembly (forced at this size): still autograd's J."""
    import pinntao.residual as residual

    monkeypatch.setattr(residual, "CHUNKED_MIN_ENTRIES", 0)
    prob = get_problem("burgers1d")
    model = build_model("mlp", prob.dim, (16, 18), "tanh", torch.float64, "cpu", out_dim=prob.fields, options={},
                        box=(prob.domain.lo, prob.domain.hi))
    counts = {b.name: 5 for b in prob.blocks}
    res = Residual(prob, model, prob.sample(counts, 0), counts)
    theta = model.initial_theta(0)
    J_ref = torch.func.jacrev(res)(theta)
    np.testing.assert_allclose(res.jacobian(theta).numpy(), J_ref.numpy(), rtol=0,
                               atol=1e-12 * float(J_ref.abs().max()))


def test_jvp_in_the_sketch_span_is_read_off_the_kept_image():
    """After jq_triangle(θ, Q), J v for v = Q c is (J Q)(Qᵀv): equal to J v to rounding at N·k
    flops. A v with a component outside span(Q), or another θ, takes J itself."""
    obj = tiny_objective(gram="explicit")
    theta = obj.gather(perturbed_theta(obj))
    J = obj.local_jacobian(theta).clone()
    gen = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(obj.n_params, 6, generator=gen, dtype=torch.float64))
    obj.jq_triangle(theta, Q)
    v = Q @ torch.randn(6, generator=gen, dtype=torch.float64)
    Jv = obj.local_jvp(theta, v)
    assert torch.equal(Jv, (J @ Q) @ (Q.T @ v))
    torch.testing.assert_close(Jv, J @ v, rtol=1e-12, atol=1e-14)
    w = torch.randn(obj.n_params, generator=gen, dtype=torch.float64)
    off = v + 1e-9 * (w - Q @ (Q.T @ w))
    assert torch.equal(obj.local_jvp(theta, off), J @ off)
    other = theta + 0.01
    assert torch.equal(obj.local_jvp(other, v), obj.local_jacobian(other) @ v)


def test_new_points_drop_the_kept_image():
    """After the points change (resampling, a batch, new weights) at the same θ, J v comes from the
    new J, not from the image J Q of the old points."""
    from pinntao.sampling import set_points

    obj = tiny_objective(gram="explicit")
    theta = obj.gather(perturbed_theta(obj))
    gen = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(obj.n_params, 6, generator=gen, dtype=torch.float64))
    obj.jq_triangle(theta, Q)
    v = Q @ torch.randn(6, generator=gen, dtype=torch.float64)
    set_points(obj, obj.problem.sample(obj.global_counts, 7), {})
    assert torch.equal(obj.local_jvp(theta, v), obj.local_jacobian(theta) @ v)
