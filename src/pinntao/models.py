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


@dataclass
class Jet:
    """A scalar field and its input derivatives at n points of R^d.

    u: (n,) values; du: (n, d) first derivatives; d2u: (n, d) pure second derivatives
    ∂²u/∂x_i² (enough for Laplacians, heat, transport, Burgers, Helmholtz). Entries not
    requested (order < 1 or < 2) are None.
    """

    u: Tensor
    du: Tensor | None = None
    d2u: Tensor | None = None

    def d(self, i: int) -> Tensor:
        """∂u/∂x_i."""
        assert self.du is not None, "jet computed with order < 1"
        return self.du[:, i]

    def dd(self, i: int) -> Tensor:
        """∂²u/∂x_i²."""
        assert self.d2u is not None, "jet computed with order < 2"
        return self.d2u[:, i]

    def laplacian(self, dims: Sequence[int] | None = None) -> Tensor:
        """Σ_i ∂²u/∂x_i² over ``dims`` (all input dimensions by default)."""
        assert self.d2u is not None, "jet computed with order < 2"
        return self.d2u.sum(1) if dims is None else self.d2u[:, list(dims)].sum(1)


class MLP(nn.Module):
    """Fully connected network R^d → R with a smooth activation and a forward jet."""

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str = "tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise PinnInputError(f"unknown activation {activation!r}; allowed: {', '.join(sorted(ACTIVATIONS))}")
        if not hidden or any(int(w) <= 0 for w in hidden):
            raise PinnInputError(f"hidden layer widths must be positive integers, got {list(hidden)}")
        widths = [in_dim, *[int(w) for w in hidden], 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.activation = activation
        self._act = ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for layer in self.layers[:-1]:
            h = self._act(layer(h))[0]
        return self.layers[-1](h).squeeze(-1)

    def jet_from_params(self, params: dict[str, Tensor], x: Tensor, order: int) -> Jet:
        """Push (h, ∂h/∂x_i, ∂²h/∂x_i²) through every layer at once: one matmul per layer."""
        n, d = x.shape
        ws = [(params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]) for i in range(len(self.layers))]
        w0, b0 = ws[0]
        z = x @ w0.T + b0
        # derivative channels, shape (n, d, width); first layer: ∂z/∂x_i = W[:, i]
        dz = w0.T.unsqueeze(0).expand(n, d, -1) if order >= 1 else None
        d2z = torch.zeros_like(dz) if order >= 2 else None
        for w, b in ws[1:]:
            a, a1, a2 = self._act(z)
            h = a
            if order >= 1:
                dh = a1.unsqueeze(1) * dz
                if order >= 2:
                    d2h = a2.unsqueeze(1) * dz * dz + a1.unsqueeze(1) * d2z
            z = h @ w.T + b
            if order >= 1:
                dz = dh @ w.T
                if order >= 2:
                    d2z = d2h @ w.T
        return Jet(
            z.squeeze(-1),
            dz.squeeze(-1) if order >= 1 else None,
            d2z.squeeze(-1) if order >= 2 else None,
        )


#: network architectures selected by ``-pinn_arch``
ARCHITECTURES = ("mlp", "modified_mlp")


