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
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, hessian, jacrev, vmap

from .errors import PinnInputError
from .options import Option, positive

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
    ∂²u/∂x_i² (or (n, len(pure)): only the inputs listed in ``pure``), dmix (n, K) the mixed
    ∂²u/∂x_i∂x_j for the K pairs in ``mixed`` (i < j).
    m fields: the same with a field axis after the point axis (u (n, m), du (n, m, d), ...);
    :meth:`field` / :meth:`fields` give one scalar jet per field. Entries not computed are None
    (or pairs absent from ``mixed``); asking for one raises :class:`MissingDerivative`.
    """

    u: Tensor
    du: Tensor | None = None
    d2u: Tensor | None = None
    dmix: Tensor | None = None
    mixed: tuple[tuple[int, int], ...] = ()
    pure: tuple[int, ...] | None = None  # the inputs of d2u's columns (None: every input, in order)

    def holds(self) -> str:
        """What this jet holds, in words (for error messages)."""
        if self.du is None:
            return "values only (order 0)"
        if self.d2u is None:
            return "values and first derivatives (order 1)"
        which = "" if self.pure is None else f" (∂²u/∂x_i² for i in {list(self.pure)} only)"
        mixed = f", mixed {list(self.mixed)}" if self.mixed else ""
        return "values, first and pure second derivatives" + which + mixed

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

        return Jet(self.u[:, k], pick(self.du), pick(self.d2u), pick(self.dmix), self.mixed, self.pure)

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
        d2u = self._need(self.d2u, f"∂²u/∂x{i}²")
        if self.pure is None:
            return d2u[..., i]
        if i not in self.pure:
            raise MissingDerivative(f"the jet holds {self.holds()}; ∂²u/∂x{i}² needs {i} in pure= on the block "
                                    f"(or no pure=: all of them)")
        return d2u[..., self.pure.index(i)]

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
        self._need(self.d2u, "the Hessian")
        d = self._need(self.du, "the Hessian").shape[-1]
        rows = [torch.stack([self.d2(i, j) for j in range(d)], -1) for i in range(d)]
        return torch.stack(rows, -2)

    def laplacian(self, dims: Sequence[int] | None = None) -> Tensor:
        """Σ_i ∂²u/∂x_i² over ``dims`` (all input dimensions by default)."""
        d2u = self._need(self.d2u, "the Laplacian")
        if self.pure is not None:
            every = range(self._need(self.du, "the Laplacian").shape[-1])
            return torch.stack([self.dd(i) for i in (every if dims is None else dims)], -1).sum(-1)
        return d2u.sum(-1) if dims is None else d2u[..., list(dims)].sum(-1)

    def only(self, pure: tuple[int, ...] | None) -> Jet:
        """This jet with d2u cut to the inputs in ``pure`` (None, or a jet cut already: as it is)."""
        if pure is None or self.d2u is None or self.pure is not None:
            return self
        return replace(self, d2u=self.d2u[..., list(pure)], pure=tuple(pure))


#: what a taped jet records: (parameter name, input channels a, output z = a Wᵀ (+ b), has bias)
TapeRecord = tuple[str, Tensor, Tensor, bool]


def _affine(tape: list[TapeRecord] | None, name: str, a: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """z = a Wᵀ (+ b) for a stack of channels a (n, ..., in), recorded on ``tape`` when one is given:
    per point, ∂r/∂W = Σ_channels (∂r/∂z) ⊗ a, so one backward pass to the z's gives every row of J."""
    z = a @ w.T if b is None else a @ w.T + b
    if tape is not None:
        tape.append((name, a, z, b is not None))
    return z


