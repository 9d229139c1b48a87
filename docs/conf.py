"""Sphinx configuration: the markdown pages (MyST) plus an API reference from the docstrings.

Build: ``python -m sphinx -W -b html docs build/docs`` (the test suite does it, warnings as errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

project = "pinntao"
author = "the pinntao developers"
copyright = "2026, the pinntao developers"
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


def _options_table(app, what, name, obj, options, lines):
    """PETSc manual pages' "Options Database Keys": a class with an ``options`` OptionSet (and
    ``extra_options``) gets its options listed under its docstring."""
    if what != "class":
        return
    sets = []
    for oset in (getattr(obj, "options", None), *getattr(obj, "extra_options", ())):
        if oset is not None and hasattr(oset, "options") and hasattr(oset, "prefix") and oset not in sets:
            sets.append(oset)
    if not sets:
        return

    def esc(text: str) -> str:
        for ch in ("\\", "*", "`", "|", "_"):
            text = text.replace(ch, "\\" + ch)
        return text

    lines += ["", "**Options Database Keys** (under the owner's prefix)", ""]
    for oset in sets:
        for o in oset.options.values():
            allowed = f" (one of {', '.join(o.choices)})" if o.choices else ""
            lines.append(f"- ``-{oset.prefix}{o.name} <{o.default_text()}>``: {esc(o.help + allowed)}")
    lines.append("")


def setup(app):
    app.connect("autodoc-process-docstring", _options_table)
