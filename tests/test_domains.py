"""Domains: samplers land inside, boundary points lie on the boundary with unit outward normals,
measures, bad polygons, points outside the domain; the new problems' references converge under
refinement; point sets and residuals are identical on 1 and 2 ranks."""

import json

import numpy as np
import pytest
import torch
from conftest import ROOT, run_mpi

from pinntao.domains import Ball, Box, Polygon, TimeDomain, l_shape
from pinntao.errors import PinnInputError
from pinntao.models import Jet, autograd_jet
from pinntao.problems import get_problem
from pinntao.problems.base import Block, Problem

STAR = Polygon(((0.0, 0.0), (2.0, -1.0), (1.2, 0.3), (2.5, 1.5), (0.8, 0.9), (0.1, 2.0), (-0.5, 0.7)))  # non-convex
CW_L = Polygon(tuple(reversed(l_shape().vertices)))  # given clockwise
DOMAINS = {"box": Box((0.0, -1.0), (2.0, 0.5)), "disk": Ball((0.3, -0.2), 0.7), "ball3": Ball((0.0, 0.0, 1.0), 1.5),
           "lshape": l_shape(), "star": STAR, "cw_lshape": CW_L,
           "time_lshape": TimeDomain(l_shape(), 0.0, 2.0)}


def _near_corner(dom, p: np.ndarray) -> np.ndarray:
    if isinstance(dom, TimeDomain):
        return _near_corner(dom.space, p[:, 1:]) | (p[:, 0] < 1e-4) | (p[:, 0] > dom.t1 - 1e-4)
    if isinstance(dom, Polygon):
        v = np.asarray(dom.vertices)
        return np.linalg.norm(p[:, None] - v[None], axis=2).min(1) < 1e-4
    if isinstance(dom, Box):
        lo, hi = np.asarray(dom.lo), np.asarray(dom.hi)
        close = (np.abs(p - lo) < 1e-4) | (np.abs(p - hi) < 1e-4)
        return close.sum(1) > 1
    return np.zeros(len(p), dtype=bool)


@pytest.mark.parametrize("sampling", ["uniform", "halton", "sobol"])
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_samplers_inside_and_normals_outward(name, sampling):
    dom = DOMAINS[name]
    x = dom.interior(500, np.random.default_rng(1), sampling)
    assert x.shape == (500, dom.dim) and dom.contains(x).all()
    assert np.array_equal(x, dom.interior(500, np.random.default_rng(1), sampling))  # (n, seed) only
    p, nrm = dom.boundary(300, np.random.default_rng(2), sampling)
    assert p.shape == nrm.shape == (300, dom.dim)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, rtol=0, atol=1e-14)
    assert dom.contains(p, tol=1e-12).all()  # on the closed domain ...
    keep = ~_near_corner(dom, p)
    eps = 1e-6
    assert not dom.contains(p[keep] + eps * nrm[keep]).any()  # ... and outward normals leave it
    assert dom.contains(p[keep] - eps * nrm[keep]).all()
    np.testing.assert_allclose(dom.normal(torch.as_tensor(p[keep])).numpy(), nrm[keep], rtol=0, atol=1e-14)
    e = dom.eval_points(21)
    assert e.shape[1] == dom.dim and dom.contains(e, tol=1e-9).all()


@pytest.mark.parametrize("d", [2, 3])
def test_sobol_points_are_seeded_and_more_even_than_uniform(d):
    """Scrambled Sobol on a box: a function of the seed only, a different set for another seed, and a
    lower centred L²-discrepancy than uniform points (scipy.stats.qmc.discrepancy), for every seed."""
    from scipy.stats import qmc

    box = Box((0.0,) * d, (1.0,) * d)
    for seed in range(5):
        s = box.interior(256, np.random.default_rng(seed), "sobol")
        assert np.array_equal(s, box.interior(256, np.random.default_rng(seed), "sobol"))
        assert not np.array_equal(s, box.interior(256, np.random.default_rng(seed + 1), "sobol"))
        u = box.interior(256, np.random.default_rng(seed), "uniform")
        assert qmc.discrepancy(s) < 0.5 * qmc.discrepancy(u)
    # a count that is no power of 2 works too (scipy's balance warning is silenced), still even
    s = box.interior(300, np.random.default_rng(0), "sobol")
    assert s.shape == (300, d) and qmc.discrepancy(s) < qmc.discrepancy(box.interior(300, np.random.default_rng(0)))


def test_unknown_sampling_is_one_line_listing_the_kinds():
    with pytest.raises(PinnInputError) as err:
        DOMAINS["disk"].interior(10, np.random.default_rng(0), "latin")
    assert str(err.value) == "unknown sampling 'latin'; allowed: uniform, halton, sobol"


@pytest.mark.parametrize("name", ["disk", "ball3", "lshape", "star", "time_lshape"])
def test_measure_matches_monte_carlo(name):
    dom = DOMAINS[name]
    lo, hi = np.asarray(dom.lo), np.asarray(dom.hi)
    u = lo + (hi - lo) * np.random.default_rng(0).random((200_000, dom.dim))
    mc = dom.contains(u).mean() * np.prod(hi - lo)
    assert dom.measure == pytest.approx(mc, rel=1e-2)


def test_polygon_orientation_and_lshape():
    assert l_shape().measure == 3.0 and CW_L.vertices == l_shape().vertices  # stored counter-clockwise


