"""Networks u_θ(x) evaluated as pure functions of a flat parameter vector θ.

A model is an ``nn.Module``; :class:`FlatModel` maps a flat float64 θ to the module's named
parameters and calls it through ``torch.func.functional_call``, so every derivative
(jvp, vjp, vmap, grad) composes. :class:`MLP` also propagates input derivatives forward
through its layers (a forward-Laplacian / Taylor-mode jet), which makes the PDE residual
about as cheap as a plain forward pass; any other module falls back to nested autograd.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, hessian, jacrev, vmap

from .errors import PinnInputError

# activation name -> (σ, σ', σ'') as functions of the pre-activation z
Activation = tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]


def _tanh_jet(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    t = torch.tanh(z)
    d1 = 1.0 - t * t
    return t, d1, -2.0 * t * d1


def _sin_jet(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _sigmoid_jet(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sigmoid(z)
    d1 = s * (1.0 - s)
    return s, d1, d1 * (1.0 - 2.0 * s)


def _softplus_jet(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sigmoid(z)
    return torch.nn.functional.softplus(z), s, s * (1.0 - s)


#: name -> function returning (σ(z), σ'(z), σ''(z)) in one pass
ACTIVATIONS: dict[str, Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]] = {
    "tanh": _tanh_jet,
    "sin": _sin_jet,
    "sigmoid": _sigmoid_jet,
    "softplus": _softplus_jet,
}


class MissingDerivative(LookupError):
    """A residual asked the jet for a derivative it was not computed with (the block's
    ``order`` / ``mixed`` say which entries the jet holds)."""


#: which mixed second derivatives a block asks for: "all" (full Hessian) or pairs (i, j)
MixedSpec = str | Sequence[tuple[int, int]]


def mixed_pairs(spec: MixedSpec, dim: int) -> tuple[tuple[int, int], ...]:
    """The sorted off-diagonal pairs (i < j) of a ``mixed=`` request in R^dim."""
    if isinstance(spec, str):
        if spec != "all":
            raise PinnInputError(f"mixed= must be 'all' or a list of index pairs (i, j), got {spec!r}")
        return tuple((i, j) for i in range(dim) for j in range(i + 1, dim))
    out = set()
    for pair in spec:
        if len(pair) != 2 or not all(isinstance(k, int) and 0 <= k < dim for k in pair) or pair[0] == pair[1]:
            raise PinnInputError(f"mixed=: {tuple(pair)!r} is not a pair (i, j) of distinct input indices "
                                 f"in 0..{dim - 1}")
        out.add((min(pair), max(pair)))
    return tuple(sorted(out))


@dataclass
class Jet:
    """Network output(s) and input derivatives at n points of R^d.

    One field: u (n,) values, du (n, d) first derivatives, d2u (n, d) pure second derivatives
    ∂²u/∂x_i², dmix (n, K) the mixed ∂²u/∂x_i∂x_j for the K pairs in ``mixed`` (i < j).
    m fields: the same with a field axis after the point axis (u (n, m), du (n, m, d), ...);
    :meth:`field` / :meth:`fields` give one scalar jet per field. Entries not computed are None
    (or pairs absent from ``mixed``); asking for one raises :class:`MissingDerivative`.
    """

    u: Tensor
    du: Tensor | None = None
    d2u: Tensor | None = None
    dmix: Tensor | None = None
    mixed: tuple[tuple[int, int], ...] = ()

    def holds(self) -> str:
        """What this jet holds, in words (for error messages)."""
        if self.du is None:
            return "values only (order 0)"
        if self.d2u is None:
            return "values and first derivatives (order 1)"
        return "values, first and pure second derivatives" + (f", mixed {list(self.mixed)}" if self.mixed else "")

    @property
    def n_fields(self) -> int:
        return 1 if self.u.ndim == 1 else self.u.shape[1]

    def field(self, k: int) -> Jet:
        """The scalar jet of output k (a view: no copy)."""
        if self.u.ndim == 1:
            if k != 0:
                raise MissingDerivative(f"field {k} of a one-field jet")
            return self

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[:, k]

        return Jet(self.u[:, k], pick(self.du), pick(self.d2u), pick(self.dmix), self.mixed)

    def fields(self) -> list[Jet]:
        """One scalar jet per output: ``u, v, p = jet.fields()``."""
        return [self.field(k) for k in range(self.n_fields)]

    def _need(self, t: Tensor | None, what: str) -> Tensor:
        if t is None:
            raise MissingDerivative(f"the jet holds {self.holds()}; {what} needs a larger order= on the block")
        return t

    def d(self, i: int) -> Tensor:
        """∂u/∂x_i."""
        return self._need(self.du, f"∂u/∂x{i}")[..., i]

    def dd(self, i: int) -> Tensor:
        """∂²u/∂x_i²."""
        return self._need(self.d2u, f"∂²u/∂x{i}²")[..., i]

    def d2(self, i: int, j: int) -> Tensor:
        """∂²u/∂x_i∂x_j (pure or mixed); a mixed pair must be in ``mixed``."""
        if i == j:
            return self.dd(i)
        key = (min(i, j), max(i, j))
        if key not in self.mixed or self.dmix is None:
            raise MissingDerivative(f"the jet holds {self.holds()}; ∂²u/∂x{key[0]}∂x{key[1]} needs "
                                    f"mixed=[{key}] or mixed='all' on the block")
        return self.dmix[..., self.mixed.index(key)]

    def hessian(self) -> Tensor:
        """The full Hessian, (n, d, d) or (n, m, d, d); needs ``mixed='all'`` in d ≥ 2."""
        d2u = self._need(self.d2u, "the Hessian")
        d = d2u.shape[-1]
        rows = [torch.stack([self.d2(i, j) for j in range(d)], -1) for i in range(d)]
        return torch.stack(rows, -2)

    def laplacian(self, dims: Sequence[int] | None = None) -> Tensor:
        """Σ_i ∂²u/∂x_i² over ``dims`` (all input dimensions by default)."""
        d2u = self._need(self.d2u, "the Laplacian")
        return d2u.sum(-1) if dims is None else d2u[..., list(dims)].sum(-1)


class MLP(nn.Module):
    """Fully connected network R^d → R^m (m = ``out_dim`` fields) with a smooth activation and a
    forward jet. One output returns shape (n,), m outputs (n, m)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str = "tanh", out_dim: int = 1) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise PinnInputError(f"unknown activation {activation!r}; allowed: {', '.join(sorted(ACTIVATIONS))}")
        if not hidden or any(int(w) <= 0 for w in hidden):
            raise PinnInputError(f"hidden layer widths must be positive integers, got {list(hidden)}")
        if int(out_dim) < 1:
            raise PinnInputError(f"out_dim (number of fields) must be >= 1, got {out_dim}")
        self.out_dim = int(out_dim)
        widths = [in_dim, *[int(w) for w in hidden], self.out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.activation = activation
        self._act = ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for layer in self.layers[:-1]:
            h = self._act(layer(h))[0]
        return _squeeze_out(self.layers[-1](h), self.out_dim)

    def jet_from_params(
        self, params: dict[str, Tensor], x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = ()
    ) -> Jet:
        """Push (h, ∂h/∂x_i, ∂²h/∂x_i², ∂²h/∂x_i∂x_j for the pairs in ``mixed``) through every
        layer at once: one matmul per layer and channel stack."""
        n, d = x.shape
        ws = [(params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]) for i in range(len(self.layers))]
        w0, b0 = ws[0]
        z = x @ w0.T + b0
        # derivative channels, shape (n, d, width); first layer: ∂z/∂x_i = W[:, i]
        dz = w0.T.unsqueeze(0).expand(n, d, -1) if order >= 1 else None
        d2z = torch.zeros_like(dz) if order >= 2 else None
        mix = bool(mixed) and order >= 2
        mz = None  # mixed channels (i, j): σ''(z) ∂z/∂x_i ∂z/∂x_j + σ'(z) ∂²z/∂x_i∂x_j; 0 at the input layer
        for w, b in ws[1:]:
            a, a1, a2 = self._act(z)
            h = a
            if order >= 1:
                dh = a1.unsqueeze(1) * dz
                if order >= 2:
                    d2h = a2.unsqueeze(1) * dz * dz + a1.unsqueeze(1) * d2z
                    if mix:
                        mh = a2.unsqueeze(1) * _pair_products(dz, mixed)
                        if mz is not None:
                            mh = mh + a1.unsqueeze(1) * mz
            z = h @ w.T + b
            if order >= 1:
                dz = dh @ w.T
                if order >= 2:
                    d2z = d2h @ w.T
                    if mix:
                        mz = mh @ w.T
        return _output_jet(z, dz, d2z, mz if mix else None, mixed if mix else (), self.out_dim)


