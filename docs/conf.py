"""Sphinx configuration: build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "skyproto"
author = "the skyproto authors"
copyright = "the skyproto authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "attrs_signatures",
    "cli_reference",
    "root_pages",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = "skyproto"


#: Pages the index lists once they exist (Teams Free and Trouter are being written).
OPTIONAL_PAGES = ("teams", "trouter")


def _drop_missing_optional_pages(app: object, docname: str, source: list[str]) -> None:
    if docname != "index":
        return
    for page in OPTIONAL_PAGES:
        if not (HERE / f"{page}.md").exists():
            source[0] = re.sub(rf"^{page}\n", "", source[0], flags=re.MULTILINE)


def setup(app: object) -> None:
    app.connect("source-read", _drop_missing_optional_pages)  # type: ignore[attr-defined]
