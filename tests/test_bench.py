"""The benchmark runner: --quick produces runs, a table, a CSV and figures; it resumes;
bad input fails before any run starts; the plain-torch baselines train."""

import json
import sys

import pytest
from conftest import run_cmd

from pinntao.bench.baselines import run as torch_run
from pinntao.bench.runner import BenchInputError, parse_method, time_to


def _bench(*args, timeout=600):
    return run_cmd([sys.executable, "-m", "pinntao.bench", *args], timeout=timeout)


def test_quick_bench_table_figures_and_resume(tmp_path):
    out = tmp_path / "b"
    proc = _bench("--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out / "tables.md").read_text()
    for method in ("lbfgs", "sngd", "torch_adam"):
        assert f"| {method} |" in table
    assert "Bridge overhead" in table
    assert (out / "fig_poisson1d_error.png").stat().st_size > 10_000
    assert (out / "fig_poisson1d_fields.png").stat().st_size > 10_000
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("problem,method")
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert runs == ["poisson1d__lbfgs__s0.json", "poisson1d__sngd__s0.json", "poisson1d__torch_adam__s0.json"]
    rep = json.loads((out / "runs" / "poisson1d__sngd__s0.json").read_text())
    assert rep["iterations"] == 20 and rep["method"] == "sngd"
    # resume: a second run keeps every finished run
    again = _bench("--quick", "--out", str(out), "--no-figures")
    assert again.returncode == 0 and again.stdout.count("done before, kept") == 3


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--problems", "poisson7d"], "unknown problem"),
        (["--methods", "warp_drive"], "unknown method"),
        (["--max-it", "0"], "--max-it must be > 0"),
        (["--time-limit", "-1"], "--time-limit"),
        (["--seeds", "a,b"], "--seeds"),
        (["--out", "/proc/forbidden/x"], "not writable"),
    ],
)
def test_bad_bench_input_fails_before_work(args, expect, tmp_path):
    proc = _bench(*args, *([] if "--out" in args else ["--out", str(tmp_path / "o")]))
    assert proc.returncode == 2 and expect in proc.stderr, proc.stderr
    assert not list((tmp_path / "o" / "runs").glob("*.json")) if (tmp_path / "o").exists() else True


def test_method_specs():
    assert parse_method("sngd").options == ("-pinn_optimizer", "sngd")
    assert parse_method("torch_lbfgs").kind == "torch"
    raw = parse_method("big=-pinn_optimizer sngd -tao_ng_pc_sketch_rank 100")
    assert raw.label == "big" and raw.options[-1] == "100"
    with pytest.raises(BenchInputError):
        parse_method("=-tao_type lmvm")


def test_time_to_accuracy():
    hist = [[0, 0.0, 1.0, 1.0], [10, 1.5, 0.1, 2e-3], [20, 3.0, 0.01, 5e-4]]
    assert time_to(hist, 1e-3) == 3.0
    assert time_to(hist, 1e-5) is None


@pytest.mark.parametrize("method", ["torch_adam", "torch_lbfgs"])
def test_torch_baselines_train(method):
    rep = torch_run("poisson1d", method, max_it=60, monitor_every=20)
    assert rep["iterations"] == 60 and len(rep["theta"]) == rep["n_params"]
    assert rep["history"][-1][2] < rep["history"][0][2]  # the loss fell


def test_paper_values_belong_to_their_network():
    """The paper's numbers are looked up by network: heat A2 (P = 5,301) gets the A2 values, not
    A1's; two-pass and one-pass rows differ; another network gets no paper value."""
    from pinntao.bench.papers import paper_result

    assert paper_result("heat1d", "sngd_paper", 5301).startswith("1.24e-8")
    assert paper_result("heat1d", "sngd1", 5301).startswith("7.87e-9")
    assert paper_result("heat1d", "engd", 5301).startswith("5.66e-7")
    assert paper_result("heat1d", "lbfgs", 5301).startswith("3.65e-6")
    assert paper_result("heat1d", "sngd_paper", 261).startswith("1.49e-7")
    assert paper_result("poisson2d", "sngd_paper", 1341).startswith("1.21e-8")
    assert paper_result("poisson2d", "sngd1", 1341).startswith("9.46e-9")
    assert paper_result("poisson2d", "sngd_paper", 5425) is None
    assert paper_result("nonlinear1d_neumann", "engd", 901) is None
    assert paper_result("poisson2d", "sngd") is None