def _pair_products(a: Tensor, mixed: tuple[tuple[int, int], ...], b: Tensor | None = None) -> Tensor:
    """(n, K, w) stack of a[:, i] * b[:, j] over the K pairs (slices, not index tensors: cheaper
    under vmap/jacrev, measured)."""
    b = a if b is None else b
    return torch.stack([a[:, i] * b[:, j] for i, j in mixed], dim=1)


def _squeeze_out(z: Tensor, out_dim: int) -> Tensor:
    """(n, 1) → (n,) for one field; (n, m) stays."""
    return z.squeeze(-1) if out_dim == 1 else z


def _output_jet(z: Tensor, dz: Tensor | None, d2z: Tensor | None, mz: Tensor | None,
                mixed: tuple[tuple[int, int], ...], out_dim: int) -> Jet:
    """Channels (n, c, m) of the output layer → Jet fields: (n, c) for one field, (n, m, c) for m."""

    def out(t: Tensor | None) -> Tensor | None:
        if t is None:
            return None
        return t.squeeze(-1) if out_dim == 1 else t.transpose(1, 2)

    return Jet(_squeeze_out(z, out_dim), out(dz), out(d2z), out(mz), mixed)


#: network architectures selected by ``-pinn_arch``
ARCHITECTURES = ("mlp", "modified_mlp")


