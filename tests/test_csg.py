"""CSG domains: membership, samplers inside, unit outward normals (into a hole), volumes and
boundary-piece measures against exact values, named pieces, seeded determinism, and the same
points and loss on 1 and 2 ranks."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import ROOT, run_mpi

from pinntao.domains import Ball, Box, Difference, Intersection, Polygon, TimeDomain, Union
from pinntao.errors import PinnInputError

SQUARE = Box((0.0, 0.0), (1.0, 1.0))
R = 0.1
CENTERS = [(0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)]
PLATE = Difference(SQUARE, *(Ball(c, R) for c in CENTERS))
TRIANGLE = Polygon(((1.0, 0.0), (1.5, 0.5), (1.0, 1.0)))
DOMAINS = {
    "plate": PLATE,
    "union": Union(SQUARE, Ball((1.0, 0.5), 0.5)),  # a square and a half disk outside it
    "intersection": Intersection(SQUARE, Ball((1.0, 0.5), 0.5)),  # a half disk
    "nested": Difference(Union(SQUARE, TRIANGLE), Ball((0.5, 0.5), 0.2), Box((0.1, 0.1), (0.2, 0.3)),
                         names=("plate", "disk", "slot")),
    "edge_hole": Difference(SQUARE, Ball((1.0, 0.5), 0.25)),  # a hole cutting the boundary
    "ball3": Difference(Box((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)), Ball((0.0, 0.0, 0.0), 0.5)),
    "time_plate": TimeDomain(PLATE, 0.0, 2.0, time_first=False),
    "flush_union": Union(Box((0.0, 0.0), (2.0, 1.0)), Box((0.0, 0.0), (1.0, 2.0))),  # an L, flush faces
    "adjacent": Union(Box((-1.0, -1.0), (0.0, 1.0)), Box((0.0, 0.0), (1.0, 1.0))),  # an L, a shared face
    "notch": Difference(SQUARE, Box((0.4, 0.9), (0.6, 1.0))),  # a hole flush with the edge
}
EXACT_MEASURE = {
    "plate": 1 - 4 * math.pi * R**2,
    "union": 1 + math.pi * 0.25 / 2,
    "intersection": math.pi * 0.25 / 2,
    "nested": 1.25 - math.pi * 0.04 - 0.02,
    "edge_hole": 1 - math.pi * 0.0625 / 2,
    "ball3": 8 - 4 / 3 * math.pi * 0.125,
    "flush_union": 3.0,
    "adjacent": 3.0,
    "notch": 0.98,
}
EXACT_PERIMETER = {
    "plate": 4 + 4 * 2 * math.pi * R,
    "union": 3 + math.pi * 0.5,
    "intersection": 1 + math.pi * 0.5,
    "nested": 3 + 2 * math.hypot(0.5, 0.5) + 2 * math.pi * 0.2 + 0.6,
    "edge_hole": 4 - 0.5 + math.pi * 0.25,
    "ball3": 24 + 4 * math.pi * 0.25,
    "flush_union": 8.0,
    "adjacent": 8.0,
    "notch": 4.2,
}


def _near_kinks(dom, p: np.ndarray) -> np.ndarray:
    """Points within 1e-4 of a place where two pieces meet (normals are ambiguous there)."""
    if isinstance(dom, TimeDomain):
        t, xs = p[:, -1], p[:, :-1]
        return _near_kinks(dom.space, xs) | (t < 1e-4) | (t > dom.t1 - 1e-4)
    d = np.stack([_dist(pc, p) for pc in dom.pieces], axis=1)
    return np.sort(d, axis=1)[:, 1] < 1e-4


def _dist(piece, p):
    from pinntao.domains import _piece_distance

    return _piece_distance(piece, torch.as_tensor(p)).numpy()


@pytest.mark.parametrize("sampling", ["uniform", "halton", "sobol"])
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_csg_samplers_inside_normals_outward(name, sampling):
    dom = DOMAINS[name]
    x = dom.interior(400, np.random.default_rng(1), sampling)
    assert x.shape == (400, dom.dim) and dom.contains(x).all()
    assert np.array_equal(x, dom.interior(400, np.random.default_rng(1), sampling))  # (n, seed) only
    p, nrm = dom.boundary(300, np.random.default_rng(2), sampling)
    assert p.shape == nrm.shape == (300, dom.dim)
    p2, nrm2 = dom.boundary(300, np.random.default_rng(2), sampling)
    assert np.array_equal(p, p2) and np.array_equal(nrm, nrm2)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, rtol=0, atol=1e-14)
    assert dom.contains(p, tol=1e-12).all()  # on the closed domain ...
    keep = ~_near_kinks(dom, p)
    assert keep.sum() > 250
    eps = 1e-6
    assert not dom.contains(p[keep] + eps * nrm[keep]).any()  # ... and the normals leave it
    assert dom.contains(p[keep] - eps * nrm[keep]).all()
    np.testing.assert_allclose(dom.normal(torch.as_tensor(p[keep])).numpy(), nrm[keep], rtol=0, atol=1e-14)
    e = dom.eval_points(21)
    assert e.shape[1] == dom.dim and dom.contains(e, tol=1e-9).all()
    space = dom.space if isinstance(dom, TimeDomain) else dom
    grid = np.stack([g.ravel() for g in np.meshgrid(*[np.linspace(a, b, 21) for a, b in zip(
        space.lo, space.hi, strict=True)], indexing="ij")], axis=1)
    assert space.eval_points(21).shape[0] == space.contains(grid, tol=1e-12).sum()  # masked to the domain


@pytest.mark.parametrize("name", sorted(EXACT_MEASURE))
def test_csg_measure_and_perimeter_match_exact(name):
    dom = DOMAINS[name]
    assert dom.measure == pytest.approx(EXACT_MEASURE[name], rel=2e-3)
    lo, hi = np.asarray(dom.lo), np.asarray(dom.hi)  # an independent Monte Carlo of the membership test
    u = lo + (hi - lo) * np.random.default_rng(7).random((400_000, dom.dim))
    assert dom.contains(u).mean() * np.prod(hi - lo) == pytest.approx(EXACT_MEASURE[name], rel=1e-2)
    assert sum(p.measure for p in dom.pieces) == pytest.approx(EXACT_PERIMETER[name], rel=1e-2)


def test_plate_pieces_are_named_and_hole_normals_point_into_the_hole():
    assert PLATE.piece_names == ["outer.x0_lo", "outer.x0_hi", "outer.x1_lo", "outer.x1_hi",
                                 "hole0", "hole1", "hole2", "hole3"]
    rng = np.random.default_rng(0)
    p, nrm = PLATE.boundary(200, rng, pieces="hole2")
    c = np.asarray(CENTERS[2])
    np.testing.assert_allclose(np.linalg.norm(p - c, axis=1), R, atol=1e-14)
    np.testing.assert_allclose(nrm, (c - p) / R, atol=1e-12)  # towards the hole's center
    q = PLATE.sampler("outer")(100, rng, "uniform")
    assert np.any(np.isclose(q, 0.0) | np.isclose(q, 1.0), axis=1).all()  # only the plate's edges
    assert np.isclose(PLATE.sampler("outer.x0_lo")(10, rng, "uniform")[:, 0], 0.0).all()
    assert [p.name for p in PLATE.select("hole*")] == ["hole0", "hole1", "hole2", "hole3"]
    # the pieces split n by their measure: 4 edges of length 1, 4 circles of length 2πR
    p, _ = PLATE.boundary(1000, rng)
    on_holes = np.linalg.norm(p[:, None] - np.asarray(CENTERS)[None], axis=2).min(1) < R + 1e-9
    assert abs(on_holes.sum() - 1000 * 8 * math.pi * R / (4 + 8 * math.pi * R)) < 4  # ± one per piece
    with pytest.raises(PinnInputError, match=r"no boundary piece .hole9.; allowed: outer\.x0_lo"):
        PLATE.sampler("hole9")


def test_normal_works_under_vmap():
    """Residuals call normal() inside vmap(jacrev(...)) for the explicit Jacobian."""
    p, _ = DOMAINS["nested"].boundary(50, np.random.default_rng(4))
    x = torch.as_tensor(p)
    one_by_one = torch.func.vmap(lambda q: DOMAINS["nested"].normal(q[None])[0])(x)
    np.testing.assert_allclose(one_by_one.numpy(), DOMAINS["nested"].normal(x).numpy(), atol=0)


def test_edge_hole_keeps_only_its_inside_arc():
    dom = DOMAINS["edge_hole"]
    p, _ = dom.boundary(300, np.random.default_rng(3), pieces="hole0")
    assert (p[:, 0] <= 1.0 + 1e-12).all()  # the arc outside the square is not boundary
    assert dom.select("outer.x0_hi")[0].measure == pytest.approx(0.5, rel=1e-2)  # the cut edge


def test_csg_bad_input():
    with pytest.raises(PinnInputError, match="same dimension"):
        Difference(SQUARE, Ball((0.0, 0.0, 0.0), 1.0))
    with pytest.raises(PinnInputError, match="at least 2 domains"):
        Union(SQUARE)
    with pytest.raises(PinnInputError, match="names must be 2 distinct"):
        Difference(SQUARE, Ball((0.5, 0.5), 0.1), names=("a", "a"))
    with pytest.raises(PinnInputError, match="empty"):
        Intersection(SQUARE, Ball((3.0, 3.0), 0.5))


def test_time_first_orders_columns():
    dom_t, dom_x = TimeDomain(PLATE, 0.0, 2.0), TimeDomain(PLATE, 0.0, 2.0, time_first=False)
    a, b = dom_t.interior(50, np.random.default_rng(0)), dom_x.interior(50, np.random.default_rng(0))
    np.testing.assert_array_equal(a[:, [1, 2, 0]], b)  # the same points, t moved last
    assert dom_x.lo == (0.0, 0.0, 0.0) and dom_x.hi == (1.0, 1.0, 2.0) and dom_x.t_index == 2
    assert dom_x.coordinates == "(x0, x1, t)" and dom_t.coordinates == "(t, x0, x1)"
    p, n = dom_x.boundary(20, np.random.default_rng(0))
    assert (n[:, 2] == 0).all() and dom_x.contains(p, 1e-12).all()
    np.testing.assert_allclose(dom_x.normal(torch.as_tensor(p)).numpy(), n, atol=1e-14)
    assert (dom_x.initial(5, np.random.default_rng(0))[:, 2] == 0).all()


def _mpi(n: int, sampling: str) -> dict:
    proc = run_mpi(n, [str(ROOT / "tests" / "csg_mpi_check.py"), sampling])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])


@pytest.mark.mpi
@pytest.mark.parametrize("sampling", ["halton", "sobol"])
def test_csg_problem_on_one_and_two_ranks(sampling):
    one, two = _mpi(1, sampling), _mpi(2, sampling)
    assert one["size"] == 1 and two["size"] == 2
    assert one["points"] == two["points"]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-12)
    assert two["rel_l2"] == pytest.approx(one["rel_l2"], rel=1e-12)
    np.testing.assert_allclose(two["grad"], one["grad"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(two["residual"], one["residual"], rtol=1e-10, atol=1e-12)
