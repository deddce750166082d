"""docs/api.md is exactly what docs/gen_api.py generates from the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_api_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (DOCS / "api.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "run: python docs/gen_api.py"
