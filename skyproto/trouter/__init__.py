"""Trouter, the push channel of Teams Free: frames, the client flow and its policy (docs/trouter.md)."""

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

__all__ = [
    "Frame",
    "FrameType",
    "TrouterRequest",
    "ack_frame",
    "decode_body",
    "event_frame",
    "parse_ack",
    "parse_event",
    "parse_frame",
    "parse_request",
    "response_frame",
]
