"""socket.io 0.9 text frames as Trouter speaks them, and the bodies they carry (docs/trouter.md).

A frame is ``<type>:<id>[+]:<endpoint>[:<data>]``: everything after the third colon is data and
may hold colons of its own. ``1::`` and ``2::`` have no data part at all, which is kept apart
from an empty one (``5:::`` is not ``5::``) so that a frame encodes back to the text it came from.

Every parser here returns a value or raises :class:`~skyproto.RemoteProtocolError`, whatever the
text: no ``KeyError``, no ``RecursionError``, no unbounded decompression. Scans are linear.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
import zlib
from collections.abc import Mapping
from typing import Any, Final, cast

import attrs

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CONTENT_ENCODING_HEADER",
    "MAX_BODY_BYTES",
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

#: The header that says a request's ``body`` is base64 of gzip.
CONTENT_ENCODING_HEADER: Final = "X-Microsoft-Skype-Content-Encoding"
#: The most bytes a body may decode (or decompress) to; more is a protocol error.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: The largest frame id accepted (ids are counters; eighteen digits is plenty).
_MAX_ID_DIGITS: Final = 18
_DIGITS = re.compile(r"[0-9]{1,18}")
_ACK = re.compile(r"([0-9]{1,18})(\+?)")


class FrameType(enum.IntEnum):
    """The socket.io 0.9 packet types."""

    DISCONNECT = 0
    CONNECT = 1
    HEARTBEAT = 2
    MESSAGE = 3
    JSON = 4
    EVENT = 5
    ACK = 6
    ERROR = 7
    NOOP = 8


def _check_id(_instance: object, _attribute: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**_MAX_ID_DIGITS:
        raise LocalProtocolError("a frame id is a whole number of at most 18 digits")


def _check_endpoint(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or ":" in value:
        raise LocalProtocolError("a frame endpoint is text without ':'")


def _check_data(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise LocalProtocolError("frame data is text")


@attrs.frozen
class Frame:
    """One socket.io 0.9 frame. ``data`` is ``None`` when the text had no data part."""

    type: FrameType = attrs.field(converter=FrameType)
    id: int | None = attrs.field(default=None, validator=_check_id)
    #: A ``+`` after the id: the sender wants an acknowledgement.
    wants_ack: bool = False
    endpoint: str = attrs.field(default="", validator=_check_endpoint)
    data: str | None = attrs.field(default=None, validator=_check_data, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.wants_ack and self.id is None:
            raise LocalProtocolError("a frame that wants an acknowledgement needs an id")

    def encode(self) -> str:
        """The frame as text."""
        ident = "" if self.id is None else str(self.id)
        head = f"{int(self.type)}:{ident}{'+' if self.wants_ack else ''}:{self.endpoint}"
        return head if self.data is None else f"{head}:{self.data}"


def parse_frame(text: str) -> Frame:
    """The frame in ``text``; :class:`RemoteProtocolError` when it is not one."""
    if not isinstance(text, str):
        raise LocalProtocolError("parse_frame takes text")
    parts = text.split(":", 3)
    if len(parts) < 3:
        raise RemoteProtocolError("Trouter frame has fewer than three fields")
    kind, ident, endpoint = parts[0], parts[1], parts[2]
    data = parts[3] if len(parts) == 4 else None
    if len(kind) != 1 or kind not in "012345678":
        raise RemoteProtocolError("Trouter frame type is not a digit from 0 to 8")
    wants_ack = ident.endswith("+")
    if wants_ack:
        ident = ident[:-1]
    if ident and not _DIGITS.fullmatch(ident):
        raise RemoteProtocolError("Trouter frame id is not a number")
    if wants_ack and not ident:
        raise RemoteProtocolError("Trouter frame wants an acknowledgement but has no id")
    return Frame(FrameType(int(kind)), int(ident) if ident else None, wants_ack, endpoint, data)


# -- payloads -----------------------------------------------------------------------------------


def _load_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise RemoteProtocolError(f"{what} is not valid JSON") from None


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _frame_object(data: str | None, what: str) -> dict[str, Any]:
    """A frame's data that must be a JSON object (an event's, a request's); ``what`` names it."""
    if data is None:
        raise RemoteProtocolError(f"{what} frame has no data")
    body = _load_json(data, what)
    if body.__class__ is not dict:
        raise RemoteProtocolError(f"{what} is not a JSON object")
    return cast("dict[str, Any]", body)


def parse_event(data: str | None) -> tuple[str, list[Any]]:
    """``(name, args)`` of an event frame's data ``{"name": …, "args": […]}``.

    ``args`` absent counts as ``[]``; a single value that is not a list is wrapped in one.
    """
    body = _frame_object(data, "Trouter event")
    name = body.get("name")
    if name.__class__ is not str:
        raise RemoteProtocolError("Trouter event name is missing or not a string")
    args = body.get("args", [])
    return name, args if args.__class__ is list else [args]


