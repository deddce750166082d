"""Trouter, the push channel of Teams Free: frames, the client flow and its policy (docs/trouter.md).

:class:`TrouterClient` is the client as one long-running flow; :mod:`skyproto.trouter._frames`
holds the socket.io 0.9 frame grammar and the body decoding it uses, re-exported here.
"""

from __future__ import annotations

from ._frames import Frame, FrameType, decode_body, parse_frame
from .client import (
    TrouterClient,
    TrouterPolicy,
    TrouterSession,
    TrouterStats,
    events_from_messages,
)

__all__ = [
    "Frame",
    "FrameType",
    "TrouterClient",
    "TrouterPolicy",
    "TrouterSession",
    "TrouterStats",
    "decode_body",
    "events_from_messages",
    "parse_frame",
]
