"""Domains: where collocation and evaluation points come from.

A domain samples its interior and its boundary (with outward unit normals), gives the outward
normal at boundary points (for Neumann/Robin blocks, which see only the points), says which
points it contains, its measure (volume) and its evaluation points. Every sampler is a function
of (n, the generator, the sampling method) only, so point sets are identical on any rank count.
Non-box domains sample by rejection from their bounding box (uniform, scrambled Halton or
scrambled Sobol candidates, drawn in order until n are inside), boundaries by arc length / area.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from scipy.stats import norm, qmc
from torch import Tensor

from .errors import PinnInputError

SAMPLINGS = ("uniform", "halton", "sobol")


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


def qmc_engine(sampling: str, d: int, rng: np.random.Generator) -> qmc.QMCEngine | None:
    """The low-discrepancy engine of a sampling kind, seeded from rng (None: uniform from rng itself)."""
    if sampling == "uniform":
        return None
    if sampling == "halton":
        return qmc.Halton(d, scramble=True, seed=rng)
    if sampling == "sobol":
        return qmc.Sobol(d, scramble=True, seed=rng)
    raise PinnInputError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLINGS)}")


def qmc_draw(engine: qmc.QMCEngine, n: int) -> np.ndarray:
    """The next n points of an engine. Sobol's balance is best at powers of 2, but any prefix of the
    sequence is still low-discrepancy: scipy's warning about n is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties of Sobol", category=UserWarning)
        return engine.random(n)


