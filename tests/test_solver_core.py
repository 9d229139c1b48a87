"""One solver core (issue 17): presets as object defaults, a clear error without an operator,
prefixed Trainer settings, restart with another solver refused, misspelt object options,
evaluate-only runs, the registry, -help / -tao_view, and the docs' example solver."""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap

import pytest
from conftest import ROOT, petsc_options, run_cmd, run_pinntao
from helpers import tiny_objective
from petsc4py import PETSc

from pinntao import PinnInputError
from pinntao.train import Trainer

TINY = ["-pinn_problem", "poisson1d", "-pinn_layers", "6", "-pinn_n_interior", "20"]


@pytest.fixture
def scoped_db():
    db = PETSc.Options()
    before = set(db.getAll())
    yield db
    for key in set(db.getAll()) - before:
        db.delValue(key)


# -- presets are object defaults ----------------------------------------------------------------
def test_preset_leaves_nothing_in_the_database_for_a_later_tao_or_trainer(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,))
    before = set(scoped_db.getAll())
    first = Trainer(obj, optimizer="sngd")
    assert first.tao.getPythonContext().__class__.__name__ == "NaturalGradient"
    assert set(scoped_db.getAll()) == before  # nothing left behind
    tao = PETSc.TAO().create()
    tao.setFromOptions()  # a user's unrelated Tao
    assert tao.getType() != "python"
    tao.destroy()
    second = Trainer(obj, optimizer="lbfgs")
    assert second.tao.getType() == "lmvm" and second.method == "lbfgs"


def test_schedule_stage_presets_leave_nothing_behind(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,))
    before = set(scoped_db.getAll())
    trainer = Trainer(obj, optimizer="isgd_lbfgs")
    stages = trainer.tao.getPythonContext().stages
    assert [s.getType() for s in stages] == ["python", "lmvm"]
    assert set(scoped_db.getAll()) == before


def test_optimizer_view_and_options_left_with_a_preset():
    proc = run_pinntao(*TINY, "-pinn_optimizer", "isgd_adam", "-tao_max_it", "2", "-isgd_tao_isgd_alpha", "0.25",
                       "-pinn_optimizer_view", "-options_left")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "-isgd_tao_isgd_alpha 0.25   (yours; preset: 0.5)" in proc.stdout
    assert "There are no unused options" in proc.stdout, proc.stdout[-1500:]


