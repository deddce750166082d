"""Typed events from the long poll, and the one cattrs converter that builds them (docs/protocol.md §9).

:func:`decode_events` takes the poll answer's body as received and returns one :class:`Event`
per element of ``eventMessages``, in order. :func:`encode_event` turns an event back into the
wire shape (for the emulator and for round-trip tests).

Malformed input
---------------
The policy separates the *batch* from the *event*, so that one odd event never costs the others
(the reference client loses the whole batch, docs/protocol.md §12.23):

* The body is empty (or only whitespace), or the object has no ``eventMessages``: no events.
* The body is not JSON, is not a JSON object, or its ``eventMessages`` is not a list: the
  batch is unusable and :class:`~skyproto.errors.RemoteProtocolError` is raised.
* Anything wrong with a single element gives an :class:`UnknownEvent` in its place, with the
  element in ``raw`` and a one-line ``reason``: not an object, ``id`` missing or not an integer,
  ``time`` missing or not a timestamp, ``resource`` not an object, a field of the wrong JSON
  type, a presence without ``selfLink`` or with a status outside :class:`~skyproto.ids.Status`,
  a message id that is not a non-negative integer, a ``ThreadUpdate`` without a ``members`` list.
  A ``resourceType`` this module does not model also gives an :class:`UnknownEvent`.
* An :class:`UnknownEvent` keeps what could still be read: ``id`` when it is an integer, else
  ``None``; ``time`` when it parses, else ``None``; ``resource_type`` and ``ack_url`` when they
  are strings. An event whose ``id`` is ``None`` cannot be de-duplicated; an event loop delivers
  it every time it arrives.
* Optional text fields that are absent or ``null`` become ``None``; where the reference client
  derives ``null`` (a link without a user in it, for instance) the typed event has ``None`` too.

Times are always timezone-aware UTC. ``YYYY-MM-DDTHH:MM:SS`` is accepted with optional fractional
seconds (truncated to microseconds) and an optional ``Z`` or ``±HH:MM`` offset; a time without
an offset is taken as UTC, the service's zone. A message's ``originalarrivaltime`` that does not
parse leaves ``Message.time`` as ``None``; nothing ever falls back to the local clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, TypeVar

import attrs
import cattrs

from .errors import LocalProtocolError, RemoteProtocolError
from .hosts import SERVICE_URLS
from .ids import Status, chat_from_url, no_prefix, user_from_url

__all__ = [
    "CallEvent",
    "ConversationUpdateEvent",
    "EditMessageEvent",
    "EndpointPresenceEvent",
    "Event",
    "Message",
    "MessageEvent",
    "MessageKind",
    "NewMessageEvent",
    "PresenceEvent",
    "ThreadUpdateEvent",
    "TypedEvent",
    "TypingEvent",
    "UnknownEvent",
    "decode_events",
]

logger = logging.getLogger(__name__)

_UTC: Final = dt.UTC
_DEFAULT_BASE: Final = SERVICE_URLS["messenger"]
_CAPABILITY_SEPARATOR: Final = " | "
_MAX_REASON_VALUE = 40
_LINK_CACHE_SIZE = 512
_T = TypeVar("_T", bound=attrs.AttrsInstance)


# -- values -----------------------------------------------------------------------------------


class MessageKind(enum.StrEnum):
    """What a message is, from its ``messagetype`` (the message classes of §9.3)."""

    TEXT = "text"
    CONTACT = "contact"
    LOCATION = "location"
    FILE = "file"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    CARD = "card"
    CALL = "call"
    PROPERTY_CHANGE = "property_change"
    MEMBER_CHANGE = "member_change"
    GENERIC = "generic"


_KIND_BY_MESSAGE_TYPE: Final[Mapping[str | None, MessageKind]] = {
    "Text": MessageKind.TEXT,
    "RichText": MessageKind.TEXT,
    "RichText/Contacts": MessageKind.CONTACT,
    "RichText/Location": MessageKind.LOCATION,
    "RichText/Media_GenericFile": MessageKind.FILE,
    "RichText/UriObject": MessageKind.IMAGE,
    "RichText/Media_AudioMsg": MessageKind.AUDIO,
    "RichText/Media_Video": MessageKind.VIDEO,
    "RichText/Media_Card": MessageKind.CARD,
    "Event/Call": MessageKind.CALL,
    "ThreadActivity/TopicUpdate": MessageKind.PROPERTY_CHANGE,
    "ThreadActivity/JoiningEnabledUpdate": MessageKind.PROPERTY_CHANGE,
    "ThreadActivity/HistoryDisclosedUpdate": MessageKind.PROPERTY_CHANGE,
    "ThreadActivity/AddMember": MessageKind.MEMBER_CHANGE,
    "ThreadActivity/RoleUpdate": MessageKind.MEMBER_CHANGE,
    "ThreadActivity/DeleteMember": MessageKind.MEMBER_CHANGE,
}


@attrs.frozen
class Message:
    """A chat message carried by a message event. Content markup is left as received."""

    #: The server's message id, as text.
    id: str | None
    #: ``messagetype`` on the wire, e.g. ``RichText`` or ``Event/Call``.
    message_type: str | None
    #: ``originalarrivaltime``; ``None`` when absent or not a timestamp.
    time: dt.datetime | None
    #: ``clientmessageid``, or ``skypeeditedid`` when the former is absent.
    client_id: str | None
    #: The sender's name without type prefix (``alice.smith``).
    user_id: str | None
    #: The conversation id with its prefix (``8:alice.smith``, ``19:…@thread.skype``).
    chat_id: str | None
    content: str | None

    @property
    def kind(self) -> MessageKind:
        """The message class named by :attr:`message_type`; ``GENERIC`` for anything else."""
        return _KIND_BY_MESSAGE_TYPE.get(self.message_type, MessageKind.GENERIC)


# -- events -----------------------------------------------------------------------------------

# Field order is part of each class's signature: ``id`` and ``time`` first, then the class's own
# fields; ``ack_url`` is keyword-only everywhere. The decoder passes fields by position because
# keyword arguments make construction noticeably slower.


@attrs.frozen
class Event:
    """Base of every event. ``id`` is the server's event number, which de-duplication uses."""

    id: int | None
    time: dt.datetime | None
    #: ``resource.ackrequired``: where to acknowledge the event, if the server asks for it.
    ack_url: str | None = attrs.field(default=None, kw_only=True)

    @property
    def resource_type(self) -> str | None:
        """``resourceType`` on the wire (``None`` on this abstract base)."""
        return None


