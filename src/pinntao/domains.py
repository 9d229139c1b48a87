"""Domains: where collocation and evaluation points come from.

A domain samples its interior and its boundary (with outward unit normals), gives the outward
normal at boundary points (for Neumann/Robin blocks, which see only the points), says which
points it contains, its measure (volume) and its evaluation points. Every sampler is a function
of (n, the generator, the sampling method) only, so point sets are identical on any rank count.
Non-box domains sample by rejection from their bounding box (uniform or scrambled Halton
candidates, drawn in order until n are inside), boundaries by arc length / area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from scipy.stats import norm, qmc
from torch import Tensor

from .errors import PinnInputError

SAMPLINGS = ("uniform", "halton")


@runtime_checkable
class Domain(Protocol):
    """What a problem needs from its domain (see docs/index.md, "Writing a new domain")."""

    @property
    def dim(self) -> int: ...

    @property
    def lo(self) -> tuple[float, ...]: ...  # bounding box

    @property
    def hi(self) -> tuple[float, ...]: ...

    @property
    def measure(self) -> float: ...

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray: ...

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        ...  # (points (n, d), outward unit normals (n, d))

    def normal(self, x: Tensor) -> Tensor: ...  # outward unit normal at boundary points (n, d)

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray: ...  # (n,) bool, boundary within tol

    def eval_points(self, per_dim: int) -> np.ndarray: ...


def unit_samples(n: int, d: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
    """n points of [0, 1)^d: uniform from rng, or scrambled Halton seeded from rng."""
    if sampling == "uniform":
        return rng.random((n, d))
    if sampling == "halton":
        return qmc.Halton(d, scramble=True, seed=rng).random(n)
    raise PinnInputError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLINGS)}")


def split_by_weight(n: int, weights: np.ndarray) -> np.ndarray:
    """Deterministic split of n into integer counts proportional to weights (largest remainder)."""
    quota = n * weights / weights.sum()
    counts = np.floor(quota).astype(int)
    counts[np.argsort(counts - quota)[: n - counts.sum()]] += 1
    return counts


def rejection_sample(dom: Domain, n: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
    """n interior points of ``dom``: candidates from its bounding box, kept in order when inside."""
    lo, hi = np.asarray(dom.lo, dtype=float), np.asarray(dom.hi, dtype=float)
    frac = dom.measure / float(np.prod(hi - lo))
    engine = None
    if sampling == "halton":
        engine = qmc.Halton(dom.dim, scramble=True, seed=rng)
    elif sampling != "uniform":
        raise PinnInputError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLINGS)}")
    out, have = [], 0
    while have < n:
        m = int((n - have) / frac * 1.1) + 16
        u = rng.random((m, dom.dim)) if engine is None else engine.random(m)
        pts = lo + (hi - lo) * u
        keep = pts[dom.contains(pts)]
        out.append(keep)
        have += keep.shape[0]
    return np.concatenate(out)[:n]


def grid_inside(dom: Domain, per_dim: int) -> np.ndarray:
    """Nodes of a tensor grid over the bounding box that lie in the closed domain."""
    axes = [np.linspace(a, b, per_dim) for a, b in zip(dom.lo, dom.hi, strict=True)]
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    scale = max(b - a for a, b in zip(dom.lo, dom.hi, strict=True))
    return pts[dom.contains(pts, tol=1e-12 * scale)]


@dataclass(frozen=True)
class Box:
    """The axis-aligned box Π [lo_i, hi_i]; samples its interior and chosen faces."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.lo)

    @property
    def measure(self) -> float:
        return float(np.prod(np.asarray(self.hi) - np.asarray(self.lo)))

    def _unit(self, n: int, d: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
        return unit_samples(n, d, rng, sampling)

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        return lo + (hi - lo) * self._unit(n, self.dim, rng, sampling)

    def faces(
        self, n: int, rng: np.random.Generator, faces: Sequence[tuple[int, int]], sampling: str = "uniform"
    ) -> np.ndarray:
        """n points spread over the faces (dim, side) with side 0 = lo, 1 = hi, by face area."""
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        if self.dim == 1:  # faces of an interval are points: alternate between them
            side = np.arange(n) % len(faces)
            return np.array([[(lo, hi)[faces[s][1]][0]] for s in side])
        areas = np.array([np.prod(np.delete(hi - lo, k)) for k, _ in faces])
        # deterministic split of n by area (largest remainder), then sample each face
        quota = n * areas / areas.sum()
        counts = np.floor(quota).astype(int)
        counts[np.argsort(counts - quota)[: n - counts.sum()]] += 1
        out = []
        for (k, side), m in zip(faces, counts, strict=False):
            if m == 0:
                continue
            pts = lo + (hi - lo) * self._unit(int(m), self.dim, rng, sampling)
            pts[:, k] = (lo, hi)[side][k]
            out.append(pts)
        return np.concatenate(out)

    def all_faces(self) -> list[tuple[int, int]]:
        return [(k, s) for k in range(self.dim) for s in (0, 1)]

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        """n points on all faces (by area) and their outward unit normals ±e_k."""
        pts = self.faces(n, rng, self.all_faces(), sampling)
        return pts, self.normal(torch.as_tensor(pts)).numpy()

    def normal(self, x: Tensor) -> Tensor:
        """±e_k of the face nearest to each point (outward)."""
        lo = torch.as_tensor(self.lo, dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(self.hi, dtype=x.dtype, device=x.device)
        dist = torch.cat([(x - lo).abs(), (hi - x).abs()], dim=1)  # (n, 2d): lo faces, then hi faces
        k = dist.argmin(1)
        sign = torch.where(k >= self.dim, 1.0, -1.0).to(x.dtype)
        return torch.nn.functional.one_hot(k % self.dim, self.dim).to(x.dtype) * sign[:, None]

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return np.all((x >= np.asarray(self.lo) - tol) & (x <= np.asarray(self.hi) + tol), axis=1)

    def grid(self, per_dim: int) -> np.ndarray:
        """A tensor grid with ``per_dim`` nodes per dimension, boundary included."""
        axes = [np.linspace(a, b, per_dim) for a, b in zip(self.lo, self.hi, strict=False)]
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)

    def eval_points(self, per_dim: int) -> np.ndarray:
        return self.grid(per_dim)


@dataclass(frozen=True)
class Ball:
    """The ball ‖x − c‖ ≤ r in R^d (a disk in 2-D, a sphere's inside in 3-D)."""

    center: tuple[float, ...]
    radius: float

    def __post_init__(self) -> None:
        if not (self.radius > 0 and math.isfinite(self.radius)) or len(self.center) < 1:
            raise PinnInputError(f"Ball: radius must be finite and > 0 and the center non-empty, got "
                                 f"center={self.center}, radius={self.radius}")

    @property
    def dim(self) -> int:
        return len(self.center)

    @property
    def lo(self) -> tuple[float, ...]:
        return tuple(c - self.radius for c in self.center)

    @property
    def hi(self) -> tuple[float, ...]:
        return tuple(c + self.radius for c in self.center)

    @property
    def measure(self) -> float:
        d = self.dim
        return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * self.radius**d

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        return rejection_sample(self, n, rng, sampling)

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        """Uniform on the sphere: normalised Gaussian directions (from uniform or Halton samples
        through the inverse normal CDF; in 2-D the angle 2πu directly)."""
        u = unit_samples(n, 1 if self.dim == 2 else self.dim, rng, sampling)
        if self.dim == 2:
            nrm = np.stack([np.cos(2 * np.pi * u[:, 0]), np.sin(2 * np.pi * u[:, 0])], axis=1)
        elif self.dim == 1:
            nrm = np.where(u < 0.5, -1.0, 1.0)
        else:
            g = norm.ppf(np.clip(u, 1e-15, 1 - 1e-15))
            nrm = g / np.linalg.norm(g, axis=1, keepdims=True)
        return np.asarray(self.center) + self.radius * nrm, nrm

    def normal(self, x: Tensor) -> Tensor:
        v = x - torch.as_tensor(self.center, dtype=x.dtype, device=x.device)
        return v / v.norm(dim=1, keepdim=True)

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return np.linalg.norm(x - np.asarray(self.center), axis=1) <= self.radius + tol

    def eval_points(self, per_dim: int) -> np.ndarray:
        return grid_inside(self, per_dim)


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def _on_segment(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_touch(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    o1, o2, o3, o4 = _orient(p1, p2, q1), _orient(p1, p2, q2), _orient(q1, q2, p1), _orient(q1, q2, p2)
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True
    return ((o1 == 0 and _on_segment(p1, p2, q1)) or (o2 == 0 and _on_segment(p1, p2, q2))
            or (o3 == 0 and _on_segment(q1, q2, p1)) or (o4 == 0 and _on_segment(q1, q2, p2)))


@dataclass(frozen=True)
class Polygon:
    """A simple polygon in the plane (vertices in order, either orientation; stored
    counter-clockwise). Not simple (self-intersecting, repeated or collinear-overlapping edges,
    zero area) → PinnInputError."""

    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices, dtype=float)
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3 or not np.all(np.isfinite(v)):
            raise PinnInputError(f"Polygon: expected at least 3 finite vertices of shape (k, 2), got "
                                 f"shape {v.shape}")
        k = v.shape[0]
        for i in range(k):
            for j in range(i + 1, k):
                adjacent = j == i + 1 or (i == 0 and j == k - 1)
                a1, a2, b1, b2 = v[i], v[(i + 1) % k], v[j], v[(j + 1) % k]
                if adjacent:
                    shared, other_a, other_b = (a2, a1, b2) if j == i + 1 else (a1, a2, b1)
                    overlap = (_orient(other_a, shared, other_b) == 0
                               and np.dot(other_a - shared, other_b - shared) > 0)
                    if np.array_equal(a1, a2) or overlap:
                        raise PinnInputError(f"Polygon is not simple: edges {i} and {j} overlap or are degenerate "
                                             f"(vertices {v[i].tolist()}, {v[(i + 1) % k].tolist()})")
                elif _segments_touch(a1, a2, b1, b2):
                    raise PinnInputError(f"Polygon is not simple: edges {i} ({a1.tolist()}–{a2.tolist()}) and "
                                         f"{j} ({b1.tolist()}–{b2.tolist()}) intersect")
        area = 0.5 * float(np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1]))
        if area == 0:
            raise PinnInputError("Polygon is not simple: zero area")
        object.__setattr__(self, "vertices", tuple(map(tuple, (v if area > 0 else v[::-1]).tolist())))

    @property
    def _v(self) -> np.ndarray:
        return np.asarray(self.vertices, dtype=float)

    @property
    def dim(self) -> int:
        return 2

    @property
    def lo(self) -> tuple[float, ...]:
        return tuple(self._v.min(0).tolist())

    @property
    def hi(self) -> tuple[float, ...]:
        return tuple(self._v.max(0).tolist())

    @property
    def measure(self) -> float:
        v = self._v
        return 0.5 * abs(float(np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1])))

    def _edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start points, edge vectors, outward unit normals) for the counter-clockwise boundary."""
        v = self._v
        e = np.roll(v, -1, axis=0) - v
        length = np.linalg.norm(e, axis=1)
        return v, e, np.stack([e[:, 1], -e[:, 0]], axis=1) / length[:, None]

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        return rejection_sample(self, n, rng, sampling)

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        """n points on the edges, split by edge length, uniform along each edge."""
        v, e, nrm = self._edges()
        counts = split_by_weight(n, np.linalg.norm(e, axis=1))
        t = unit_samples(n, 1, rng, sampling)[:, 0]
        edge = np.repeat(np.arange(len(v)), counts)
        return v[edge] + t[:, None] * e[edge], nrm[edge]

    def _distances(self, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Distance of each point to each edge, (n, k)."""
        lib = torch if isinstance(x, Tensor) else np
        v, e, _ = self._edges()
        if isinstance(x, Tensor):
            v, e = (torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in (v, e))
        w = x[:, None, :] - v[None]
        t = lib.clip((w * e[None]).sum(-1) / (e * e).sum(-1)[None], 0.0, 1.0)
        return ((w - t[..., None] * e[None]) ** 2).sum(-1) ** 0.5

    def normal(self, x: Tensor) -> Tensor:
        """Outward unit normal of the nearest edge."""
        nrm = torch.as_tensor(self._edges()[2], dtype=x.dtype, device=x.device)
        return nrm[self._distances(x).argmin(1)]

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Even-odd rule (vectorised over points × edges); boundary points count within tol."""
        v = self._v
        w = np.roll(v, -1, axis=0)
        px, py = x[:, :1], x[:, 1:2]
        (x0, y0), (x1, y1) = v.T[:, None], w.T[:, None]  # each (1, k)
        cross = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside = (cross & (px < xint)).sum(1) % 2 == 1
        if tol > 0:
            inside |= self._distances(x).min(1) <= tol
        return inside

    def eval_points(self, per_dim: int) -> np.ndarray:
        return grid_inside(self, per_dim)


def l_shape() -> Polygon:
    """[−1, 1]² without the quadrant (0, 1] × [−1, 0): re-entrant corner at the origin."""
    return Polygon(((-1.0, -1.0), (0.0, -1.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 1.0)))


@dataclass(frozen=True)
class TimeDomain:
    """[t0, t1] × Ω with coordinates (t, x): interior, lateral boundary [t0, t1] × ∂Ω (normals
    (0, n_Ω)) and the initial slice {t0} × Ω."""

    space: Domain
    t0: float = 0.0
    t1: float = 1.0

    def __post_init__(self) -> None:
        if not self.t1 > self.t0:
            raise PinnInputError(f"TimeDomain: need t1 > t0, got [{self.t0}, {self.t1}]")

    @property
    def dim(self) -> int:
        return 1 + self.space.dim

    @property
    def lo(self) -> tuple[float, ...]:
        return (self.t0, *self.space.lo)

    @property
    def hi(self) -> tuple[float, ...]:
        return (self.t1, *self.space.hi)

    @property
    def measure(self) -> float:
        return (self.t1 - self.t0) * self.space.measure

    def _times(self, n: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
        return self.t0 + (self.t1 - self.t0) * unit_samples(n, 1, rng, sampling)

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        return np.concatenate([self._times(n, rng, sampling), self.space.interior(n, rng, sampling)], axis=1)

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        t = self._times(n, rng, sampling)
        pts, nrm = self.space.boundary(n, rng, sampling)
        return np.concatenate([t, pts], axis=1), np.concatenate([np.zeros((n, 1)), nrm], axis=1)

    def initial(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        return np.concatenate([np.full((n, 1), self.t0), self.space.interior(n, rng, sampling)], axis=1)

    def normal(self, x: Tensor) -> Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), self.space.normal(x[:, 1:])], dim=1)

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return (x[:, 0] >= self.t0 - tol) & (x[:, 0] <= self.t1 + tol) & self.space.contains(x[:, 1:], tol)

    def eval_points(self, per_dim: int) -> np.ndarray:
        space = self.space.eval_points(per_dim)
        t = np.linspace(self.t0, self.t1, per_dim)
        return np.concatenate([np.repeat(t, space.shape[0])[:, None], np.tile(space, (per_dim, 1))], axis=1)


def check_inside(dom: Domain, x: np.ndarray, what: str, tol: float = 1e-9) -> None:
    """PinnInputError naming ``what`` if a point of x lies outside the closed domain."""
    scale = max(1.0, max(b - a for a, b in zip(dom.lo, dom.hi, strict=True)))
    bad = ~dom.contains(x, tol=tol * scale)
    if bad.any():
        i = int(np.argmax(bad))
        raise PinnInputError(f"{what}: point {i} {x[i].tolist()} lies outside the domain "
                             f"({type(dom).__name__}); {int(bad.sum())} of {x.shape[0]} points outside")


__all__ = ["SAMPLINGS", "Ball", "Box", "Domain", "Polygon", "TimeDomain", "check_inside", "l_shape",
           "rejection_sample", "unit_samples"]
