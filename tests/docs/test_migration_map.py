"""docs/migrating.md names every public name of SkPy's connection-layer modules.

The names come from the installed SkPy 0.11 (a test dependency), read without running anything:
``vars()`` of the modules and classes (so no class property fires a request), and the instance
attributes of objects whose constructors do no I/O.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skpy

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"
MODULES = ("skpy.conn", "skpy.core", "skpy.util")


def code_spans() -> str:
    return "\n".join(re.findall(r"`([^`\n]+)`", GUIDE.read_text(encoding="utf-8")))


def public(names: Any) -> list[str]:
    return sorted(name for name in names if not name.startswith("_"))


def expected_names() -> set[str]:
    skpy = pytest.importorskip("skpy")
    conn = pytest.importorskip("skpy.conn")
    core = pytest.importorskip("skpy.core")
    del skpy
    instances = {  # constructors that only set attributes
        conn.SkypeConnection: conn.SkypeConnection(),
        core.SkypeObj: core.SkypeObj(),
        core.SkypeObjs: core.SkypeObjs(),
        core.SkypeEnum: core.SkypeEnum("Label"),
    }
    instances[conn.SkypeEndpoint] = conn.SkypeEndpoint(instances[conn.SkypeConnection], "id")
    names: set[str] = set()
    for module_name in MODULES:
        module = pytest.importorskip(module_name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module_name:
                continue  # imported from elsewhere
            names.add(name)
            if not inspect.isclass(value):
                continue
            if "__init__" in vars(value):
                names.add(f"{name}(")
            members = public(vars(value))
            if value in instances:
                members += public(vars(instances[value]))
            for member in members:
                names.add(f"{name}.{member}")
                raw = vars(value).get(member)
                if isinstance(raw, core.SkypeEnum):
                    names.update(f"{name}.{member}.{label}" for label in raw.names)
    return names


def test_every_public_skpy_name_is_mapped() -> None:
    text = code_spans()
    missing = sorted(name for name in expected_names() if name not in text)
    assert not missing, f"docs/migrating.md does not map: {missing}"


def test_getmac256hash_arguments_are_explained() -> None:
    conn = pytest.importorskip("skpy.conn")
    parameters = inspect.signature(conn.SkypeRegistrationTokenProvider.getMac256Hash).parameters
    rows = [line for line in GUIDE.read_text().splitlines() if "getMac256Hash(" in line]
    assert rows
    for parameter in parameters:
        assert any(f"`{parameter}`" in row or f"{parameter}," in row for row in rows), parameter


def test_the_check_sees_a_missing_name() -> None:
    assert "SkypeConnection.notAName" not in code_spans()
    assert "SkypeConnection.tokens" in expected_names()
    assert "SkypeUtils.Status.Online" in expected_names()