# -- operators ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["NaturalGradient", "ImplicitGD", "Spring", "Adam"])
def test_pinntao_type_on_a_tao_without_its_operator_is_one_clear_error(name, tmp_path):
    """A Tao with only f and ∇f (no pinntao Hessian): SEGV (NaturalGradient, ImplicitGD) or a raw
    PETSc error before; now one PinnInputError naming what is missing (Adam simply runs)."""
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import petsc4py
        petsc4py.init(sys.argv)
        from petsc4py import PETSc
        from pinntao import PinnInputError
        x = PETSc.Vec().createSeq(3)
        x.set(1.0)
        def fg(tao, x, g):
            x.copy(g)
            return 0.5 * x.dot(x)
        tao = PETSc.TAO().create(PETSc.COMM_SELF)
        tao.setType("python")
        tao.setPythonType("pinntao.solvers.{name}")
        tao.setObjectiveGradient(fg, x.duplicate())
        tao.setObjective(lambda t, x: 0.5 * x.dot(x))
        tao.setSolution(x)
        tao.setMaximumIterations(3)
        {"tao.setFromOptions()" if name != "ImplicitGD" else ""}
        try:
            tao.solve()
        except PETSc.Error:
            print("ERROR:", PinnInputError.last)
            sys.exit(2)
        print("RAN", tao.getIterationNumber())
    """))
    extra = ["-tao_isgd_type", "linearized"] if name == "ImplicitGD" else []
    proc = run_cmd([sys.executable, str(script), *extra], timeout=120)
    if name == "Adam":
        assert proc.returncode == 0 and "RAN 3" in proc.stdout, proc.stderr[-1500:]
        return
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert "needs" in proc.stdout and "Hessian" in proc.stdout, proc.stdout


def test_setup_tao_honours_the_prefixed_hessian_option(scoped_db):
    from pinntao.objective import HessianContext

    obj = tiny_objective("poisson1d", layers=(6,))
    tao = PETSc.TAO().create()
    tao.setOptionsPrefix("q_")
    with petsc_options(q_pinn_hessian="exact"):
        obj.setup_tao(tao)
    assert isinstance(tao.getHessian()[0].getPythonContext(), HessianContext)
    tao.destroy()


# -- Trainer settings under its prefix ----------------------------------------------------------
def test_trainer_reads_adaptive_training_under_its_prefix(scoped_db, tmp_path):
    obj = tiny_objective("poisson1d", layers=(6,))
    rep = tmp_path / "r.json"
    with petsc_options(w_pinn_optimizer="adam", w_tao_max_it=4, w_pinn_weights="annealing", w_pinn_weights_every=2,
                       w_pinn_report=rep):
        trainer = Trainer(obj, prefix="w_")
    trainer.solve()
    data = json.loads(rep.read_text())
    assert [w["iteration"] for w in data["weights"]] == [0, 2, 4]


def test_trainer_refuses_point_counts_it_cannot_apply(scoped_db):
    obj = tiny_objective("poisson1d", layers=(6,), n_int=20)
    with petsc_options(p_pinn_n_interior=50), pytest.raises(PinnInputError, match="fixed when the PinnObjective"):
        Trainer(obj, prefix="p_")
    with petsc_options(p_pinn_n_interior=20):
        Trainer(obj, prefix="p_")  # what the objective has: fine


def test_trainer_restarts_from_its_prefixed_option(scoped_db, tmp_path):
    obj = tiny_objective("poisson1d", layers=(6,))
    ck = tmp_path / "ck.npy"
    with petsc_options(a_pinn_optimizer="adam", a_tao_max_it=3, a_pinn_checkpoint=ck):
        _, first = Trainer(obj, prefix="a_").solve()
    with petsc_options(b_pinn_optimizer="adam", b_tao_max_it=5, b_pinn_restart=ck):
        trainer = Trainer(obj, prefix="b_")
        _, res = trainer.solve()
    assert res.iterations == 5 and res.initial_loss == first.initial_loss
    assert trainer.tao.getIterationNumber() == 2  # iterations 4 and 5 only: it continued from the checkpoint


def test_restart_with_another_optimizer_is_refused(tmp_path):
    ck = tmp_path / "ck.npy"
    proc = run_pinntao(*TINY, "-pinn_optimizer", "sngd", "-tao_max_it", "3", "-pinn_checkpoint", str(ck))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_pinntao(*TINY, "-pinn_optimizer", "adam", "-tao_max_it", "6", "-pinn_restart", str(ck))
    assert proc.returncode == 2, proc.stdout[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "-pinn_optimizer sngd" in lines[0] and "adam" in lines[0], proc.stderr


@pytest.mark.parametrize("flag", ["-tao_isgd_alpah", "-tao_ng_pc_sketch_rnak"])
def test_misspelt_option_of_a_pinntao_object_says_did_you_mean(flag):
    preset = "isgd" if "isgd" in flag else "sngd"
    proc = run_pinntao(*TINY, "-pinn_optimizer", preset, "-tao_max_it", "2", flag, "5")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "did you mean" in proc.stderr and flag in proc.stderr, proc.stderr


def test_evaluate_only_run(tmp_path):
    th, rep = tmp_path / "t.npy", tmp_path / "r.json"
    proc = run_pinntao(*TINY, "-tao_type", "lmvm", "-tao_max_it", "5", "-pinn_save", str(th))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_pinntao(*TINY, "-pinn_optimizer", "sngd", "-pinn_load", str(th), "-tao_max_it", "0",
                       "-pinn_report", str(rep))
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(rep.read_text())
    assert data["iterations"] == 0 and math.isfinite(data["rel_l2"]) and data["loss"] == data["initial_loss"]
    assert "evaluate-only" in data["message"]


# -- registry, help, view ------------------------------------------------------------------------
def test_every_preset_names_a_registered_solver():
    from pinntao.presets import PRESETS
    from pinntao.registry import PCS, solvers

    reg = solvers()
    for name, (_, opts) in PRESETS.items():
        for key, value in opts:
            if key.endswith("tao_python_type"):
                assert value in reg, (name, value)
            if key.endswith("pc_python_type"):
                assert value in PCS, (name, value)


def test_help_in_a_trainer_script_lists_prefixed_run_options_once(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import sys
        import petsc4py
        petsc4py.init(sys.argv)
        sys.path.insert(0, sys.argv[-1])
        from helpers import tiny_objective
        from pinntao import Trainer
        Trainer(tiny_objective("poisson1d", layers=(6,)), prefix="z_")
    """))
    proc = run_cmd([sys.executable, str(script), "-help", "-z_pinn_optimizer", "sngd", "-z_pinn_time_limit", "9",
                    "-z_tao_ng_pc_sketch_rank", "7", str(ROOT / "tests")], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "-z_pinn_time_limit <now 9 : formerly 0.0>" in out, out[:3000]
    assert "-z_pinn_checkpoint <>" in out
    assert out.count("-z_tao_ng_pc_sketch_rank ") == 1 and "-z_tao_ng_pc_sketch_rank <now 7" in out


def test_tao_view_prints_the_ksp_once_with_its_prefix_and_the_current_alpha():
    proc = run_pinntao(*TINY, "-pinn_optimizer", "isgd_linearized", "-tao_max_it", "3", "-tao_view")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.count("KSP Object: (tao_isgd_)") == 1, out
    alpha = re.search(r"alpha=([0-9.e+-]+)", out)
    assert alpha and float(alpha.group(1)) != 0.1, out  # α grew ×2 per accepted step


# -- the docs' example solver --------------------------------------------------------------------
def _doc_example() -> str:
    text = (ROOT / "docs" / "writing_a_solver.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)[0]


def test_writing_a_solver_example_trains(scoped_db):
    code = _doc_example()
    assert len(code.strip().splitlines()) <= 30
    ns: dict = {}
    exec(compile(code, "writing_a_solver.md", "exec"), ns)
    obj = tiny_objective("poisson1d", layers=(6,))
    tao = PETSc.TAO().create()
    tao.setType(PETSc.TAO.Type.PYTHON)
    tao.setPythonContext(ns["GradientDescent"]())
    tao.setOptionsPrefix("gd_")
    with petsc_options(gd_tao_max_it=20, gd_tao_gd_lr=0.01):
        trainer = Trainer(obj, tao=tao, prefix="gd_")
    _, res = trainer.solve()
    assert res.iterations == 20 and res.loss < res.initial_loss, res
    with petsc_options(gd_tao_gd_lrr=0.1), pytest.raises(PETSc.Error):
        tao.setFromOptions()  # misspelt: did you mean -gd_tao_gd_lr
    assert "did you mean -gd_tao_gd_lr" in str(PinnInputError.last)