@attrs.frozen
class TypedEvent(Event):
    """An event of a modelled kind: its ``id`` and ``time`` are always known."""

    RESOURCE_TYPE: ClassVar[str]

    id: int
    time: dt.datetime

    @property
    def resource_type(self) -> str:
        """``resourceType`` on the wire, fixed by the class."""
        return self.RESOURCE_TYPE


@attrs.frozen
class PresenceEvent(TypedEvent):
    """A contact's presence changed (``UserPresence``)."""

    RESOURCE_TYPE: ClassVar[str] = "UserPresence"

    user_id: str | None
    #: ``availability`` is ``Online``.
    online: bool
    status: Status
    capabilities: tuple[str, ...]


@attrs.frozen
class EndpointPresenceEvent(TypedEvent):
    """One of a contact's devices reported in (``EndpointPresence``)."""

    RESOURCE_TYPE: ClassVar[str] = "EndpointPresence"

    user_id: str | None
    #: The device's name (``privateInfo.epname``).
    name: str | None
    capabilities: tuple[str, ...]
    #: ``publicInfo.typ``; kept apart from the resource type (the reference overwrites it).
    device_type: str | None
    #: ``publicInfo.skypeNameVersion``.
    version: str | None


@attrs.frozen
class MessageEvent(TypedEvent):
    """A message arrived (``NewMessage``). This class itself is the generic case."""

    RESOURCE_TYPE: ClassVar[str] = "NewMessage"

    #: The message id as an integer, or ``None`` when the resource has no id.
    msg_id: int | None
    message: Message