class ModifiedMLP(MLP):
    """The gradient-pathologies paper's modified MLP, with the same forward jet as :class:`MLP`.

    U = σ(XW_u + b_u), V = σ(XW_v + b_v), H¹ = σ(XW¹ + b¹), Zᵏ = σ(HᵏWᵏ + bᵏ),
    Hᵏ⁺¹ = (1 − Zᵏ) ⊙ U + Zᵏ ⊙ V, u = H^L W + b. The two encoders U, V gate every hidden layer
    (multiplicative interactions, better-conditioned gradients); all hidden widths are equal.
    ``layers`` holds W¹, the gates Wᵏ and the output layer; ``u_in``/``v_in`` the encoders.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str = "tanh") -> None:
        super().__init__(in_dim, hidden, activation)
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
        return self.layers[-1](h).squeeze(-1)

    def jet_from_params(self, params: dict[str, Tensor], x: Tensor, order: int) -> Jet:
        """(h, ∂h/∂x_i, ∂²h/∂x_i²) through encoders, gates and products (Leibniz rule), batched."""
        n, d = x.shape

        def act(name: str, h: tuple[Tensor, Tensor | None, Tensor | None] | None) -> tuple:
            w, b = params[f"{name}.weight"], params[f"{name}.bias"]
            if h is None:  # an input layer: ∂z/∂x_i = W[:, i], ∂²z/∂x_i² = 0
                z = x @ w.T + b
                dz = w.T.unsqueeze(0).expand(n, d, -1) if order >= 1 else None
                d2z = None
            else:
                z = h[0] @ w.T + b
                dz = h[1] @ w.T if order >= 1 else None
                d2z = h[2] @ w.T if order >= 2 else None
            a, a1, a2 = self._act(z)
            da = a1.unsqueeze(1) * dz if order >= 1 else None
            d2a = None
            if order >= 2:
                d2a = a2.unsqueeze(1) * dz * dz
                if d2z is not None:
                    d2a = d2a + a1.unsqueeze(1) * d2z
            return a, da, d2a

        U, V = act("u_in", None), act("v_in", None)
        D0 = V[0] - U[0]
        D1 = V[1] - U[1] if order >= 1 else None
        D2 = V[2] - U[2] if order >= 2 else None
        H = act("layers.0", None)
        for k in range(1, len(self.layers) - 1):
            Z = act(f"layers.{k}", H)
            h = U[0] + Z[0] * D0
            dh = U[1] + Z[1] * D0.unsqueeze(1) + Z[0].unsqueeze(1) * D1 if order >= 1 else None
            d2h = None
            if order >= 2:
                d2h = U[2] + Z[2] * D0.unsqueeze(1) + 2.0 * Z[1] * D1 + Z[0].unsqueeze(1) * D2
            H = (h, dh, d2h)
        last = len(self.layers) - 1
        w, b = params[f"layers.{last}.weight"], params[f"layers.{last}.bias"]
        u = (H[0] @ w.T + b).squeeze(-1)
        du = (H[1] @ w.T).squeeze(-1) if order >= 1 else None
        d2u = (H[2] @ w.T).squeeze(-1) if order >= 2 else None
        return Jet(u, du, d2u)


def autograd_jet(f: Callable[[Tensor], Tensor], x: Tensor, order: int) -> Jet:
    """Jet of a scalar point function f: R^d → R by nested autograd (slow, fully general)."""
    u = vmap(f)(x)
    du = vmap(jacrev(f))(x) if order >= 1 else None
    d2u = vmap(lambda p: torch.diagonal(hessian(f)(p)))(x) if order >= 2 else None
    return Jet(u, du, d2u)


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

    def u(self, theta: Tensor, x: Tensor) -> Tensor:
        return functional_call(self.module, self.unflatten(theta), (x,)).reshape(x.shape[0])

    def jet(self, theta: Tensor, x: Tensor, order: int) -> Jet:
        params = self.unflatten(theta)
        if order == 0:
            return Jet(self.u(theta, x))
        if isinstance(self.module, MLP):
            return self.module.jet_from_params(params, x, order)
        return autograd_jet(lambda p: functional_call(self.module, params, (p[None],)).reshape(()), x, order)


def build_mlp(
    in_dim: int, hidden: Sequence[int], activation: str, dtype: torch.dtype, device: str | torch.device
) -> FlatModel:
    return FlatModel(MLP(in_dim, hidden, activation), dtype=dtype, device=device)


def build_model(
    arch: str, in_dim: int, hidden: Sequence[int], activation: str, dtype: torch.dtype, device: str | torch.device
) -> FlatModel:
    """A plain MLP or the modified MLP (``-pinn_arch``), bound to a flat θ."""
    if arch not in ARCHITECTURES:
        raise PinnInputError(f"-pinn_arch: unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    cls = ModifiedMLP if arch == "modified_mlp" else MLP
    return FlatModel(cls(in_dim, hidden, activation), dtype=dtype, device=device)
