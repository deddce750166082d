"""The registration-token handshake (PROTOCOL.md §3)."""

from __future__ import annotations

import attrs

from .tokens import RegistrationToken

__all__ = ["Registration"]


@attrs.frozen
class Registration:
    """What the handshake yields: the token, the messaging base ``H`` and the endpoint id."""

    token: RegistrationToken
    messenger: str
    endpoint_id: str | None = None
