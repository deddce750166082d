"""syncState paging (PROTOCOL.md §6)."""

from __future__ import annotations

import attrs

__all__ = ["PagingState"]


@attrs.frozen
class PagingState:
    """The latest ``syncState`` link per ``(method, original URL)``; part of the saved session."""

    links: dict[tuple[str, str], str] = attrs.field(factory=dict)
