"""The PETSc bridge: gradient vs finite differences, Gram and Hessian shells vs dense
matrices, the Jacobian shell's mult/multTranspose, and the relative L2 error."""

import numpy as np
import pytest
import torch
from helpers import dense, perturbed_theta, tiny_objective
from petsc4py import PETSc


@pytest.mark.parametrize("problem", ["poisson1d", "poisson2d", "heat1d"])
def test_gradient_matches_finite_differences(problem):
    obj = tiny_objective(problem)
    x = perturbed_theta(obj)
    g = obj.create_vec()
    f0 = obj.objective_gradient(None, x, g)
    assert f0 == pytest.approx(obj.objective(None, x), rel=1e-14)
    gen = np.random.default_rng(0)
    for _ in range(3):
        d = gen.standard_normal(obj.n_params)
        h = 1e-6
        xp, xm = x.copy(), x.copy()
        xp.axpy(h, PETSc.Vec().createWithArray(d))
        xm.axpy(-h, PETSc.Vec().createWithArray(d))
        fd = (obj.objective(None, xp) - obj.objective(None, xm)) / (2 * h)
        assert g.getArray() @ d == pytest.approx(fd, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("gram", ["explicit", "matfree"])
def test_gram_shell_equals_dense_JtJ(gram):
    obj = tiny_objective(gram=gram)
    x = perturbed_theta(obj)
    obj.set_linearization(x)
    theta = obj.gather(x)
    J = torch.func.jacrev(obj.residual)(theta).numpy()
    G = dense(obj.gram_mat(), obj.n_params)
    np.testing.assert_allclose(G, J.T @ J, rtol=1e-10, atol=1e-10)
    # diagonal for PCJACOBI
    d = obj.create_vec()
    obj.gram_mat().getDiagonal(d)
    np.testing.assert_allclose(d.getArray(), np.diag(J.T @ J), rtol=1e-10, atol=1e-12)


def test_hessian_shell_equals_dense_hessian():
    obj = tiny_objective(layers=(4, 3))
    x = perturbed_theta(obj)
    obj.set_linearization(x)
    theta = obj.gather(x)
    H_ref = torch.func.hessian(obj.residual.loss)(theta).numpy()
    H = dense(obj.hessian_mat(), obj.n_params)
    np.testing.assert_allclose(H, H_ref, rtol=1e-9, atol=1e-10)
    # and it differs from Gauss-Newton away from a zero residual (the test can fail)
    J = torch.func.jacrev(obj.residual)(theta).numpy()
    assert np.abs(H - J.T @ J).max() > 1e-6


@pytest.mark.parametrize("gram", ["explicit", "matfree"])
def test_jacobian_shell(gram):
    obj = tiny_objective(gram=gram)
    x = perturbed_theta(obj)
    obj.set_linearization(x)
    J_ref = torch.func.jacrev(obj.residual)(obj.gather(x)).numpy()
    Jm = obj.jacobian_mat()
    v, u = Jm.createVecs()
    rng = np.random.default_rng(2)
    v.setArray(rng.standard_normal(obj.n_params))
    Jm.mult(v, u)
    np.testing.assert_allclose(u.getArray(), J_ref @ v.getArray(), rtol=1e-11, atol=1e-12)
    w = rng.standard_normal(obj.n_points)
    u.setArray(w)
    Jm.multTranspose(u, v)
    np.testing.assert_allclose(v.getArray(), J_ref.T @ w, rtol=1e-11, atol=1e-12)


def test_residual_vec_and_loss_agree():
    obj = tiny_objective()
    x = perturbed_theta(obj)
    R = obj.create_residual_vec()
    obj.residual_function(None, x, R)
    assert 0.5 * R.norm() ** 2 == pytest.approx(obj.objective(None, x), rel=1e-13)


def test_loss_weights_by_global_counts():
    """L = ½ Σ_b (w_b/N_b) ‖r_b‖²: doubling every count leaves a smooth loss nearly unchanged."""
    a = tiny_objective(n_int=400, n_bnd=200)
    b = tiny_objective(n_int=800, n_bnd=400)
    fa = a.objective(None, a.initial_vec())
    fb = b.objective(None, b.initial_vec())
    assert fa == pytest.approx(fb, rel=0.1)


def test_rel_l2_zero_for_exact_and_one_for_zero_net():
    obj = tiny_objective()
    x = obj.create_vec()
    x.set(0.0)  # u ≡ 0 → relative error 1
    assert obj.rel_l2(x) == pytest.approx(1.0, abs=1e-14)


def test_local_residual_reuses_the_gradient_pass_and_follows_new_points(monkeypatch):
    """r(θ) where the gradient was just taken comes from that pass (no forward evaluation), equal
    to a fresh r(θ) up to rounding (the reverse pass's forward); another θ or new points (a
    batch, new weights) evaluate r again."""
    from pinntao.residual import Residual
    from pinntao.sampling import set_points

    obj = tiny_objective()
    x = perturbed_theta(obj)
    g = obj.create_vec()
    obj.objective_gradient(None, x, g)
    theta = obj.gather(x)
    fresh = obj.residual(theta)
    calls = []
    monkeypatch.setattr(Residual, "__call__", lambda self, th: calls.append(1) or fresh.new_zeros(self.n_local))
    torch.testing.assert_close(obj.local_residual(theta), fresh, rtol=0, atol=1e-14 * fresh.abs().max().item())
    assert calls == []
    assert obj.local_residual(theta + 1e-3).abs().max() == 0 and calls == [1]  # another θ: evaluated
    monkeypatch.undo()
    gen = np.random.default_rng(5)
    set_points(obj, {"interior": gen.random((7, 2)), "boundary": gen.random((3, 2))}, {})
    new = obj.local_residual(theta)
    assert new.shape == (10,)
    torch.testing.assert_close(new, obj.residual(theta), rtol=0, atol=0)


def test_gradient_from_jacobian_is_the_gradient_and_leaves_J_for_the_next_linearisation(monkeypatch):
    """After a loss evaluation at θ, gradient_from_jacobian gives ∇L = Jᵀr without a backward pass
    (equal to the reverse-mode gradient up to rounding), caches the J it formed (the next
    linearisation at θ reuses it) and marks g as the gradient at θ for is_gradient."""
    from pinntao.residual import Residual

    obj = tiny_objective()
    x = perturbed_theta(obj)
    g_ref, g = obj.create_vec(), obj.create_vec()
    f_ref = obj.objective_gradient(None, x, g_ref)
    x2 = x.copy()
    x2.array = x2.array + 1e-3 * np.cos(np.arange(x2.array.size))
    obj.objective(None, x2)  # another θ: r is cached from this evaluation
    calls = []
    real = Residual.__call__
    monkeypatch.setattr(Residual, "residual_grad", lambda *a: calls.append("backward"))
    monkeypatch.setattr(Residual, "__call__", lambda self, th: calls.append("forward") or real(self, th))
    obj.gradient_from_jacobian(x2, g)
    assert calls == [] and obj.counts["jacobian"] == 1
    theta2 = obj.gather(x2)
    J = torch.func.jacrev(obj.residual)(theta2)
    np.testing.assert_allclose(g.array, (J.T @ obj.residual(theta2)).numpy(), rtol=1e-12, atol=1e-14)
    obj.local_jacobian(theta2)
    assert obj.counts["jacobian"] == 1  # cached: the next linearisation at θ₂ forms no new J
    assert obj.is_gradient(theta2, g) and not obj.is_gradient(obj.gather(x), g)
    assert obj.objective(None, x) == f_ref  # back at θ: the same gradient as reverse mode
    obj.gradient_from_jacobian(x, g)
    np.testing.assert_allclose(g.array, g_ref.array, rtol=1e-12, atol=1e-14 * np.abs(g_ref.array).max())


def test_global_jacobian_is_not_the_cached_J():
    """global_jacobian hands out a J that stays J(θ) when J is then formed at another θ (the
    cache reuses its memory): a held J, as a kernel solve's retry reads it, is never overwritten."""
    obj = tiny_objective()
    theta = obj.gather(perturbed_theta(obj))
    J = obj.global_jacobian(theta)
    want = torch.func.jacrev(obj.residual)(theta)
    obj.local_jacobian(theta + 1e-2)
    torch.testing.assert_close(J, want, rtol=1e-12, atol=1e-14)
