"""Examples run as documented; docs/options.md matches the option registry."""

import sys

from conftest import ROOT, run_cmd, run_mpi

from pinntao.docs import options_markdown


def test_custom_pde_example_trains():
    proc = run_cmd([sys.executable, "examples/custom_pde.py", "-tao_max_it", "80"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = float(proc.stdout.split("rel_l2=")[1].split()[0])
    assert err < 1e-3, proc.stdout


def test_custom_geometry_example_trains():
    """Poisson on a plate with holes (CSG domain, Dirichlet and Neumann pieces) through the Trainer."""
    proc = run_cmd([sys.executable, "examples/custom_geometry.py", "-tao_max_it", "40"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = float(proc.stdout.split("rel_l2=")[1].split()[0])
    assert err < 1e-2, proc.stdout


def test_main_example_on_two_ranks():
    proc = run_mpi(2, ["examples/poisson2d.py", "-tao_max_it", "8"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ranks=2" in proc.stdout and "iterations=8" in proc.stdout and "tao=python" in proc.stdout


def test_options_doc_is_current():
    doc = (ROOT / "docs" / "options.md").read_text()
    assert doc == options_markdown(), "regenerate: python -m pinntao.docs > docs/options.md"


def test_docs_build_without_warnings(tmp_path):
    """The Sphinx site (MyST pages + API reference from the docstrings) builds with -W."""
    proc = run_cmd([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs",
                    str(tmp_path / "html")])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (tmp_path / "html" / "api.html").read_text().count("pinntao.train.Trainer") > 0


def test_docs_cite_only_files_in_the_repository():
    """Every relative link in README and docs/ resolves inside the repository, and no page points
    at the developers' notes outside it."""
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        assert "shared/" not in text and "../shared" not in text, page.name
        for target in re.findall(r"\]\(([\w./-]+\.(?:md|png|py|opts|json|sh|txt))\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (page.parent / target).resolve()
            assert path.exists() and ROOT in path.parents, f"{page.name}: broken link {target}"
