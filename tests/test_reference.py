"""Reference data: Problem(reference=(points, values)) and -pinn_reference FILE in every format,
validation (one error line, exit 2), rel_l2 computed on the data, and the time-coordinate check."""

import json

import numpy as np
import pytest
import torch
from conftest import run_pinntao

from pinntao.domains import Box, TimeDomain
from pinntao.errors import PinnInputError
from pinntao.models import build_mlp
from pinntao.problems import get_problem
from pinntao.problems.base import Block, Problem
from pinntao.reference import read_reference


def _write(path, fmt: str, x: np.ndarray, u: np.ndarray) -> None:
    table = np.column_stack([x, u])
    if fmt == "npz":
        np.savez(path, x=x, u=u)
    elif fmt == "npy":
        np.save(path, table)
    elif fmt == "csv":
        np.savetxt(path, table, delimiter=",", header=",".join(f"c{k}" for k in range(table.shape[1])), comments="")
    else:
        np.savetxt(path, table, header="x y u (whitespace)")


@pytest.mark.parametrize("fmt", ["npz", "npy", "csv", "txt", "dat"])
@pytest.mark.parametrize("problem", ["poisson2d", "cavity2d"])
def test_reference_round_trip(tmp_path, fmt, problem):
    prob = get_problem(problem, {"ref_n": 16} if problem == "cavity2d" else None)
    x = prob.domain.interior(40, np.random.default_rng(0))
    u = np.random.default_rng(1).standard_normal((40,) if prob.fields == 1 else (40, prob.fields))
    path = tmp_path / f"ref.{fmt}"
    _write(path, fmt, x, u)
    px, pu = read_reference(str(path), prob)
    np.testing.assert_array_equal(px, x)
    np.testing.assert_array_equal(pu, u)
    ref = prob.with_reference(px, pu)
    np.testing.assert_array_equal(ref.eval_points(), x)  # the evaluation points are the data's
    np.testing.assert_array_equal(ref.exact(torch.as_tensor(x)).numpy(), u)  # exact is the data
    assert ref.exact_closed is prob.exact and ref.reference_data is not None


@pytest.mark.parametrize("content,match", [
    ("dir", "is a directory"),
    ("missing", "does not exist"),
    ("1 2 3 4\n5 6 7 8\n", r"shape \(2, 4\); expected \(n, 3\): columns x0, x1, u"),
    ("0.5 0.5 nan\n", "values of row 0 are not finite"),
    ("0.5 a 1\n0.5 b 1\n", "cannot read it"),
    ("2.5 0.5 1\n", "lies outside the domain"),
    ("npz-keys", "needs arrays 'x'"),
])
def test_bad_reference_files(tmp_path, content, match):
    prob = get_problem("poisson2d")
    path = tmp_path / ("ref.npz" if content == "npz-keys" else "ref.txt")
    if content == "dir":
        path = tmp_path
    elif content == "npz-keys":
        np.savez(path, points=np.zeros((3, 2)), values=np.zeros(3))
    elif content != "missing":
        path.write_text(content)
    with pytest.raises(PinnInputError, match=match) as exc:
        read_reference(str(path), prob)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_time_order_is_checked_against_the_data():
    """A (x, t) file for a (t, x) problem puts points outside the domain: an error naming the columns."""
    def prob(time_first):
        dom = TimeDomain(Box((-1.0,), (1.0,)), 0.0, 1.0, time_first=time_first)
        return Problem("adv", dom, [Block("i", "interior", dom.interior, residual=lambda j, x: j.u)],
                       exact=lambda x: x[:, 0], default_counts={"interior": 4})

    tx = TimeDomain(Box((-1.0,), (1.0,)), 0.0, 1.0).interior(30, np.random.default_rng(0))
    xt, u = tx[:, ::-1].copy(), np.ones(30)
    assert prob(False).with_reference(xt, u).reference_data is not None
    with pytest.raises(PinnInputError, match=r"outside the domain.*columns must be t, x0, u"):
        prob(True).with_reference(xt, u)


def test_problem_with_reference_only_and_rel_l2_uses_the_data():
    from pinntao.objective import PinnObjective

    box = Box((0.0, 0.0), (1.0, 1.0))
    x = box.interior(25, np.random.default_rng(3))
    v = np.sin(x[:, 0]) + x[:, 1]
    prob = Problem("data_only", box, [Block("i", "interior", box.interior, residual=lambda j, x: j.u)],
                   reference=(x, v), default_counts={"interior": 10})
    obj = PinnObjective(prob, build_mlp(2, (5,), "tanh", torch.float64, "cpu"), seed=0)
    th = obj.initial_vec()
    u = obj.evaluate(th, x)
    assert obj.rel_l2(th) == pytest.approx(np.linalg.norm(u - v) / np.linalg.norm(v), rel=1e-12)
    with pytest.raises(PinnInputError, match="give exact="):
        Problem("nothing", box, prob.blocks, default_counts={"interior": 10})
    with pytest.raises(PinnInputError, match=r"values of shape \(24,\); expected \(25,\)"):
        Problem("bad", box, prob.blocks, reference=(x, v[:-1]))


def test_cli_reference_file(tmp_path):
    """The data at the evaluation grid reproduce the exact-solution run's rel_l2; doubled data change
    it; a bad file is one error line, exit 2."""
    prob = get_problem("poisson1d")
    x = prob.eval_points()
    u = prob.exact(torch.as_tensor(x)).numpy()
    _write(tmp_path / "same.csv", "csv", x, u)
    _write(tmp_path / "twice.npz", "npz", x, 2 * u)
    args = ["-pinn_problem", "poisson1d", "-tao_max_it", "5", "-pinn_layers", "8"]
    reps = {}
    for name, extra in (("exact", []), ("same", ["-pinn_reference", str(tmp_path / "same.csv")]),
                        ("twice", ["-pinn_reference", str(tmp_path / "twice.npz")])):
        proc = run_pinntao(*args, *extra, "-pinn_report", str(tmp_path / f"{name}.json"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        reps[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert reps["same"]["rel_l2"] == pytest.approx(reps["exact"]["rel_l2"], rel=1e-12)
    assert abs(reps["twice"]["rel_l2"] - reps["exact"]["rel_l2"]) > 1e-3
    (tmp_path / "bad.txt").write_text("0.5 1 2\n")
    proc = run_pinntao(*args, "-pinn_reference", str(tmp_path / "bad.txt"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "expected (n, 2): columns x0, u" in proc.stderr
