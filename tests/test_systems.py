"""Systems of PDEs: multi-output networks, mixed-derivative jets (vs nested autograd to 1e-12
for every activation and both architectures), component-stacked residuals (Gram product vs dense
JᵀJ, loss formula), and the construction checks' errors."""

import dataclasses

import numpy as np
import pytest
import torch
from helpers import dense
from petsc4py import PETSc
from torch import nn

from pinntao.errors import PinnInputError
from pinntao.models import ACTIVATIONS, FlatModel, MissingDerivative, autograd_jet, build_model, mixed_pairs
from pinntao.objective import PinnObjective
from pinntao.problems.base import Block, Box, Problem


def _theta(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return model.initial_theta(seed) + 0.3 * torch.randn(model.n_params, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("arch", ["mlp", "modified_mlp"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dim,out", [(1, 1), (2, 1), (2, 3), (3, 2)])
def test_full_hessian_jet_matches_autograd(arch, activation, dim, out):
    model = build_model(arch, dim, (6, 6, 6), activation, torch.float64, "cpu", out_dim=out)
    theta = _theta(model)
    x = torch.rand(9, dim, dtype=torch.float64) * 2 - 1
    pairs = mixed_pairs("all", dim)
    fast = model.jet(theta, x, 2, pairs)
    f = model.point_function(model.unflatten(theta))
    H = torch.func.vmap(torch.func.hessian(f))(x)  # (n, d, d) or (n, m, d, d)
    ref = autograd_jet(f, x, 2, pairs)
    assert fast.u.shape == ((9,) if out == 1 else (9, out))
    torch.testing.assert_close(fast.u, model.u(theta, x), rtol=0, atol=1e-13)
    torch.testing.assert_close(fast.du, ref.du, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.d2u, ref.d2u, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.hessian(), H, rtol=0, atol=1e-12)
    if pairs:
        torch.testing.assert_close(fast.dmix, ref.dmix, rtol=0, atol=1e-12)
        assert fast.dmix.abs().max() > 1e-3  # the comparison sees non-zero mixed entries
    # the cheap path (no mixed pairs) gives the same pure derivatives and holds no mixed ones
    cheap = model.jet(theta, x, 2)
    torch.testing.assert_close(cheap.d2u, fast.d2u, rtol=0, atol=1e-13)
    assert cheap.dmix is None and cheap.mixed == ()
    # per-field views are the scalar jets of each output
    for k, fk in enumerate(fast.fields()):
        hk = H if out == 1 else H[:, k]
        torch.testing.assert_close(fk.hessian(), hk, rtol=0, atol=1e-12)
        torch.testing.assert_close(fk.laplacian(), torch.diagonal(hk, dim1=-2, dim2=-1).sum(-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", ["mlp", "modified_mlp"])
def test_some_mixed_pairs(arch):
    """Only the pairs asked for are computed, and they equal the Hessian's entries."""
    model = build_model(arch, 3, (5, 5), "tanh", torch.float64, "cpu", out_dim=2)
    theta = _theta(model)
    x = torch.rand(7, 3, dtype=torch.float64)
    jet = model.jet(theta, x, 2, mixed_pairs([(2, 0)], 3))
    H = torch.func.vmap(torch.func.hessian(model.point_function(model.unflatten(theta))))(x)
    assert jet.mixed == ((0, 2),) and jet.dmix.shape == (7, 2, 1)
    u, v = jet.fields()
    torch.testing.assert_close(v.d2(2, 0), H[:, 1, 0, 2], rtol=0, atol=1e-12)
    torch.testing.assert_close(u.d2(0, 2), H[:, 0, 0, 2], rtol=0, atol=1e-12)
    with pytest.raises(MissingDerivative, match="mixed"):
        u.d2(0, 1)
    with pytest.raises(MissingDerivative, match="order"):
        model.jet(theta, x, 1).dd(0)


class _Wrapped(nn.Module):
    """A module that is not an MLP: FlatModel uses the autograd fallback for it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_autograd_fallback_multi_output_equals_forward_jet():
    fast_model = build_model("mlp", 2, (5, 4), "sin", torch.float64, "cpu", out_dim=3)
    slow_model = FlatModel(_Wrapped(fast_model.module))
    theta = _theta(fast_model)
    x = torch.rand(6, 2, dtype=torch.float64)
    a, b = fast_model.jet(theta, x, 2, ((0, 1),)), slow_model.jet(theta, x, 2, ((0, 1),))
    assert slow_model.u(theta, x).shape == (6, 3)
    for name in ("u", "du", "d2u", "dmix"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12)


def _system(weights=(1.0, 4.0, 0.25), out_dim_fields=2, interior_components=3, bad=None) -> Problem:
    """A 2-field toy system on the unit square: three interior equations (one with u_xy), two
    boundary equations; closed-form (u, v) = (sin x cos y, x y)."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(x):
        return torch.stack([torch.sin(x[:, 0]) * torch.cos(x[:, 1]), x[:, 0] * x[:, 1]], 1)

    def interior(j, x):
        u, v = j.fields()
        r = torch.stack([-u.laplacian() - 2 * torch.sin(x[:, 0]) * torch.cos(x[:, 1]),
                         v.d2(0, 1) - 1.0 + u.u * v.d(0) - exact(x)[:, 0] * x[:, 1],
                         u.d(0) + v.d(1) - torch.cos(x[:, 0]) * torch.cos(x[:, 1]) - x[:, 0]], 1)
        return r[:, : interior_components] if bad != "shape" else r[:, 0]

    def boundary(j, x):
        return j.u - exact(x)

    return Problem(
        name="toy_system", domain=box,
        blocks=[Block("interior", "interior", box.interior, residual=interior, mixed=[(0, 1)] if bad != "mixed" else (),
                      components=interior_components, component_weights=weights,
                      pure=(1,) if bad == "pure" else None),
                Block("boundary", "boundary", lambda n, rng, s: box.boundary(n, rng, s)[0], residual=boundary,
                      order=0, components=2, weight=3.0)],
        exact=exact, default_counts={"interior": 13, "boundary": 7}, fields=out_dim_fields, field_names=("u", "v"),
    )


def _obj(prob, gram="explicit", out_dim=2):
    model = build_model("mlp", 2, (5, 4), "tanh", torch.float64, "cpu", out_dim=out_dim)
    return PinnObjective(prob, model, comm=PETSc.COMM_WORLD, gram=gram, seed=2)


@pytest.mark.parametrize("gram", ["explicit", "matfree"])
def test_system_gram_equals_dense_JtJ(gram):
    obj = _obj(_system(), gram)
    assert obj.n_rows == 13 * 3 + 7 * 2 and obj.n_points == 20
    x = obj.initial_vec()
    obj.set_linearization(x)
    theta = obj.gather(x)
    J = torch.func.jacrev(obj.residual)(theta).numpy()
    assert J.shape == (obj.n_rows, obj.n_params)
    np.testing.assert_allclose(dense(obj.gram_mat(), obj.n_params), J.T @ J, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(obj.residual.jacobian(theta).numpy(), J, rtol=0, atol=1e-12)
    g = obj.create_vec()
    f = obj.objective_gradient(None, x, g)
    r = obj.residual(theta).numpy()
    np.testing.assert_allclose(g.getArray(), J.T @ r, rtol=1e-12, atol=1e-13)
    assert f == pytest.approx(0.5 * r @ r, rel=1e-14)


def test_system_rows_are_point_major_with_component_weights():
    prob = _system()
    obj = _obj(prob)
    theta = obj.model.initial_theta(0)
    pts = prob.sample({}, 2)
    r = obj.residual(theta)
    jet = obj.model.jet(theta, torch.as_tensor(pts["interior"]), 2, ((0, 1),))
    R = prob.blocks[0].residual(jet, torch.as_tensor(pts["interior"]))  # (13, 3)
    w = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(r[:39], (R * (w / 13).sqrt()).reshape(-1), rtol=1e-14, atol=0)
    Rb = obj.model.u(theta, torch.as_tensor(pts["boundary"])) - prob.exact(torch.as_tensor(pts["boundary"]))
    torch.testing.assert_close(r[39:], (Rb * (3.0 / 7) ** 0.5).reshape(-1), rtol=1e-14, atol=0)
    # the loss is ½ Σ_b Σ_c (w_b w_bc / N_b) Σ_i R_bc(x_i)²
    loss = 0.5 * ((R**2 * w).sum() / 13 + 3.0 * (Rb**2).sum() / 7)
    assert obj.loss_full(theta) == pytest.approx(float(loss), rel=1e-13)
    # the relative L2 error compares both fields
    u = obj.model.u(theta, obj._x_eval)
    ref = prob.exact(obj._x_eval)
    assert obj.rel_l2(theta) == pytest.approx(float((u - ref).norm() / ref.norm()), rel=1e-12)


@pytest.mark.parametrize("case,match", [
    ("fields", r"block 'interior'.*returns shape \(2,\).*2 fields, expected shape \(2, 2\)"),
    ("shape", r"block 'interior'.*returns \(2,\).*expected shape \(2, 3\), 3 components per point"),
    ("mixed", r"block 'interior'.*derivative the jet does not hold.*∂²u/∂x0∂x1"),
    ("pure", r"block 'interior'.*derivative the jet does not hold.*pure=\(1,\).*∂²u/∂x0² needs 0 in pure="),
])
def test_system_bad_input(case, match):
    prob = _system(bad=case)
    with pytest.raises(PinnInputError, match=match):
        _obj(prob, out_dim=1 if case == "fields" else 2)


def test_scalar_problem_still_rejects_n1_exact():
    box = Box((0.0, 0.0), (1.0, 1.0))
    prob = Problem("p", box, [Block("interior", "interior", box.interior, residual=lambda j, x: j.dd(0))],
                   exact=lambda x: x[:, :1], default_counts={"interior": 5})
    with pytest.raises(PinnInputError, match=r"exact\(\) returns \(2, 1\).*expected shape \(2,\)"):
        _obj(prob, out_dim=1)


@pytest.mark.parametrize("kw,match", [
    (dict(mixed=[(0, 0)]), "distinct"),
    (dict(mixed="some"), "'all'"),
    (dict(components=0), "components"),
    (dict(components=2, component_weights=(1.0,)), "component_weights"),
    (dict(order=1, mixed="all"), "order=2"),
    (dict(order=1, pure=(0,)), "pure= needs order=2"),
    (dict(pure=(2,)), r"pure= must list one or more input indices in 0\.\.1"),
    (dict(pure=()), "one or more"),
    (dict(pure="x"), "input indices"),
])
def test_bad_block_declarations(kw, match):
    box = Box((0.0, 0.0), (1.0, 1.0))
    with pytest.raises(PinnInputError, match=match):
        b = Block("interior", "interior", box.interior, residual=lambda j, x: j.u, **kw)
        b.pairs(2)
        b.pure_dims(2)


def test_block_pure_dims_sorted_and_all_means_none():
    box = Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    block = Block("interior", "interior", box.interior, residual=lambda j, x: j.u, pure=(2, 0, 2))
    assert block.pure_dims(3) == (0, 2)
    assert dataclasses.replace(block, pure=(1, 0, 2)).pure_dims(3) is None  # every input: the full jet


@pytest.mark.parametrize("arch,opts", [("mlp", {}), ("mlp", {"input_scale": "box"}), ("modified_mlp", {}),
                                       ("fourier_mlp", {"ff_features": 3, "ff_keep": (0,)}), ("autograd", {})])
@pytest.mark.parametrize("pure", [(1,), (0, 2), (2,)])
def test_jet_with_pure_holds_those_second_derivatives_only(arch, opts, pure):
    """A jet cut to ``pure`` has the full jet's u, du and ∂²u/∂x_i² for i in pure (2 fields, 3-D
    inputs, every path: forward jet, input map, embedding, modified MLP, autograd), and names the
    others as missing."""
    box = ((-1.0, 0.0, 0.5), (1.0, 2.0, 1.5))
    if arch == "autograd":
        model = FlatModel(_Wrapped(nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))))
    else:
        model = build_model(arch, 3, (6, 6), "tanh", torch.float64, "cpu", out_dim=2, options=opts, box=box)
    theta = _theta(model)
    x = torch.rand(8, 3, dtype=torch.float64)
    full, cut = model.jet(theta, x, 2), model.jet(theta, x, 2, pure=pure)
    assert torch.equal(cut.u, full.u) and torch.equal(cut.du, full.du)
    assert cut.pure == pure and cut.d2u.shape == (8, 2, len(pure))
    for i in pure:
        torch.testing.assert_close(cut.dd(i), full.dd(i), rtol=0, atol=1e-13)
    torch.testing.assert_close(cut.field(1).laplacian(pure), full.field(1).laplacian(pure), rtol=0, atol=1e-12)
    other = next(i for i in range(3) if i not in pure)
    with pytest.raises(MissingDerivative, match=f"∂²u/∂x{other}² needs {other} in pure="):
        cut.field(0).dd(other)
    with pytest.raises(MissingDerivative, match="pure="):
        cut.laplacian()


def test_pure_leaves_the_other_second_derivative_channels_off_the_tape():
    """The forward jet pushes only the asked-for ∂²/∂x_i² through the layers: 3-D inputs with
    pure=(1,) give a hidden weight 1 + 3 + 1 channels on the tape instead of 1 + 3 + 3."""
    model = build_model("mlp", 3, (6, 6), "tanh", torch.float64, "cpu")
    theta, x = _theta(model), torch.rand(5, 3, dtype=torch.float64)

    def channels(pure):
        tape = []
        model.jet(theta, x, 2, tape=tape, pure=pure)
        return sum(rec[1].reshape(5, -1, rec[1].shape[-1]).shape[1] for rec in tape if rec[0] == "layers.1.weight")

    assert channels(None) == 7 and channels((1,)) == 5


def test_cli_trains_a_system_and_writes_its_fields(tmp_path):
    """cavity2d through the CLI: the network gets the problem's 3 fields, the report and the VTS
    file (one array per field) are written; a tiny budget, so only the plumbing is checked."""
    import json

    from conftest import run_pinntao

    rep, vts = tmp_path / "r.json", tmp_path / "c.vts"
    proc = run_pinntao("-pinn_problem", "cavity2d", "-pinn_param_ref_n", "32", "-pinn_layers", "8,8",
                       "-pinn_n_interior", "60", "-pinn_n_boundary", "20", "-tao_type", "lmvm", "-tao_max_it", "5",
                       "-pinn_report", str(rep), "-pinn_vts", str(vts), "-pinn_vts_n", "9")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(rep.read_text())
    assert data["n_params"] == (2 * 8 + 8) + (8 * 8 + 8) + (8 * 3 + 3) and data["rel_l2"] < 2
    text = vts.read_text()
    for name in ("u", "v", "p", "exact_u", "error_p"):
        assert f'Name="{name}"' in text


def test_cavity_error_compares_the_velocity_magnitude():
    from pinntao.problems import get_problem

    prob = get_problem("cavity2d", {"ref_n": 32})
    obj = _obj(prob, out_dim=3)
    theta = obj.model.initial_theta(1)
    u, ref = obj.model.u(theta, obj._x_eval), prob.exact(obj._x_eval)
    assert u.shape == ref.shape == (obj._x_eval.shape[0], 3)
    su, sr = u[:, :2].norm(dim=1), ref[:, :2].norm(dim=1)
    assert obj.rel_l2(theta) == pytest.approx(float((su - sr).norm() / sr.norm()), rel=1e-12)
    assert obj.rel_l2(theta) != pytest.approx(float((u - ref).norm() / ref.norm()), rel=1e-3)  # not all fields
    # the lid: u = 1 on y = 1, no-slip elsewhere, in the reference and in the boundary residual
    top = torch.tensor([[0.3, 1.0], [0.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(prob.exact(top)[:, :2], torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