def _input_channels(tape: list[TapeRecord] | None, name: str, w: Tensor, n: int, d: int) -> Tensor:
    """∂z/∂x_i = W[:, i] of an input layer as channels (n, d, width): the product of Wᵀ with the
    identity, recorded as such on the tape."""
    # Wᵀ made contiguous: a transposed view would give every later channel stack a (n, width, d)
    # memory layout, whose products with the weights torch then runs as per-point bmm (1.4× slower loss)
    dz = w.T.contiguous().unsqueeze(0).expand(n, d, -1)
    if tape is not None:
        eye = torch.eye(d, dtype=w.dtype, device=w.device).unsqueeze(0).expand(n, d, d)
        tape.append((name, eye, dz, False))
    return dz


class FourierEmbedding(nn.Module):
    """Fixed input features γ(x) = [x_keep, cos(2πBx), sin(2πBx)] with a forward jet.

    Rows b_f of B (F, d) are frequencies: random Gaussian b_f ~ N(0, σ²) (Tancik et al. 2020;
    Wang, Wang & Perdikaris 2021) or axis-aligned multi-scale b = s e_i (:func:`fourier_embedding`).
    ``keep`` lists input axes passed through unchanged (e.g. the time of an evolution problem).
    B is a parameter with ``requires_grad=False`` unless ``trainable``: FlatModel keeps it out of θ,
    so it belongs to the model definition, the same on every rank and after a restart.
    """

    def __init__(self, B: Tensor, keep: Sequence[int] = (), trainable: bool = False) -> None:
        super().__init__()
        if B.ndim != 2 or B.shape[0] < 1:
            raise PinnInputError(f"Fourier features: B must be a (features, dim) matrix, got shape {tuple(B.shape)}")
        self.in_dim = int(B.shape[1])
        if any(not 0 <= k < self.in_dim for k in keep):
            raise PinnInputError(f"Fourier features: pass-through axes {list(keep)} outside 0..{self.in_dim - 1}")
        self.keep = tuple(int(k) for k in keep)
        self.B = nn.Parameter(B.detach().to(torch.float64).clone(), requires_grad=bool(trainable))
        self.out_dim = len(self.keep) + 2 * int(B.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        z = 2.0 * math.pi * (x @ self.B.T)
        return torch.cat([x[:, list(self.keep)], torch.cos(z), torch.sin(z)], dim=-1)

    def jet(
        self, B: Tensor, x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = ()
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """(γ, ∂γ/∂x_i, ∂²γ/∂x_i², ∂²γ/∂x_i∂x_j for the pairs in ``mixed``): channels (n, ·, E).
        With ω = 2πB: ∂cos(ωx)/∂x_i = −ω_i sin, ∂sin/∂x_i = ω_i cos, ∂²/∂x_i∂x_j = −ω_iω_j (cos, sin)."""
        n, d = x.shape
        w = 2.0 * math.pi * B  # ω (F, d)
        z = x @ w.T
        c, s = torch.cos(z), torch.sin(z)
        e = torch.cat([x[:, list(self.keep)], c, s], dim=-1)
        de = d2e = me = None
        if order >= 1:
            eye = torch.eye(d, dtype=x.dtype, device=x.device)[:, list(self.keep)]  # ∂x_k/∂x_i = δ_ik
            wt = w.T.unsqueeze(0)  # (1, d, F): ω_fi
            de = torch.cat([eye.unsqueeze(0).expand(n, d, -1), -s.unsqueeze(1) * wt, c.unsqueeze(1) * wt], dim=-1)
            if order >= 2:
                zero = x.new_zeros(n, d, len(self.keep))
                w2 = wt * wt
                d2e = torch.cat([zero, -c.unsqueeze(1) * w2, -s.unsqueeze(1) * w2], dim=-1)
                if mixed:
                    wij = torch.stack([w[:, i] * w[:, j] for i, j in mixed], dim=0).unsqueeze(0)  # (1, K, F)
                    me = torch.cat([x.new_zeros(n, len(mixed), len(self.keep)), -c.unsqueeze(1) * wij,
                                    -s.unsqueeze(1) * wij], dim=-1)
        return e, de, d2e, me


class InputMap(nn.Module):
    """x̃ = s ⊙ (x − c), s = 2/(hi − lo), c = (lo + hi)/2: the domain's bounding box onto [−1, 1]^d
    before the network (the input normalisation of Raissi et al.'s and the gradient-pathologies
    paper's codes). Fixed (``requires_grad=False``, not in θ); jets take the chain rule
    ∂/∂x_i = s_i ∂/∂x̃_i (:meth:`chain`)."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float]) -> None:
        super().__init__()
        lo_t, hi_t = (torch.as_tensor([float(v) for v in b], dtype=torch.float64) for b in (lo, hi))
        if lo_t.shape != hi_t.shape or not bool((hi_t > lo_t).all()):
            raise PinnInputError(f"-pinn_input_scale box: the bounding box {list(lo)}..{list(hi)} must have "
                                 f"hi > lo on every axis")
        self.shift = nn.Parameter(0.5 * (lo_t + hi_t), requires_grad=False)
        self.scale = nn.Parameter(2.0 / (hi_t - lo_t), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift) * self.scale

    @staticmethod
    def chain(jet: Jet, s: Tensor) -> Jet:
        """The jet in x from the jet in x̃ = s ⊙ (x − c): first derivatives × s_i, second × s_i s_j."""
        du = None if jet.du is None else jet.du * s
        ss = s * s if jet.pure is None else (s * s)[list(jet.pure)]
        d2u = None if jet.d2u is None else jet.d2u * ss
        dmix = None
        if jet.dmix is not None:
            dmix = jet.dmix * torch.stack([s[i] * s[j] for i, j in jet.mixed])
        return Jet(jet.u, du, d2u, dmix, jet.mixed, jet.pure)


class MLP(nn.Module):
    """Fully connected network R^d → R^m (m = ``out_dim`` fields) with a smooth activation and a
    forward jet. One output returns shape (n,), m outputs (n, m)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str = "tanh", out_dim: int = 1,
                 embedding: FourierEmbedding | None = None, input_map: InputMap | None = None) -> None:
        super().__init__()
        #: fixed map of the inputs onto [−1, 1]^d before everything else (None: the raw x)
        self.input_map = input_map
        if embedding is not None and embedding.in_dim != in_dim:
            raise PinnInputError(f"the embedding is for inputs in R^{embedding.in_dim}, "
                                 f"the network's are in R^{in_dim}")
        #: fixed input features γ(x) the layers see instead of x (None: x itself)
        self.embedding = embedding
        in_dim = in_dim if embedding is None else embedding.out_dim
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
        x = x if self.input_map is None else self.input_map(x)
        h = x if self.embedding is None else self.embedding(x)
        for layer in self.layers[:-1]:
            h = self._act(layer(h))[0]
        return _squeeze_out(self.layers[-1](h), self.out_dim)

    #: every trainable parameter enters the jet only through the products recorded on a tape
    #: (false once the Fourier frequencies are trained: they enter through sin/cos)
    @property
    def tape_complete(self) -> bool:
        return self.embedding is None or not self.embedding.B.requires_grad

    def jet_from_params(
        self, params: dict[str, Tensor], x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = (),
        tape: list[TapeRecord] | None = None, pure: tuple[int, ...] | None = None,
    ) -> Jet:
        """Values and input derivatives (pure up to ``order``, only the inputs in ``pure`` at order
        2 if given, the ``mixed`` pairs) by the forward jet of :meth:`_body_jet`, after the input
        map if there is one (its products with the weights recorded on ``tape`` if given)."""
        if self.input_map is None:
            return self._body_jet(params, x, order, mixed, tape, pure)
        s = params["input_map.scale"]
        return InputMap.chain(self._body_jet(params, (x - params["input_map.shift"]) * s, order, mixed, tape, pure),
                              s)

    def _body_jet(
        self, params: dict[str, Tensor], x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = (),
        tape: list[TapeRecord] | None = None, pure: tuple[int, ...] | None = None,
    ) -> Jet:
        """Push (h, ∂h/∂x_i, ∂²h/∂x_i² for i in ``pure`` (all by default), ∂²h/∂x_i∂x_j for the
        pairs in ``mixed``) through every layer at once: one matmul per layer and channel stack
        (recorded on ``tape`` if given). A second-derivative channel left out costs nothing."""
        n, d = x.shape
        sel = _pure_index(pure)
        names = [f"layers.{i}" for i in range(len(self.layers))]
        ws = [(params[f"{k}.weight"], params[f"{k}.bias"]) for k in names]
        w0, b0 = ws[0]
        mix = bool(mixed) and order >= 2
        lin0 = f"{names[0]}.weight"
        if self.embedding is None:
            z = _affine(tape, lin0, x, w0, b0)
            # derivative channels, shape (n, d, width); first layer: ∂z/∂x_i = W[:, i]
            dz = _input_channels(tape, lin0, w0, n, d) if order >= 1 else None
            d2z = torch.zeros_like(dz[:, sel]) if order >= 2 else None
            mz = None  # mixed channels (i, j): σ''(z) ∂z/∂x_i ∂z/∂x_j + σ'(z) ∂²z/∂x_i∂x_j; 0 at the input layer
        else:  # the first layer is linear in γ(x): its channels are γ's channels times W
            e, de, d2e, me = self.embedding.jet(params["embedding.B"], x, order, mixed)
            z = _affine(tape, lin0, e, w0, b0)
            dz = _affine(tape, lin0, de, w0) if order >= 1 else None
            d2z = _affine(tape, lin0, d2e[:, sel], w0) if order >= 2 else None
            mz = _affine(tape, lin0, me, w0) if mix else None
        for name, (w, b) in zip(names[1:], ws[1:], strict=True):
            lin = f"{name}.weight"
            a, a1, a2 = self._act(z)
            h = a
            if order >= 1:
                dh = a1.unsqueeze(1) * dz
                if order >= 2:
                    dzp = dz[:, sel]
                    d2h = a2.unsqueeze(1) * dzp * dzp + a1.unsqueeze(1) * d2z
                    if mix:
                        mh = a2.unsqueeze(1) * _pair_products(dz, mixed)
                        if mz is not None:
                            mh = mh + a1.unsqueeze(1) * mz
            z = _affine(tape, lin, h, w, b)
            if order >= 1:
                dz = _affine(tape, lin, dh, w)
                if order >= 2:
                    d2z = _affine(tape, lin, d2h, w)
                    if mix:
                        mz = _affine(tape, lin, mh, w)
        return _output_jet(z, dz, d2z, mz if mix else None, mixed if mix else (), self.out_dim,
                           pure if order >= 2 else None)


def _pair_products(a: Tensor, mixed: tuple[tuple[int, int], ...], b: Tensor | None = None) -> Tensor:
    """(n, K, w) stack of a[:, i] * b[:, j] over the K pairs (slices, not index tensors: cheaper
    under vmap/jacrev, measured)."""
    b = a if b is None else b
    return torch.stack([a[:, i] * b[:, j] for i, j in mixed], dim=1)


def _squeeze_out(z: Tensor, out_dim: int) -> Tensor:
    """(n, 1) → (n,) for one field; (n, m) stays."""
    return z.squeeze(-1) if out_dim == 1 else z


def _pure_index(pure: tuple[int, ...] | None) -> slice | list[int]:
    """The channels of ``pure`` (sorted inputs) in a (n, d, width) stack: a slice (a view) when
    they are consecutive, else a list."""
    if pure is None:
        return slice(None)
    if list(pure) == list(range(pure[0], pure[-1] + 1)):
        return slice(pure[0], pure[-1] + 1)
    return list(pure)


def _output_jet(z: Tensor, dz: Tensor | None, d2z: Tensor | None, mz: Tensor | None,
                mixed: tuple[tuple[int, int], ...], out_dim: int, pure: tuple[int, ...] | None = None) -> Jet:
    """Channels (n, c, m) of the output layer → Jet fields: (n, c) for one field, (n, m, c) for m."""

    def out(t: Tensor | None) -> Tensor | None:
        if t is None:
            return None
        return t.squeeze(-1) if out_dim == 1 else t.transpose(1, 2)

    return Jet(_squeeze_out(z, out_dim), out(dz), out(d2z), out(mz), mixed, pure)


#: network architectures selected by ``-pinn_arch``: a body (MLP or modified MLP), optionally after
#: fixed Fourier features (random Gaussian ``fourier_*`` or axis-aligned multi-scale ``multiscale_*``)
ARCHITECTURES = ("mlp", "modified_mlp", "fourier_mlp", "fourier_modified_mlp", "multiscale_mlp",
                 "multiscale_modified_mlp")

#: -pinn_ options of the Fourier-feature embeddings (read by :func:`build_model`)
EMBEDDING_OPTIONS = [
    Option("ff_features", "int", 64, "fourier_*: number F of random frequencies b ~ N(0, σ²) (2F features)",
           check=positive, check_text="> 0"),
    Option("ff_sigma", "float", 1.0, "fourier_*: standard deviation σ of the random frequencies",
           check=positive, check_text="> 0"),
    Option("ff_scales", "floats", (1, 2, 4, 8), "multiscale_*: wave numbers s of the features cos(πs x_i), "
           "sin(πs x_i) on every embedded axis i", check=lambda v: len(v) > 0 and all(k != 0 for k in v),
           check_text="a list of nonzero numbers"),
    Option("ff_keep", "ints", None, "fourier_*/multiscale_*: input axes passed through unchanged and not "
           "embedded, e.g. 0 for the time of an evolution problem (default: none)"),
    Option("ff_train", "bool", False, "fourier_*/multiscale_*: train the frequencies B (part of θ) instead of "
           "keeping them fixed"),
    Option("input_scale", "str", "none", "network input: none (x itself) or box (x ↦ 2(x − lo)/(hi − lo) − 1: the "
           "domain's bounding box onto [−1, 1]^d, fixed; mlp and modified_mlp)", choices=["none", "box"]),
]


def fourier_embedding(kind: str, dim: int, opts: dict[str, Any], seed: int) -> FourierEmbedding:
    """The embedding of a ``fourier_*`` / ``multiscale_*`` architecture from the ``-pinn_ff_*`` options.

    fourier: B (F, d) ~ N(0, σ²) from a CPU generator seeded by ``seed`` (bitwise the same on every
    rank and every run); multiscale: one row (s/2) e_i per scale s and embedded axis i, i.e. the
    features cos(πs x_i), sin(πs x_i) (sin(kπx), the zoo's modes, is one of them). Axes in
    ``ff_keep`` get zero frequencies and pass through.
    """
    keep = tuple(int(k) for k in (opts.get("ff_keep") or ()))
    bad = [k for k in keep if not 0 <= k < dim]
    if bad or len(set(keep)) != len(keep):
        raise PinnInputError(f"-pinn_ff_keep: {list(keep)} must be distinct input axes in 0..{dim - 1}")
    axes = [i for i in range(dim) if i not in keep]
    if not axes:
        raise PinnInputError(f"-pinn_ff_keep: {list(keep)} leaves no input axis to embed; allowed: a strict "
                             f"subset of 0..{dim - 1}")
    if kind == "fourier":
        F, sigma = int(opts.get("ff_features", 64)), float(opts.get("ff_sigma", 1.0))
        gen = torch.Generator(device="cpu").manual_seed(int(seed) ^ 0xFF0F)
        B = torch.randn(F, dim, generator=gen, dtype=torch.float64) * sigma
        B[:, list(keep)] = 0.0
    else:
        scales = [float(v) for v in (opts.get("ff_scales") or (1, 2, 4, 8))]
        B = torch.zeros(len(scales) * len(axes), dim, dtype=torch.float64)
        for r, (i, sc) in enumerate(itertools.product(axes, scales)):
            B[r, i] = 0.5 * sc  # 2π B x = π s x_i
    return FourierEmbedding(B, keep, trainable=bool(opts.get("ff_train", False)))


class ModifiedMLP(MLP):
    """The gradient-pathologies paper's modified MLP, with the same forward jet as :class:`MLP`.

    U = σ(XW_u + b_u), V = σ(XW_v + b_v), H¹ = σ(XW¹ + b¹), Zᵏ = σ(HᵏWᵏ + bᵏ),
    Hᵏ⁺¹ = (1 − Zᵏ) ⊙ U + Zᵏ ⊙ V, u = H^L W + b. The two encoders U, V gate every hidden layer
    (multiplicative interactions, better-conditioned gradients); all hidden widths are equal.
    ``layers`` holds W¹, the gates Wᵏ and the output layer; ``u_in``/``v_in`` the encoders.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str = "tanh", out_dim: int = 1,
                 embedding: FourierEmbedding | None = None, input_map: InputMap | None = None) -> None:
        super().__init__(in_dim, hidden, activation, out_dim, embedding, input_map)
        widths = {int(w) for w in hidden}
        if len(hidden) < 2 or len(widths) != 1:
            raise PinnInputError(f"modified_mlp needs at least 2 hidden layers of equal width, got {list(hidden)}")
        width = widths.pop()
        feat = in_dim if embedding is None else embedding.out_dim
        self.u_in = nn.Linear(feat, width)
        self.v_in = nn.Linear(feat, width)

    def forward(self, x: Tensor) -> Tensor:
        x = x if self.input_map is None else self.input_map(x)
        x = x if self.embedding is None else self.embedding(x)
        u = self._act(self.u_in(x))[0]
        v = self._act(self.v_in(x))[0]
        h = self._act(self.layers[0](x))[0]
        for layer in self.layers[1:-1]:
            z = self._act(layer(h))[0]
            h = u + z * (v - u)  # (1 − Z) ⊙ U + Z ⊙ V
        return _squeeze_out(self.layers[-1](h), self.out_dim)

    def _body_jet(
        self, params: dict[str, Tensor], x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = (),
        tape: list[TapeRecord] | None = None, pure: tuple[int, ...] | None = None,
    ) -> Jet:
        """(h, ∂h/∂x_i, ∂²h/∂x_i², mixed ∂²h/∂x_i∂x_j) through encoders, gates and products
        (Leibniz rule), batched; the products with weights are recorded on ``tape`` if given.
        Every ∂²/∂x_i² is pushed through, then cut to ``pure``."""
        n, d = x.shape
        mix = bool(mixed) and order >= 2
        # with an embedding the encoders and W¹ read γ(x) and its channels, like a hidden layer
        emb = None if self.embedding is None else self.embedding.jet(params["embedding.B"], x, order, mixed)

        def act(name: str, h: tuple | None) -> tuple:
            w, b = params[f"{name}.weight"], params[f"{name}.bias"]
            lin = f"{name}.weight"
            if h is None:  # an input layer: ∂z/∂x_i = W[:, i], second derivatives 0
                z = _affine(tape, lin, x, w, b)
                dz = _input_channels(tape, lin, w, n, d) if order >= 1 else None
                d2z = mz = None
            else:
                z = _affine(tape, lin, h[0], w, b)
                dz = _affine(tape, lin, h[1], w) if order >= 1 else None
                d2z = _affine(tape, lin, h[2], w) if order >= 2 else None
                mz = _affine(tape, lin, h[3], w) if mix else None
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

        U, V = act("u_in", emb), act("v_in", emb)
        D0 = V[0] - U[0]
        D1 = V[1] - U[1] if order >= 1 else None
        D2 = V[2] - U[2] if order >= 2 else None
        DM = V[3] - U[3] if mix else None
        H = act("layers.0", emb)
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
        lin = f"layers.{len(self.layers) - 1}.weight"
        w, b = params[lin], params[lin.replace("weight", "bias")]
        return _output_jet(_affine(tape, lin, H[0], w, b), _affine(tape, lin, H[1], w) if order >= 1 else None,
                           _affine(tape, lin, H[2], w) if order >= 2 else None,
                           _affine(tape, lin, H[3], w) if mix else None, mixed if mix else (),
                           self.out_dim).only(pure)


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
            elif not name.endswith("bias"):  # e.g. trainable Fourier frequencies: start from their own draw
                parts.append(self.module.get_parameter(name).detach().to(torch.float64).cpu().flatten())
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

    def jet(self, theta: Tensor, x: Tensor, order: int, mixed: tuple[tuple[int, int], ...] = (),
            tape: list[TapeRecord] | None = None, pure: tuple[int, ...] | None = None) -> Jet:
        """Values and input derivatives up to ``order`` (plus the ``mixed`` pairs at order 2):
        the forward jet for :class:`MLP` networks, nested autograd for any other module. A ``tape``
        (only with :attr:`tapeable`) records the jet's products with the weights."""
        params = self.unflatten(theta)
        if tape is not None:
            if not self.tapeable:
                raise ValueError(f"{type(self.module).__name__}: its jet cannot be taped")
            return self.module.jet_from_params(params, x, order, mixed, tape, pure)
        if order == 0:
            return Jet(self.u(theta, x))
        if isinstance(self.module, MLP):
            return self.module.jet_from_params(params, x, order, mixed, pure=pure)
        return autograd_jet(self.point_function(params), x, order, mixed).only(pure)

    @property
    def tapeable(self) -> bool:
        """True when θ enters the jet only through recorded products a Wᵀ + b (see
        :meth:`pinntao.residual.Residual.jacobian`)."""
        return isinstance(self.module, MLP) and self.module.tape_complete


def build_mlp(
    in_dim: int, hidden: Sequence[int], activation: str, dtype: torch.dtype, device: str | torch.device,
    out_dim: int = 1,
) -> FlatModel:
    """An :class:`MLP` R^in_dim → R^out_dim bound to a flat θ."""
    return FlatModel(MLP(in_dim, hidden, activation, out_dim), dtype=dtype, device=device)


def build_model(
    arch: str, in_dim: int, hidden: Sequence[int], activation: str, dtype: torch.dtype, device: str | torch.device,
    out_dim: int = 1, options: dict[str, Any] | None = None, seed: int = 0,
    box: tuple[Sequence[float], Sequence[float]] | None = None,
) -> FlatModel:
    """The ``-pinn_arch`` network with ``out_dim`` fields, bound to a flat θ: an MLP or the modified
    MLP, after Fourier features for the ``fourier_*``/``multiscale_*`` kinds (their ``-pinn_ff_*``
    ``options``; random frequencies drawn from ``seed``), after the map of the bounding box ``box``
    (lo, hi) onto [−1, 1]^d when ``options`` has ``input_scale`` box."""
    if arch not in ARCHITECTURES:
        raise PinnInputError(f"-pinn_arch: unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    opts = options or {}
    kind, _, body = arch.partition("_") if arch.startswith(("fourier_", "multiscale_")) else ("", "", arch)
    emb = fourier_embedding(kind, in_dim, opts, seed) if kind else None
    imap = None
    if opts.get("input_scale", "none") == "box":
        if kind:
            raise PinnInputError(f"-pinn_input_scale box: not with -pinn_arch {arch} (its frequencies are in the "
                                 f"problem's coordinates); allowed: mlp, modified_mlp")
        if box is None:
            raise PinnInputError("-pinn_input_scale box: no bounding box given to build_model(box=(lo, hi))")
        imap = InputMap(*box)
    cls = ModifiedMLP if body == "modified_mlp" else MLP
    return FlatModel(cls(in_dim, hidden, activation, out_dim, emb, imap), dtype=dtype, device=device)
