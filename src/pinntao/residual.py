"""The stacked weighted residual r(θ) on one rank's points, and all its derivatives.

r stacks the blocks' residuals scaled by √(w_b / N_b) (N_b the *global* count of block b),
so the global loss is L = ½‖r‖² = ½ Σ_b (w_b/N_b) ‖r_b‖² and each rank holds a slice of r.
A block with c components contributes c rows per point (point-major: the c rows of a point are
adjacent), component k scaled by √(w_b w_bk / N_b), so a rank's rows belong to its points.
With J = ∂r/∂θ: gradient g = Jᵀr, Gram / Gauss-Newton product G v = Jᵀ(J v), exact
Hessian-vector products by forward-over-reverse. Everything here is torch only and returns
*local* contributions; summing over ranks is the caller's job (see objective.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, jacrev, jvp, vjp, vmap

from .models import FlatModel, TapeRecord
from .problems.base import Block, Problem


@dataclass
class _LocalBlock:
    block: Block
    x: Tensor  # this rank's points (n_loc, d)
    scale: float  # √(w_b / N_b)
    cscale: Tensor | None = None  # √(component weights), (c,); None: c = 1 or unit weights
    pairs: tuple[tuple[int, int], ...] = ()  # mixed second derivatives the block's jet holds
    pure: tuple[int, ...] | None = None  # the inputs of the pure second derivatives it holds (None: all)


class Residual:
    """r(θ) on this rank's slice of every block, with batched derivative products."""

    def __init__(
        self, problem: Problem, model: FlatModel, local_points: dict[str, np.ndarray], global_counts: dict[str, int]
    ) -> None:
        self.problem, self.model = problem, model
        dev, dt = model.device, model.dtype
        self.blocks = [
            _LocalBlock(
                b,
                torch.as_tensor(local_points[b.name], dtype=dt, device=dev),
                math.sqrt(b.weight / global_counts[b.name]),
                None if b.component_weights is None
                else torch.tensor([math.sqrt(w) for w in b.component_weights], dtype=dt, device=dev),
                b.pairs(problem.dim),
                b.pure_dims(problem.dim),
            )
            for b in problem.blocks
        ]
        #: local residual rows (points × components)
        self.n_local = sum(lb.x.shape[0] * lb.block.components for lb in self.blocks)
        self.n_params = model.n_params

    # -- values ---------------------------------------------------------------------------
    def _block_residual(
        self, theta: Tensor, lb: _LocalBlock, x: Tensor, tape: list[TapeRecord] | None = None
    ) -> Tensor:
        b = lb.block
        if b.residual is not None:
            r = b.residual(self.model.jet(theta, x, b.order, lb.pairs, tape, lb.pure), x)
        else:
            u = self.model.point_function(self.model.unflatten(theta))
            r = vmap(lambda p: b.point_residual(u, p))(x)  # type: ignore[misc]
        if b.components == 1:
            return lb.scale * r.reshape(x.shape[0])
        if lb.cscale is not None:
            r = r * lb.cscale
        return lb.scale * r.reshape(x.shape[0] * b.components)  # point-major rows

    def __call__(self, theta: Tensor) -> Tensor:
        """The local slice of r(θ), blocks in problem order."""
        parts = [self._block_residual(theta, lb, lb.x) for lb in self.blocks if lb.x.shape[0]]
        return torch.cat(parts) if parts else theta.new_zeros(0)

    def residual_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """(r_loc, J_locᵀ r_loc) in one forward and one backward pass."""
        r, pullback = vjp(self, theta)
        return r, pullback(r)[0]

    def loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """(½‖r_loc‖², J_locᵀ r_loc) in one forward and one backward pass."""
        r, g = self.residual_grad(theta)
        return 0.5 * torch.dot(r, r), g

    def loss(self, theta: Tensor) -> Tensor:
        r = self(theta)
        return 0.5 * torch.dot(r, r)

    # -- first-order products ---------------------------------------------------------------
    def jvp(self, theta: Tensor, v: Tensor) -> Tensor:
        """J v for v of shape (P,) → (n_loc,), or (P, k) → (n_loc, k) batched by vmap."""
        if v.ndim == 1:
            return jvp(self, (theta,), (v,))[1]
        return vmap(lambda c: jvp(self, (theta,), (c,))[1], in_dims=1, out_dims=1)(v)

    def vjp(self, theta: Tensor, u: Tensor) -> Tensor:
        """Jᵀ u for u of shape (n_loc,) → (P,), or (n_loc, k) → (P, k)."""
        _, pullback = vjp(self, theta)
        if u.ndim == 1:
            return pullback(u)[0]
        return vmap(lambda c: pullback(c)[0], in_dims=1, out_dims=1)(u)

    def jacobian(self, theta: Tensor, out: Tensor | None = None) -> Tensor:
        """Explicit local J (n_loc, P): taped (one forward jet and one backward pass per block
        and component, rows as outer products) where the network allows, else per-point reverse
        mode (vmap over points). ``out``, a J this object made before, is overwritten instead of
        allocating N·P fresh numbers (their first touch costs as much as the products here)."""
        shape = (self.n_local, self.n_params)
        J = out if out is not None and out.shape == shape and out.dtype == theta.dtype else theta.new_empty(shape)
        row = 0
        for lb in self.blocks:
            rows = lb.x.shape[0] * lb.block.components
            if rows:
                if self.model.tapeable and lb.block.residual is not None:
                    self._taped_rows(theta, lb, J[row:row + rows])
                else:
                    J[row:row + rows] = self._vmap_rows(theta, lb)
            row += rows
        return J

    def _vmap_rows(self, theta: Tensor, lb: _LocalBlock) -> Tensor:
        """One block's rows of J by vmap over points of the per-point jacrev (any residual)."""

        def r_point(th: Tensor, p: Tensor) -> Tensor:
            r = self._block_residual(th, lb, p[None])
            return r[0] if lb.block.components == 1 else r

        return vmap(jacrev(r_point), in_dims=(None, 0))(theta, lb.x).reshape(-1, self.n_params)

    def _taped_rows(self, theta: Tensor, lb: _LocalBlock, J: Tensor) -> None:
        """One block's rows of J from its taped jet. Point n's residual depends on θ only through
        its own z = a Wᵀ + b, so the gradient of Σ_n r_n with respect to each recorded z holds
        every point's adjoint δ_n, and ∂r_n/∂W = Σ_channels δ_nᵀ a_n, ∂r_n/∂b = Σ δ_n of the
        value channel: batched outer products, no per-point passes. Written into ``J``."""
        n, c = lb.x.shape[0], lb.block.components
        tape: list[TapeRecord] = []
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            r = self._block_residual(th, lb, lb.x, tape).reshape(n, c)
            by_name: dict[str, list[int]] = {}
            for i, rec in enumerate(tape):
                by_name.setdefault(rec[0], []).append(i)
            if set(by_name) != {nm.replace(".bias", ".weight") for nm in self.model.names}:
                J[:] = self._vmap_rows(theta, lb)  # a parameter the tape did not see: the general path
                return
            zs = [rec[2] for rec in tape]
            adjoints = [torch.autograd.grad(r[:, k].sum(), zs, retain_graph=k < c - 1, allow_unused=True)
                        for k in range(c)]
        with torch.no_grad():
            self._assemble(J.view(n, c, self.n_params), tape, adjoints, by_name)

    def _assemble(self, out: Tensor, tape: list[TapeRecord], adjoints: list[tuple[Tensor | None, ...]],
                  by_name: dict[str, list[int]]) -> None:
        """out[n, k, θ-slice of W] = Σ_records δ_kᵀ a (bmm), out[n, k, slice of b] = Σ δ_k."""
        n = out.shape[0]
        # the inputs a of each weight's products (one (n, channels, in) stack per record), the same
        # for every residual component k
        inputs = {nm: [_channels(tape[i][1], n) for i in recs] for nm, recs in by_name.items()}
        for k, deltas in enumerate(adjoints):
            cols, start = out[:, k], 0
            for nm, size in zip(self.model.names, self.model.sizes, strict=True):
                recs = by_name[nm.replace(".bias", ".weight")]
                if nm.endswith(".bias"):
                    parts = [_channels(deltas[i], n, z=tape[i][2]).sum(1) for i in recs if tape[i][3]]
                    cols[:, start:start + size] = torch.stack(parts).sum(0) if parts else 0.0
                else:
                    dz = [_channels(deltas[i], n, z=tape[i][2]) for i in recs]
                    _outer_sum(dz, inputs[nm], cols[:, start:start + size])
                start += size

    def gram(self, theta: Tensor, m: Tensor) -> Tensor:
        """Local G M = Jᵀ(J M), matrix-free, for M of shape (P,) or (P, k)."""
        return self.vjp(theta, self.jvp(theta, m))

    # -- second order ----------------------------------------------------------------------
    def hvp(self, theta: Tensor, v: Tensor) -> Tensor:
        """Exact ∇²L_loc v (forward-over-reverse); v of shape (P,) or (P, k)."""
        g = grad(self.loss)
        if v.ndim == 1:
            return jvp(g, (theta,), (v,))[1]
        return vmap(lambda c: jvp(g, (theta,), (c,))[1], in_dims=1, out_dims=1)(v)


