"""Reference data: a problem scored against points and values (from FEM, COMSOL, a finer solver)
instead of, or beside, a closed-form ``exact``.

A file names the points and the values at them:

- ``.npz``: arrays ``x`` (n, d) — the points — and ``u`` (n,) or (n, m) — the m outputs;
- ``.npy``: one array (n, d + m);
- ``.csv``: comma-separated columns, an optional header line;
- anything else (``.txt``, ``.dat``): whitespace-separated columns, ``#`` comments.

Columns are the input coordinates in the problem's order, then its outputs (fields) in order.
For a time problem the order is the domain's (``TimeDomain(..., time_first=)``: (t, x) by
default, (x, t) with ``time_first=False``); points outside the domain are an error, which catches
a file whose t and x columns are swapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from .errors import PinnInputError

FORMATS = ".npz (keys x, u), .npy (n × (d + m)), .csv (comma, optional header), other: whitespace text"


def _columns_text(problem) -> str:
    """The expected columns in words: the coordinates (in the domain's order), then the outputs."""
    dom = problem.domain
    coords = getattr(dom, "coordinates", "(" + ", ".join(f"x{k}" for k in range(problem.dim)) + ")")
    names = problem.field_names or (("u",) if problem.fields == 1 else tuple(f"u{k}" for k in range(problem.fields)))
    return f"{coords[1:-1]}, {', '.join(names)}"


def _text_table(path: str, delimiter: str | None) -> np.ndarray:
    """A numeric table from text; a first line that does not parse as numbers is a header."""
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError("no data lines")
    try:
        [float(v) for v in (lines[0].split(delimiter) if delimiter else lines[0].split())]
    except ValueError:
        lines = lines[1:]  # a header
    return np.loadtxt(lines, delimiter=delimiter, ndmin=2, dtype=np.float64)


def read_reference(path: str, problem, what: str = "-pinn_reference") -> tuple[np.ndarray, np.ndarray]:
    """(points (n, d), values (n,) or (n, m)) from a file, checked against the problem's input
    dimension, outputs and domain; any problem is one PinnInputError line naming ``what``."""
    d, m = problem.dim, problem.fields
    cols = _columns_text(problem)
    if not os.path.isfile(path):
        why = "is a directory" if os.path.isdir(path) else "does not exist or is not a regular file"
        raise PinnInputError(f"{what} {path}: {why}; expected a reference data file ({FORMATS})")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z.files or "u" not in z.files:
                    raise PinnInputError(f"{what} {path}: a .npz needs arrays 'x' (n, {d}) and 'u' (n,) or (n, {m}); "
                                         f"it has {', '.join(z.files) or 'none'}")
                x, u = np.asarray(z["x"], dtype=np.float64), np.asarray(z["u"], dtype=np.float64)
            table = None
        elif ext == ".npy":
            table = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        else:
            table = _text_table(path, "," if ext == ".csv" else None)
    except PinnInputError:
        raise
    except Exception as exc:  # unreadable, not numbers, ragged rows
        raise PinnInputError(f"{what} {path}: cannot read it as {ext or 'whitespace text'} "
                             f"({type(exc).__name__}: {exc}); expected columns {cols}") from None
    if table is not None:
        if table.ndim != 2 or table.shape[1] != d + m:
            raise PinnInputError(f"{what} {path}: shape {table.shape}; expected (n, {d + m}): columns {cols}")
        x, u = table[:, :d], table[:, d:]
    return check_reference(x, u, problem, f"{what} {path}")


def check_reference(x, u, problem, who: str = "Problem.reference") -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 copies (points (n, d), values (n,) for one output else (n, m))."""
    from .domains import check_inside

    d, m = problem.dim, problem.fields
    cols = _columns_text(problem)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    u = np.asarray(u, dtype=np.float64)
    if u.ndim == 2 and u.shape[1] == 1 and m == 1:
        u = u[:, 0]
    want = (x.shape[0],) if m == 1 else (x.shape[0], m)
    if x.ndim != 2 or x.shape[1] != d or x.shape[0] < 1:
        raise PinnInputError(f"{who}: points of shape {x.shape}; expected (n, {d}) with n >= 1 (columns {cols})")
    if u.shape != want:
        raise PinnInputError(f"{who}: values of shape {u.shape}; expected {want} for {x.shape[0]} points "
                             f"({m} output{'s' if m > 1 else ''}; columns {cols})")
    for name, a in (("points", x), ("values", u)):
        if not np.all(np.isfinite(a)):
            i = int(np.argwhere(~np.isfinite(a.reshape(a.shape[0], -1)))[0, 0])
            raise PinnInputError(f"{who}: {name} of row {i} are not finite: {a[i].tolist()}")
    try:
        check_inside(problem.domain, x, who)
    except PinnInputError as exc:
        raise PinnInputError(f"{exc}; columns must be {cols}") from None
    return x, u.copy()


@dataclass
class ReferenceData:
    """``exact`` from data: the values at the reference points, and off them (a .vts grid) the
    value of the nearest reference point."""

    points: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        self._tree = cKDTree(self.points)

    def __call__(self, x: Tensor) -> Tensor:
        _, idx = self._tree.query(x.detach().cpu().numpy())
        return torch.as_tensor(self.values[idx], dtype=x.dtype, device=x.device)


__all__ = ["FORMATS", "ReferenceData", "check_reference", "read_reference"]