def parse_ack(data: str | None) -> tuple[int, list[Any]]:
    """``(id, args)`` of an acknowledgement's data ``N+[…]`` (or a bare ``N``)."""
    if data is None:
        raise RemoteProtocolError("Trouter acknowledgement has no data")
    head, bracket, rest = data.partition("[")
    match = _ACK.fullmatch(head)
    if match is None:
        raise RemoteProtocolError("Trouter acknowledgement does not start with a packet id")
    if not bracket:
        return int(match.group(1)), []
    args = _load_json("[" + rest, "Trouter acknowledgement")
    if args.__class__ is not list:  # pragma: no cover - "[" + text is a list or no JSON
        raise RemoteProtocolError("Trouter acknowledgement arguments are not a list")
    return int(match.group(1)), args


def event_frame(name: str, args: list[Any] | None = None, *, ack_id: int | None = None) -> Frame:
    """An event frame; with ``ack_id`` it asks for an acknowledgement (``5:N+::…``)."""
    data = {"name": name} if args is None else {"name": name, "args": args}
    return Frame(FrameType.EVENT, ack_id, ack_id is not None, "", _dump(data))


def ack_frame(ack_id: int, args: list[Any] | None = None) -> Frame:
    """The acknowledgement of event ``ack_id``: ``6:::N+[…]``."""
    if isinstance(ack_id, bool) or not isinstance(ack_id, int) or ack_id < 0:
        raise LocalProtocolError("an acknowledgement names a packet id")
    return Frame(FrameType.ACK, None, False, "", f"{ack_id}+{_dump(args or [])}")


# -- HTTP-over-websocket requests ---------------------------------------------------------------


@attrs.frozen
class TrouterRequest:
    """A request the server pushed in a ``3:::`` frame."""

    id: int
    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: str = attrs.field(repr=False)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def kind(self) -> str:
        """The last path segment of :attr:`url` (``messaging``, ``TeamsUnifiedPresenceService``),
        which says what the request carries."""
        path = self.url.partition("?")[0].rstrip("/")
        return path.rpartition("/")[2]


def parse_request(data: str | None) -> TrouterRequest:
    """The request in a ``3:::`` frame's data."""
    body = _frame_object(data, "Trouter request")
    ident = body.get("id")
    if ident.__class__ is not int or not 0 <= ident < 10**_MAX_ID_DIGITS:
        raise RemoteProtocolError("Trouter request id is missing or not a whole number")
    method = body.get("method", "POST")
    url = body.get("url", "")
    if method.__class__ is not str or url.__class__ is not str:
        raise RemoteProtocolError("Trouter request method or url is not a string")
    raw_headers = body.get("headers", {})
    if raw_headers is None:
        raw_headers = {}
    if raw_headers.__class__ is not dict:
        raise RemoteProtocolError("Trouter request headers are not a JSON object")
    headers = {k: v for k, v in raw_headers.items() if v.__class__ is str}
    text = body.get("body", "")
    if text is None:
        text = ""
    if text.__class__ is not str:
        raise RemoteProtocolError("Trouter request body is not a JSON string")
    return TrouterRequest(ident, method, url, headers, text)


def response_frame(request_id: int, status: int = 200) -> Frame:
    """The answer to pushed request ``request_id``: ``3:::{"id":…,"status":…,"body":""}``."""
    data = {"id": request_id, "status": status, "headers": {}, "body": ""}
    return Frame(FrameType.MESSAGE, None, False, "", _dump(data))


def _b64(text: str, what: str) -> bytes:
    if len(text) > (MAX_BODY_BYTES * 4) // 3 + 4:
        raise RemoteProtocolError(f"{what} is too large")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise RemoteProtocolError(f"{what} is not valid base64") from None


def _gunzip(data: bytes, what: str) -> bytes:
    """Decompress gzip ``data``, refusing output over :data:`MAX_BODY_BYTES` (a bomb)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise RemoteProtocolError(f"{what} is not valid gzip") from None
    if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise RemoteProtocolError(f"{what} decompresses to more than {MAX_BODY_BYTES} bytes")
    if not inflater.eof:
        raise RemoteProtocolError(f"{what} is truncated gzip")
    return out


def decode_body(request: TrouterRequest) -> Any:
    """The JSON payload of a pushed request, unwrapped.

    The body is a JSON text, or base64 of gzip when :data:`CONTENT_ENCODING_HEADER` says
    ``gzip``. An object holding ``cp`` (base64 gzip JSON) or ``gp`` (base64 JSON) is a wrapper:
    the payload is what that member decodes to. An empty body decodes to ``None``.
    """
    text = request.body
    if len(text) > MAX_BODY_BYTES:
        raise RemoteProtocolError("Trouter request body is too large")
    encoding = (request.header(CONTENT_ENCODING_HEADER) or "").strip().lower()
    raw: str | bytes = text
    if encoding == "gzip":
        raw = _gunzip(_b64(text, "gzip body"), "gzip body")
    elif encoding:
        raise RemoteProtocolError("Trouter request body has an unknown content encoding")
    if not raw.strip():
        return None
    payload = _load_json(raw, "Trouter request body")
    if payload.__class__ is dict:
        if payload.get("cp").__class__ is str:
            inner = _gunzip(_b64(payload["cp"], "cp payload"), "cp payload")
            return _load_json(inner, "cp payload")
        if payload.get("gp").__class__ is str:
            return _load_json(_b64(payload["gp"], "gp payload"), "gp payload")
    return payload