@attrs.frozen
class NewMessageEvent(MessageEvent):
    """A new text-like message (text, rich text, contacts, file, image)."""


@attrs.frozen
class EditMessageEvent(MessageEvent):
    """A text-like message that edits an earlier one."""

    #: ``skypeeditedid``, never empty: the client id of the message being replaced.
    edited_id: str


@attrs.frozen
class CallEvent(MessageEvent):
    """A call notification (``Event/Call``)."""


@attrs.frozen
class TypingEvent(TypedEvent):
    """Someone started (``active``) or stopped typing in a conversation."""

    RESOURCE_TYPE: ClassVar[str] = "NewMessage"

    user_id: str | None
    chat_id: str | None
    active: bool


@attrs.frozen
class ConversationUpdateEvent(TypedEvent):
    """A conversation's properties changed (``ConversationUpdate``)."""

    RESOURCE_TYPE: ClassVar[str] = "ConversationUpdate"

    chat_id: str | None
    #: ``consumptionhorizon``: ``<message id>;<ms time>;<client id>``, used to mark it read.
    horizon: str | None


@attrs.frozen
class ThreadUpdateEvent(TypedEvent):
    """A group thread changed (``ThreadUpdate``); ``user_ids`` are its members, unprefixed."""

    RESOURCE_TYPE: ClassVar[str] = "ThreadUpdate"

    chat_id: str | None
    user_ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class UnknownEvent(Event):
    """An event of a kind not modelled here, or one that could not be read; see ``reason``."""

    resource_type: str | None
    #: The element of ``eventMessages`` as decoded from JSON. Treat it as read-only.
    raw: Any = attrs.field(repr=False, hash=False)
    reason: str


# -- decoding ---------------------------------------------------------------------------------


