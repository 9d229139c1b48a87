"""The trained field on a structured grid, as a VTK XML StructuredGrid (.vts) for ParaView.

Plain XML with ASCII data: no VTK dependency, readable by ParaView/VisIt and by any XML parser.
The grid spans the problem's box (time is a coordinate of time-dependent problems); point data
are u_θ, the exact or reference solution and the pointwise error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from petsc4py import PETSc

from .comm import split_range, to_numpy


def grid_axes(obj: Any, per_dim: int = 0) -> list[np.ndarray]:
    """Node coordinates per dimension of the problem's box (``per_dim`` 0: the evaluation grid's)."""
    dom = obj.problem.domain
    per = per_dim or obj.problem.eval_nodes()
    return [np.linspace(a, b, per) for a, b in zip(dom.lo, dom.hi, strict=True)]


def grid_values(obj: Any, x: PETSc.Vec, per_dim: int = 0) -> tuple[list[np.ndarray], np.ndarray,
                                                                     dict[str, np.ndarray]]:
    """(axes, points, {u, exact, error}) on the grid, the points in VTK order (x fastest).
    Collective: each rank evaluates its share of the points, rank 0 receives them all."""
    import torch

    axes = grid_axes(obj, per_dim)
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.transpose().ravel() for m in mesh], axis=1)  # x varies fastest
    a, b = split_range(pts.shape[0], obj.size, obj.rank)
    theta = obj.gather(x)
    xs = torch.as_tensor(pts[a:b], dtype=obj.model.dtype, device=obj.model.device)
    with torch.no_grad():
        u, ref = to_numpy(obj.model.u(theta, xs)), to_numpy(obj.problem.exact(xs))
    parts = obj.mpi.gather(np.stack([u, ref]), root=0) if obj.size > 1 else [np.stack([u, ref])]
    if obj.rank != 0:
        return axes, pts, {}
    uu, rr = np.concatenate(parts, axis=1)
    if uu.ndim == 1:
        return axes, pts, {"u": uu, "exact": rr, "error": uu - rr}
    names = obj.problem.field_names or tuple(f"u{k}" for k in range(uu.shape[1]))  # a system: one array per field
    out = {}
    for k, name in enumerate(names):
        out.update({name: uu[:, k], f"exact_{name}": rr[:, k], f"error_{name}": uu[:, k] - rr[:, k]})
    return axes, pts, out


def vts_bytes(obj: Any, x: PETSc.Vec, per_dim: int = 0) -> bytes:
    """The .vts file's content on rank 0 (empty bytes elsewhere). Collective."""
    axes, pts, fields = grid_values(obj, x, per_dim)
    if not fields:
        return b""
    dims = [len(a) for a in axes] + [1] * (3 - len(axes))
    coords = np.hstack([pts, np.zeros((pts.shape[0], 3 - pts.shape[1]))])  # VTK points are 3-D
    extent = " ".join(f"0 {n - 1}" for n in dims)

    def arr(name: str, data: np.ndarray, ncomp: int = 1) -> str:
        body = " ".join(f"{v:.17g}" for v in np.asarray(data, dtype=np.float64).ravel())
        return (f'<DataArray type="Float64" Name="{name}" NumberOfComponents="{ncomp}" format="ascii">'
                f"{body}</DataArray>")

    point_data = "".join(arr(k, v) for k, v in fields.items())
    xml = (
        '<?xml version="1.0"?>\n<VTKFile type="StructuredGrid" version="0.1" byte_order="LittleEndian">\n'
        f'<StructuredGrid WholeExtent="{extent}">\n<Piece Extent="{extent}">\n'
        f'<PointData Scalars="{next(iter(fields))}">{point_data}</PointData>\n'
        f"<Points>{arr('points', coords, 3)}</Points>\n"
        "</Piece>\n</StructuredGrid>\n</VTKFile>\n"
    )
    return xml.encode()
