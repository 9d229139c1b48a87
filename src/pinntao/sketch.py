"""Low-rank factorisations G ≈ U diag(λ) Uᵀ of the Gram matrix from block products.

Randomized (Halko-Martinsson-Tropp / Saibaba et al., the sketched-NG paper's Algorithm 1):
draw Gaussian M (P × k), A = G M, thin QR A = QR, then
  one pass: T = QᵀA (QᵀM)⁻¹     two pass: T = Qᵀ G Q,
eig T = S Λ Sᵀ, U = Q S. From J itself (``jacobian_eig``): Q = orth(JᵀΩ) with Ω Gaussian or a
CountSketch over the residual rows, λ = σ² from the SVD of J Q; never forming a product with G keeps the small
eigenvalues that rounding at eps·λ_max erases from G M. A basis Q kept from an earlier sketch gives
a factor from one product with J (``gram_ritz``, ``jacobian_ritz``: Rayleigh–Ritz within span(Q)).
Nyström (Tropp et al. 2017, stable shifted form) gives a PSD factor for the damped preconditioner.
Exact: eigh of the dense G (P × P) or, when N < P, of the kernel J Jᵀ (N × N), U = Jᵀ W Σ⁻¹.
Torch only; the ``gram`` callable returns the *global* G M (already summed over ranks), so every
rank computes the same factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import PinnInputError

SKETCH_PASSES = (1, 2)


@dataclass
class LowRank:
    """G ≈ U diag(lam) Uᵀ with orthonormal U (P × r), lam > tol, descending."""

    U: Tensor
    lam: Tensor
    k: int  # sketch size used
    all_lam: Tensor  # every eigenvalue of T (diagnostics and rank adaptation)
    W: Tensor | None = None  # kernel form: the kept left singular vectors of J (N × r), J ≈ W Σ Uᵀ
    Q: Tensor | None = None  # a sketch's orthonormal basis (P × k): U = Q S lies in its span

    @property
    def rank(self) -> int:
        return int(self.lam.numel())


class NonFiniteSketch(ArithmeticError):
    """The Gram products or the small eigenproblem produced NaN/Inf."""


def cutoff(lam: Tensor, tol: float, rtol: float) -> float:
    """The truncation threshold max(tol, rtol·λ_max): the relative part makes the kept rank
    independent of the loss scale (G scales with r², so an absolute tol does not)."""
    top = float(lam.max()) if lam.numel() else 0.0
    return max(tol, rtol * top)


def _truncate(Q: Tensor, T: Tensor, tol: float, k: int, rtol: float = 0.0) -> LowRank:
    T = 0.5 * (T + T.T)
    if not torch.isfinite(T).all():
        raise NonFiniteSketch("non-finite entries in the sketched Gram matrix")
    lam, S = torch.linalg.eigh(T)
    lam, S = lam.flip(0), S.flip(1)
    keep = lam > cutoff(lam, tol, rtol)
    return LowRank(Q @ S[:, keep], lam[keep], k, lam, Q=Q)


def gram_ritz(form: Callable[[Tensor], Tensor], Q: Tensor, *, tol: float = 1e-13, rtol: float = 0.0) -> LowRank:
    """Rayleigh–Ritz: G's factor within span(Q) from ``form(Q)`` = QᵀGQ alone (one product with J),
    for a basis Q kept from an earlier sketch."""
    return _truncate(Q, form(Q), tol, Q.shape[1], rtol)


def gaussian(P: int, k: int, seed: int, like: Tensor) -> Tensor:
    """P × k standard normal matrix, identical on every rank for the same seed."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(P, k, generator=gen, dtype=torch.float64).to(dtype=like.dtype, device=like.device)


#: rows per independently seeded block of :func:`gaussian_rows` and :func:`countsketch_rows`
ROW_BLOCK = 1024


def _block_rows(first: int, n: int, seed: int, draw: Callable[[int], Tensor]) -> Tensor:
    """Rows first … first + n − 1 of a random matrix whose row blocks of ``ROW_BLOCK`` are drawn by
    ``draw(block seed)``, seeded from (seed, block): any split of the rows over ranks gives the same
    matrix, and a rank draws only the blocks it holds rows of. ``n`` > 0."""
    b0, b1 = first // ROW_BLOCK, (first + n - 1) // ROW_BLOCK
    blocks = [draw((int(seed) << 24) + b) for b in range(b0, b1 + 1)]
    return torch.cat(blocks)[first - b0 * ROW_BLOCK : first - b0 * ROW_BLOCK + n]


