"""Examples run as documented; docs/options.md matches the option registry."""

import sys

from conftest import ROOT, run_cmd, run_mpi

from pinntao.docs import options_markdown


def test_custom_pde_example_trains():
    proc = run_cmd([sys.executable, "examples/custom_pde.py", "-tao_max_it", "40"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = float(proc.stdout.split("rel_l2=")[1].split()[0])
    assert err < 1e-3, proc.stdout


def test_main_example_on_two_ranks():
    proc = run_mpi(2, ["examples/poisson2d.py", "-tao_max_it", "8"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ranks=2" in proc.stdout and "iterations=8" in proc.stdout and "tao=python" in proc.stdout


def test_options_doc_is_current():
    doc = (ROOT / "docs" / "options.md").read_text()
    assert doc == options_markdown(), "regenerate: python -m pinntao.docs > docs/options.md"
