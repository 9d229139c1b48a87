"""What a PINN problem is: a domain, residual blocks and an exact solution.

Pure data and torch math; nothing here imports PETSc. A residual block turns the network's
jet at its points into a residual vector; the loss is ½ Σ_b (w_b / N_b) ‖r_b‖².
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from torch import Tensor

from ..domains import SAMPLINGS, Box, Domain, check_inside
from ..errors import PinnInputError
from ..models import Jet, MixedSpec, mixed_pairs

#: residual of a block from the jet of u and the points x (n, d): returns (n,), or (n, c) for a
#: block with c components (a system: one row per equation)
JetResidual = Callable[[Jet, Tensor], Tensor]
#: residual at one point from the point function u: R^d → R (or R^m) and x (d,): returns a
#: scalar (or shape (c,)). Evaluated with vmap and nested autograd: any operator, slower.
PointResidual = Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]


@dataclass(frozen=True)
class Block:
    """One residual block: where its points come from and what must vanish there.

    ``kind`` names the point-count option that sizes it (``-pinn_n_<kind>``). Give exactly one
    of ``residual`` (fast: jet of order ``order`` from the network) or ``point_residual``
    (general: any operator of a point function, by nested autograd). ``mixed`` asks the jet for
    mixed second derivatives (``"all"``: the full Hessian; or pairs ``[(0, 1)]``); without it the
    jet holds only ∂²/∂x_i² (the cheap Laplacian path). ``pure`` lists the inputs i whose
    ∂²u/∂x_i² the residual reads (default: all): the jet then carries only those, and every
    residual evaluation and J costs less (burgers1d reads ∂²u/∂x², not ∂²u/∂t²: 4 derivative
    channels through the network instead of 5). A block with ``components`` c > 1
    returns (n, c): c residual rows per point, component k weighted by
    ``weight × component_weights[k]``.
    """

    name: str
    kind: str
    sample: Callable[[int, np.random.Generator, str], np.ndarray]
    residual: JetResidual | None = None
    point_residual: PointResidual | None = None
    order: int = 2
    weight: float = 1.0
    mixed: MixedSpec = ()
    components: int = 1
    component_weights: tuple[float, ...] | None = None
    pure: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if (self.residual is None) == (self.point_residual is None):
            raise PinnInputError(f"block {self.name!r}: give exactly one of residual= or point_residual=")
        if self.order not in (0, 1, 2):
            raise PinnInputError(f"block {self.name!r}: order must be 0, 1 or 2, got {self.order}")
        if not self.weight > 0:
            raise PinnInputError(f"block {self.name!r}: weight must be > 0, got {self.weight}")
        if self.mixed and self.order != 2:
            raise PinnInputError(f"block {self.name!r}: mixed= needs order=2, got order={self.order}")
        if self.pure is not None and self.order != 2:
            raise PinnInputError(f"block {self.name!r}: pure= needs order=2, got order={self.order}")
        if not isinstance(self.components, int) or self.components < 1:
            raise PinnInputError(f"block {self.name!r}: components must be an integer >= 1, got {self.components}")
        cw = self.component_weights
        if cw is not None and (len(cw) != self.components or not all(w > 0 for w in cw)):
            raise PinnInputError(f"block {self.name!r}: component_weights must be {self.components} numbers > 0, "
                                 f"got {cw}")

    def pure_dims(self, dim: int) -> tuple[int, ...] | None:
        """The sorted inputs i whose ∂²u/∂x_i² this block's jet must hold; None: all ``dim``."""
        if self.pure is None:
            return None
        if (not self.pure or isinstance(self.pure, str)
                or not all(isinstance(i, int) and 0 <= i < dim for i in self.pure)):
            raise PinnInputError(f"block {self.name!r}: pure= must list one or more input indices in 0..{dim - 1}, "
                                 f"got {self.pure!r}")
        out = tuple(sorted(set(self.pure)))
        return None if out == tuple(range(dim)) else out

    def pairs(self, dim: int) -> tuple[tuple[int, int], ...]:
        """The mixed pairs (i < j) this block's jet must hold."""
        try:
            return mixed_pairs(self.mixed, dim) if self.mixed else ()
        except PinnInputError as exc:
            raise PinnInputError(f"block {self.name!r}: {exc}") from None


