"""The command line: bad input gives one clear error line and a non-zero exit; reports."""

import json

import pytest
from conftest import run_pinntao


@pytest.mark.parametrize(
    "args, expect",
    [
        (["-pinn_problem", "poisson9d"], "allowed: "),
        (["-pinn_layers", "20,x,20"], "positive integers"),
        (["-pinn_layers", "20,0"], "positive integers"),
        (["-pinn_n_interior", "0"], "must be > 0"),
        (["-pinn_n_boundary", "-5"], "must be > 0"),
        (["-pinn_device", "tpu"], "allowed: auto, cpu, cuda"),
        (["-pinn_activation", "relu9"], "allowed: "),
        (["-pinn_hessian", "bfgs"], "allowed: gauss_newton, exact"),
        (["-pinn_optimizer", "magic"], "allowed: "),
        (["-pinn_load", "/nonexistent/theta.npy", "-tao_max_it", "1"], "cannot read"),
    ],
)
def test_bad_input_is_one_clear_error(args, expect):
    proc = run_pinntao(*args)
    assert proc.returncode == 2
    assert "pinntao: error:" in proc.stderr and expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_every_option():
    from pinntao.cli import cli_options

    proc = run_pinntao("-help")
    assert proc.returncode == 0, proc.stderr
    for name in cli_options().options:
        assert f"-pinn_{name} <" in proc.stdout
    for flag in ("-tao_ng_pc_sketch_rank <50>", "-tao_ng_pc_sketch_passes <2>", "-tao_ng_pc_engd_form <auto>",
                 "-tao_ng_ls_steps <31>",
                 "-tao_adam_lr <0.001>", "-pinn_param_kappa <0.25>"):
        assert flag in proc.stdout, flag
    assert "-tao_type" in proc.stdout  # PETSc's own TAO options are listed too


def test_report_contents(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_pinntao(
        "-pinn_problem", "poisson1d", "-tao_max_it", "30", "-pinn_monitor_every", "5", "-pinn_report", str(rep)
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(rep.read_text())
    for key in (
        "problem",
        "n_params",
        "ranks",
        "tao_type",
        "method",
        "iterations",
        "converged_reason",
        "loss",
        "rel_l2",
        "wall_s",
        "history",
    ):
        assert key in data
    assert data["problem"] == "poisson1d" and data["tao_type"] == "lmvm" and data["iterations"] == 30
    its = [h[0] for h in data["history"]]
    assert its[0] == 0 and its[-1] == 30 and all(len(h) == 4 for h in data["history"])
    assert data["history"][-1][2] < data["history"][0][2]
    assert "rel_l2=" in proc.stdout


def test_unwritable_report_is_an_error():
    proc = run_pinntao("-pinn_problem", "poisson1d", "-tao_max_it", "1", "-pinn_report", "/nonexistent/dir/r.json")
    assert proc.returncode == 2 and "cannot write" in proc.stderr


def test_report_states_status_and_outputs(tmp_path):
    rep, ck = tmp_path / "r.json", tmp_path / "c.npy"
    proc = run_pinntao("-pinn_problem", "poisson1d", "-tao_max_it", "12", "-pinn_report", str(rep),
                       "-pinn_checkpoint", str(ck), "-pinn_checkpoint_every", "5")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(rep.read_text())
    assert data["status"] == "ok" and data["exit_code"] == 0 and data["loss"] < data["initial_loss"]
    assert data["outputs"]["checkpoint"] == {"path": str(ck), "writes": 4, "failures": 0, "last_error": ""}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy", "c.npy.restart.npz", "r.json"]


def test_progress_line():
    proc = run_pinntao("-pinn_problem", "poisson1d", "-tao_max_it", "20", "-tao_gatol", "0", "-tao_grtol", "0",
                       "-pinn_progress", "10")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("pinntao: it ")]
    assert [ln.split()[2] for ln in lines] == ["0/20", "10/20", "20/20"], proc.stdout
    assert all("loss " in ln and "rel_l2 " in ln and "elapsed " in ln for ln in lines) and "eta " in lines[1]
