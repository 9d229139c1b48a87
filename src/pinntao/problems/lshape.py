"""Poisson on the L-shaped domain: −Δu = 1 in Ω = [−1, 1]² ∖ (0, 1] × [−1, 0), u = 0 on ∂Ω.

No closed form: u ~ r^{2/3} sin(2θ/3) at the re-entrant corner (unbounded second derivatives).
Reference: the 5-point finite-difference solution on the nodes of a uniform grid of spacing
1/n (n = 200: 120,000 unknowns, a sparse direct solve), computed on demand and cached; at the
evaluation grid's nodes (spacing 0.02) it is read off exactly, elsewhere interpolated bilinearly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.interpolate import RegularGridInterpolator
from scipy.sparse.linalg import spsolve

from ..domains import l_shape
from .base import Block, Problem
from .refcache import cached


def _solve_lshape(n: int) -> dict[str, np.ndarray]:
    """5-point Laplacian on the L-shape's grid nodes (spacing 1/n), zero Dirichlet data."""
    h = 1.0 / n
    x = np.linspace(-1.0, 1.0, 2 * n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    inside = np.zeros(X.shape, dtype=bool)
    inside[1:-1, 1:-1] = True
    inside &= ~((X >= -1e-12) & (Y <= 1e-12))  # the removed quadrant and its edges are boundary
    idx = -np.ones(X.shape, dtype=int)
    idx[inside] = np.arange(int(inside.sum()))
    I, J = np.nonzero(inside)
    rows, cols, vals = [np.arange(I.size)], [idx[I, J]], [np.full(I.size, 4.0 / h**2)]
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb = idx[I + di, J + dj]
        ok = nb >= 0
        rows.append(np.arange(I.size)[ok])
        cols.append(nb[ok])
        vals.append(np.full(int(ok.sum()), -1.0 / h**2))
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(I.size, I.size))
    u = np.zeros(X.shape)
    u[inside] = spsolve(A.tocsc(), np.ones(I.size))
    return {"x": x, "u": u}


def reference_lshape(points: np.ndarray, n: int = 200) -> np.ndarray:
    """The finite-difference reference at points (k, 2) of the closed L-shape."""
    ref = cached(f"lshape_n{int(n)}", lambda: _solve_lshape(int(n)))
    return RegularGridInterpolator((ref["x"], ref["x"]), ref["u"])(np.clip(points, -1.0, 1.0))


def poisson_lshape(ref_n: int = 200) -> Problem:
    """−Δu = 1 on the L-shape [−1, 1]² ∖ (0, 1] × [−1, 0), u = 0 on the boundary (a Polygon
    domain); reference: 5-point finite differences with spacing 1/200."""
    dom = l_shape()

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(reference_lshape(x.detach().cpu().numpy(), int(ref_n)), dtype=x.dtype, device=x.device)

    return Problem(
        name="poisson_lshape",
        domain=dom,
        blocks=[
            Block("interior", "interior", dom.interior, residual=lambda j, x: -j.laplacian() - 1.0),
            Block("boundary", "boundary", lambda n, rng, s: dom.boundary(n, rng, s)[0], residual=lambda j, x: j.u,
                  order=0),
        ],
        exact=exact,
        default_counts={"interior": 1500, "boundary": 200},
        default_layers=(20, 20, 20, 20),
        description=poisson_lshape.__doc__ or "",
        params={"ref_n": ref_n},
        reference=True,
    )
