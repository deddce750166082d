"""The README's code runs as written, and its first screen gives exactly the two set-up commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(README.read_text()) if lang == language]


def test_first_screen_gives_the_install_test_and_demo_commands() -> None:
    first_screen = "\n".join(README.read_text().splitlines()[:24])
    shell = blocks("sh")
    assert shell[0].split("\n")[:2] == ['python -m pip install -e ".[dev]"', "./check"]
    assert shell[1].strip() == "python -m skyproto demo"
    assert shell[0] in first_screen
    assert shell[1] in first_screen


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python -m pip install -e ".[dev]"' in ci
    assert ci.rstrip().endswith("./check")


@pytest.mark.integration
@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_example_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(blocks("python")[index])
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"\w+Event \d+", done.stdout), done.stdout
