"""Embedding pinntao in a PETSc program: prefixes, scoped presets, Trainer options, θ files,
construction checks (issue 12)."""

from __future__ import annotations

import json
import math
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from conftest import ROOT, petsc_options, run_cmd, run_mpi, run_pinntao
from helpers import tiny_objective
from petsc4py import PETSc
from torch import nn

from pinntao import Block, Box, PinnInputError, Problem, build_mlp
from pinntao.models import FlatModel
from pinntao.objective import PinnObjective
from pinntao.pc import ExactPseudoInverse, SketchedPseudoInverse
from pinntao.presets import apply_preset
from pinntao.train import Trainer


@pytest.fixture
def scoped_db():
    """Remove every option a test (or a preset it applied) added to the global database."""
    db = PETSc.Options()
    before = set(db.getAll())
    yield db
    for key in set(db.getAll()) - before:
        db.delValue(key)


def _pc_ctx(trainer: Trainer):
    return trainer.tao.getKSP().getPC().getPythonContext()


def test_prefixed_ng_solve_takes_its_pc_from_prefixed_options(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,))
    with petsc_options(a_pinn_optimizer="sngd", a_tao_ng_pc_python_type="pinntao.pc.ExactPseudoInverse",
                       a_tao_max_it=2):
        trainer = Trainer(obj, prefix="a_")
    assert trainer.tao.getKSP().getOptionsPrefix() == "a_tao_ng_"
    assert isinstance(_pc_ctx(trainer), ExactPseudoInverse)
    with petsc_options(b_pinn_optimizer="sngd", b_tao_ng_pc_sketch_rank=20):
        trainer_b = Trainer(obj, prefix="b_")
    assert isinstance(_pc_ctx(trainer_b), SketchedPseudoInverse) and _pc_ctx(trainer_b).opts["rank"] == 20
    _, res = trainer.solve()
    assert res.iterations == 2 and math.isfinite(res.loss)


def test_prefix_set_after_type_still_reaches_the_ksp(scoped_db):
    """A Tao typed first and prefixed later (what a user may do) re-prefixes its KSP in setFromOptions."""
    obj = tiny_objective("poisson1d", layers=(6,))
    tao = PETSc.TAO().create()
    tao.setType("python")
    tao.setPythonType("pinntao.solvers.NaturalGradient")
    tao.setOptionsPrefix("late_")
    obj.setup_tao(tao)
    with petsc_options(late_tao_ng_pc_python_type="pinntao.pc.ExactPseudoInverse"):
        tao.setFromOptions()
    assert tao.getKSP().getOptionsPrefix() == "late_tao_ng_"
    assert isinstance(tao.getKSP().getPC().getPythonContext(), ExactPseudoInverse)
    tao.destroy()


def test_preset_leaves_a_users_own_ksp_alone(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,))
    Trainer(obj, optimizer="sngd")  # no prefix: the most exposed case
    assert not any(k.startswith(("ksp_", "pc_")) for k in scoped_db.getAll())
    ksp = PETSc.KSP().create()
    ksp.setFromOptions()
    assert ksp.getType() == "gmres" and ksp.getPC().getType() != "python"
    ksp.destroy()


def test_apply_preset_on_a_prefixed_database_configures_that_trainer(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,))
    apply_preset("engd", db=PETSc.Options("c_"))
    assert isinstance(_pc_ctx(Trainer(obj, prefix="c_")), ExactPseudoInverse)


def test_two_prefixed_trainers_differ_as_configured(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,))
    with petsc_options(s_pinn_optimizer="sngd", e_pinn_optimizer="engd", l_tao_type="lmvm"):
        ts, te = Trainer(obj, prefix="s_"), Trainer(obj, prefix="e_")
        tl = Trainer(obj, prefix="l_", optimizer="sngd")  # the user chose a solver: the default preset steps aside
    assert type(_pc_ctx(ts)) is SketchedPseudoInverse and type(_pc_ctx(te)) is ExactPseudoInverse
    assert tl.tao.getType() == "lmvm" and tl.method == ""
    assert not any(k.startswith("l_tao_ng_") for k in scoped_db.getAll())


def test_run_settings_come_from_prefixed_options(scoped_db, tmp_path):
    obj = tiny_objective("poisson1d", layers=(6,))
    rep, th = tmp_path / "r.json", tmp_path / "theta.bin"
    with petsc_options(r_tao_type="lmvm", r_tao_max_it=7, r_pinn_monitor_every=3, r_pinn_report=rep,
                       r_pinn_save=th, r_pinn_time_limit=600):
        trainer = Trainer(obj, prefix="r_", monitor_every=50, time_limit=1.0)  # options beat keywords
    assert trainer.monitor_every == 3 and trainer.time_limit == 600
    x, res = trainer.solve()
    data = json.loads(rep.read_text())
    assert data["iterations"] == res.iterations == 7 and data["prefix"] == "r_"
    assert [row[0] for row in data["history"]][:3] == [0, 3, 6]
    viewer = PETSc.Viewer().createBinary(str(th), "r")
    v = PETSc.Vec().load(viewer)  # what VecLoad makes of -pinn_save
    np.testing.assert_array_equal(v.getArray(), obj.gather(x).numpy())