class ModifiedMLP(MLP):
    """The gradient-pathologies paper's modified MLP, with the same forward jet as :class:`MLP`.

    U = σ(XW_u + b_u), V = σ(XW_v + b_v), H¹ = σ(XW¹ + b¹), Zᵏ = σ(HᵏWᵏ + bᵏ),
    Hᵏ⁺¹ = (1 − Zᵏ) ⊙ U + Zᵏ ⊙ V, u = H^L W + b. The two encoders U, V gate every hidden layer
    (multiplicative interactions, better-conditioned gradients); all hidden widths are equal.
    ``layers`` holds W¹, the gates Wᵏ and the output layer; ``u_in``/``v_in`` the encoders.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str = "tanh", out_dim: int = 1) -> None:
        super().__init__(in_dim, hidden, activation, out_dim)
        widths = {int(w) for w in hidden}
        if len(hidden) < 2 or len(widths) != 1:
            raise PinnInputError(f"modified_mlp needs at least 2 hidden layers of equal width, got {list(hidden)}")
        width = widths.pop()
        self.u_in = nn.Linear(in_dim, width)
        self.v_in = nn.Linear(in_dim, width)

    def forward(self, x: Tensor) -> Tensor:
        u = self._act(self.u_in(x))[0]
        v = self._act(self.v_in(x))[0]
        h = self._act(self.layers[0](x))[0]
        for layer in self.layers[1:-1]:
            z = self._act(layer(h))[0]
            h = u + z * (v - u)  # (1 − Z) ⊙ U + Z ⊙ V
        return _squeeze_out(self.layers[-1](h), self.out_dim)

    def jet_from_params(
        self, params: dict[str, Tensor], x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = ()
    ) -> Jet:
        """(h, ∂h/∂x_i, ∂²h/∂x_i², mixed ∂²h/∂x_i∂x_j) through encoders, gates and products
        (Leibniz rule), batched."""
        n, d = x.shape
        mix = bool(mixed) and order >= 2

        def act(name: str, h: tuple | None) -> tuple:
            w, b = params[f"{name}.weight"], params[f"{name}.bias"]
            if h is None:  # an input layer: ∂z/∂x_i = W[:, i], second derivatives 0
                z = x @ w.T + b
                dz = w.T.unsqueeze(0).expand(n, d, -1) if order >= 1 else None
                d2z = mz = None
            else:
                z = h[0] @ w.T + b
                dz = h[1] @ w.T if order >= 1 else None
                d2z = h[2] @ w.T if order >= 2 else None
                mz = h[3] @ w.T if mix else None
            a, a1, a2 = self._act(z)
            da = a1.unsqueeze(1) * dz if order >= 1 else None
            d2a = ma = None
            if order >= 2:
                d2a = a2.unsqueeze(1) * dz * dz
                if d2z is not None:
                    d2a = d2a + a1.unsqueeze(1) * d2z
            if mix:
                ma = a2.unsqueeze(1) * _pair_products(dz, mixed)
                if mz is not None:
                    ma = ma + a1.unsqueeze(1) * mz
            return a, da, d2a, ma

        U, V = act("u_in", None), act("v_in", None)
        D0 = V[0] - U[0]
        D1 = V[1] - U[1] if order >= 1 else None
        D2 = V[2] - U[2] if order >= 2 else None
        DM = V[3] - U[3] if mix else None
        H = act("layers.0", None)
        for k in range(1, len(self.layers) - 1):
            Z = act(f"layers.{k}", H)
            h = U[0] + Z[0] * D0
            dh = U[1] + Z[1] * D0.unsqueeze(1) + Z[0].unsqueeze(1) * D1 if order >= 1 else None
            d2h = mh = None
            if order >= 2:
                d2h = U[2] + Z[2] * D0.unsqueeze(1) + 2.0 * Z[1] * D1 + Z[0].unsqueeze(1) * D2
            if mix:  # ∂_ij(Z D) = Z_ij D + Z_i D_j + Z_j D_i + Z D_ij
                mh = (U[3] + Z[3] * D0.unsqueeze(1) + _pair_products(Z[1], mixed, D1)
                      + _pair_products(D1, mixed, Z[1]) + Z[0].unsqueeze(1) * DM)
            H = (h, dh, d2h, mh)
        last = len(self.layers) - 1
        w, b = params[f"layers.{last}.weight"], params[f"layers.{last}.bias"]
        return _output_jet(H[0] @ w.T + b, H[1] @ w.T if order >= 1 else None, H[2] @ w.T if order >= 2 else None,
                           H[3] @ w.T if mix else None, mixed if mix else (), self.out_dim)


def autograd_jet(f: Callable[[Tensor], Tensor], x: Tensor, order: int,
                 mixed: tuple[tuple[int, int], ...] = ()) -> Jet:
    """Jet of a point function f: R^d → R (scalar output) or R^m (shape (m,)) by nested
    autograd (slow, fully general)."""
    u = vmap(f)(x)
    du = vmap(jacrev(f))(x) if order >= 1 else None
    d2u = dmix = None
    if order >= 2 and not mixed:
        d2u = vmap(lambda p: torch.diagonal(hessian(f)(p), dim1=-2, dim2=-1))(x)
    elif order >= 2:
        H = vmap(hessian(f))(x)
        d2u = torch.diagonal(H, dim1=-2, dim2=-1)
        ii, jj = (list(k) for k in zip(*mixed, strict=True))
        dmix = H[..., ii, jj]
    return Jet(u, du, d2u, dmix, mixed if order >= 2 else ())


class FlatModel:
    """Bind an ``nn.Module`` to a flat parameter vector θ (float64 by default).

    ``u(θ, x)`` evaluates the network; ``jet(θ, x, order)`` gives its input derivatives.
    Both are pure functions of θ, safe under torch.func transforms.
    """

    def __init__(
        self, module: nn.Module, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> None:
        self.module = module.to(dtype=dtype, device=device)
        self.dtype, self.device = dtype, torch.device(device)
        # θ holds the trainable parameters only; frozen ones (requires_grad=False) keep their values
        trainable = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        self.frozen = {n: p.detach() for n, p in self.module.named_parameters() if not p.requires_grad}
        self.names = [n for n, _ in trainable]
        self.shapes = [p.shape for _, p in trainable]
        self.sizes = [p.numel() for _, p in trainable]
        self.n_params = int(sum(self.sizes))
        if self.n_params == 0:
            raise PinnInputError(f"the network {type(module).__name__} has no trainable parameters")
        #: number of outputs (fields) when the module declares ``out_dim``; else read from its output
        self.n_out: int | None = getattr(module, "out_dim", None)

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Views of θ shaped as the module's trainable parameters, plus the frozen ones."""
        views = zip(self.names, torch.split(theta, self.sizes), self.shapes, strict=True)
        return {**self.frozen, **{n: t.view(s) for n, t, s in views}}

    def module_theta(self) -> Tensor:
        """θ from the module's own current parameters (its own initialisation, or trained values)."""
        params = dict(self.module.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names]).to(self.dtype)

    def load_into_module(self, theta: Tensor) -> None:
        """Copy θ into the module's parameters in place (then ``module.state_dict()`` holds it)."""
        with torch.no_grad():
            for name, value in self.unflatten(theta.to(self.device, self.dtype)).items():
                if name not in self.frozen:
                    self.module.get_parameter(name).copy_(value)

    def initial_theta(self, seed: int) -> Tensor:
        """Glorot-normal weights, zero biases, drawn from ``seed`` (same θ on every rank)."""
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=False):
            if name.endswith("weight") and len(shape) == 2:
                std = math.sqrt(2.0 / (shape[0] + shape[1]))
                parts.append(torch.randn(shape, generator=gen, dtype=torch.float64).flatten() * std)
            else:
                parts.append(torch.zeros(math.prod(shape), dtype=torch.float64))
        return torch.cat(parts).to(dtype=self.dtype, device=self.device)

    def _shape(self, out: Tensor, n: int) -> Tensor:
        m = self.n_out if self.n_out is not None else (out.numel() // n if n else 1)
        return out.reshape(n) if m == 1 else out.reshape(n, m)

    def u(self, theta: Tensor, x: Tensor) -> Tensor:
        """u_θ(x): shape (n,) for one field, (n, m) for m fields."""
        return self._shape(functional_call(self.module, self.unflatten(theta), (x,)), x.shape[0])

    def point_function(self, params: dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
        """p ↦ u(p) for one point p (d,): a scalar for one field, shape (m,) for m (vmap-safe)."""

        def u(p: Tensor) -> Tensor:
            out = functional_call(self.module, params, (p[None],))
            return out.reshape(()) if out.numel() == 1 else out.reshape(-1)

        return u

    def jet(self, theta: Tensor, x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = ()) -> Jet:
        """Values and input derivatives up to ``order`` (plus the ``mixed`` pairs at order 2):
        the forward jet for :class:`MLP` networks, nested autograd for any other module."""
        params = self.unflatten(theta)
        if order == 0:
            return Jet(self.u(theta, x))
        if isinstance(self.module, MLP):
            return self.module.jet_from_params(params, x, order, mixed)
        return autograd_jet(self.point_function(params), x, order, mixed)


def build_mlp(
    in_dim: int, hidden: Sequence[int], activation: str, dtype: torch.dtype, device: str | torch.device,
    out_dim: int = 1,
) -> FlatModel:
    """An :class:`MLP` R^in_dim → R^out_dim bound to a flat θ."""
    return FlatModel(MLP(in_dim, hidden, activation, out_dim), dtype=dtype, device=device)


def build_model(
    arch: str, in_dim: int, hidden: Sequence[int], activation: str, dtype: torch.dtype, device: str | torch.device,
    out_dim: int = 1,
) -> FlatModel:
    """A plain MLP or the modified MLP (``-pinn_arch``) with ``out_dim`` fields, bound to a flat θ."""
    if arch not in ARCHITECTURES:
        raise PinnInputError(f"-pinn_arch: unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    cls = ModifiedMLP if arch == "modified_mlp" else MLP
    return FlatModel(cls(in_dim, hidden, activation, out_dim), dtype=dtype, device=device)
