"""The documentation site builds with warnings as errors, so CI catches a broken page or docstring.

Skipped only when Sphinx (or the theme and the Markdown parser) is not installed.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    for module in ("sphinx", "furo", "myst_parser"):
        pytest.importorskip(module)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-j", "1"]
    command += ["-b", "html", "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    html = tmp_path / "html"
    for page in (
        "index",
        "overview",
        "quickstart",
        "sessions",
        "security",
        "cli",
        "api",
        "migrating",
        "changelog",
        "protocol",
        "design",
    ):
        assert (html / f"{page}.html").is_file(), page
    cli = (html / "cli.html").read_text(encoding="utf-8")
    assert "skyproto login" in cli  # rendered from the parser
    assert "--state" in cli
    api = (html / "api.html").read_text(encoding="utf-8")
    assert "skyproto.Session" in api
    assert "skyproto.transports.run_sync" in api
    assert "attr_dict" not in api  # attrs defaults shown as values


def test_the_readme_gives_the_build_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m sphinx -W --keep-going -b html docs docs/_build/html" in readme
    assert "docs/_build/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def load_conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    assert spec is not None
    assert spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


@pytest.mark.parametrize(
    ("module", "kept"), [("skyproto.emulator.core", True), ("skyproto.emulator.nowhere", False)]
)
def test_an_optional_part_is_built_only_while_its_module_exists(module: str, kept: bool) -> None:
    part = f"<!-- optional: {module} (why) -->\n.. automodule:: {module}\n<!-- end optional -->\n"
    source = ["# API\n\n" + part + "after\n"]
    load_conf()._drop_missing_optional_parts(None, "api", source)
    assert source[0] == "# API\n\n" + (part if kept else "") + "after\n"


def test_the_index_lists_the_optional_pages_that_exist() -> None:
    conf = load_conf()
    source = [(DOCS / "index.md").read_text(encoding="utf-8")]
    conf._drop_missing_optional_parts(None, "index", source)
    for page in conf.OPTIONAL_PAGES:
        listed = re.search(rf"^{page}$", source[0], re.MULTILINE) is not None
        assert listed == (DOCS / f"{page}.md").exists(), page
