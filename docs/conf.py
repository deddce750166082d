"""Sphinx configuration: build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

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


#: A part of a page that documents a module only while the module exists.
OPTIONAL_PART = re.compile(
    r"^<!-- optional: ([\w.]+) .*?-->\n.*?^<!-- end optional -->\n", re.MULTILINE | re.DOTALL
)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _drop_missing_optional_parts(app: object, docname: str, source: list[str]) -> None:
    if docname == "index":
        for page in OPTIONAL_PAGES:
            if not (HERE / f"{page}.md").exists():
                source[0] = re.sub(rf"^{page}\n", "", source[0], flags=re.MULTILINE)
    source[0] = OPTIONAL_PART.sub(
        lambda part: part.group(0) if _module_exists(part.group(1)) else "", source[0]
    )


def _public(bases: tuple[type, ...] | list[type]) -> list[type]:
    """``bases`` with each private class (``_WithResponse``) replaced by its own public bases."""
    public: list[type] = []
    for base in bases:
        for kept in _public(base.__bases__) if base.__name__.startswith("_") else [base]:
            if kept not in public:
                public.append(kept)
    return public


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show a public class's public ancestors under "Bases:", never a private helper."""
    bases[:] = _public(bases)


def _no_constructor_return(
    app: Any, what: str, name: str, obj: object, options: object, signature: str, ret: str
) -> None:
    """A class's signature is its ``__init__``'s: "Return type: None" would only be noise."""
    if what in ("class", "exception"):
        app.env.current_document.autodoc_annotations.get(name, {}).pop("return", None)


def setup(app: object) -> None:
    app.connect("source-read", _drop_missing_optional_parts)  # type: ignore[attr-defined]
    app.connect("autodoc-process-bases", _public_bases)  # type: ignore[attr-defined]
    # After sphinx.ext.autodoc.typehints has recorded the annotations (priority 500).
    app.connect("autodoc-process-signature", _no_constructor_return, priority=600)  # type: ignore[attr-defined]
