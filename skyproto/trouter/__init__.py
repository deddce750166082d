"""Trouter, the push channel of Teams Free: frames, the client flow and its policy (docs/trouter.md).

:class:`TrouterClient` is the client as one long-running flow; :mod:`skyproto.trouter._frames`
holds the socket.io 0.9 frame grammar and the body decoding it uses, re-exported here.
"""

from __future__ import annotations

from ._frames import (
    Frame,
    FrameType,
    TrouterRequest,
    ack_frame,
    decode_body,
    event_frame,
    parse_ack,
    parse_event,
    parse_frame,
    parse_request,
    response_frame,
)
from .client import (
    REGISTRAR_URL,
    SESSION_URL,
    TrouterClient,
    TrouterPolicy,
    TrouterSession,
    TrouterStats,
    dedupe_key,
    events_from_messages,
    parse_session,
    registration_body,
)

__all__ = [
    "REGISTRAR_URL",
    "SESSION_URL",
    "Frame",
    "FrameType",
    "TrouterClient",
    "TrouterPolicy",
    "TrouterRequest",
    "TrouterSession",
    "TrouterStats",
    "ack_frame",
    "decode_body",
    "dedupe_key",
    "event_frame",
    "events_from_messages",
    "parse_ack",
    "parse_event",
    "parse_frame",
    "parse_request",
    "parse_session",
    "registration_body",
    "response_frame",
]