def gaussian_rows(first: int, n: int, k: int, seed: int, like: Tensor) -> Tensor:
    """Rows first … first + n − 1 of a standard normal matrix with k columns (:func:`_block_rows`),
    not all N × k numbers."""
    if n == 0:
        return torch.empty(0, k, dtype=like.dtype, device=like.device)
    return _block_rows(first, n, seed, lambda s: gaussian(ROW_BLOCK, k, s, like))


@dataclass
class CountSketch:
    """This rank's rows of an N × k CountSketch test matrix Ω (Clarkson & Woodruff 2013): one ±1
    per row, in a uniformly drawn column. As the range finder's Ω in JᵀΩ it captures J's dominant
    right singular subspace as a Gaussian Ω does (measured on poisson2d), but JᵀΩ is one pass over
    J (N·P additions) instead of 2·N·P·k flops, and no N × k normals are drawn."""

    cols: Tensor  # (n,) int64: the column of each row's nonzero
    signs: Tensor  # (n,) ±1.0
    k: int

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.cols.numel()), self.k

    def dense(self) -> Tensor:
        """Ω as a dense (n × k) matrix."""
        out = torch.zeros(self.cols.numel(), self.k, dtype=self.signs.dtype, device=self.signs.device)
        return out.scatter_(1, self.cols[:, None], self.signs[:, None])

    def transpose_times(self, J: Tensor) -> Tensor:
        """JᵀΩ (P × k) for this rank's rows J (n × P): each row of J added into its column, with
        its sign. On the CPU by one index_add over a 2k-row buffer (plus rows, minus rows; no signed
        copy of J); elsewhere a dense product (index_add's atomics would make it non-deterministic)."""
        if J.device.type != "cpu":
            return J.T @ self.dense()
        buf = torch.zeros(2 * self.k, J.shape[1], dtype=J.dtype, device=J.device)
        buf.index_add_(0, self.cols + self.k * (self.signs < 0), J)
        return (buf[: self.k] - buf[self.k :]).T


def countsketch_rows(first: int, n: int, k: int, seed: int, like: Tensor) -> CountSketch:
    """Rows first … first + n − 1 of an N × k CountSketch, row blocks seeded as
    :func:`gaussian_rows`' (:func:`_block_rows`): the same matrix for any split of the rows."""

    def draw(s: int) -> Tensor:  # (ROW_BLOCK, 2): each row's column, then its sign bit
        gen = torch.Generator(device="cpu").manual_seed(s)
        cols = torch.randint(0, k, (ROW_BLOCK,), generator=gen)
        return torch.stack([cols, torch.randint(0, 2, (ROW_BLOCK,), generator=gen)], 1)

    rows = _block_rows(first, n, seed, draw) if n else torch.empty(0, 2, dtype=torch.int64)
    return CountSketch(rows[:, 0].to(like.device), (rows[:, 1] * 2 - 1).to(dtype=like.dtype, device=like.device), k)


#: test matrices of the Jacobian sketch (-pc_sketch_test)
SKETCH_TESTS = ("gaussian", "countsketch")


def check_sketch_args(rank: int, oversample: int, tol: float, passes: int) -> None:
    if rank <= 0:
        raise PinnInputError(f"sketch rank must be > 0, got {rank}")
    if oversample < 0:
        raise PinnInputError(f"sketch oversampling must be >= 0, got {oversample}")
    if not tol > 0:
        raise PinnInputError(f"sketch truncation tol must be > 0, got {tol}")
    if passes not in SKETCH_PASSES:
        raise PinnInputError(f"sketch passes must be 1 or 2, got {passes}")


def randomized_eig(
    gram: Callable[[Tensor], Tensor],
    M: Tensor,
    *,
    passes: int = 2,
    tol: float = 1e-13,
    rtol: float = 0.0,
    form: Callable[[Tensor], Tensor] | None = None,
) -> LowRank:
    """Algorithm 1's factor of G from A = G M (k = M.shape[1] columns), eigenvalues kept when
    λ > max(tol, rtol·λ_max). ``form(Q)`` = QᵀGQ, if given, replaces Qᵀ(G Q) in the second pass
    (with an explicit J: (JQ)ᵀ(JQ), half the work)."""
    A = gram(M)
    if not torch.isfinite(A).all():
        raise NonFiniteSketch("non-finite Gram products G M")
    Q, _ = torch.linalg.qr(A)
    if passes == 2:
        T = form(Q) if form is not None else Q.T @ gram(Q)
    else:
        QtM = Q.T @ M
        # T = (QᵀA)(QᵀM)⁻¹  ⇔  (QᵀM)ᵀ Tᵀ = (QᵀA)ᵀ
        T = torch.linalg.solve(QtM.T, (Q.T @ A).T).T
    return _truncate(Q, T, tol, M.shape[1], rtol)


