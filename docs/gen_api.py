"""Write ``docs/api.md``, the API reference, from the public names and docstrings of the code.

Run ``python docs/gen_api.py`` after changing a public name or docstring; a test fails while the
committed reference differs from what this prints, so the reference never drifts from the code.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

#: The documented public modules, in reading order. Each section lists its module's ``__all__``.
MODULES = (
    "skyproto.session",
    "skyproto.loop",
    "skyproto.auth",
    "skyproto.auth.teams",
    "skyproto.chat",
    "skyproto.registration",
    "skyproto.endpoint",
    "skyproto.paging",
    "skyproto.events",
    "skyproto.store",
    "skyproto.tokens",
    "skyproto.hosts",
    "skyproto.errors",
    "skyproto.calls",
    "skyproto.mac256",
    "skyproto.ids",
    "skyproto.transports",
    "skyproto.transports.requests",
    "skyproto.transports.httpx",
    "skyproto.transports.stdlib",
    "skyproto.emulator",
    "skyproto.emulator.testing",
    "skyproto.cli",
)
#: Private modules whose public names (those ``skyproto`` re-exports) are described under
#: ``skyproto`` itself, since they have no public module of their own.
PRIVATE_HOMES = ("skyproto._http", "skyproto._flow")
OUTPUT = Path(__file__).with_name("api.md")

HEADER = """\
# API reference

Generated from the code by `python docs/gen_api.py`; do not edit by hand. It lists the public
face only: each module's `__all__` (docs/design.md, "Public face"). Everything listed under
`skyproto` itself can be imported from the package: `from skyproto import Session`.
Flows (functions documented as "Flow: ...") are generators; run them with
`skyproto.transports.run_sync` or `run_async`, or step them with `skyproto.Stepper`.

"""


_ROLE = re.compile(r":(?:class|func|meth|data|attr|exc|mod):`(~?)([^`<]+?)(?: <[^>]+>)?`")
_LITERAL = re.compile(r"``([^`]+)``")


def _markdown(text: str) -> str:
    """Docstring markup (reST roles and literals) as Markdown code spans."""

    def role(match: re.Match[str]) -> str:
        target = match.group(2)
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return _LITERAL.sub(r"`\1`", _ROLE.sub(role, text)).replace("::\n", ":\n")


def _doc(obj: Any) -> str:
    text = inspect.getdoc(obj) or ""
    return _markdown(text.strip())


def _summary(obj: Any) -> str:
    return _doc(obj).split("\n\n")[0].replace("\n", " ")


_ADDRESS = re.compile(r"<(?:built-in )?function ([\w.<>]+)(?: at 0x[0-9a-f]+)?>")
_OBJECT = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")


def _stable(text: str) -> str:
    """``text`` without memory addresses, so the output is the same on every run."""
    return _OBJECT.sub(r"<\1>", _ADDRESS.sub(r"\1", text))


def _signature(obj: Any) -> str:
    try:
        signature = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    return _stable(signature.replace("'", ""))


def _public_members(cls: type) -> list[tuple[str, Any]]:
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property | classmethod | staticmethod) or inspect.isfunction(value):
            members.append((name, value))
    return members


def _describe_class(name: str, cls: type) -> list[str]:
    lines = [f"### class `{name}{_signature(cls)}`", ""]
    if _doc(cls):
        lines += [_doc(cls), ""]
    if issubclass(cls, enum.Enum):
        values = ", ".join(f"`{member.name}`" for member in cls)
        return [*lines, f"Members: {values}.", ""]
    for member_name, member in _public_members(cls):
        if isinstance(member, property):
            lines.append(f"- `{member_name}` (property): {_summary(member)}")
        else:
            function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            kind = "classmethod " if isinstance(member, classmethod) else ""
            lines.append(
                f"- {kind}`{member_name}{_signature(function)}`: {_summary(function)}".rstrip(": ")
            )
    if lines[-1] != "":
        lines.append("")
    return lines


def _describe(name: str, value: Any) -> list[str]:
    if inspect.isclass(value):
        return _describe_class(name, value)
    if callable(value):
        lines = [f"### `{name}{_signature(value)}`", ""]
        return [*lines, _doc(value), ""] if _doc(value) else lines
    shown = _stable(repr(value))
    if len(shown) > 80:
        shown = f"{type(value).__name__} (see the source)"
    return [f"### `{name}` = `{shown}`", ""]


def _module_section(module: ModuleType) -> list[str]:
    lines = [f"## `{module.__name__}`", ""]
    if _doc(module):
        lines += [_doc(module), ""]
    for name in sorted(getattr(module, "__all__", [])):
        lines += _describe(name, getattr(module, name))
    return lines


def render() -> str:
    """The reference, as Markdown."""
    lines = [HEADER.rstrip("\n"), ""]
    top = importlib.import_module("skyproto")
    lines += [
        "## `skyproto`",
        "",
        _doc(top),
        "",
        "Exports: " + ", ".join(f"`{name}`" for name in sorted(top.__all__)) + ".",
        "",
    ]
    for home in PRIVATE_HOMES:
        for name in sorted(getattr(importlib.import_module(home), "__all__", [])):
            if name in top.__all__:
                lines += _describe(name, getattr(top, name))
    for name in MODULES:
        lines += _module_section(importlib.import_module(name))
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