def test_trainer_lifts_taos_function_evaluation_cap(scoped_db):
    """TAO's default of 4000 evaluations ended L-BFGS runs with DIVERGED_MAXFCN long before
    -tao_max_it; a Trainer-made Tao has no cap unless -tao_max_funcs sets one."""
    obj = tiny_objective("poisson1d", layers=(4,), n_int=20, n_bnd=2)
    with petsc_options(m_tao_type="lmvm", m_tao_max_it=4200, m_tao_gatol=0, m_tao_grtol=0, m_tao_gttol=0,
                       m_pinn_monitor_every=1000):
        trainer = Trainer(obj, prefix="m_")
    _, res = trainer.solve()
    assert res.converged_reason != "DIVERGED_MAXFCN", res
    assert trainer.tao.getIterationNumber() > 0
    evals = obj.counts["objective"] + obj.counts["gradient"]
    assert res.iterations >= 4000 or res.converged_reason.startswith("DIVERGED_LINE"), (res.iterations, evals)
    with petsc_options(n_tao_type="lmvm", n_tao_max_funcs=50):
        assert Trainer(obj, prefix="n_").tao.getMaximumFunctionEvaluations() == 50


def test_optimizer_view_prints_the_options_in_effect():
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "sngd", "-tao_ng_pc_sketch_rtol", "1e-16",
                       "-pinn_optimizer_view", "-tao_max_it", "1")
    assert proc.returncode == 0, proc.stderr
    assert "-tao_ng_pc_sketch_rtol 1e-16   (yours; preset: 1e-18)" in proc.stdout
    assert "-tao_ng_pc_python_type pinntao.pc.SketchedPseudoInverse" in proc.stdout