def unit_samples(n: int, d: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
    """n points of [0, 1)^d: uniform from rng, or scrambled Halton / Sobol seeded from rng."""
    engine = qmc_engine(sampling, d, rng)
    return rng.random((n, d)) if engine is None else qmc_draw(engine, n)


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
    engine = qmc_engine(sampling, dom.dim, rng)
    out, have = [], 0
    while have < n:
        m = int((n - have) / frac * 1.1) + 16
        u = rng.random((m, dom.dim)) if engine is None else qmc_draw(engine, m)
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
    """[t0, t1] × Ω: interior, lateral boundary [t0, t1] × ∂Ω (normals (0, n_Ω)) and the initial
    slice {t0} × Ω.

    Coordinate order: ``time_first=True`` (the default, used by every built-in problem) orders a
    point as (t, x₁, …, x_d), so t is column 0 and jet index 0; ``time_first=False`` orders it
    (x₁, …, x_d, t) as DeepXDE and most data files do (t is the last column, index d). A
    reference data file (``-pinn_reference``) must list its columns in the same order.
    """

    space: Domain
    t0: float = 0.0
    t1: float = 1.0
    time_first: bool = True

    def __post_init__(self) -> None:
        if not self.t1 > self.t0:
            raise PinnInputError(f"TimeDomain: need t1 > t0, got [{self.t0}, {self.t1}]")

    @property
    def t_index(self) -> int:
        """Column of t in a point: 0 (time_first) or the space dimension."""
        return 0 if self.time_first else self.space.dim

    @property
    def coordinates(self) -> str:
        """The coordinate order in words, e.g. ``(t, x0, x1)``."""
        xs = [f"x{k}" for k in range(self.space.dim)]
        return "(" + ", ".join(["t", *xs] if self.time_first else [*xs, "t"]) + ")"

    def _join(self, t: np.ndarray | Tensor, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        parts = [t, x] if self.time_first else [x, t]
        return torch.cat(parts, dim=1) if isinstance(x, Tensor) else np.concatenate(parts, axis=1)

    def _split(self, p: np.ndarray | Tensor) -> tuple[np.ndarray | Tensor, np.ndarray | Tensor]:
        """(t as (n,), space part (n, d)) of points in this domain's order."""
        return (p[:, 0], p[:, 1:]) if self.time_first else (p[:, -1], p[:, :-1])

    @property
    def dim(self) -> int:
        return 1 + self.space.dim

    @property
    def lo(self) -> tuple[float, ...]:
        return (self.t0, *self.space.lo) if self.time_first else (*self.space.lo, self.t0)

    @property
    def hi(self) -> tuple[float, ...]:
        return (self.t1, *self.space.hi) if self.time_first else (*self.space.hi, self.t1)

    @property
    def measure(self) -> float:
        return (self.t1 - self.t0) * self.space.measure

    def _times(self, n: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
        return self.t0 + (self.t1 - self.t0) * unit_samples(n, 1, rng, sampling)

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        t = self._times(n, rng, sampling)
        return self._join(t, self.space.interior(n, rng, sampling))

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        t = self._times(n, rng, sampling)
        pts, nrm = self.space.boundary(n, rng, sampling)
        return self._join(t, pts), self._join(np.zeros((n, 1)), nrm)

    def initial(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        return self._join(np.full((n, 1), self.t0), self.space.interior(n, rng, sampling))

    def normal(self, x: Tensor) -> Tensor:
        _, xs = self._split(x)
        return self._join(torch.zeros_like(x[:, :1]), self.space.normal(xs))

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        t, xs = self._split(x)
        return (t >= self.t0 - tol) & (t <= self.t1 + tol) & self.space.contains(xs, tol)

    def eval_points(self, per_dim: int) -> np.ndarray:
        space = self.space.eval_points(per_dim)
        t = np.linspace(self.t0, self.t1, per_dim)
        return self._join(np.repeat(t, space.shape[0])[:, None], np.tile(space, (per_dim, 1)))


def check_inside(dom: Domain, x: np.ndarray, what: str, tol: float = 1e-9) -> None:
    """PinnInputError naming ``what`` if a point of x lies outside the closed domain."""
    scale = max(1.0, max(b - a for a, b in zip(dom.lo, dom.hi, strict=True)))
    bad = ~dom.contains(x, tol=tol * scale)
    if bad.any():
        i = int(np.argmax(bad))
        raise PinnInputError(f"{what}: point {i} {x[i].tolist()} lies outside the domain "
                             f"({type(dom).__name__}); {int(bad.sum())} of {x.shape[0]} points outside")



# -- constructive solid geometry ------------------------------------------------------------------

#: seed of the fixed quasi-random samples that estimate composite volumes and boundary fractions
_ESTIMATE_SEED = 0xC56


def surface_measure(shape: Domain) -> float:
    """The boundary measure (perimeter in 2-D, area in 3-D) of a Box, Ball or Polygon."""
    if isinstance(shape, Box):
        w = np.asarray(shape.hi, dtype=float) - np.asarray(shape.lo, dtype=float)
        return 2.0 if shape.dim == 1 else float(2 * sum(np.prod(np.delete(w, k)) for k in range(shape.dim)))
    if isinstance(shape, Ball):
        return shape.dim * shape.measure / shape.radius
    if isinstance(shape, Polygon):
        return float(np.linalg.norm(shape._edges()[1], axis=1).sum())
    raise PinnInputError(f"CSG: operands must be Box, Ball, Polygon or a composite, got {type(shape).__name__}")


def boundary_distance(shape: Domain, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Euclidean distance of each point (inside or outside) to the boundary of a Box, Ball or Polygon."""
    t = isinstance(x, Tensor)
    lib = torch if t else np
    if isinstance(shape, Box):
        lo, hi = (torch.as_tensor(a, dtype=x.dtype, device=x.device) if t else np.asarray(a, dtype=float)
                  for a in (shape.lo, shape.hi))
        inner = lib.minimum(x - lo, hi - x)  # (n, d), all ≥ 0 inside
        inside = (inner >= 0).all(1)
        out = (lib.clip(lo - x, 0.0, None) ** 2 + lib.clip(x - hi, 0.0, None) ** 2).sum(1) ** 0.5
        return lib.where(inside, inner.min(1).values if t else inner.min(1), out)
    if isinstance(shape, Ball):
        c = torch.as_tensor(shape.center, dtype=x.dtype, device=x.device) if t else np.asarray(shape.center)
        return ((((x - c) ** 2).sum(1)) ** 0.5 - shape.radius).abs() if t else \
            np.abs(np.linalg.norm(x - c, axis=1) - shape.radius)
    if isinstance(shape, Polygon):
        d = shape._distances(x)
        return d.min(1).values if t else d.min(1)
    raise PinnInputError(f"CSG: operands must be Box, Ball, Polygon or a composite, got {type(shape).__name__}")


def _open(shape: Domain, x: np.ndarray, tol: float) -> np.ndarray:
    """Points strictly inside ``shape``, farther than tol from its boundary."""
    if isinstance(shape, _Composite):
        return shape.open(x, tol)
    return shape.contains(x) & (boundary_distance(shape, x) > tol)


@dataclass(frozen=True)
class Piece:
    """One named piece of a composite's boundary: the part of a primitive's boundary (one face of
    a Box, or the whole boundary of a Ball or Polygon) that ``keep`` accepts, with the primitive's
    outward normal times ``sign`` (−1 on a hole: the normal points into the hole, out of the domain)."""

    name: str
    shape: Domain
    sign: float
    keep: Callable[[np.ndarray], np.ndarray]
    face: tuple[int, int] | None = None  # (dimension, side) for a Box face
    measure: float = 0.0  # boundary measure of the piece (estimated when ``keep`` clips it)

    def candidates(self, n: int, rng: np.random.Generator, sampling: str) -> tuple[np.ndarray, np.ndarray]:
        """n points of the primitive's boundary (this face only, for a Box) and their normals."""
        if self.face is not None:
            pts = self.shape.faces(n, rng, [self.face], sampling)  # type: ignore[attr-defined]
            nrm = np.zeros_like(pts)
            nrm[:, self.face[0]] = 1.0 if self.face[1] else -1.0
            return pts, self.sign * nrm
        pts, nrm = self.shape.boundary(n, rng, sampling)
        return pts, self.sign * nrm

    def sample(self, n: int, rng: np.random.Generator, sampling: str) -> tuple[np.ndarray, np.ndarray]:
        """n points of this piece by rejection (candidates kept in a random order, so a cut-off
        batch stays uniform): a function of (n, rng, sampling) only."""
        frac = max(self.measure / self.full_measure(), 1e-3)
        out, have, rounds = [], 0, 0
        while have < n:
            pts, nrm = self.candidates(int((n - have) / frac * 1.2) + 16, rng, sampling)
            ok = np.flatnonzero(self.keep(pts))
            ok = ok[rng.permutation(ok.size)]
            out.append((pts[ok], nrm[ok]))
            have += ok.size
            rounds += 1
            if rounds > 1000:
                raise PinnInputError(f"boundary piece {self.name!r}: rejection sampling found too few points "
                                     f"({have} of {n}); the piece is (almost) empty")
        return (np.concatenate([p for p, _ in out])[:n], np.concatenate([v for _, v in out])[:n])

    def full_measure(self) -> float:
        """Measure of the uncut primitive boundary (or face) the piece is cut from."""
        if self.face is not None:
            w = np.asarray(self.shape.hi, dtype=float) - np.asarray(self.shape.lo, dtype=float)
            return 1.0 if self.shape.dim == 1 else float(np.prod(np.delete(w, self.face[0])))
        return surface_measure(self.shape)


def _piece_distance(piece: Piece, x: Tensor) -> Tensor:
    """Distance of points to the piece's primitive boundary (to its face, for a Box face)."""
    if piece.face is None:
        return boundary_distance(piece.shape, x)
    k, s = piece.face
    lo = torch.as_tensor(piece.shape.lo, dtype=x.dtype, device=x.device)
    hi = torch.as_tensor(piece.shape.hi, dtype=x.dtype, device=x.device)
    excess = torch.clip(lo - x, 0.0, None) + torch.clip(x - hi, 0.0, None)  # outside the face's extent
    across = x[:, k] - (hi if s else lo)[k]  # distance to the face's plane
    onehot = torch.nn.functional.one_hot(torch.tensor(k), x.shape[1]).to(x.dtype)
    return (excess * (1 - onehot) + across[:, None] * onehot).norm(dim=1)


def _piece_normal(piece: Piece, x: Tensor) -> Tensor:
    """The piece's outward normal (times its sign) at points x, (n, d); torch, vmap-safe."""
    if piece.face is None:
        return piece.sign * piece.shape.normal(x)
    k, s = piece.face
    e = torch.nn.functional.one_hot(torch.tensor(k), x.shape[1]).to(x.dtype)
    return (piece.sign * (1.0 if s else -1.0)) * e.expand_as(x)


def _leaf_pieces(shape: Domain, name: str) -> list[Piece]:
    """A primitive's boundary as pieces: a Box gives one per face (``name.x0_lo``, ``name.x0_hi``,
    ...), a Ball or Polygon one (``name``)."""
    def every(x: np.ndarray) -> np.ndarray:
        return np.ones(x.shape[0], dtype=bool)

    if isinstance(shape, _Composite):
        return [Piece(f"{name}.{p.name}", p.shape, p.sign, p.keep, p.face, p.measure) for p in shape.pieces]
    if isinstance(shape, Box):
        pieces = [Piece(f"{name}.x{k}_{'hi' if s else 'lo'}", shape, 1.0, every, (k, s)) for k, s in shape.all_faces()]
        return [Piece(p.name, p.shape, 1.0, every, p.face, p.full_measure()) for p in pieces]
    return [Piece(name, shape, 1.0, every, None, surface_measure(shape))]


def _clip(piece: Piece, keep: Callable[[np.ndarray], np.ndarray]) -> Piece:
    """The piece restricted to where ``keep`` holds (its measure re-estimated)."""
    old = piece.keep

    def both(x: np.ndarray) -> np.ndarray:
        m = old(x)
        if m.any():
            m[m] = keep(x[m])
        return m

    probe = Piece(piece.name, piece.shape, 1.0, old, piece.face, piece.measure)
    pts, _ = probe.candidates(1 << 14, np.random.default_rng(_ESTIMATE_SEED), "halton")
    frac = float(both(pts).mean())
    return Piece(piece.name, piece.shape, piece.sign, both, piece.face, frac * probe.full_measure())


class _Composite:
    """A set operation on domains (Box, Ball, Polygon or composites): membership, rejection
    sampling of the interior, named boundary pieces with outward normals, evaluation points.

    Every sampler is a function of (n, rng, sampling) only, so point sets do not depend on the
    number of ranks. The volume and the measure of a cut boundary piece are estimated once from
    fixed scrambled-Halton samples (2¹⁶ and 2¹⁴ points: relative error about 1e-3); they only
    size rejection batches and split boundary points between pieces.
    """

    operands: tuple[Domain, ...]
    names: tuple[str, ...]

    def __init__(self, *operands: Domain, names: Sequence[str] | None = None) -> None:
        if len(operands) < self._min_operands:
            raise PinnInputError(f"{type(self).__name__}: needs at least {self._min_operands} domains, got "
                                 f"{len(operands)}")
        dims = {op.dim for op in operands}
        if len(dims) != 1:
            raise PinnInputError(f"{type(self).__name__}: all domains must have the same dimension, got "
                                 f"{[op.dim for op in operands]}")
        for op in operands:
            if not isinstance(op, (Box, Ball, Polygon, _Composite)):
                raise PinnInputError(f"{type(self).__name__}: operands must be Box, Ball, Polygon or a "
                                     f"composite, got {type(op).__name__}")
        names = tuple(names) if names is not None else self._default_names(len(operands))
        if len(names) != len(operands) or len(set(names)) != len(names) or not all(
                isinstance(n, str) and n and "." not in n for n in names):
            raise PinnInputError(f"{type(self).__name__}: names must be {len(operands)} distinct non-empty "
                                 f"strings without '.', got {names}")
        self.operands, self.names = tuple(operands), names
        self.pieces = [p for p in self._pieces() if p.measure > 0]
        if not self.pieces:
            raise PinnInputError(f"{type(self).__name__}: the composite has an empty boundary (empty set?)")
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        u = qmc.Halton(self.dim, scramble=True, seed=_ESTIMATE_SEED).random(1 << 16)
        self._measure = float(self.contains(lo + (hi - lo) * u).mean() * np.prod(hi - lo))
        if not self._measure > 0:
            raise PinnInputError(f"{type(self).__name__}: the composite is empty (or thinner than the volume "
                                 f"estimate resolves)")

    _min_operands = 2

    def _default_names(self, k: int) -> tuple[str, ...]:
        return tuple(f"part{i}" for i in range(k))

    def _sign(self, i: int) -> float:
        """+1 if operand i's outward normal is the composite's, −1 if flipped (a hole)."""
        return 1.0

    def _pieces(self) -> list[Piece]:
        """Every operand's pieces, kept where they are boundary of the composite: a point p with
        the composite's normal n is kept if p − εn is inside and p + εn outside (ε = 1e-7 × the
        bounding box's diameter), and not already on the boundary of an earlier operand (a
        boundary shared with the same normal, e.g. flush faces of a union, counts once)."""
        scale = float(np.linalg.norm(np.asarray(self.hi, dtype=float) - np.asarray(self.lo, dtype=float)))
        eps, near = 1e-7 * scale, 1e-9 * scale
        out = []
        for i, (op, name) in enumerate(zip(self.operands, self.names, strict=True)):
            earlier = self.operands[:i]
            for p in _leaf_pieces(op, name):
                q = Piece(p.name, p.shape, self._sign(i) * p.sign, p.keep, p.face, p.measure)

                def keep(x: np.ndarray, q: Piece = q, earlier: tuple[Domain, ...] = earlier) -> np.ndarray:
                    n = _piece_normal(q, torch.as_tensor(x)).numpy()
                    m = self.contains(x - eps * n) & ~self.contains(x + eps * n)
                    for o in earlier:
                        m &= ~(o.contains(x, near) & ~_open(o, x, near))
                    return m

                out.append(_clip(q, keep))
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={op!r}" for n, op in zip(self.names, self.operands, strict=True))
        return f"{type(self).__name__}({args})"

    @property
    def dim(self) -> int:
        return self.operands[0].dim

    @property
    def measure(self) -> float:
        """Volume (estimated, see the class docstring)."""
        return self._measure

    @property
    def piece_names(self) -> list[str]:
        """Names of the boundary pieces, e.g. ``plate.x0_lo`` (a Box face), ``hole1`` (a Ball)."""
        return [p.name for p in self.pieces]

    def select(self, *names: str) -> list[Piece]:
        """The pieces named, or below a name (``plate`` selects ``plate.x0_lo`` ...), or matching
        a shell pattern (``hole*``); an unknown name is a PinnInputError listing the pieces."""
        out = []
        for want in names:
            hit = [p for p in self.pieces
                   if p.name == want or p.name.startswith(want + ".") or fnmatch.fnmatchcase(p.name, want)]
            if not hit:
                raise PinnInputError(f"{type(self).__name__}: no boundary piece {want!r}; allowed: "
                                     f"{', '.join(self.piece_names)} (or a prefix or shell pattern of them)")
            out += [p for p in hit if p.name not in {q.name for q in out}]
        return out

    def interior(self, n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
        return rejection_sample(self, n, rng, sampling)

    def boundary(self, n: int, rng: np.random.Generator, sampling: str = "uniform",
                 pieces: Sequence[str] | str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n points on the boundary (or on the named pieces), split by piece measure, and the
        outward unit normals."""
        chosen = self.pieces if pieces is None else self.select(*([pieces] if isinstance(pieces, str) else pieces))
        counts = split_by_weight(n, np.array([p.measure for p in chosen]))
        parts = [p.sample(int(m), rng, sampling) for p, m in zip(chosen, counts, strict=True) if m > 0]
        return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])

    def sampler(self, *pieces: str) -> Callable[[int, np.random.Generator, str], np.ndarray]:
        """A Block ``sample`` function for points on the named pieces (all of them if none named)."""
        chosen = [p.name for p in self.select(*pieces)] if pieces else None

        def sample(n: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
            return self.boundary(n, rng, sampling, chosen)[0]

        return sample

    def normal(self, x: Tensor) -> Tensor:
        """Outward unit normal of the piece nearest to each boundary point (torch ops only, so a
        residual may call it under vmap / jacrev)."""
        idx = torch.stack([_piece_distance(p, x) for p in self.pieces], dim=1).argmin(1)
        normals = torch.stack([_piece_normal(p, x) for p in self.pieces], dim=1)  # (n, K, d)
        return torch.gather(normals, 1, idx[:, None, None].expand(-1, 1, x.shape[1]))[:, 0]

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        raise NotImplementedError

    def open(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Points strictly inside, farther than tol from the boundary."""
        raise NotImplementedError

    def eval_points(self, per_dim: int) -> np.ndarray:
        return grid_inside(self, per_dim)


class Difference(_Composite):
    """``base`` minus the ``holes`` (closed base without the open holes): a plate with holes.
    Names default to ``outer``, ``hole0``, ``hole1``, ...; a hole's boundary normal points into
    the hole (out of the domain)."""

    def __init__(self, base: Domain, *holes: Domain, names: Sequence[str] | None = None) -> None:
        super().__init__(base, *holes, names=names)

    def _default_names(self, k: int) -> tuple[str, ...]:
        return ("outer", *(f"hole{i}" for i in range(k - 1)))

    def _sign(self, i: int) -> float:
        return 1.0 if i == 0 else -1.0

    @property
    def lo(self) -> tuple[float, ...]:
        return tuple(self.operands[0].lo)

    @property
    def hi(self) -> tuple[float, ...]:
        return tuple(self.operands[0].hi)

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        base, *holes = self.operands
        out = base.contains(x, tol)
        for h in holes:
            out &= ~_open(h, x, tol)
        return out

    def open(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        base, *holes = self.operands
        out = _open(base, x, tol)
        for h in holes:
            out &= ~h.contains(x, tol)
        return out


class Union(_Composite):
    """The union of the parts (names default to ``part0``, ``part1``, ...)."""

    @property
    def lo(self) -> tuple[float, ...]:
        return tuple(np.min([op.lo for op in self.operands], axis=0).tolist())

    @property
    def hi(self) -> tuple[float, ...]:
        return tuple(np.max([op.hi for op in self.operands], axis=0).tolist())

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return np.any([op.contains(x, tol) for op in self.operands], axis=0)

    def open(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return np.any([_open(op, x, tol) for op in self.operands], axis=0)


class Intersection(_Composite):
    """The intersection of the parts (names default to ``part0``, ``part1``, ...)."""

    @property
    def lo(self) -> tuple[float, ...]:
        return tuple(np.max([op.lo for op in self.operands], axis=0).tolist())

    @property
    def hi(self) -> tuple[float, ...]:
        return tuple(np.min([op.hi for op in self.operands], axis=0).tolist())

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return np.all([op.contains(x, tol) for op in self.operands], axis=0)

    def open(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return np.all([_open(op, x, tol) for op in self.operands], axis=0)


__all__ = ["SAMPLINGS", "Ball", "Box", "Difference", "Domain", "Intersection", "Piece", "Polygon", "TimeDomain",
           "Union", "boundary_distance", "check_inside", "l_shape", "rejection_sample", "surface_measure",
           "unit_samples"]
