"""What a PINN problem is: a box domain, residual blocks and an exact solution.

Pure data and torch math; nothing here imports PETSc. A residual block turns the network's
jet at its points into a residual vector; the loss is ½ Σ_b (w_b / N_b) ‖r_b‖².
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import qmc
from torch import Tensor

from ..errors import PinnInputError
from ..models import Jet

SAMPLINGS = ("uniform", "halton")

#: residual of a block from the jet of u and the points x (n, d): returns (n,)
JetResidual = Callable[[Jet, Tensor], Tensor]
#: residual at one point from the point function u: R^d → R and x (d,): returns a scalar.
#: Evaluated with vmap and nested autograd: any operator, slower.
PointResidual = Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]


@dataclass(frozen=True)
class Box:
    """The axis-aligned box Π [lo_i, hi_i]; samples its interior and chosen faces."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.lo)

    def _unit(self, n: int, d: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
        if sampling == "uniform":
            return rng.random((n, d))
        if sampling == "halton":
            return qmc.Halton(d, scramble=True, seed=rng).random(n)
        raise PinnInputError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLINGS)}")

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

    def grid(self, per_dim: int) -> np.ndarray:
        """A tensor grid with ``per_dim`` nodes per dimension, boundary included."""
        axes = [np.linspace(a, b, per_dim) for a, b in zip(self.lo, self.hi, strict=False)]
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)


@dataclass(frozen=True)
class Block:
    """One residual block: where its points come from and what must vanish there.

    ``kind`` names the point-count option that sizes it (``-pinn_n_<kind>``). Give exactly one
    of ``residual`` (fast: jet of order ``order`` from the network) or ``point_residual``
    (general: any operator of a point function, by nested autograd).
    """

    name: str
    kind: str
    sample: Callable[[int, np.random.Generator, str], np.ndarray]
    residual: JetResidual | None = None
    point_residual: PointResidual | None = None
    order: int = 2
    weight: float = 1.0

    def __post_init__(self) -> None:
        if (self.residual is None) == (self.point_residual is None):
            raise PinnInputError(f"block {self.name!r}: give exactly one of residual= or point_residual=")
        if self.order not in (0, 1, 2):
            raise PinnInputError(f"block {self.name!r}: order must be 0, 1 or 2, got {self.order}")
        if not self.weight > 0:
            raise PinnInputError(f"block {self.name!r}: weight must be > 0, got {self.weight}")


@dataclass
class Problem:
    """A PDE on a box with its residual blocks, exact (or reference) solution and defaults."""

    name: str
    domain: Box
    blocks: list[Block]
    exact: Callable[[Tensor], Tensor]
    default_counts: dict[str, int]
    default_layers: tuple[int, ...] = (20, 20, 20, 20)
    eval_per_dim: int = 0  # evaluation grid nodes per dimension (0: pick by dimension)
    description: str = ""
    params: dict[str, float] = field(default_factory=dict)
    reference: bool = False  # True: ``exact`` is a numerical reference, not a closed form

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def kinds(self) -> list[str]:
        return sorted({b.kind for b in self.blocks})

    def sample(self, counts: dict[str, int], seed: int, sampling: str = "uniform") -> dict[str, np.ndarray]:
        """Global collocation points of every block: a function of (counts, seed) only."""
        rng = np.random.default_rng(seed)
        out = {}
        for b in self.blocks:
            n = counts.get(b.kind, self.default_counts.get(b.kind))
            if n is None or int(n) <= 0:
                raise PinnInputError(f"point count for block {b.name!r} (-pinn_n_{b.kind}) must be > 0, got {n}")
            pts = np.ascontiguousarray(b.sample(int(n), rng, sampling), dtype=np.float64)
            assert pts.shape == (int(n), self.dim), f"block {b.name}: sampler gave {pts.shape}"
            out[b.name] = pts
        return out

    def eval_points(self) -> np.ndarray:
        """Fixed evaluation grid for the relative L2 error."""
        per = self.eval_per_dim or {1: 1001, 2: 101, 3: 31}.get(self.dim, 11)
        return self.domain.grid(per)