#: column blocks of J on the CPU with at least this many entries (and inputs ≥ 16 wide, ≤ 6
#: channels) are assembled in row chunks by broadcast multiply-adds instead of bmm (:func:`_outer_sum`)
CHUNKED_MIN_ENTRIES = 1 << 20


def _outer_sum(dz: list[Tensor], a: list[Tensor], out: Tensor) -> None:
    """out[n] = Σ_records Σ_c dz[n, c]ᵀ a[n, c] flattened, written into the (n, o·i) column block
    ``out`` of J; ``dz`` and ``a`` hold one (n, channels, o) and (n, channels, i) stack per record.

    A large block goes in row chunks of about 2 MiB, one broadcast multiply-add per channel
    straight into J from the records as they are: the n small products of ``bmm`` and the copy of
    its result cost 3× as much at 12,288 rows and a 32 × 32 layer, and joining the records' channel
    stacks first (``torch.cat``) a third as much again. Small blocks, narrow inputs or many channels
    keep ``bmm``, faster there (1,020 rows and a 20 × 20 layer), and so does a GPU (the chunks are
    sized for a CPU cache; there they would be many small kernel launches).
    """
    n, o, i = out.shape[0], dz[0].shape[-1], a[0].shape[-1]
    c = sum(t.shape[1] for t in dz)
    if i < 16 or c > 6 or n * o * i < CHUNKED_MIN_ENTRIES or out.device.type != "cpu":
        out.copy_(torch.bmm(_cat1(dz).transpose(1, 2), _cat1(a)).reshape(n, o * i))
        return
    blocks = out.view(n, o, i)
    step = max(1, (1 << 21) // (o * i * out.element_size()))
    for s in range(0, n, step):
        block, first = blocks[s:s + step], True
        for d, x in zip(dz, a, strict=True):
            d, x = d[s:s + step], x[s:s + step]
            for k in range(d.shape[1]):
                if first:
                    torch.mul(d[:, k, :, None], x[:, k, None, :], out=block)
                    first = False
                else:
                    block.addcmul_(d[:, k, :, None], x[:, k, None, :])


def _cat1(parts: list[Tensor]) -> Tensor:
    """The channel blocks of one weight side by side; a single block as it is (no copy)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def _channels(t: Tensor | None, n: int, z: Tensor | None = None) -> Tensor:
    """A recorded (n, ..., width) tensor as (n, channels, width); a missing adjoint (the output
    did not reach r) as zeros shaped like ``z``."""
    if t is None:
        assert z is not None
        t = torch.zeros_like(z)
    return t.reshape(n, -1, t.shape[-1])
