"""Lid-driven cavity: steady incompressible Navier-Stokes on [0, 1]², lid u = 1 at y = 1.

Formulation: velocity-pressure (u, v, p), three network outputs, residuals

    u u_x + v u_y + p_x − (u_xx + u_yy)/Re = 0,   u v_x + v v_y + p_y − (v_xx + v_yy)/Re = 0,
    u_x + v_y = 0,

and (u, v) = (1, 0) on the lid, (0, 0) on the other walls. Why not the stream function ψ
(u = ψ_y, v = −ψ_x, divergence-free by construction): its momentum equations need third
derivatives of ψ, beyond the forward jet's second order, so every residual would go through
nested autograd; (u, v, p) needs only first derivatives and Laplacians (the cheap jet path) at
the price of a continuity residual. The pressure is fixed only up to a constant; it is not
compared (the error measure is the velocity magnitude |(u, v)|).

Reference: second-order finite differences for the stream function-vorticity form
(ω = −Δψ, u ω_x + v ω_y = Δω/Re, Thom's wall vorticity) on a uniform (n+1)² grid, solved by
Newton's method with a sparse direct solver (scipy), computed on demand and cached
(:mod:`.refcache`); velocities by central differences of ψ, pressure by least-squares
integration of the momentum equations. Ghia, Ghia & Shin (1982), Tables I and II, Re = 100:
the published centerline velocities, typed in below.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from scipy.interpolate import RegularGridInterpolator
from scipy.sparse.linalg import spsolve

from .base import Block, Box, Problem
from .refcache import cached, expect_shapes

#: Ghia, Ghia & Shin (1982), Table I, Re = 100: u along the vertical centerline x = 0.5
GHIA_U_RE100 = np.array([
    (1.0000, 1.00000), (0.9766, 0.84123), (0.9688, 0.78871), (0.9609, 0.73722), (0.9531, 0.68717),
    (0.8516, 0.23151), (0.7344, 0.00332), (0.6172, -0.13641), (0.5000, -0.20581), (0.4531, -0.21090),
    (0.2813, -0.15662), (0.1719, -0.10150), (0.1016, -0.06434), (0.0703, -0.04775), (0.0625, -0.04192),
    (0.0547, -0.03717), (0.0000, 0.00000),
])  # columns: y, u
#: Ghia, Ghia & Shin (1982), Table II, Re = 100: v along the horizontal centerline y = 0.5
GHIA_V_RE100 = np.array([
    (1.0000, 0.00000), (0.9688, -0.05906), (0.9609, -0.07391), (0.9531, -0.08864), (0.9453, -0.10313),
    (0.9063, -0.16914), (0.8594, -0.22445), (0.8047, -0.24533), (0.5000, 0.05454), (0.2344, 0.17527),
    (0.2266, 0.17507), (0.1563, 0.16077), (0.0938, 0.12317), (0.0781, 0.10890), (0.0703, 0.10091),
    (0.0625, 0.09233), (0.0000, 0.00000),
])  # columns: x, v


def _solve_cavity(re: float, n: int, tol: float = 1e-11, max_it: int = 30) -> dict[str, np.ndarray]:
    """Newton on the ψ-ω finite-difference equations; returns x, u, v, p, psi on the nodes."""
    h, N1 = 1.0 / n, n + 1
    full = np.arange(N1 * N1).reshape(N1, N1)  # index of node (i, j), x_i = i h, y_j = j h
    inner = full[1:-1, 1:-1].ravel()
    M = inner.size
    I, J = np.divmod(inner, N1)

    def stencil(offsets: list[tuple[int, int, float]]) -> sp.csr_matrix:
        rows = np.concatenate([np.arange(M)] * len(offsets))
        cols = np.concatenate([full[I + di, J + dj] for di, dj, _ in offsets])
        vals = np.concatenate([np.full(M, c) for *_, c in offsets])
        return sp.csr_matrix((vals, (rows, cols)), shape=(M, N1 * N1))

    Dx = stencil([(1, 0, 0.5 / h), (-1, 0, -0.5 / h)])
    Dy = stencil([(0, 1, 0.5 / h), (0, -1, -0.5 / h)])
    L = stencil([(1, 0, 1 / h**2), (-1, 0, 1 / h**2), (0, 1, 1 / h**2), (0, -1, 1 / h**2), (0, 0, -4 / h**2)])
    P = sp.csr_matrix((np.ones(M), (inner, np.arange(M))), shape=(N1 * N1, M))
    # Thom: wall vorticity from the interior neighbour's ψ (ψ = 0 on the walls); lid term −2U/h
    pos = {(i, j): k for k, (i, j) in enumerate(zip(I, J, strict=True))}
    t_rows, t_cols = [], []
    for s in range(1, n):
        t_rows += [full[s, 0], full[s, n], full[0, s], full[n, s]]
        t_cols += [pos[(s, 1)], pos[(s, n - 1)], pos[(1, s)], pos[(n - 1, s)]]
    T = sp.csr_matrix((np.full(len(t_rows), -2 / h**2), (t_rows, t_cols)), shape=(N1 * N1, M))
    c = np.zeros(N1 * N1)
    c[full[1:-1, n]] = -2.0 / h
    LP, DxP, DyP, DxT, DyT, LT = L @ P, Dx @ P, Dy @ P, Dx @ T, Dy @ T, L @ T
    eye = sp.identity(M, format="csr")
    psi, om = np.zeros(M), np.zeros(M)
    for _ in range(max_it):
        w = P @ om + T @ psi + c
        a, b = DyP @ psi, DxP @ psi  # u, −v at the inner nodes
        wx, wy = Dx @ w, Dy @ w
        F1 = LP @ psi + om
        F2 = a * wx - b * wy - (L @ w) / re
        if max(np.abs(F1).max() * h**2, np.abs(F2).max() * h**2) < tol:
            break
        J21 = sp.diags(wx) @ DyP - sp.diags(wy) @ DxP + sp.diags(a) @ DxT - sp.diags(b) @ DyT - LT / re
        J22 = sp.diags(a) @ DxP - sp.diags(b) @ DyP - LP / re
        Jac = sp.bmat([[LP, eye], [J21, J22]], format="csc")
        step = spsolve(Jac, -np.concatenate([F1, F2]))
        psi, om = psi + step[:M], om + step[M:]
    else:
        raise RuntimeError(f"cavity reference: Newton did not converge in {max_it} steps (Re={re}, n={n})")
    psi_full = (P @ psi).reshape(N1, N1)
    u, v = np.zeros((N1, N1)), np.zeros((N1, N1))
    u[1:-1, 1:-1] = (psi_full[1:-1, 2:] - psi_full[1:-1, :-2]) / (2 * h)
    v[1:-1, 1:-1] = -(psi_full[2:, 1:-1] - psi_full[:-2, 1:-1]) / (2 * h)
    u[:, n] = 1.0  # the lid, corners included
    return {"x": np.linspace(0.0, 1.0, N1), "u": u, "v": v, "p": _pressure(u, v, re, h), "psi": psi_full}


def _pressure(u: np.ndarray, v: np.ndarray, re: float, h: float) -> np.ndarray:
    """p (mean 0) whose differences best match the momentum equations' ∇p at the inner nodes
    (least squares over the edges between inner nodes), extrapolated linearly to the walls."""

    def c(f: np.ndarray, di: int, dj: int) -> np.ndarray:
        return f[1 + di : f.shape[0] - 1 + di, 1 + dj : f.shape[1] - 1 + dj]

    def lap(f: np.ndarray) -> np.ndarray:
        return (c(f, 1, 0) + c(f, -1, 0) + c(f, 0, 1) + c(f, 0, -1) - 4 * c(f, 0, 0)) / h**2

    def dx(f: np.ndarray) -> np.ndarray:
        return (c(f, 1, 0) - c(f, -1, 0)) / (2 * h)

    def dy(f: np.ndarray) -> np.ndarray:
        return (c(f, 0, 1) - c(f, 0, -1)) / (2 * h)

    uc, vc = c(u, 0, 0), c(v, 0, 0)
    gx = -(uc * dx(u) + vc * dy(u)) + lap(u) / re
    gy = -(uc * dx(v) + vc * dy(v)) + lap(v) / re
    m = gx.shape[0]
    idx = np.arange(m * m).reshape(m, m)
    # edge equations p[a] − p[b] = h (g[a] + g[b]) / 2 in x and in y, plus Σ p = 0
    ea, eb = idx[1:, :].ravel(), idx[:-1, :].ravel()
    fa, fb = idx[:, 1:].ravel(), idx[:, :-1].ravel()
    rows = np.arange(ea.size + fa.size)
    A = sp.csr_matrix((np.concatenate([np.ones(rows.size), -np.ones(rows.size)]),
                       (np.concatenate([rows, rows]), np.concatenate([ea, fa, eb, fb]))), shape=(rows.size, m * m))
    rhs = np.concatenate([h * (gx[1:, :] + gx[:-1, :]).ravel() / 2, h * (gy[:, 1:] + gy[:, :-1]).ravel() / 2])
    A = A[:, 1:]  # gauge: p = 0 at the first inner node (the mean is removed below)
    p_in = np.concatenate([[0.0], spsolve((A.T @ A).tocsc(), A.T @ rhs)]).reshape(m, m)
    p = np.zeros((m + 2, m + 2))
    p[1:-1, 1:-1] = p_in
    p[0, 1:-1], p[-1, 1:-1] = 2 * p_in[0] - p_in[1], 2 * p_in[-1] - p_in[-2]
    p[:, 0], p[:, -1] = 2 * p[:, 1] - p[:, 2], 2 * p[:, -2] - p[:, -3]
    return p - p.mean()


def reference_cavity(re: float = 100.0, n: int = 200) -> dict[str, np.ndarray]:
    """The finite-difference reference on the (n+1)² grid (cached on disk and in memory)."""
    N1 = int(n) + 1
    shapes = {"x": (N1,), **{f: (N1, N1) for f in ("u", "v", "p", "psi")}}
    return cached(f"cavity_re{re:g}_n{int(n)}", lambda: _solve_cavity(float(re), int(n)), expect_shapes(shapes))


def reference_values(points: np.ndarray, re: float = 100.0, n: int = 200) -> np.ndarray:
    """(u, v, p) of the reference at points (k, 2), bilinear between grid nodes (exact at nodes)."""
    ref = reference_cavity(re, n)
    out = [RegularGridInterpolator((ref["x"], ref["x"]), ref[f])(np.clip(points, 0.0, 1.0)) for f in ("u", "v", "p")]
    return np.stack(out, axis=1)


def ghia_deviation(uv: Callable[[np.ndarray], np.ndarray], re: float = 100.0) -> float:
    """The largest absolute difference between the velocity and Ghia's table over both centerline
    tables; ``uv`` maps points (k, 2) to (u, v) columns (k, ≥ 2). Re = 100 only (the tables typed
    in here)."""
    if re != 100.0:
        raise ValueError("Ghia et al.'s tables are typed in for Re = 100 only")
    pu = np.stack([np.full(len(GHIA_U_RE100), 0.5), GHIA_U_RE100[:, 0]], axis=1)
    pv = np.stack([GHIA_V_RE100[:, 0], np.full(len(GHIA_V_RE100), 0.5)], axis=1)
    du = np.abs(np.asarray(uv(pu))[:, 0] - GHIA_U_RE100[:, 1]).max()
    dv = np.abs(np.asarray(uv(pv))[:, 1] - GHIA_V_RE100[:, 1]).max()
    return float(max(du, dv))


def velocity_magnitude(w: torch.Tensor) -> torch.Tensor:
    """|(u, v)| of an (n, ≥ 2) output or reference."""
    return torch.sqrt(w[:, 0] ** 2 + w[:, 1] ** 2)


#: recommended set-up (applied by the CLI where the user gave none; docs/hard_problems.md): SNGD on a
#: 4×20 net (P = 1,383) with 6,000 interior points redrawn every 100 iterations: rel. L2 1.9e-2
#: over the last 200 s of a 600 s run on 2 ranks, against 8.1e-2 for 4×30 on 3,000 fixed points
RECOMMENDED = {"pinn_layers": "20,20,20,20", "pinn_n_interior": "6000", "pinn_resample": "redraw",
               "pinn_resample_every": "100", "pinn_optimizer": "sngd_lm"}

def cavity2d(re: float = 100.0, ref_n: int = 200, w_boundary: float = 10.0, corner: float = 0.0) -> Problem:
    """Steady incompressible Navier-Stokes in the lid-driven cavity [0, 1]², Re = 100, fields
    (u, v, p); lid u = 1 at y = 1; reference: ψ-ω finite differences on a 201² grid (Newton).
    ``corner`` δ > 0 scales the interior residual by min(1, r/δ)², r the distance to the nearer
    lid corner: there the true solution's momentum residual terms grow like 1/r² (the lid's
    velocity jump), so its unweighted squared residual is not integrable."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def exact(x: torch.Tensor) -> torch.Tensor:
        vals = reference_values(x.detach().cpu().numpy(), re, int(ref_n))
        return torch.as_tensor(vals, dtype=x.dtype, device=x.device)

    def momentum(j, x: torch.Tensor) -> torch.Tensor:
        u, v, p = j.fields()
        r = torch.stack([u.u * u.d(0) + v.u * u.d(1) + p.d(0) - u.laplacian() / re,
                         u.u * v.d(0) + v.u * v.d(1) + p.d(1) - v.laplacian() / re,
                         u.d(0) + v.d(1)], dim=1)
        if corner > 0:
            dist = torch.minimum(torch.hypot(x[:, 0], 1 - x[:, 1]), torch.hypot(1 - x[:, 0], 1 - x[:, 1]))
            r = r * torch.clamp(dist / corner, max=1.0)[:, None] ** 2
        return r

    def walls(j, x: torch.Tensor) -> torch.Tensor:
        lid = (x[:, 1] == 1.0).to(x.dtype)
        return torch.stack([j.u[:, 0] - lid, j.u[:, 1]], dim=1)

    return Problem(
        name="cavity2d",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior, residual=momentum, components=3),
            Block("boundary", "boundary", lambda n, rng, s: box.boundary(n, rng, s)[0], residual=walls, order=0,
                  components=2, weight=w_boundary),
        ],
        exact=exact,
        default_counts={"interior": 3000, "boundary": 800},
        default_layers=(30, 30, 30, 30),
        recommended=dict(RECOMMENDED),
        description=cavity2d.__doc__ or "",
        params={"re": re, "ref_n": ref_n, "w_boundary": w_boundary, "corner": corner},
        reference=True,
        fields=3,
        field_names=("u", "v", "p"),
        quantity=velocity_magnitude,
    )
