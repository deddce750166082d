"""The documentation site builds with warnings as errors, so CI catches a broken page or docstring.

Skipped only when Sphinx (or the theme and the Markdown parser) is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
