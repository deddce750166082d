"""Shared test set-up: hypothesis profiles and the recorded vectors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# Long fuzzing runs of the parser registry (tests/properties/test_parsers_fuzz.py); CI keeps "ci".
settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

VECTORS = Path(__file__).parent / "vectors"


def load_vector(name: str) -> Any:
    """Load one of the recorded vector files in ``tests/vectors``."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def vectors() -> Any:
    return load_vector