def _fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A function building ``cls`` from all its fields by position (keyword-only ones last).

    It does what attrs' ``__init__`` does for these classes, which have no defaults to compute,
    validators, converters or init hooks (checked here), but sets each slot through its
    descriptor rather than ``object.__setattr__``, which a frozen class's ``__init__`` calls once
    per field and which costs a quarter of the decoder's time on a batch of messages.
    """
    fields = attrs.fields(cls)
    hooks = ("__attrs_pre_init__", "__attrs_post_init__")
    if any(hasattr(cls, hook) for hook in hooks) or any(
        field.validator is not None or field.converter is not None or not field.init
        for field in fields
    ):
        raise TypeError(f"{cls.__name__} needs its own __init__")
    names = [f.name for f in fields if not f.kw_only] + [f.name for f in fields if f.kw_only]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    self = _new(_cls)"]
    for index, name in enumerate(names):
        namespace[f"_set{index}"] = getattr(cls, name).__set__
        lines.append(f"    _set{index}(self, {name})")
    lines.append("    return self")
    exec("\n".join(lines), namespace)  # noqa: S102 - built from attrs field names only
    make: Callable[..., _T] = namespace["make"]
    return make


_make_message = _fast_constructor(Message)
_make_presence = _fast_constructor(PresenceEvent)
_make_endpoint_presence = _fast_constructor(EndpointPresenceEvent)
_make_typing = _fast_constructor(TypingEvent)
_make_conversation_update = _fast_constructor(ConversationUpdateEvent)
_make_thread_update = _fast_constructor(ThreadUpdateEvent)
#: By class, for the message events (the class depends on the message type).
_MAKE_MESSAGE_EVENT: Final[Mapping[type[MessageEvent], Callable[..., MessageEvent]]] = {
    cls: _fast_constructor(cls) for cls in (MessageEvent, NewMessageEvent, CallEvent)
}
_make_edit = _fast_constructor(EditMessageEvent)
_make_unknown = _fast_constructor(UnknownEvent)  # every field is keyword-only: call it so


class _Malformed(Exception):
    """One event cannot be read; ``str(exc)`` is the reason."""


_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_is_timestamp = _TIMESTAMP.fullmatch
_from_iso = dt.datetime.fromisoformat


def _parse_time(value: Any) -> dt.datetime | None:
    """An aware UTC datetime, or ``None`` when ``value`` is not a timestamp string."""
    if value.__class__ is not str:
        return None
    # Fast path for the usual ``YYYY-MM-DDTHH:MM:SS[.fff]Z``: the separators and the fraction
    # are checked here, and fromisoformat accepts only ASCII digits in the other places.
    # value[4:17:3] is the characters at 4, 7, 10, 13 and 16: "--T::" in that form.
    size = len(value)
    if (
        size >= 20
        and value[-1] == "Z"
        and value[4:17:3] == "--T::"
        and (size == 20 or (value[19] == "." and value[20:-1].isdigit()))
    ):
        try:
            return _from_iso(value)
        except ValueError:
            return None
    return _parse_time_general(value)


def _parse_time_general(value: str) -> dt.datetime | None:
    if _is_timestamp(value) is None:
        return None
    try:
        when = _from_iso(value)
        zone = when.tzinfo
        if zone is None:
            return when.replace(tzinfo=_UTC)
        return when if zone is _UTC else when.astimezone(_UTC)
    except (ValueError, OverflowError):
        return None


def parse_event_time(value: str) -> dt.datetime:
    """Parse an event or message timestamp into an aware UTC datetime.

    Raises :class:`RemoteProtocolError` when ``value`` is not one.
    """
    when = _parse_time(value)
    if when is None:
        raise RemoteProtocolError(f"not a timestamp: {_shorten(value)}")
    return when


def _shorten(value: object) -> str:
    """A short description of a JSON value for a ``reason``; containers are named, not shown."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, str) and len(value) > _MAX_REASON_VALUE:
        value = value[:_MAX_REASON_VALUE]
    shown = repr(value)
    return shown if len(shown) <= _MAX_REASON_VALUE else shown[: _MAX_REASON_VALUE - 3] + "..."


