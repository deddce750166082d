"""Pages kept at the repository root (``SECURITY.md``, ``CHANGELOG.md``) are part of the site.

Each is included by a page in ``docs/`` (``security.md``, ``changelog.md``). Their Markdown links
are written for a reader browsing the repository, so on reading a page this rewrites the links
that leave ``docs/``: ``../SECURITY.md`` from a page in ``docs/``, and ``docs/protocol.md`` or
``SECURITY.md`` from an included root file, to the site's own pages. Nothing else is touched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Root file -> the page of the site that includes it.
ROOT_PAGES = {"SECURITY.md": "security.md", "CHANGELOG.md": "changelog.md"}
_FROM_DOCS = re.compile(r"\]\(\.\./(" + "|".join(map(re.escape, ROOT_PAGES)) + r")([#)])")
_FROM_ROOT = re.compile(r"\]\((" + "|".join(map(re.escape, ROOT_PAGES)) + r")([#)])")
_INTO_DOCS = re.compile(r"\]\(docs/")


def _from_docs(text: str) -> str:
    return _FROM_DOCS.sub(lambda m: f"]({ROOT_PAGES[m.group(1)]}{m.group(2)}", text)


def _from_root(text: str) -> str:
    text = _INTO_DOCS.sub("](", text)
    return _FROM_ROOT.sub(lambda m: f"]({ROOT_PAGES[m.group(1)]}{m.group(2)}", text)


def _on_source(app: Any, docname: str, source: list[str]) -> None:
    source[0] = _from_docs(source[0])


def _on_include(app: Any, relative_path: Path, parent_docname: str, content: list[str]) -> None:
    if Path(relative_path).name in ROOT_PAGES:
        content[0] = _from_root(content[0])


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _on_source)
    app.connect("include-read", _on_include)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
