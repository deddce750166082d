"""Event envelopes the emulator delivers through the long poll (docs/protocol.md §9).

:func:`render_event` turns a kind name into an ``eventMessages`` element shaped like captured
traffic. Every URL in it starts from the messaging base of the endpoint that receives it, and
every ``NewMessage`` carries ``ackrequired`` pointing at that base's ack route.

Internal to the emulator; nothing here is public API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__: list[str] = []

#: Every event kind, in the order a generated stream cycles through them.
EVENT_KINDS: tuple[str, ...] = (
    "text",
    "typing",
    "presence",
    "endpoint_presence",
    "group_text",
    "edit",
    "clear_typing",
    "call",
    "thread_activity",
    "conversation_update",
    "thread_update",
    "custom",
)
#: What every endpoint's first subscription receives by default; two of them need an ack.
DEFAULT_EVENTS: tuple[str, ...] = ("text", "typing", "presence", "conversation_update")
ALICE = "alice.smith"
BOB = "live:bob_1"
GROUP_CHAT = "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"
_STATUSES = ("Online", "Away", "Busy", "Idle", "Hidden", "Offline")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_P2P = f"8:{ALICE}"
# The ``NewMessage`` kinds: (chat, sender, messagetype, content); ``{seq}`` and ``{message_id}``
# in the content are filled in.
_MESSAGE_KINDS: dict[str, tuple[str, str, str, str]] = {
    "text": (_P2P, ALICE, "RichText", "Hello <b>there</b> #{seq}"),
    "typing": (_P2P, ALICE, "Control/Typing", ""),
    "group_text": (GROUP_CHAT, BOB, "Text", "Lunch at 1? #{seq}"),
    "edit": (_P2P, ALICE, "Text", "Hello there, Bob #{seq}"),
    "clear_typing": (_P2P, ALICE, "Control/ClearTyping", ""),
    "call": (
        _P2P,
        ALICE,
        "Event/Call",
        '<partlist type="started" alt=""><part identity="alice.smith">'
        "<name>Alice Smith</name></part></partlist>",
    ),
    "thread_activity": (
        GROUP_CHAT,
        BOB,
        "ThreadActivity/TopicUpdate",
        f"<topicupdate><eventtime>{{message_id}}</eventtime><initiator>8:{BOB}</initiator>"
        "<value>Project X #{seq}</value></topicupdate>",
    ),
}
#: Kinds whose envelopes carry ``resource.ackrequired`` (all ``NewMessage`` kinds).
ACK_KINDS = frozenset(_MESSAGE_KINDS)


def event_time(when: dt.datetime) -> str:
    """The envelope ``time``: UTC, whole seconds, ``Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_time(when: dt.datetime) -> str:
    """A message timestamp: UTC with milliseconds, ``Z``."""
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def ack_url(base: str, message_id: str) -> str:
    """Where an event about message ``message_id`` is acknowledged."""
    return f"{base}/users/ME/conversations/ALL/messages/{message_id}/ack"


def _message(
    base: str,
    *,
    message_id: str,
    when: dt.datetime,
    chat: str,
    sender: str,
    messagetype: str,
    content: str,
    seq: int,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": message_id,
        "type": "Message",
        "messagetype": messagetype,
        "contenttype": "text",
        "content": content,
        "clientmessageid": str(4417934025553866001 + seq),
        "originalarrivaltime": message_time(when),
        "composetime": message_time(when),
        "conversationLink": f"{base}/users/ME/conversations/{chat}",
        "from": f"{base}/users/ME/contacts/8:{sender}",
        "imdisplayname": "Alice Smith" if sender == ALICE else "Bob",
        "version": message_id,
        "ackrequired": ack_url(base, message_id),
    }
    return resource