def jacobian_eig(
    jt: Callable[[Tensor | CountSketch], Tensor],
    jq_triangle: Callable[[Tensor], Tensor],
    Omega: Tensor | CountSketch,
    *,
    tol: float = 1e-13,
    rtol: float = 0.0,
) -> LowRank:
    """G = JᵀJ ≈ U diag(σ²) Uᵀ from two products with J: Q = orth(JᵀΩ) (``jt(Ω)``, global, Ω this
    rank's rows of an N × k Gaussian or :class:`CountSketch`), then the SVD of J Q through
    ``jq_triangle(Q)``, the R of its QR (rows over the ranks). σ is accurate to eps·σ_max, so
    λ = σ² is resolved far below the eps·λ_max at which the eigenvalues of QᵀGQ or of G M drown in
    rounding."""
    Y = jt(Omega)
    if not torch.isfinite(Y).all():
        raise NonFiniteSketch("non-finite Jacobian products JᵀΩ")
    Q, _ = torch.linalg.qr(Y)
    return jacobian_ritz(jq_triangle, Q, tol=tol, rtol=rtol)


def jacobian_ritz(jq_triangle: Callable[[Tensor], Tensor], Q: Tensor, *, tol: float = 1e-13,
                  rtol: float = 0.0) -> LowRank:
    """Rayleigh–Ritz on J: λ = σ² and U = Q S from the SVD of J Q (one product with J), Q orthonormal
    (P × k): the second half of :func:`jacobian_eig`, or alone with a basis kept from an earlier sketch."""
    R = jq_triangle(Q)
    if not torch.isfinite(R).all():
        raise NonFiniteSketch("non-finite Jacobian products J Q")
    _, sig, Sh = torch.linalg.svd(R, full_matrices=False)
    lam = sig * sig
    keep = lam > cutoff(lam, tol, rtol)
    return LowRank(Q @ Sh.T[:, keep], lam[keep], Q.shape[1], lam, Q=Q)


def nystrom(gram: Callable[[Tensor], Tensor], M: Tensor, *, tol: float = 1e-13, rtol: float = 0.0) -> LowRank:
    """Stable Nyström approximation Ĝ = (GM)(MᵀGM)⁺(GM)ᵀ, PSD by construction."""
    Omega, _ = torch.linalg.qr(M)
    Y = gram(Omega)
    if not torch.isfinite(Y).all():
        raise NonFiniteSketch("non-finite Gram products G M")
    nu = torch.finfo(Y.dtype).eps * max(float(torch.linalg.matrix_norm(Y, 2)), 1e-300)
    Y_nu = Y + nu * Omega
    C = torch.linalg.cholesky(0.5 * (Omega.T @ Y_nu + Y_nu.T @ Omega))
    B = torch.linalg.solve_triangular(C, Y_nu.T, upper=False).T  # B = Y_ν C⁻ᵀ
    U, sig, _ = torch.linalg.svd(B, full_matrices=False)
    lam = torch.clamp(sig**2 - nu, min=0.0)
    keep = lam > cutoff(lam, tol, rtol)
    return LowRank(U[:, keep], lam[keep], M.shape[1], lam)


def exact_from_jacobian(J: Tensor | None, G: Tensor | None, *, tol: float = 1e-13, rtol: float = 0.0) -> LowRank:
    """Exact eigen-factor of G = JᵀJ, eigenvalues kept when λ > max(tol, rtol·λ_max)
    (rtol = 0: eps·max(N, P), the least-squares default). From the dense G (P × P, N ≥ P)
    or, when N < P, from the thin SVD of the stacked global J = W Σ Vᵀ: U = V, λ = σ²
    (the kernel J Jᵀ = W Σ² Wᵀ without squaring its condition number)."""
    if G is not None:
        lam, V = torch.linalg.eigh(0.5 * (G + G.T))
        lam, V = lam.flip(0), V.flip(1)
        n = G.shape[0]
    else:
        assert J is not None
        Wfull, sig, Vh = torch.linalg.svd(J, full_matrices=False)
        lam, V = sig**2, Vh.T
        n = max(J.shape)
    rtol = rtol or torch.finfo(lam.dtype).eps * n
    cut = max(tol, rtol * float(lam[0]) if lam.numel() else tol)
    keep = lam > cut
    W = Wfull[:, keep] if G is None else None
    return LowRank(V[:, keep], lam[keep], V.shape[0] if G is not None else J.shape[0], lam, W)  # type: ignore[union-attr]
