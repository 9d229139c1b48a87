"""Sphinx configuration: the markdown pages (MyST) plus an API reference from the docstrings.

Build: ``python -m sphinx -W -b html docs build/docs`` (the test suite does it, warnings as errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

project = "pinntao"
author = "the pinntao developers"
copyright = "2026, the pinntao developers"  # noqa: A001
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "figures/*.md"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# the benchmark tables are generated with #### headings under ## sections
suppress_warnings = ["myst.header"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures carry petsc4py/torch types Sphinx cannot resolve
autodoc_default_options = {"members": True, "undoc-members": False}
html_theme = "alabaster"
html_static_path: list[str] = []
