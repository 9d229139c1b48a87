"""Sketches: exact on exactly low-rank G, agree with dense eigendecompositions; the PCs
apply U Λ⁻¹ Uᵀ; ENGD's kernel (Woodbury) form equals the dense pseudo-inverse."""

import itertools

import numpy as np
import pytest
import torch
from helpers import gram_pc, perturbed_theta, tiny_objective
from petsc4py import PETSc

from pinntao.errors import PinnInputError
from pinntao.sketch import (
    ROW_BLOCK,
    CountSketch,
    NonFiniteSketch,
    check_sketch_args,
    countsketch_rows,
    exact_from_jacobian,
    gaussian,
    gaussian_rows,
    gram_ritz,
    jacobian_eig,
    jacobian_ritz,
    nystrom,
    randomized_eig,
)


def _low_rank_gram(P=60, r=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(P, r, generator=gen, dtype=torch.float64)
    G = B @ B.T
    return G, (lambda M: G @ M)


@pytest.mark.parametrize("passes", [1, 2])
def test_sketch_reproduces_exactly_low_rank_G(passes):
    G, gram = _low_rank_gram()
    lr = randomized_eig(gram, gaussian(60, 20, 3, G), passes=passes, tol=1e-10)
    assert lr.rank == 12
    torch.testing.assert_close(lr.U @ torch.diag(lr.lam) @ lr.U.T, G, rtol=0, atol=1e-9)
    torch.testing.assert_close(lr.U.T @ lr.U, torch.eye(12, dtype=torch.float64), rtol=0, atol=1e-12)


def test_nystrom_reproduces_exactly_low_rank_G():
    G, gram = _low_rank_gram()
    lr = nystrom(gram, gaussian(60, 20, 4, G), tol=1e-10)
    assert lr.rank == 12
    torch.testing.assert_close(lr.U @ torch.diag(lr.lam) @ lr.U.T, G, rtol=0, atol=1e-8)


def test_sketch_misses_rank_when_too_small():
    """The check above can fail: a sketch smaller than the rank cannot reproduce G."""
    G, gram = _low_rank_gram()
    lr = randomized_eig(gram, gaussian(60, 6, 3, G), passes=2, tol=1e-10)
    assert lr.rank <= 6
    assert (lr.U @ torch.diag(lr.lam) @ lr.U.T - G).abs().max() > 1e-2


@pytest.mark.parametrize("passes", [1, 2])
def test_one_and_two_pass_agree_with_dense_eig_on_tiny_net(passes):
    obj = tiny_objective(layers=(4, 3), n_int=40, n_bnd=12)
    theta = obj.gather(perturbed_theta(obj))
    J = torch.func.jacrev(obj.residual)(theta)
    G = J.T @ J
    P = obj.n_params
    lr = randomized_eig(lambda M: obj.gram(theta, M), gaussian(P, P, 0, theta), passes=passes, tol=1e-13)
    ref = torch.linalg.eigvalsh(G).flip(0)
    top = min(10, lr.rank)
    torch.testing.assert_close(lr.lam[:top], ref[:top], rtol=1e-7, atol=1e-12)


def test_exact_kernel_form_equals_dense_pseudo_inverse():
    gen = torch.Generator().manual_seed(1)
    J = torch.randn(15, 40, generator=gen, dtype=torch.float64)  # N < P
    g = torch.randn(40, generator=gen, dtype=torch.float64)
    dense = exact_from_jacobian(None, J.T @ J, tol=1e-10)
    kernel = exact_from_jacobian(J, None, tol=1e-10)
    ref = torch.linalg.pinv(J.T @ J, hermitian=True, rtol=1e-10) @ g
    for lr in (dense, kernel):
        assert lr.rank == 15
        torch.testing.assert_close(lr.U @ ((lr.U.T @ g) / lr.lam), ref, rtol=1e-8, atol=1e-8)


def test_nonfinite_products_raise():
    with pytest.raises(NonFiniteSketch):
        randomized_eig(lambda M: M * float("nan"), torch.randn(5, 3, dtype=torch.float64))


@pytest.mark.parametrize("args", [(0, 5, 1e-13, 2), (5, -1, 1e-13, 2), (5, 5, 0.0, 2), (5, 5, 1e-13, 3)])
def test_bad_sketch_arguments(args):
    with pytest.raises(PinnInputError):
        check_sketch_args(*args)




@pytest.mark.parametrize("passes", [1, 2])
def test_sketch_pc_applies_U_inv_lambda_Ut(passes):
    obj = tiny_objective()
    x = perturbed_theta(obj)
    _ksp, pc = gram_pc(obj, x, "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=20, pc_sketch_passes=passes)
    b, y = obj.create_vec(), obj.create_vec()
    b.setArray(np.sin(np.arange(obj.n_params)))
    pc.apply(b, y)
    ctx = pc.getPythonContext()
    U, lam = ctx.U_loc, ctx.lam
    assert U.shape[1] == ctx.stats["ranks"][-1] > 0
    bt = torch.as_tensor(b.getArray())
    np.testing.assert_allclose(y.getArray(), (U @ ((U.T @ bt) / lam)).numpy(), rtol=1e-12, atol=1e-12)
    if passes == 1:
        return
    # two-pass: Uᵀ G U = Λ exactly, so y solves G y = b on the kept subspace: Uᵀ(G y − b) ≈ 0
    Gy = obj.create_vec()
    obj.gram_mat().mult(y, Gy)
    resid = U.T @ (torch.as_tensor(Gy.getArray()) - bt)
    assert resid.abs().max() < 1e-6 * bt.norm()


def test_full_sketch_pc_is_the_pseudo_inverse():
    obj = tiny_objective(layers=(4, 3))
    x = perturbed_theta(obj)
    # a well-conditioned cut (1e-6): tiny eigenpairs are too inaccurate to compare
    _, pc = gram_pc(
        obj,
        x,
        "pinntao.pc.SketchedPseudoInverse",
        pc_sketch_rank=obj.n_params,
        pc_sketch_oversample=0,
        pc_sketch_tol=1e-6,
    )
    _, pce = gram_pc(obj, x, "pinntao.pc.ExactPseudoInverse", pc_engd_form="gram", pc_engd_tol=1e-6)
    b, y, ye = obj.create_vec(), obj.create_vec(), obj.create_vec()
    b.setArray(np.cos(np.arange(obj.n_params)))
    pc.apply(b, y)
    pce.apply(b, ye)
    assert pc.getPythonContext().lam.numel() == pce.getPythonContext().lam.numel()
    np.testing.assert_allclose(y.getArray(), ye.getArray(), rtol=1e-6, atol=1e-8 * np.abs(ye.getArray()).max())


@pytest.mark.parametrize("form", ["gram", "kernel"])
def test_engd_pc_matches_dense_pinv(form):
    obj = tiny_objective(layers=(6, 6), n_int=20, n_bnd=8)  # N = 28 < P = 67
    x = perturbed_theta(obj)
    _, pc = gram_pc(obj, x, "pinntao.pc.ExactPseudoInverse", pc_engd_form=form, pc_engd_tol=1e-9)
    theta = obj.gather(x)
    J = torch.func.jacrev(obj.residual)(theta)
    b, y = obj.create_vec(), obj.create_vec()
    g = torch.sin(torch.arange(obj.n_params, dtype=torch.float64))
    b.setArray(g.numpy())
    pc.apply(b, y)
    ref = torch.linalg.pinv(J.T @ J, hermitian=True, atol=1e-9) @ g
    np.testing.assert_allclose(y.getArray(), ref.numpy(), rtol=1e-6, atol=1e-6 * ref.abs().max().item())


def test_nystrom_pc_is_spd_and_scaled_identity_off_subspace():
    obj = tiny_objective()
    x = perturbed_theta(obj)
    _, pc = gram_pc(obj, x, "pinntao.pc.NystromPC", pc_sketch_rank=10)
    ctx = pc.getPythonContext()
    b, y = obj.create_vec(), obj.create_vec()
    pc.apply(b, y)  # the factor is computed lazily at the first apply
    U = ctx.U_loc
    v = torch.randn(obj.n_params, dtype=torch.float64)
    v_perp = v - U @ (U.T @ v)
    b.setArray(v_perp.numpy())
    pc.apply(b, y)
    np.testing.assert_allclose(y.getArray(), ctx.tail * v_perp.numpy(), rtol=1e-10, atol=1e-12 * ctx.tail)
    b.setArray(v.numpy())
    pc.apply(b, y)
    assert y.dot(b) > 0


@pytest.mark.parametrize("name", ["SketchedPseudoInverse", "NystromPC", "ExactPseudoInverse", "ProximalPC"])
def test_pc_on_foreign_operator_is_a_clear_error(name):
    A = PETSc.Mat().createDense((5, 5))
    A.setUp()
    A.assemble()
    ksp = PETSc.KSP().create()
    ksp.setOperators(A, A)
    pc = ksp.getPC()
    pc.setType("python")
    pc.setPythonType(f"pinntao.pc.{name}")
    PinnInputError.last = None
    with pytest.raises(PETSc.Error):
        pc.setUp()
    assert f"{name} needs a pinntao operator" in str(PinnInputError.last)


def test_bad_pc_option_is_a_clear_error():
    obj = tiny_objective()
    x = perturbed_theta(obj)
    PinnInputError.last = None
    with pytest.raises(PETSc.Error):
        gram_pc(obj, x, "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=0)
    assert "-pc_sketch_rank" in str(PinnInputError.last) and "> 0" in str(PinnInputError.last)


class _FixedGram:
    """A stand-in objective whose Gram matrix is a fixed G (what the sketch PC calls)."""

    def __init__(self, G: torch.Tensor) -> None:
        self.G, self.n_params = G, G.shape[0]

    def gram(self, theta, M):
        return self.G @ M

    def gram_form(self, theta, Q):
        return Q.T @ self.G @ Q


@pytest.mark.parametrize("passes", [1, 2])
def test_warm_sketch_is_a_subspace_iteration(passes):
    """With -pc_sketch_warm each sketch starts from the last kept basis: on a fixed G with a slowly
    decaying spectrum the top eigenvalues converge over repeated sketches (subspace iteration),
    where fresh Gaussian sketches of the same size stay at their first error."""
    from pinntao.pc import SketchedPseudoInverse

    P = 80
    Q, _ = torch.linalg.qr(torch.randn(P, P, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    lam = 0.8 ** torch.arange(P, dtype=torch.float64)
    obj = _FixedGram(Q @ torch.diag(lam) @ Q.T)
    errors = {}
    for warm in (False, True):
        pc = SketchedPseudoInverse()
        pc.opts = {o.name: o.default for o in pc.options.options.values()} | {
            "rank": 8, "oversample": 4, "adaptive": False, "tol": 1e-300, "passes": passes, "warm": warm}
        errs = []
        for _ in range(8):
            lr = pc.factor(obj, obj.G[:, 0])
            pc.stats["factorizations"] += 1  # a new seed per sketch, as _refactor counts them
            errs.append(float((lr.lam[:4] - lam[:4]).abs().max() / lam[0]))
        errors[warm] = errs
    assert errors[True][-1] < 1e-6 and errors[True][-1] < 1e-3 * errors[True][0]
    assert min(errors[False]) > 100 * errors[True][-1]
    torch.testing.assert_close(torch.tensor(errors[True][0]), torch.tensor(errors[False][0]))  # same first sketch


def _graded_jacobian(N=80, P=60, r=30, seed=0):
    """J = W diag(σ) Vᵀ of rank r with σ from 1 down to 1e-11: λ = σ² spans 22 decades."""
    gen = torch.Generator().manual_seed(seed)
    W, _ = torch.linalg.qr(torch.randn(N, r, generator=gen, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(P, r, generator=gen, dtype=torch.float64))
    sig = torch.logspace(0, -11, r, dtype=torch.float64)
    return W @ torch.diag(sig) @ V.T, sig**2


@pytest.mark.parametrize("cuts", [[0, 1000, 3000], [0, ROW_BLOCK - 1, ROW_BLOCK + 1, 2999, 3000], [0, 0, 3000]])
def test_row_gaussian_is_the_same_matrix_for_any_split_of_the_rows(cuts):
    like = torch.zeros(1, dtype=torch.float64)
    full = gaussian_rows(0, 3000, 4, 7, like)
    parts = [gaussian_rows(a, b - a, 4, 7, like) for a, b in itertools.pairwise(cuts)]
    assert torch.equal(torch.cat(parts), full)
    # blocks are independent draws, and the next seed is another matrix
    assert abs(float(torch.corrcoef(full[:2048, 0].reshape(2, -1))[0, 1])) < 0.15
    assert not torch.equal(gaussian_rows(0, 3000, 4, 8, like)[-10:], full[-10:])


@pytest.mark.parametrize("cuts", [[0, 1000, 3000], [0, ROW_BLOCK - 1, ROW_BLOCK + 1, 2999, 3000], [0, 0, 3000]])
def test_row_countsketch_is_the_same_matrix_for_any_split_of_the_rows(cuts):
    like = torch.zeros(1, dtype=torch.float64)
    full = countsketch_rows(0, 3000, 7, 5, like)
    parts = [countsketch_rows(a, b - a, 7, 5, like) for a, b in itertools.pairwise(cuts)]
    assert torch.equal(torch.cat([q.cols for q in parts]), full.cols)
    assert torch.equal(torch.cat([q.signs for q in parts]), full.signs)
    assert set(full.cols.tolist()) == set(range(7)) and set(full.signs.tolist()) == {-1.0, 1.0}
    assert (full.signs > 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    Om = full.dense()
    assert Om.shape == (3000, 7) and torch.equal(Om.abs().sum(1), torch.ones(3000, dtype=torch.float64))
    nxt = countsketch_rows(0, 3000, 7, 6, like)
    assert not (torch.equal(nxt.cols, full.cols) and torch.equal(nxt.signs, full.signs))


def test_countsketch_transpose_times_is_the_dense_product():
    """JᵀΩ by one index_add over J's rows equals the dense product with Ω (and an empty block of
    rows gives zeros)."""
    gen = torch.Generator().manual_seed(3)
    J = torch.randn(500, 23, generator=gen, dtype=torch.float64)
    om = countsketch_rows(100, 500, 9, 2, J)
    torch.testing.assert_close(om.transpose_times(J), J.T @ om.dense(), rtol=1e-14, atol=1e-13)
    empty = CountSketch(torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.float64), 9)
    assert torch.equal(empty.transpose_times(J[:0]), torch.zeros(23, 9, dtype=torch.float64))


def test_jacobian_sketch_with_countsketch_resolves_the_graded_spectrum():
    """The CountSketch test matrix finds the same 27 eigenvalues as the Gaussian one, from 1 down to
    1.9e-20, on a J with σ graded over 11 decades."""
    J, lam = _graded_jacobian()
    N, _ = J.shape
    lr = jacobian_eig(lambda W: W.transpose_times(J), _jq_triangle(J), countsketch_rows(0, N, 40, 1, J),
                      tol=1e-300, rtol=1e-20)
    kept = int((lam > 1e-20).sum())
    assert lr.rank == kept == 27
    torch.testing.assert_close(lr.lam, lam[:kept], rtol=1e-4, atol=0)


def test_jacobian_sketch_resolves_eigenvalues_that_gram_products_lose():
    """λ = σ² from the SVD of J Q stays accurate far below eps·λ_max; the eigenvalues of QᵀGQ
    from G M lose every one below about 1e-15 λ_max to rounding."""
    J, lam = _graded_jacobian()
    N, P = J.shape
    k = 40
    lr = jacobian_eig(lambda W: J.T @ W, lambda Q: torch.linalg.qr(J @ Q, mode="r")[1], gaussian(N, k, 1, J),
                      tol=1e-300, rtol=1e-20)
    kept = int((lam > 1e-20).sum())
    assert lr.rank == kept == 27
    torch.testing.assert_close(lr.lam, lam[:kept], rtol=1e-4, atol=0)  # λ from 1 down to 1.9e-20
    torch.testing.assert_close(lr.U.T @ lr.U, torch.eye(kept, dtype=torch.float64), rtol=0, atol=1e-12)
    G = J.T @ J
    gl = randomized_eig(lambda M: G @ M, gaussian(P, k, 1, J), passes=2, tol=1e-300, rtol=1e-20)
    deep = lam < 1e-17
    assert deep.sum() >= 6
    worst = ((gl.all_lam[: lam.numel()][deep] - lam[deep]).abs() / lam[deep]).max()
    assert worst > 1.0, worst  # the G sketch has nothing but rounding there


def test_jacobian_sketch_pc_is_the_pseudo_inverse_on_a_tiny_net():
    """-pc_sketch_jacobian with a sketch as large as P applies the dense pseudo-inverse of G."""
    obj = tiny_objective(layers=(4, 3))
    x = perturbed_theta(obj)
    _, pc = gram_pc(obj, x, "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=obj.n_params,
                    pc_sketch_oversample=0, pc_sketch_tol=1e-6, pc_sketch_jacobian=1)
    theta = obj.gather(x)
    J = torch.func.jacrev(obj.residual)(theta)
    lam, V = torch.linalg.eigh(J.T @ J)
    keep = lam > 1e-6
    ctx = pc.getPythonContext()
    torch.testing.assert_close(ctx.lam, lam[keep].flip(0), rtol=1e-9, atol=0)
    b, y = obj.create_vec(), obj.create_vec()
    b.setArray(np.cos(np.arange(obj.n_params)))
    pc.apply(b, y)
    bt = torch.as_tensor(b.getArray())
    want = V[:, keep] @ ((V[:, keep].T @ bt) / lam[keep])
    np.testing.assert_allclose(y.getArray(), want.numpy(), rtol=1e-8, atol=1e-10 * want.abs().max().item())


def test_countsketch_test_matrix_needs_the_jacobian_sketch():
    obj = tiny_objective()
    PinnInputError.last = None
    with pytest.raises(PETSc.Error):
        gram_pc(obj, perturbed_theta(obj), "pinntao.pc.SketchedPseudoInverse", pc_sketch_test="countsketch")
    assert "-pc_sketch_test countsketch: only with -pc_sketch_jacobian 1" in str(PinnInputError.last)


def test_countsketch_pc_is_the_pseudo_inverse_on_a_tiny_net():
    """With a sketch as large as P and many rows per column (N = 660, P = 31) the CountSketch range
    finder spans J's row space: the PC's spectrum is G's, as with the Gaussian test matrix."""
    obj = tiny_objective(layers=(4, 3), n_int=600, n_bnd=60)
    x = perturbed_theta(obj)
    _, pc = gram_pc(obj, x, "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=obj.n_params,
                    pc_sketch_oversample=0, pc_sketch_tol=1e-6, pc_sketch_jacobian=1, pc_sketch_test="countsketch")
    J = torch.func.jacrev(obj.residual)(obj.gather(x))
    lam = torch.linalg.eigvalsh(J.T @ J)
    torch.testing.assert_close(pc.getPythonContext().lam, lam[lam > 1e-6].flip(0), rtol=1e-9, atol=0)


@pytest.mark.parametrize(("n_int", "test"), [(600, "countsketch"), (40, "gaussian")])
def test_auto_test_matrix_is_countsketch_only_with_four_rows_per_column(n_int, test):
    """-pc_sketch_test auto (the default): the CountSketch when N >= 4k (N = 660, k = 31), else the
    Gaussian (N = 100 < 124), whose columns a CountSketch would leave empty."""
    obj = tiny_objective(layers=(4, 3), n_int=n_int, n_bnd=60)
    _, pc = gram_pc(obj, perturbed_theta(obj), "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=obj.n_params,
                    pc_sketch_oversample=0, pc_sketch_jacobian=1)
    assert pc.getPythonContext().stats["test"] == test


@pytest.mark.parametrize("extra", [{"pc_sketch_warm": 1}, {"pc_sketch_passes": 1}], ids=["warm", "one_pass"])
def test_jacobian_sketch_refuses_what_it_cannot_do(extra):
    obj = tiny_objective()
    PinnInputError.last = None
    with pytest.raises(PETSc.Error):
        gram_pc(obj, perturbed_theta(obj), "pinntao.pc.SketchedPseudoInverse", pc_sketch_jacobian=1, **extra)
    assert "-pc_sketch_jacobian: not with -" + next(iter(extra)) in str(PinnInputError.last)


def _jq_triangle(J):
    return lambda Q: torch.linalg.qr(J @ Q, mode="r")[1]


def test_ritz_in_a_kept_basis_is_the_factor_of_the_projected_G():
    """-pc_sketch_reuse between fresh sketches: λ and U from the current J in the last sketch's
    basis Q are the eigenpairs of QᵀGQ (U = Q S in span(Q)); when span(Q) holds the current J's
    row space, they are G's own, deep eigenvalues included."""
    J, _ = _graded_jacobian()
    N, P = J.shape
    fresh = jacobian_eig(lambda W: J.T @ W, _jq_triangle(J), gaussian(N, 40, 1, J), tol=1e-300, rtol=1e-20)
    Q = fresh.Q
    assert Q is not None and Q.shape == (P, 40)
    # J moved inside its row space (new singular values, the same V): the old basis still holds it
    W, sig, Vh = torch.linalg.svd(J, full_matrices=False)
    sig2 = sig * torch.linspace(2.0, 0.5, sig.numel(), dtype=torch.float64)
    J2 = W @ torch.diag(sig2) @ Vh
    lr = jacobian_ritz(_jq_triangle(J2), Q, tol=1e-300, rtol=1e-20)
    want = (sig2[:30] ** 2).sort(descending=True).values
    assert lr.Q is Q and lr.k == 40
    torch.testing.assert_close(lr.lam, want[want > 1e-20 * want[0]], rtol=1e-4, atol=0)
    torch.testing.assert_close(Q @ (Q.T @ lr.U), lr.U, rtol=0, atol=1e-12)
    # J moved out of span(Q): the Ritz values are those of QᵀG₃Q, from J Q or from QᵀGQ alike
    J3 = J + 1e-3 * torch.randn(N, P, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    proj = torch.linalg.eigvalsh(Q.T @ J3.T @ J3 @ Q).flip(0)
    keep = proj > 1e-12 * proj[0]
    for lr in (jacobian_ritz(_jq_triangle(J3), Q, tol=1e-300, rtol=1e-12),
               gram_ritz(lambda Q: (J3 @ Q).T @ (J3 @ Q), Q, tol=1e-300, rtol=1e-12)):
        torch.testing.assert_close(lr.lam, proj[keep], rtol=1e-8, atol=1e-14)
        torch.testing.assert_close(Q @ (Q.T @ lr.U), lr.U, rtol=0, atol=1e-10)
    full = torch.linalg.eigvalsh(J3.T @ J3).flip(0)
    assert (full[: int(keep.sum())] - proj[keep]).abs().max() > 1e-8  # not G₃'s own: Q misses directions


def _refactor_along(obj, x, pc, n):
    """Factorise the PC at n linearisation points along a path from x; per factorisation: (the
    Ritz basis after it, Gram products it counted, its sketch size)."""
    ctx = pc.getPythonContext()
    b, y = obj.create_vec(), obj.create_vec()
    b.setArray(np.cos(np.arange(obj.n_params)))
    out = [(ctx.subspace, None, ctx.stats["sketch_size"])]  # factorisation 0 ran in KSPSetUp
    for i in range(1, n):
        x.array = x.array + 1e-3 * np.sin(np.arange(x.array.size) + i)  # a new linearisation point
        obj.set_linearization(x)
        before = obj.counts["gram"]
        pc.apply(b, y)  # refactors at the new θ
        out.append((ctx.subspace, obj.counts["gram"] - before, ctx.stats["sketch_size"]))
    return out


@pytest.mark.parametrize("jacobian", [1, 0], ids=["jacobian", "gram"])
def test_sketch_reuse_sketches_every_kth_factorisation(jacobian):
    """-pc_sketch_reuse 3: a fresh sketch at factorisations 0, 3, 6, …; in between the factor comes
    from one product with J in the kept basis (k products counted instead of 2k) and is the
    Rayleigh-Ritz factor of the current G in that basis."""
    obj = tiny_objective()
    x = perturbed_theta(obj)
    # a sketch as large as P: the kept rank (about 30 of 44) leaves the basis room, so it is reused
    _, pc = gram_pc(obj, x, "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=obj.n_params, pc_sketch_oversample=2,
                    pc_sketch_tol=1e-10, pc_sketch_jacobian=jacobian, pc_sketch_reuse=3)
    ctx = pc.getPythonContext()
    steps = _refactor_along(obj, x, pc, 5)
    for i, (Q, products, k) in enumerate(steps[1:], 1):
        if i % 3:  # Ritz: the kept basis, one product with J per column
            assert Q is steps[i - 1][0] and products == k == Q.shape[1]
            if i == 4:
                J = torch.func.jacrev(obj.residual)(obj.gather(x))
                lam = torch.linalg.eigvalsh(Q.T @ J.T @ J @ Q).flip(0)
                torch.testing.assert_close(ctx.lam, lam[lam > 1e-10], rtol=1e-9, atol=0)
        else:
            assert Q is not steps[i - 1][0] and products == 2 * k  # JᵀΩ and J Q, or G M and QᵀGQ
    assert ctx.stats["factorizations"] == 5 and ctx.stats["ranks"][-1] < obj.n_params - 1


def test_sketch_reuse_sketches_afresh_while_the_rank_grows():
    """A kept rank that fills the basis may be larger still, and a Ritz step cannot find more: every
    factorisation is then a fresh sketch, k growing by the oversampling each time."""
    obj = tiny_objective()
    x = perturbed_theta(obj)
    _, pc = gram_pc(obj, x, "pinntao.pc.SketchedPseudoInverse", pc_sketch_rank=4, pc_sketch_oversample=2,
                    pc_sketch_tol=1e-10, pc_sketch_jacobian=1, pc_sketch_reuse=3)
    steps = _refactor_along(obj, x, pc, 4)
    assert [k for _, _, k in steps] == [6, 8, 10, 12]
    for i, (Q, products, k) in enumerate(steps[1:], 1):
        assert Q is not steps[i - 1][0] and products == 2 * k
