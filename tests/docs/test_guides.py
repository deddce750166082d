"""The guides' Python examples: every block compiles, and those of transports.md run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ("transports.md", "migrating.md", "events.md")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: A block whose first line is ``# name.py`` is a module the later blocks import.
MODULE = re.compile(r"# (\w+\.py)\n")


def python_blocks(guide: str) -> list[str]:
    return BLOCK.findall((DOCS / guide).read_text(encoding="utf-8"))


@pytest.mark.parametrize("guide", GUIDES)
def test_every_block_compiles(guide: str) -> None:
    blocks = python_blocks(guide)
    assert blocks
    for index, code in enumerate(blocks):
        compile(code, f"{guide} block {index}", "exec")


@pytest.mark.integration
def test_transports_guide_runs(tmp_path: Path) -> None:
    blocks = python_blocks("transports.md")
    for code in blocks:  # the modules first: later blocks import them
        if module := MODULE.match(code):
            (tmp_path / module.group(1)).write_text(code)
    for index, code in enumerate(blocks):
        if MODULE.match(code):
            continue
        is_test = "import pytest" in code
        script = tmp_path / (f"test_block_{index}.py" if is_test else f"block_{index}.py")
        script.write_text(code)
        command = (
            ["-m", "pytest", "-q", "-p", "no:cacheprovider", script.name]
            if is_test
            else [script.name]
        )
        done = subprocess.run(
            [sys.executable, *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"block {index}:\n{done.stdout}\n{done.stderr}"