def _resource(
    kind: str, base: str, *, message_id: str, when: dt.datetime, seq: int, user: str
) -> tuple[str, str | None, dict[str, Any]]:
    """``(resourceType, resourceLink, resource)`` for one kind."""
    if kind in _MESSAGE_KINDS:
        chat, sender, messagetype, content = _MESSAGE_KINDS[kind]
        res = _message(
            base,
            message_id=message_id,
            when=when,
            chat=chat,
            sender=sender,
            messagetype=messagetype,
            content=content.format(seq=seq, message_id=message_id),
            seq=seq,
        )
        if kind in ("typing", "clear_typing"):
            res["contenttype"] = "Application/Message"
        if kind == "edit":
            res["skypeeditedid"] = res.pop("clientmessageid")
        link = f"{base}/users/ME/conversations/{_P2P}/messages/{message_id}"
        return "NewMessage", (link if kind == "text" else None), res
    if kind == "presence":
        status = _STATUSES[seq % len(_STATUSES)]
        res = {
            "id": "messagingService",
            "type": "UserPresenceDoc",
            "selfLink": f"{base}/users/8:{ALICE}/presenceDocs/messagingService",
            "availability": "Offline" if status in ("Hidden", "Offline") else "Online",
            "status": status,
            "capabilities": "Seamless | SmsMessaging | IsMobile",
            "lastSeenAt": event_time(when),
        }
        link = f"{base}/users/ME/contacts/8:{ALICE}/presenceDocs/messagingService"
        return "UserPresence", link, res
    if kind == "endpoint_presence":
        endpoint = "%7B5d1c7a2e-8b3f-4c61-9e0a-2f4b6d8c1e37%7D"
        res = {
            "id": "messagingService",
            "type": "EndpointPresenceDoc",
            "selfLink": (
                f"{base}/users/8:{ALICE}/endpoints/{endpoint}/presenceDocs/messagingService"
            ),
            "publicInfo": {
                "capabilities": "Audio | Video | GroupVideo",
                "typ": "17",
                "skypeNameVersion": "2012/8.110.0.211//skype.com",
                "nodeInfo": "xx",
                "version": "908/8.110.0.211",
            },
            "privateInfo": {"epname": "ALICE-LAPTOP"},
        }
        return "EndpointPresence", None, res
    if kind == "conversation_update":
        version = int(message_id)
        res = {
            "id": _P2P,
            "type": "Conversation",
            "version": version,
            "properties": {
                "consumptionhorizon": f"{message_id};{version + 877};{4417934025553866001 + seq}",
                "isemptyconversation": "False",
            },
            "messages": f"{base}/users/ME/conversations/{_P2P}/messages",
            "targetLink": f"{base}/users/ME/contacts/{_P2P}",
        }
        return "ConversationUpdate", f"{base}/users/ME/conversations/{_P2P}", res
    if kind == "thread_update":
        res = {
            "id": GROUP_CHAT,
            "type": "Thread",
            "version": int(message_id),
            "properties": {"topic": "Project X", "joiningenabled": "true"},
            "members": [
                {"id": f"8:{ALICE}", "role": "Admin"},
                {"id": f"8:{BOB}", "role": "User"},
                {"id": "28:concierge", "role": "User"},
                {"id": f"8:{user}", "role": "User"},
            ],
        }
        return "ThreadUpdate", f"{base}/threads/{GROUP_CHAT}", res
    if kind == "custom":
        return "CustomUserProperties", None, {"id": "x", "type": "CustomUserProperties"}
    raise ValueError(f"unknown event kind {kind!r}")


def render_event(
    kind: str,
    *,
    base: str,
    event_id: int,
    message_id: str,
    when: dt.datetime,
    seq: int,
    user: str,
) -> dict[str, Any]:
    """One ``eventMessages`` element of ``kind`` for an endpoint whose base is ``base``.

    ``message_id`` is a decimal string (milliseconds since the epoch, made unique by the
    caller); ``user`` is the receiving user's id, named in thread updates.
    """
    resource_type, link, resource = _resource(
        kind, base, message_id=message_id, when=when, seq=seq, user=user
    )
    envelope: dict[str, Any] = {
        "id": event_id,
        "type": "EventMessage",
        "resourceType": resource_type,
        "time": event_time(when),
    }
    if link is not None:
        envelope["resourceLink"] = link
    envelope["resource"] = resource
    return envelope


def epoch_millis(when: dt.datetime) -> int:
    """Milliseconds since the Unix epoch."""
    delta = when.astimezone(dt.UTC) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