def _text(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    if value is None or value.__class__ is str:
        return value
    raise _Malformed(f"{key} is not a string")


def _object(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    if value is None:
        return {}
    if value.__class__ is dict:
        return value
    raise _Malformed(f"{key} is not an object")


def _capabilities(mapping: Mapping[str, Any]) -> tuple[str, ...]:
    text = _text(mapping, "capabilities")
    if not text:
        return ()
    return tuple(filter(None, text.split(_CAPABILITY_SEPARATOR)))


# A session sees few distinct contacts and conversations, so the same links come back again and
# again (thread members too); remembering the last few hundred saves the regex work that
# dominates their cost.
_user_in_link = functools.lru_cache(maxsize=_LINK_CACHE_SIZE)(user_from_url)
_chat_in_link = functools.lru_cache(maxsize=_LINK_CACHE_SIZE)(chat_from_url)
_member_user = functools.lru_cache(maxsize=_LINK_CACHE_SIZE)(no_prefix)


def _user_in(link: str | None) -> str | None:
    return None if link is None else _user_in_link(link)


def _chat_in(link: str | None) -> str | None:
    return None if link is None else _chat_in_link(link)


def _presence_user(resource: Mapping[str, Any]) -> str | None:
    link = _text(resource, "selfLink")
    if link is None:
        raise _Malformed("presence without selfLink")
    return _user_in_link(link)


_STATUS_BY_LABEL: Final[Mapping[str, Status]] = {status.value: status for status in Status}


def _status(label: Any) -> Status:
    status = _STATUS_BY_LABEL.get(label) if label.__class__ is str else None
    if status is not None:
        return status
    if label is None:
        raise _Malformed("presence without status")
    raise _Malformed(f"presence status {_shorten(label)} is not known")


def _message_number(value: Any) -> int | None:
    if value is None:
        return None
    if value.__class__ is int and value >= 0:
        return value
    if value.__class__ is str and value.isascii() and value.isdigit():
        try:
            return int(value)
        except ValueError:  # more digits than int() accepts
            pass
    raise _Malformed(f"message id {_shorten(value)} is not a non-negative integer")


def _first_non_text(resource: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = resource.get(key)
        if value is not None and value.__class__ is not str:
            return f"{key} is not a string"
    return "a field is not a string"


_NOT_READ: Final = object()


def _build_message(resource: Mapping[str, Any], message_type: Any = _NOT_READ) -> Message:
    get = resource.get
    if message_type is _NOT_READ:
        message_type = _text(resource, "messagetype")
    content = get("content")
    sender = get("from")
    link = get("conversationLink")
    arrival = get("originalarrivaltime")
    client_key = "clientmessageid" if "clientmessageid" in resource else "skypeeditedid"
    client_id = get(client_key)
    # Each is a string or None; tested class first, as nearly all of them are strings.
    if (
        (content.__class__ is not str and content is not None)
        or (sender.__class__ is not str and sender is not None)
        or (link.__class__ is not str and link is not None)
        or (arrival.__class__ is not str and arrival is not None)
        or (client_id.__class__ is not str and client_id is not None)
    ):
        raise _Malformed(
            _first_non_text(
                resource,
                ("content", "from", "conversationLink", "originalarrivaltime", client_key),
            )
        )
    message_id = get("id")
    if message_id.__class__ is int:
        message_id = str(message_id)
    elif message_id is not None and message_id.__class__ is not str:
        raise _Malformed("message id is not a string or an integer")
    return _make_message(
        message_id,
        message_type,
        _parse_time(arrival),
        client_id,
        None if sender is None else _user_in_link(sender),
        None if link is None else _chat_in_link(link),
        content,
    )


_Builder = Callable[[int, dt.datetime, "str | None", Mapping[str, Any]], TypedEvent]


def _presence(
    event_id: int, time: dt.datetime, ack_url: str | None, resource: Mapping[str, Any]
) -> TypedEvent:
    return _make_presence(
        event_id,
        time,
        _presence_user(resource),
        _text(resource, "availability") == "Online",
        _status(resource.get("status")),
        _capabilities(resource),
        ack_url,
    )


def _endpoint_presence(
    event_id: int, time: dt.datetime, ack_url: str | None, resource: Mapping[str, Any]
) -> TypedEvent:
    public = _object(resource, "publicInfo")
    return _make_endpoint_presence(
        event_id,
        time,
        _presence_user(resource),
        _text(_object(resource, "privateInfo"), "epname"),
        _capabilities(public),
        _text(public, "typ"),
        _text(public, "skypeNameVersion"),
        ack_url,
    )


#: Text-like message types; only these make new-message and edit events.
_TEXT_LIKE: Final = frozenset(
    {"Text", "RichText", "RichText/Contacts", "RichText/Media_GenericFile", "RichText/UriObject"}
)
#: Typing message types, and whether each means "started typing".
_TYPING: Final[Mapping[str | None, bool]] = {"Control/Typing": True, "Control/ClearTyping": False}
_CALL_TYPE: Final = "Event/Call"


def _new_message(
    event_id: int, time: dt.datetime, ack_url: str | None, resource: Mapping[str, Any]
) -> TypedEvent:
    message_type = resource.get("messagetype")
    if message_type.__class__ is not str and message_type is not None:
        raise _Malformed("messagetype is not a string")
    active = _TYPING.get(message_type)
    if active is not None:
        return _make_typing(
            event_id,
            time,
            _user_in(_text(resource, "from")),
            _chat_in(_text(resource, "conversationLink")),
            active,
            ack_url,
        )
    number = resource.get("id")
    if number.__class__ is str and number.isdigit() and number.isascii() and len(number) < 20:
        msg_id: int | None = int(number)  # the usual case of _message_number, inlined
    else:
        msg_id = _message_number(number)
    cls: type[MessageEvent]
    if message_type in _TEXT_LIKE:
        edited_id = _text(resource, "skypeeditedid")
        if edited_id:
            message = _build_message(resource, message_type)
            return _make_edit(event_id, time, msg_id, message, edited_id, ack_url)
        cls = NewMessageEvent
    elif message_type == _CALL_TYPE:
        cls = CallEvent
    else:
        cls = MessageEvent
    make = _MAKE_MESSAGE_EVENT[cls]
    return make(event_id, time, msg_id, _build_message(resource, message_type), ack_url)


def _conversation_update(
    event_id: int, time: dt.datetime, ack_url: str | None, resource: Mapping[str, Any]
) -> TypedEvent:
    return _make_conversation_update(
        event_id,
        time,
        _text(resource, "id"),
        _text(_object(resource, "properties"), "consumptionhorizon"),
        ack_url,
    )


def _member_ids(members: Any) -> tuple[str, ...]:
    if members.__class__ is not list:
        raise _Malformed("thread update without a members list")
    user_ids: list[str] = []
    for member in members:
        if member.__class__ is not dict:
            raise _Malformed("thread member is not an object")
        member_id = _text(member, "id")
        user_id = None if member_id is None else _member_user(member_id)
        if user_id:
            user_ids.append(user_id)
    return tuple(user_ids)


def _thread_update(
    event_id: int, time: dt.datetime, ack_url: str | None, resource: Mapping[str, Any]
) -> TypedEvent:
    return _make_thread_update(
        event_id,
        time,
        _text(resource, "id"),
        _member_ids(resource.get("members")),
        ack_url,
    )


_BUILDERS: Final[Mapping[str, _Builder]] = {
    "UserPresence": _presence,
    "EndpointPresence": _endpoint_presence,
    "NewMessage": _new_message,
    "ConversationUpdate": _conversation_update,
    "ThreadUpdate": _thread_update,
}


def _unknown(raw: Any, reason: str) -> UnknownEvent:
    """Keep whatever can still be read from a raw element, leniently."""
    if raw.__class__ is not dict:
        return _make_unknown(
            id=None, time=None, ack_url=None, resource_type=None, raw=raw, reason=reason
        )
    event_id = raw.get("id")
    resource_type = raw.get("resourceType")
    resource = raw.get("resource")
    ack_url = resource.get("ackrequired") if resource.__class__ is dict else None
    return _make_unknown(
        id=event_id if event_id.__class__ is int else None,
        time=_parse_time(raw.get("time")),
        ack_url=ack_url if ack_url.__class__ is str else None,
        resource_type=resource_type if resource_type.__class__ is str else None,
        raw=raw,
        reason=reason,
    )


def _structure_event(raw: Any, _: Any = Event) -> Event:
    """Build the event for one element of ``eventMessages``; never raises."""
    if raw.__class__ is not dict:
        return _unknown(raw, "event is not a JSON object")
    get = raw.get
    try:
        resource_type = get("resourceType")
        builder = _BUILDERS.get(resource_type) if resource_type.__class__ is str else None
        if builder is None:
            if resource_type.__class__ is str:
                return _unknown(raw, f"resourceType {_shorten(resource_type)} is not modelled")
            return _unknown(raw, "resourceType is missing or not a string")
        event_id = get("id")
        if event_id.__class__ is not int:
            raise _Malformed("event id is missing or not an integer")
        time = _parse_time(get("time"))
        if time is None:
            raise _Malformed("event time is missing or not a timestamp")
        # _object(raw, "resource") and _text(resource, "ackrequired"), inlined: every event
        # passes here.
        resource = get("resource")
        if resource.__class__ is not dict:
            resource = _object(raw, "resource")
        ack_url = resource.get("ackrequired")
        if ack_url.__class__ is not str and ack_url is not None:
            raise _Malformed("ackrequired is not a string")
        return builder(event_id, time, ack_url, resource)
    except _Malformed as exc:
        return _unknown(raw, str(exc))
    except Exception as exc:  # a decoder bug must not cost the rest of the batch
        logger.warning("event decoder failed (%s); delivered as UnknownEvent", type(exc).__name__)
        return _unknown(raw, f"decoder error ({type(exc).__name__})")


def _structure_message(resource: Any, _: Any = Message) -> Message:
    if resource.__class__ is not dict:
        raise RemoteProtocolError("a message resource must be a JSON object")
    try:
        return _build_message(resource)
    except _Malformed as exc:
        raise RemoteProtocolError(f"malformed message: {exc}") from None


_E = TypeVar("_E", bound=Event)


def _structure_hook_for(cls: type[_E]) -> Callable[[Any, Any], _E]:
    """A hook that decodes one element and insists on an event of class ``cls``."""
    if cls is Event:
        return _structure_event  # type: ignore[return-value]

    def structure_as(raw: Any, _: Any = cls) -> _E:
        event = _structure_event(raw)
        if not isinstance(event, cls):
            detail = event.reason if isinstance(event, UnknownEvent) else type(event).__name__
            raise RemoteProtocolError(f"expected a {cls.__name__}, got: {detail}")
        return event

    return structure_as


def _is_event_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Event)


def decode_events(data: bytes | bytearray | str) -> list[Event]:
    """The events in a poll answer's body, in order (see the module docstring for bad input)."""
    if isinstance(data, str):
        if not data or data.isspace():
            return []
    elif isinstance(data, (bytes, bytearray)):
        if not data.strip():
            return []
    else:
        raise LocalProtocolError("decode_events takes the body as bytes or str")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise RemoteProtocolError("poll answer is not valid JSON") from None
    if body.__class__ is not dict:
        raise RemoteProtocolError("poll answer is not a JSON object")
    messages = body.get("eventMessages")
    if messages is None and "eventMessages" not in body:
        return []
    if messages.__class__ is not list:
        raise RemoteProtocolError("eventMessages is not a list")
    # What converter.structure(messages, list[Event]) does, without its per-element dispatch.
    return [_structure_event(raw) for raw in messages]


# -- encoding ---------------------------------------------------------------------------------


def _format_time(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise LocalProtocolError("event and message times must be timezone-aware")
    text = when.astimezone(_UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _envelope(event: TypedEvent, resource: dict[str, Any]) -> dict[str, Any]:
    if event.ack_url is not None:
        resource["ackrequired"] = event.ack_url
    return {
        "id": event.id,
        "type": "EventMessage",
        "resourceType": event.resource_type,
        "time": _format_time(event.time),
        "resource": resource,
    }


def _user_link(base: str, user_id: str | None, tail: str) -> str:
    user = "ME" if user_id is None else f"8:{user_id}"
    return f"{base}/users/{user}{tail}"


def _encode_presence(event: PresenceEvent, base: str) -> dict[str, Any]:
    return _envelope(
        event,
        {
            "id": "messagingService",
            "type": "UserPresenceDoc",
            "selfLink": _user_link(base, event.user_id, "/presenceDocs/messagingService"),
            "availability": "Online" if event.online else "Offline",
            "status": event.status.value,
            "capabilities": _CAPABILITY_SEPARATOR.join(event.capabilities),
        },
    )


def _encode_endpoint_presence(event: EndpointPresenceEvent, base: str) -> dict[str, Any]:
    public = {
        "capabilities": _CAPABILITY_SEPARATOR.join(event.capabilities),
        "typ": event.device_type,
        "skypeNameVersion": event.version,
    }
    return _envelope(
        event,
        {
            "id": "messagingService",
            "type": "EndpointPresenceDoc",
            "selfLink": _user_link(base, event.user_id, "/presenceDocs/endpointMessagingService"),
            "publicInfo": _drop_none(public),
            "privateInfo": _drop_none({"epname": event.name}),
        },
    )


def _message_resource(message: Message, base: str) -> dict[str, Any]:
    chat = message.chat_id
    return _drop_none(
        {
            "id": message.id,
            "type": "Message",
            "messagetype": message.message_type,
            "content": message.content,
            "clientmessageid": message.client_id,
            "originalarrivaltime": None if message.time is None else _format_time(message.time),
            "conversationLink": None if chat is None else f"{base}/users/ME/conversations/{chat}",
            "from": (
                None if message.user_id is None else f"{base}/users/ME/contacts/8:{message.user_id}"
            ),
        }
    )


def _encode_message_event(event: MessageEvent, base: str) -> dict[str, Any]:
    return _envelope(event, _message_resource(event.message, base))


def _encode_edit(event: EditMessageEvent, base: str) -> dict[str, Any]:
    resource = _message_resource(event.message, base)
    resource["skypeeditedid"] = event.edited_id
    # The decoder falls back to skypeeditedid only when clientmessageid is absent.
    if event.message.client_id == event.edited_id:
        del resource["clientmessageid"]
    elif event.message.client_id is None:
        resource["clientmessageid"] = None
    return _envelope(event, resource)


def _encode_typing(event: TypingEvent, base: str) -> dict[str, Any]:
    message_type = "Control/Typing" if event.active else "Control/ClearTyping"
    message = Message(None, message_type, None, None, event.user_id, event.chat_id, "")
    return _envelope(event, _message_resource(message, base))


def _encode_conversation_update(event: ConversationUpdateEvent, base: str) -> dict[str, Any]:
    properties = _drop_none({"consumptionhorizon": event.horizon})
    resource = _drop_none({"id": event.chat_id, "type": "Conversation"})
    resource["properties"] = properties
    return _envelope(event, resource)


def _encode_thread_update(event: ThreadUpdateEvent, base: str) -> dict[str, Any]:
    resource = _drop_none({"id": event.chat_id, "type": "Thread"})
    resource["members"] = [{"id": f"8:{user_id}"} for user_id in event.user_ids]
    return _envelope(event, resource)


def _encode_unknown(event: UnknownEvent, base: str) -> dict[str, Any]:
    if event.raw.__class__ is not dict:
        raise LocalProtocolError(
            "an UnknownEvent whose raw element is not an object has no encoding"
        )
    return event.raw


_ENCODERS: Final[Mapping[type[Event], Callable[[Any, str], dict[str, Any]]]] = {
    PresenceEvent: _encode_presence,
    EndpointPresenceEvent: _encode_endpoint_presence,
    MessageEvent: _encode_message_event,
    NewMessageEvent: _encode_message_event,
    EditMessageEvent: _encode_edit,
    CallEvent: _encode_message_event,
    TypingEvent: _encode_typing,
    ConversationUpdateEvent: _encode_conversation_update,
    ThreadUpdateEvent: _encode_thread_update,
    UnknownEvent: _encode_unknown,
}


def encode_event(event: Event, *, base: str = _DEFAULT_BASE) -> dict[str, Any]:
    """The wire shape of ``event``: an element of ``eventMessages``, links built on ``base``.

    For every event :func:`decode_events` returns, decoding the encoded form gives an equal
    event. An :class:`UnknownEvent` encodes to its ``raw`` element itself (not a copy).
    """
    encoder = _ENCODERS.get(type(event))
    if encoder is None:
        raise LocalProtocolError(f"cannot encode a {type(event).__name__} as an event")
    return encoder(event, base)


def _unstructure_message(message: Message) -> dict[str, Any]:
    return _message_resource(message, _DEFAULT_BASE)


#: The converter that structures ``eventMessages`` elements into events and back. Structuring to
#: :class:`Event` never raises; structuring to a subclass raises :class:`RemoteProtocolError`
#: when the element is not of that kind.
converter: Final = cattrs.Converter(detailed_validation=False)
converter.register_structure_hook_factory(_is_event_class, _structure_hook_for)
converter.register_structure_hook(Message, _structure_message)
converter.register_unstructure_hook_func(_is_event_class, encode_event)
converter.register_unstructure_hook(Message, _unstructure_message)
