"""Readable signatures for attrs classes in the API reference.

With ``autodoc_preserve_defaults`` a default is shown as written in the source, which is what a
reader wants for functions (``status=Status.Online``). The ``__init__`` that attrs generates has
no source to quote, so its defaults would read ``attr_dict['hold'].default`` and ``NOTHING``; this
replaces them with the value itself (an enum member by name, anything else by ``repr``) and a
default built by a factory with ``<factory>``.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import attrs

_FIELD_DEFAULT = re.compile(r"attr_dict\['(\w+)'\]\.default")
_FACTORY = re.compile(r"=NOTHING\b")


def _shown(value: Any) -> str:
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        return "<factory>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def _signature(
    app: Any,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    if what != "class" or signature is None or not attrs.has(obj):
        return None
    defaults = {field.name: field.default for field in attrs.fields(obj)}

    def default_of(match: re.Match[str]) -> str:
        key = match.group(1)
        return _shown(defaults[key]) if key in defaults else match.group(0)

    signature = _FACTORY.sub("=<factory>", _FIELD_DEFAULT.sub(default_of, signature))
    return signature, return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _signature)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