@pytest.mark.parametrize("verts,match", [
    (((0, 0), (1, 1), (1, 0), (0, 1)), "intersect"),  # bow-tie
    (((0, 0), (1, 0), (1, 0), (0, 1)), "degenerate|intersect"),  # repeated vertex
    (((0, 0), (2, 0), (1, 0), (1, 1)), "overlap"),  # an edge doubling back on itself
    (((0, 0), (1, 0)), "at least 3"),
    (((0, 0), (1, 0), (2, 0)), "overlap|zero area"),
    (((0, 0), (2, 0), (2, 2), (1, 0), (0, 2)), "intersect"),  # touches an edge at a vertex
])
def test_polygon_not_simple(verts, match):
    with pytest.raises(PinnInputError, match=match):
        Polygon(verts)


def test_user_sampler_outside_domain_is_an_error():
    box = Box((0.0, 0.0), (1.0, 1.0))
    prob = Problem("p", box, [Block("interior", "interior", lambda n, rng, s: box.interior(n, rng, s) + 0.5,
                                    residual=lambda j, x: j.u)],
                   exact=lambda x: x[:, 0], default_counts={"interior": 9})
    with pytest.raises(PinnInputError, match=r"block 'interior': sampler: point \d+ .* outside the domain"):
        prob.sample({}, 0)
    bad_shape = Problem("p", box, [Block("interior", "interior", lambda n, rng, s: box.interior(n, rng, s)[:, :1],
                                         residual=lambda j, x: j.u)], exact=lambda x: x[:, 0],
                        default_counts={"interior": 9})
    with pytest.raises(PinnInputError, match=r"'interior': the sampler returns shape \(9, 1\); expected \(9, 2\)"):
        bad_shape.sample({}, 0)


def test_anisotropic_exact_solution_zeroes_the_residual():
    prob = get_problem("anisotropic_poisson2d", {"a": 0.7})
    x = torch.rand(50, 2, dtype=torch.float64)
    b = prob.blocks[0]
    jet = autograd_jet(lambda p: prob.exact(p[None])[0], x, 2, b.pairs(2))
    assert b.residual(jet, x).abs().max() < 1e-10
    # the mixed term matters: without u_xy the same u leaves a residual
    no_mix = Jet(jet.u, jet.du, jet.d2u, torch.zeros_like(jet.dmix), jet.mixed)
    assert b.residual(no_mix, x).abs().max() > 1.0
    with pytest.raises(PinnInputError, match="elliptic"):
        get_problem("anisotropic_poisson2d", {"a": 1.0})


def test_lshape_reference_converges():
    from pinntao.problems.lshape import _solve_lshape

    fine = _solve_lshape(64)
    errs = []
    for n in (8, 16, 32):
        s = 64 // n
        errs.append(np.abs(_solve_lshape(n)["u"] - fine["u"][::s, ::s]).max())
    # O(h^{4/3})-limited by the re-entrant corner, not O(h²)
    assert errs[0] / errs[1] > 1.5 and errs[1] / errs[2] > 1.5, errs
    u = fine["u"]  # the L-shape is symmetric under (x, y) → (−y, −x): u[i, j] = u[2n − j, 2n − i]
    np.testing.assert_allclose(u, u[::-1, ::-1].T, rtol=0, atol=1e-12)
    assert u.max() > 0.1 and u.min() == 0.0


def test_cavity_reference_converges_and_matches_ghia():
    from pinntao.problems.cavity import _solve_cavity, ghia_deviation

    fine = _solve_cavity(100.0, 128)
    errs = []
    for n in (16, 32, 64):
        r, s = _solve_cavity(100.0, n), 128 // n
        errs.append(np.sqrt(np.mean((r["u"] - fine["u"][::s, ::s]) ** 2 + (r["v"] - fine["v"][::s, ::s]) ** 2)))
    assert errs[0] / errs[1] > 2.5 and errs[1] / errs[2] > 2.5, errs
    from scipy.interpolate import RegularGridInterpolator as RGI

    def uv(p):
        return np.stack([RGI((fine["x"], fine["x"]), fine[k])(p) for k in ("u", "v")], axis=1)

    assert ghia_deviation(uv) < 1e-2  # Ghia et al.'s table is itself good to about 1e-2 at Re = 100
    # continuity holds on the reference grid (central differences, inner nodes)
    h = 1 / 128
    div = (fine["u"][2:, 1:-1] - fine["u"][:-2, 1:-1] + fine["v"][1:-1, 2:] - fine["v"][1:-1, :-2]) / (2 * h)
    assert np.abs(div).max() < 1e-8


def _mpi(n: int, problem: str) -> dict:
    proc = run_mpi(n, [str(ROOT / "tests" / "systems_mpi_check.py"), problem])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])


@pytest.mark.mpi
@pytest.mark.parametrize("problem", ["cavity2d", "poisson_lshape"])
def test_systems_and_polygons_on_one_and_two_ranks(problem):
    one, two = _mpi(1, problem), _mpi(2, problem)
    assert one["size"] == 1 and two["size"] == 2
    assert one["points"] == two["points"]  # the same global point set (a hash of it)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-12)
    assert two["rel_l2"] == pytest.approx(one["rel_l2"], rel=1e-12)
    for key in ("grad", "gram_v", "residual"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_neumann_block_on_a_disk_reads_the_normals():
    """∂u/∂n from the jet and the domain's normal: zero residual for u = x² + y² (∂u/∂n = 2 on the
    unit circle), not for a wrong normal."""
    disk = Ball((0.0, 0.0), 1.0)
    block = Block("neumann", "boundary", lambda n, rng, s: disk.boundary(n, rng, s)[0], order=1,
                  residual=lambda j, x: (j.du * disk.normal(x)).sum(1) - 2.0)
    x = torch.as_tensor(block.sample(40, np.random.default_rng(0), "uniform"))
    jet = autograd_jet(lambda p: (p**2).sum(), x, 1)
    assert block.residual(jet, x).abs().max() < 1e-13
    assert ((jet.du * disk.normal(x).flip(1)).sum(1) - 2.0).abs().max() > 0.1