@dataclass
class Problem:
    """A PDE on a domain with its residual blocks, exact (or reference) solution and defaults.

    ``fields`` is the number of network outputs m (u: R^d → R^m); ``exact`` returns (n,) for one
    field, (n, m) for m. ``quantity`` (optional) maps the network output (or ``exact``'s) to what
    the relative L2 / max errors compare, e.g. the velocity magnitude of a flow.

    ``reference`` says what the errors compare against:

    - ``False`` (default): ``exact`` is a closed form;
    - ``True``: ``exact`` is a numerical reference computed on demand (e.g. finite differences);
    - ``(points, values)``: reference *data*, points (n, d) in the domain's coordinate order and
      values (n,) or (n, m). The evaluation points become these points and ``exact`` their
      values (nearest reference point off them, e.g. on a .vts grid), so every report, figure and
      rel_l2 uses the data. ``exact`` may then be omitted; a given one stays in ``exact_closed``.
      ``-pinn_reference FILE`` sets it from a file (see :mod:`pinntao.reference` for formats).
    """

    name: str
    domain: Domain
    blocks: list[Block]
    exact: Callable[[Tensor], Tensor] | None = None
    default_counts: dict[str, int] = field(default_factory=dict)
    default_layers: tuple[int, ...] = (20, 20, 20, 20)
    eval_per_dim: int = 0  # evaluation grid nodes per dimension (0: pick by dimension)
    description: str = ""
    params: dict[str, float] = field(default_factory=dict)
    reference: bool | tuple[np.ndarray, np.ndarray] = False
    fields: int = 1
    field_names: tuple[str, ...] = ()
    quantity: Callable[[Tensor], Tensor] | None = None
    time_axis: int | None = None  # the input axis that is time (evolution problems; causal training)
    #: recommended set-up: -pinn_*/-tao_* option values (no dash) the CLI applies where the user gave none
    recommended: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.exact_closed = getattr(self.exact, "closed", self.exact)
        if isinstance(self.reference, bool):
            if self.exact is None:
                raise PinnInputError(f"problem {self.name!r}: give exact= (a callable) or reference=(points, values)")
            return
        from ..reference import ReferenceData, check_reference

        try:
            points, values = self.reference
        except (TypeError, ValueError):
            raise PinnInputError(f"problem {self.name!r}: reference must be True/False or (points, values), got "
                                 f"{type(self.reference).__name__}") from None
        points, values = check_reference(points, values, self, f"problem {self.name!r}: reference")
        self.reference = (points, values)
        data = ReferenceData(points, values)
        data.closed = self.exact_closed  # type: ignore[attr-defined]
        self.exact = data

    @property
    def reference_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(points, values) when the problem is scored against data, else None."""
        return None if isinstance(self.reference, bool) else self.reference

    def with_reference(self, points: np.ndarray, values: np.ndarray) -> Problem:
        """A copy scored against the data (points, values) (see ``reference``)."""
        return replace(self, exact=self.exact_closed, reference=(points, values))

    def compared(self, u: Tensor) -> Tensor:
        """What the error measures compare: ``quantity(u)``, or u itself."""
        return u if self.quantity is None else self.quantity(u)

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def kinds(self) -> list[str]:
        return sorted({b.kind for b in self.blocks})

    def n_points(self, counts: dict[str, int]) -> int:
        """Collocation points over all blocks: each block takes its kind's count, else the default."""
        return sum(int(counts.get(b.kind, self.default_counts.get(b.kind, 0))) for b in self.blocks)

    def sample(self, counts: dict[str, int], seed: int, sampling: str = "uniform") -> dict[str, np.ndarray]:
        """Global collocation points of every block: a function of (counts, seed) only."""
        rng = np.random.default_rng(seed)
        out = {}
        for b in self.blocks:
            n = counts.get(b.kind, self.default_counts.get(b.kind))
            if n is None or int(n) <= 0:
                raise PinnInputError(f"point count for block {b.name!r} (-pinn_n_{b.kind}) must be > 0, got {n}")
            pts = np.ascontiguousarray(b.sample(int(n), rng, sampling), dtype=np.float64)
            if pts.shape != (int(n), self.dim):
                raise PinnInputError(f"problem {self.name!r}, block {b.name!r}: the sampler returns shape "
                                     f"{pts.shape}; expected ({int(n)}, {self.dim})")
            check_inside(self.domain, pts, f"problem {self.name!r}, block {b.name!r}: sampler")
            out[b.name] = pts
        return out

    def eval_nodes(self) -> int:
        """Nodes per dimension of the evaluation grid (``eval_per_dim``, else picked by dimension)."""
        return self.eval_per_dim or {1: 1001, 2: 101, 3: 31}.get(self.dim, 11)

    def eval_points(self) -> np.ndarray:
        """Fixed evaluation points for the relative L2 error: the reference data's points when
        given, else the domain's grid."""
        data = self.reference_data
        return data[0] if data is not None else self.domain.eval_points(self.eval_nodes())


__all__ = ["SAMPLINGS", "Block", "Box", "Domain", "JetResidual", "PointResidual", "Problem"]