def test_example_honours_run_options_and_a_users_solver(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_cmd([sys.executable, "examples/poisson2d.py", "-tao_type", "lmvm", "-tao_max_it", "6",
                    "-pinn_report", str(rep), "-pinn_monitor_every", "2", "-options_left"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(rep.read_text())
    assert data["tao_type"] == "lmvm" and data["method"] == "lmvm" and data["iterations"] == 6
    assert [row[0] for row in data["history"]] == [0, 2, 4, 6]
    assert "There are no unused options" in proc.stdout, proc.stdout[-1500:]


def test_embed_example_two_prefixed_solves_nothing_unused():
    proc = run_mpi(2, ["examples/embed_existing_tao.py", "-options_file", "examples/solver.opts",
                       "-a_tao_max_it", "3", "-b_tao_max_it", "3", "-options_left"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "a_: tao=nls ksp prefix=a_tao_nls_ pc=pinntao.pc.SketchedPseudoInverse" in out
    assert "b_: tao=python ksp prefix=b_tao_ng_ pc=pinntao.pc.ExactPseudoInverse" in out
    assert "There are no unused options" in out, out[-1500:]


def test_binary_theta_round_trip_one_to_two_ranks(tmp_path):
    th, r1, r2 = tmp_path / "theta.bin", tmp_path / "r1.json", tmp_path / "r2.json"
    common = ["-m", "pinntao", "-pinn_problem", "poisson1d", "-pinn_layers", "8", "-tao_type", "lmvm"]
    proc = run_cmd([sys.executable, *common, "-tao_max_it", "5", "-pinn_save", str(th), "-pinn_report", str(r1)])
    assert proc.returncode == 0, proc.stderr
    proc = run_mpi(2, [*common, "-tao_max_it", "1", "-pinn_load", str(th), "-pinn_report", str(r2)])
    assert proc.returncode == 0, proc.stderr
    final, start = json.loads(r1.read_text())["loss"], json.loads(r2.read_text())["initial_loss"]
    assert start == pytest.approx(final, rel=1e-12)


def test_vts_holds_the_field_on_the_grid(scoped_db, tmp_path):
    obj = tiny_objective("poisson2d", layers=(5,))
    path = tmp_path / "u.vts"
    with petsc_options(v_tao_type="lmvm", v_tao_max_it=1, v_pinn_vts=path, v_pinn_vts_n=7):
        x, _ = Trainer(obj, prefix="v_").solve()
    root = ET.parse(path).getroot()
    arrays = {a.get("Name"): np.array(a.text.split(), dtype=float) for a in root.iter("DataArray")}
    pts = arrays["points"].reshape(-1, 3)[:, :2]
    assert pts.shape == (49, 2) and root.find("StructuredGrid").get("WholeExtent") == "0 6 0 6 0 0"
    np.testing.assert_allclose(arrays["u"], obj.evaluate(x, pts), rtol=0, atol=1e-14)
    np.testing.assert_allclose(arrays["error"], arrays["u"] - arrays["exact"], atol=1e-14)


def test_evaluate_and_to_module():
    obj = tiny_objective("poisson2d", layers=(5,))
    x = obj.initial_vec(seed=3)
    pts = np.random.default_rng(0).random((11, 2))
    u = obj.evaluate(x, pts)
    module = obj.to_module(x)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.as_tensor(pts)).reshape(-1).numpy(), u, rtol=1e-15)
    fresh = build_mlp(2, (5,), "tanh", torch.float64, "cpu").module
    fresh.load_state_dict(module.state_dict())
    with pytest.raises(PinnInputError, match=r"shape \(n, 2\)"):
        obj.evaluate(x, pts[:, :1])


class _PartlyFrozen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Linear(2, 6)
        self.head = nn.Linear(6, 1)
        self.features.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.features(x)))


def test_frozen_parameters_stay_out_of_theta(scoped_db):
    prob = _poisson_like()
    torch.manual_seed(0)
    model = FlatModel(_PartlyFrozen())
    frozen = model.module.features.weight.detach().clone()
    assert model.n_params == 7  # the head only
    obj = PinnObjective(prob, model, counts={"interior": 20, "boundary": 8}, seed=0)
    with petsc_options(f_tao_type="lmvm", f_tao_max_it=5, f_pinn_init="module"):
        trainer = Trainer(obj, prefix="f_")
    x0 = trainer.initial_vec()
    np.testing.assert_array_equal(obj.gather(x0).numpy(), torch.cat(
        [model.module.head.weight.detach().reshape(-1), model.module.head.bias.detach()]).numpy())
    x, res = trainer.solve(x0)
    assert res.loss < res.initial_loss
    obj.to_module(x)
    assert torch.equal(model.module.features.weight, frozen)


def _poisson_like(exact=None, residual=None, dim: int = 2) -> Problem:
    box = Box((0.0,) * dim, (1.0,) * dim)

    def u_star(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(math.pi * x[:, 0])

    return Problem(
        name="check_me",
        domain=box,
        blocks=[
            Block("interior", "interior", box.interior,
                  residual=residual or (lambda jet, x: -jet.laplacian() - math.pi**2 * u_star(x))),
            Block("boundary", "boundary", lambda n, rng, s: box.faces(n, rng, box.all_faces(), s),
                  residual=lambda jet, x: jet.u - u_star(x), order=0),
        ],
        exact=exact or u_star,
        default_counts={"interior": 20, "boundary": 8},
    )


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("exact_column", r"exact\(\) returns \(2, 1\).*expected shape \(2,\)"),
        ("residual_broadcast", r"block 'interior': the residual returns \(2, 2\)"),
        ("residual_raises", r"block 'interior': the residual failed"),
        ("network_dim", r"block 'interior': the network cannot take points of shape \(2, 2\)"),
        ("network_outputs", r"block 'interior': the network returns shape \(2, 3\)"),
        ("nonfinite", r"block 'interior': the residual is not finite"),
    ],
)
def test_construction_checks_name_the_block(case, match):
    model = build_mlp(2, (4,), "tanh", torch.float64, "cpu")
    kw = {}
    if case == "exact_column":
        kw["exact"] = lambda x: torch.sin(x[:, :1])
    elif case == "residual_broadcast":
        kw["residual"] = lambda jet, x: jet.u - x[:, :1]
    elif case == "residual_raises":
        kw["residual"] = lambda jet, x: jet.dd(5)
    elif case == "nonfinite":
        kw["residual"] = lambda jet, x: jet.u / 0.0
    elif case == "network_dim":
        model = build_mlp(3, (4,), "tanh", torch.float64, "cpu")
    elif case == "network_outputs":
        model = FlatModel(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)))
    prob = _poisson_like(**kw)
    with pytest.raises(PinnInputError, match=match):
        PinnObjective(prob, model, counts={"interior": 10, "boundary": 4}, seed=0)


def test_import_pinntao_does_not_start_petsc():
    code = "import sys, pinntao; assert 'petsc4py.PETSc' not in sys.modules; from pinntao import Trainer, PinnObjective"
    proc = run_cmd([sys.executable, "-c", code], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
