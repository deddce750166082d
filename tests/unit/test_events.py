"""Typed events: the recorded envelopes, the §9.4 examples, the malformed-input policy."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from skyproto.emulator.event_stream import EVENT_KINDS, render_event
from skyproto.errors import LocalProtocolError, RemoteProtocolError
from skyproto.events import (
    CallEvent,
    ConversationUpdateEvent,
    EditMessageEvent,
    EndpointPresenceEvent,
    Event,
    Message,
    MessageEvent,
    MessageKind,
    NewMessageEvent,
    PresenceEvent,
    ThreadUpdateEvent,
    TypedEvent,
    TypingEvent,
    UnknownEvent,
    converter,
    decode_events,
    encode_event,
    parse_event_time,
)
from skyproto.ids import Status

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "events.json").read_text(encoding="utf-8")
)
CASES = {case["name"]: case for case in VECTORS["cases"]}
CRASH_CASES = {case["name"]: case for case in VECTORS["crash_cases"]}
UTC = dt.UTC
H = "https://client-s.gateway.messenger.live.com/v1"
GROUP = "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"

#: SkPy's event class -> ours.
OUR_CLASS = {
    "SkypePresenceEvent": PresenceEvent,
    "SkypeEndpointEvent": EndpointPresenceEvent,
    "SkypeNewMessageEvent": NewMessageEvent,
    "SkypeEditMessageEvent": EditMessageEvent,
    "SkypeCallEvent": CallEvent,
    "SkypeMessageEvent": MessageEvent,
    "SkypeTypingEvent": TypingEvent,
    "SkypeChatUpdateEvent": ConversationUpdateEvent,
    "SkypeChatMemberEvent": ThreadUpdateEvent,
    "SkypeEvent": UnknownEvent,
}
#: SkPy's event attribute -> ours.
OUR_FIELD = {
    "userId": "user_id",
    "chatId": "chat_id",
    "msgId": "msg_id",
    "userIds": "user_ids",
    "online": "online",
    "status": "status",
    "capabilities": "capabilities",
    "name": "name",
    "version": "version",
    "active": "active",
    "horizon": "horizon",
}
#: SkPy's message class -> our message kind.
OUR_KIND = {
    "SkypeTextMsg": MessageKind.TEXT,
    "SkypeCallMsg": MessageKind.CALL,
    "SkypeTopicPropertyMsg": MessageKind.PROPERTY_CHANGE,
}


def body(*events: Any) -> bytes:
    return json.dumps({"eventMessages": list(events)}).encode()


def decode_one(raw: Any) -> Event:
    (event,) = decode_events(body(raw))
    return event


def raw_of(name: str) -> dict[str, Any]:
    return copy.deepcopy(CASES[name]["raw"])


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def skpy_time(text: str) -> dt.datetime | None:
    """A time as the vectors give it (naive UTC), aware; SkPy's local-now fallbacks -> None."""
    if text.startswith("<local now"):
        return None
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def expected_field(name: str, value: Any) -> Any:
    if name == "status":
        return Status[value]
    if isinstance(value, list):
        return tuple(value)
    return value


# -- the recorded envelopes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_envelope_gives_the_fields_skpy_derived(name: str) -> None:
    expected = CASES[name]["expected"]
    event = decode_one(raw_of(name))
    assert type(event) is OUR_CLASS[expected["class"]]
    fields = expected["fields"]
    assert event.id == fields["id"]
    if isinstance(event, EndpointPresenceEvent):
        # SkPy overwrote `type` with the device type; we keep both.
        assert event.resource_type == "EndpointPresence"
        assert event.device_type == fields["type"]
    else:
        assert event.resource_type == fields["type"]
    wire_time = CASES[name]["raw"]["time"]
    assert event.time == (skpy_time(fields["time"]) or parse_event_time(wire_time))
    for skpy_name, value in fields.items():
        if skpy_name in OUR_FIELD:
            assert getattr(event, OUR_FIELD[skpy_name]) == expected_field(skpy_name, value)
    if "message" in expected:
        assert isinstance(event, MessageEvent)
        wanted = expected["message"]
        message = event.message
        assert message.kind is OUR_KIND[wanted["class"]]
        assert message.id == wanted["id"]
        assert message.message_type == wanted["type"]
        assert message.time == skpy_time(wanted["time"])
        assert message.client_id == wanted["clientId"]
        assert message.user_id == wanted["userId"]
        assert message.chat_id == wanted["chatId"]
        assert message.content == wanted["content"]


def test_unknown_resource_type_keeps_what_it_can() -> None:
    raw = raw_of("unknown_type")
    assert decode_one(raw) == UnknownEvent(
        1014,
        utc(2024, 3, 5, 14, 30, 0, 500000),  # SkPy fell back to local now here
        resource_type="CustomUserProperties",
        raw=raw,
        reason="resourceType 'CustomUserProperties' is not modelled",
    )


CRASH_OUTCOMES = {
    "presence-missing-status": "presence without status",
    "presence-unknown-status": "presence status 'DoNotDisturb' is not known",
    "presence-missing-selflink": "presence without selfLink",
    "thread-update-no-members": "thread update without a members list",
    "message-nonnumeric-id": "message id 'abc' is not a non-negative integer",
}


@pytest.mark.parametrize("name", sorted(CRASH_CASES))
def test_reference_crash_becomes_an_unknown_event(name: str) -> None:
    raw = CRASH_CASES[name]["raw"]
    assert decode_one(raw) == UnknownEvent(
        raw["id"],
        utc(2024, 3, 5, 14, 22, 31),
        resource_type=raw["resourceType"],
        raw=raw,
        reason=CRASH_OUTCOMES[name],
    )


def test_crash_cases_do_not_cost_the_rest_of_the_batch() -> None:
    crashes = [case["raw"] for case in VECTORS["crash_cases"]]
    good = [raw_of("presence_online"), raw_of("new_text"), raw_of("thread_update")]
    events = decode_events(body(good[0], *crashes[:3], good[1], *crashes[3:], good[2]))
    assert [type(e).__name__ for e in events] == [
        "PresenceEvent",
        "UnknownEvent",
        "UnknownEvent",
        "UnknownEvent",
        "NewMessageEvent",
        "UnknownEvent",
        "UnknownEvent",
        "ThreadUpdateEvent",
    ]
    assert [e.id for e in events] == [1003, 1, 2, 3, 1005, 4, 5, 1011]


# -- the §9.4 examples --------------------------------------------------------------------------


def test_example_user_presence() -> None:
    assert decode_one(raw_of("presence_online")) == PresenceEvent(
        1003,
        utc(2024, 3, 5, 14, 22, 31),
        "alice.smith",
        True,
        Status.Online,
        ("Seamless", "SmsMessaging", "IsMobile"),
    )
    assert decode_one(raw_of("presence_offline")) == PresenceEvent(
        1020, utc(2024, 3, 5, 18, 0, 0), "live:bob_1", False, Status.Away, ()
    )


def test_example_endpoint_presence_keeps_its_resource_type() -> None:
    event = decode_one(raw_of("endpoint"))
    assert event == EndpointPresenceEvent(
        1004,
        utc(2024, 3, 5, 14, 22, 31),
        "alice.smith",
        "ALICE-LAPTOP",
        ("Audio", "Video", "GroupVideo"),
        "17",
        "2012/8.110.0.211//skype.com",
    )
    assert event.resource_type == "EndpointPresence"


def test_example_new_text_message_with_ack() -> None:
    assert decode_one(raw_of("new_text")) == NewMessageEvent(
        1005,
        utc(2024, 3, 5, 14, 23, 2),
        1709648582123,
        Message(
            "1709648582123",
            "RichText",
            utc(2024, 3, 5, 14, 23, 2, 123000),
            "4417934025553866001",
            "alice.smith",
            "8:alice.smith",
            "Hello <b>there</b>",
        ),
        ack_url=f"{H}/users/ME/conversations/ALL/messages/1709648582123/ack",
    )


def test_example_group_text() -> None:
    event = decode_one(raw_of("new_group_text"))
    assert isinstance(event, NewMessageEvent)
    assert (event.message.chat_id, event.message.user_id) == (GROUP, "live:bob_1")
    assert event.ack_url is None


def test_example_edit_takes_client_id_from_skypeeditedid() -> None:
    event = decode_one(raw_of("edit"))
    assert type(event) is EditMessageEvent
    assert event.msg_id == 1709648640000
    assert event.message.client_id == "4417934025553866001"
    assert event.edited_id == "4417934025553866001"
    assert event.message.time == utc(2024, 3, 5, 14, 24, 0)


def test_example_typing_and_clear_typing() -> None:
    raw = raw_of("typing")
    assert decode_one(raw) == TypingEvent(
        1008, utc(2024, 3, 5, 14, 22, 58), "alice.smith", "8:alice.smith", True
    )
    raw["resource"]["messagetype"] = "Control/ClearTyping"
    assert decode_one(raw) == TypingEvent(
        1008, utc(2024, 3, 5, 14, 22, 58), "alice.smith", "8:alice.smith", False
    )


def test_example_call() -> None:
    event = decode_one(raw_of("call"))
    assert type(event) is CallEvent
    assert event.msg_id == 1709650800000
    assert event.message.kind is MessageKind.CALL
    assert event.message.client_id is None


def test_example_conversation_update() -> None:
    assert decode_one(raw_of("conversation_update")) == ConversationUpdateEvent(
        1010,
        utc(2024, 3, 5, 14, 23, 3),
        "8:alice.smith",
        "1709648582123;1709648583000;4417934025553866001",
    )


def test_example_thread_update_gives_a_reusable_tuple() -> None:
    event = decode_one(raw_of("thread_update"))
    assert event == ThreadUpdateEvent(
        1011,
        utc(2024, 3, 5, 14, 30, 0),
        GROUP,
        ("alice.smith", "live:bob_1", "concierge"),
    )
    assert isinstance(event, ThreadUpdateEvent)
    assert list(event.user_ids) == list(event.user_ids)


# -- the poll body ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", "", b"  \r\n", "\t", b"{}", "{}", b'{"eventMessages": []}'])
def test_empty_answers_give_no_events(data: bytes | str) -> None:
    assert decode_events(data) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "poll answer is not valid JSON"),
        (b'{"eventMessages": [', "poll answer is not valid JSON"),
        (b"\xff\xfe\xfd", "poll answer is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "poll answer is not valid JSON"),
        (b'{"eventMessages": [' + b"9" * 5000 + b"]}", "poll answer is not valid JSON"),
        (b"[]", "poll answer is not a JSON object"),
        (b"null", "poll answer is not a JSON object"),
        (b'"eventMessages"', "poll answer is not a JSON object"),
        (b'{"eventMessages": null}', "eventMessages is not a list"),
        (b'{"eventMessages": {"id": 1}}', "eventMessages is not a list"),
        ('{"eventMessages": "x"}', "eventMessages is not a list"),
    ],
)
def test_unusable_answers_raise_remote_protocol_error(data: bytes | str, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_events(data)
    assert caught.value.message == message


def test_body_may_be_text_or_bytes_in_any_json_encoding() -> None:
    text = json.dumps({"eventMessages": [raw_of("typing")]})
    expected = decode_events(text)
    assert len(expected) == 1
    assert decode_events(text.encode("utf-16")) == expected
    assert decode_events(bytearray(text.encode())) == expected


def test_body_of_another_type_is_a_caller_error() -> None:
    with pytest.raises(LocalProtocolError):
        decode_events(memoryview(b"{}"))  # type: ignore[arg-type]


def test_extra_envelope_keys_are_ignored() -> None:
    raw = raw_of("conversation_update")
    raw["somethingNew"] = {"nested": [1, 2]}
    assert isinstance(decode_one(raw), ConversationUpdateEvent)


# -- single malformed events --------------------------------------------------------------------


def test_element_that_is_not_an_object() -> None:
    events = decode_events(body(1, "x", None, [raw_of("typing")]))
    assert events == [
        UnknownEvent(None, None, resource_type=None, raw=raw, reason="event is not a JSON object")
        for raw in (1, "x", None, [raw_of("typing")])
    ]


@pytest.mark.parametrize("bad_id", [None, "1003", 1003.0, True, [1003]])
def test_event_without_an_integer_id_has_id_none(bad_id: Any) -> None:
    raw = raw_of("typing")
    raw["ackrequired"] = "ignored: not in the resource"
    raw["resource"]["ackrequired"] = f"{H}/users/ME/conversations/ALL/messages/1/ack"
    if bad_id is None:
        del raw["id"]
    else:
        raw["id"] = bad_id
    event = decode_one(raw)
    assert event == UnknownEvent(
        None,
        utc(2024, 3, 5, 14, 22, 58),
        ack_url=f"{H}/users/ME/conversations/ALL/messages/1/ack",
        resource_type="NewMessage",
        raw=raw,
        reason="event id is missing or not an integer",
    )


@pytest.mark.parametrize(
    "bad_time",
    [None, "", "yesterday", "2024-03-05", "2024-03-05 14:22:58Z", "2024-13-05T14:22:58Z", 17e8],
)
def test_event_time_that_does_not_parse(bad_time: Any) -> None:
    raw = raw_of("typing")
    raw["time"] = bad_time
    event = decode_one(raw)
    assert isinstance(event, UnknownEvent)
    assert (event.id, event.time, event.resource_type) == (1008, None, "NewMessage")
    assert event.reason == "event time is missing or not a timestamp"


@pytest.mark.parametrize(
    ("resource_type", "change", "reason"),
    [
        (None, {"resourceType": None}, "resourceType is missing or not a string"),
        (None, {"resourceType": 7}, "resourceType is missing or not a string"),
        ("NewMessage", {"resource": []}, "resource is not an object"),
        ("NewMessage", {"resource": "x"}, "resource is not an object"),
    ],
)
def test_envelope_level_problems(
    resource_type: str | None, change: dict[str, Any], reason: str
) -> None:
    raw = raw_of("new_text")
    raw.update(change)
    event = decode_one(raw)
    assert isinstance(event, UnknownEvent)
    assert (event.id, event.resource_type, event.reason) == (1005, resource_type, reason)
    assert event.time == utc(2024, 3, 5, 14, 23, 2)


@pytest.mark.parametrize(
    ("name", "path", "value", "reason"),
    [
        ("presence_online", ("selfLink",), 42, "selfLink is not a string"),
        ("presence_online", ("status",), "online", "presence status 'online' is not known"),
        ("presence_online", ("status",), 3, "presence status 3 is not known"),
        ("presence_online", ("capabilities",), ["Seamless"], "capabilities is not a string"),
        ("presence_online", ("availability",), True, "availability is not a string"),
        ("endpoint", ("publicInfo",), [], "publicInfo is not an object"),
        ("endpoint", ("privateInfo", "epname"), 5, "epname is not a string"),
        ("endpoint", ("publicInfo", "typ"), 17, "typ is not a string"),
        ("new_text", ("ackrequired",), {"url": "x"}, "ackrequired is not a string"),
        ("new_text", ("content",), ["Hello"], "content is not a string"),
        ("new_text", ("from",), 1, "from is not a string"),
        ("new_text", ("conversationLink",), {}, "conversationLink is not a string"),
        ("new_text", ("originalarrivaltime",), 1709648582, "originalarrivaltime is not a string"),
        ("new_text", ("clientmessageid",), 44, "clientmessageid is not a string"),
        ("new_text", ("messagetype",), 1, "messagetype is not a string"),
        ("new_text", ("id",), -5, "message id -5 is not a non-negative integer"),
        ("new_text", ("id",), 1.5, "message id 1.5 is not a non-negative integer"),
        ("new_text", ("id",), " 5 ", "message id ' 5 ' is not a non-negative integer"),
        ("new_text", ("id",), "\u0665", "message id '\u0665' is not a non-negative integer"),
        ("new_text", ("id",), "9" * 5000, "message id '99999999999999999999999999999999999..."),
        ("edit", ("skypeeditedid",), 1, "skypeeditedid is not a string"),
        ("typing", ("from",), [], "from is not a string"),
        ("conversation_update", ("properties",), "x", "properties is not an object"),
        ("conversation_update", ("id",), 8, "id is not a string"),
        ("thread_update", ("members",), {"id": "8:x"}, "thread update without a members list"),
        ("thread_update", ("members", 1), "8:bob", "thread member is not an object"),
        ("thread_update", ("members", 0, "id"), 8, "id is not a string"),
    ],
)
def test_malformed_field_gives_an_unknown_event_with_a_reason(
    name: str, path: tuple[Any, ...], value: Any, reason: str
) -> None:
    raw = raw_of(name)
    target = raw["resource"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    event = decode_one(raw)
    assert isinstance(event, UnknownEvent)
    assert event.reason.startswith(reason.removesuffix("..."))
    assert event.id == raw["id"]
    assert event.resource_type == raw["resourceType"]
    assert event.raw is not None
    assert len(event.reason) <= 100


def test_missing_resource_counts_as_empty() -> None:
    base = {"id": 7, "time": "2024-03-05T14:22:31Z"}
    assert decode_one({**base, "resourceType": "ConversationUpdate"}) == ConversationUpdateEvent(
        7, utc(2024, 3, 5, 14, 22, 31), None, None
    )
    assert decode_one({**base, "resourceType": "NewMessage"}) == MessageEvent(
        7,
        utc(2024, 3, 5, 14, 22, 31),
        None,
        Message(None, None, None, None, None, None, None),
    )
    assert isinstance(decode_one({**base, "resourceType": "UserPresence"}), UnknownEvent)


def test_links_without_ids_give_none_like_the_reference() -> None:
    raw = raw_of("presence_online")
    raw["resource"]["selfLink"] = "https://example.invalid/elsewhere"
    event = decode_one(raw)
    assert isinstance(event, PresenceEvent)
    assert event.user_id is None
    raw = raw_of("new_text")
    raw["resource"]["from"] = "8:alice"
    raw["resource"]["conversationLink"] = f"{H}/users/ME/conversations/ALL"
    event = decode_one(raw)
    assert isinstance(event, NewMessageEvent)
    assert (event.message.user_id, event.message.chat_id) == (None, None)


@pytest.mark.parametrize("client_id", ["", None, "4417934025553866001", "other"])
def test_client_id_falls_back_to_skypeeditedid_only_when_absent(client_id: str | None) -> None:
    raw = raw_of("edit")
    raw["resource"]["clientmessageid"] = client_id
    event = decode_one(raw)
    assert type(event) is EditMessageEvent
    assert event.message.client_id == client_id
    assert event.edited_id == "4417934025553866001"
    encoded = encode_event(event)
    assert decode_one(encoded) == event
    assert ("clientmessageid" in encoded["resource"]) is (client_id != event.edited_id)


@pytest.mark.parametrize("edited", [None, ""])
def test_empty_skypeeditedid_is_not_an_edit(edited: str | None) -> None:
    raw = raw_of("new_group_text")
    raw["resource"]["skypeeditedid"] = edited
    assert type(decode_one(raw)) is NewMessageEvent


def test_message_ids_as_numbers_and_digit_strings() -> None:
    raw = raw_of("new_text")
    raw["resource"]["id"] = 1709648582123
    event = decode_one(raw)
    assert isinstance(event, NewMessageEvent)
    assert (event.msg_id, event.message.id) == (1709648582123, "1709648582123")
    raw["resource"]["id"] = "0042"
    event = decode_one(raw)
    assert isinstance(event, NewMessageEvent)
    assert (event.msg_id, event.message.id) == (42, "0042")
    del raw["resource"]["id"]
    event = decode_one(raw)
    assert isinstance(event, NewMessageEvent)
    assert (event.msg_id, event.message.id) == (None, None)


def test_thread_members_without_ids_are_dropped() -> None:
    raw = raw_of("thread_update")
    raw["resource"]["members"] = [
        {"id": None},
        {"id": ""},
        {"id": "8:"},
        {"role": "User"},
        {"id": "x"},
    ]
    event = decode_one(raw)
    assert isinstance(event, ThreadUpdateEvent)
    assert event.user_ids == ("x",)


def test_capabilities_split_on_the_exact_separator() -> None:
    raw = raw_of("presence_online")
    raw["resource"]["capabilities"] = " | A |  | B|C | D|"
    event = decode_one(raw)
    assert isinstance(event, PresenceEvent)
    assert event.capabilities == ("A", "B|C", "D|")
    del raw["resource"]["capabilities"]
    event = decode_one(raw)
    assert isinstance(event, PresenceEvent)
    assert event.capabilities == ()


def test_every_kind_carries_ackrequired() -> None:
    ack = f"{H}/users/ME/conversations/ALL/messages/9/ack"
    for name in CASES:
        raw = raw_of(name)
        raw["resource"]["ackrequired"] = ack
        assert decode_one(raw).ack_url == ack, name


def test_messagetype_table() -> None:
    table = {
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
        "RichText/Something": MessageKind.GENERIC,
        "text": MessageKind.GENERIC,
        None: MessageKind.GENERIC,
    }
    event_class: dict[str | None, type[Event]] = {
        "Text": NewMessageEvent,
        "RichText": NewMessageEvent,
        "RichText/Contacts": NewMessageEvent,
        "RichText/Media_GenericFile": NewMessageEvent,
        "RichText/UriObject": NewMessageEvent,
        "Event/Call": CallEvent,
    }
    for message_type, kind in table.items():
        raw = raw_of("new_text")
        raw["resource"]["messagetype"] = message_type
        event = decode_one(raw)
        assert type(event) is event_class.get(message_type, MessageEvent), message_type
        assert isinstance(event, MessageEvent)
        assert event.message.kind is kind, message_type


# -- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T14:22:31Z", utc(2024, 3, 5, 14, 22, 31)),
        ("2024-03-05T14:22:31.5Z", utc(2024, 3, 5, 14, 22, 31, 500000)),
        ("2024-03-05T14:22:31.123456789Z", utc(2024, 3, 5, 14, 22, 31, 123456)),
        ("2024-03-05T14:22:31+01:00", utc(2024, 3, 5, 13, 22, 31)),
        ("2024-03-05T00:22:31.25-0230", utc(2024, 3, 5, 2, 52, 31, 250000)),
        ("2024-03-05T14:22:31", utc(2024, 3, 5, 14, 22, 31)),
        ("2024-03-05T14:22:31+00:00", utc(2024, 3, 5, 14, 22, 31)),
    ],
)
def test_times_are_aware_utc(text: str, expected: dt.datetime) -> None:
    parsed = parse_event_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-03-05T14:22:31.Z",
        "2024-03-05T14:22:31,5Z",
        "2024-03-05t14:22:31z",
        "2024-03-05 14:22:31Z",
        "20240305T142231Z",
        "2024-03-05T142231.5Z",
        "2024-W10-2T14:22:31Z",
        "2024-03-05T24:00:00Z",
        "2024-02-30T14:22:31Z",
        "2024-03-05T14:22:60Z",
        "0000-03-05T14:22:31Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "2024-03-05T14:22:31+24:00",
        "2024-03-0\u0665T14:22:31Z",
        "2024-03-05T14:22:31.1\u0665Z",
    ],
)
def test_text_that_is_not_a_timestamp(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_event_time(text)


def test_message_time_that_does_not_parse_is_none_not_now() -> None:
    raw = raw_of("new_text")
    raw["resource"]["originalarrivaltime"] = "soon"
    event = decode_one(raw)
    assert isinstance(event, NewMessageEvent)
    assert event.message.time is None


# -- encoding and the converter -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_encoding_a_decoded_vector_decodes_to_the_same_event(name: str) -> None:
    event = decode_one(raw_of(name))
    assert decode_one(encode_event(event)) == event
    assert decode_one(encode_event(event, base="http://127.0.0.1:8080/v1")) == event


def test_encoded_shape() -> None:
    event = decode_one(raw_of("new_text"))
    assert encode_event(event) == {
        "id": 1005,
        "type": "EventMessage",
        "resourceType": "NewMessage",
        "time": "2024-03-05T14:23:02Z",
        "resource": {
            "id": "1709648582123",
            "type": "Message",
            "messagetype": "RichText",
            "content": "Hello <b>there</b>",
            "clientmessageid": "4417934025553866001",
            "originalarrivaltime": "2024-03-05T14:23:02.123000Z",
            "conversationLink": f"{H}/users/ME/conversations/8:alice.smith",
            "from": f"{H}/users/ME/contacts/8:alice.smith",
            "ackrequired": f"{H}/users/ME/conversations/ALL/messages/1709648582123/ack",
        },
    }
    presence = PresenceEvent(5, utc(2024, 1, 2, 3, 4, 5), "bob", False, Status.Hidden, ("A", "B"))
    assert encode_event(presence, base="http://127.0.0.1:1/v1") == {
        "id": 5,
        "type": "EventMessage",
        "resourceType": "UserPresence",
        "time": "2024-01-02T03:04:05Z",
        "resource": {
            "id": "messagingService",
            "type": "UserPresenceDoc",
            "selfLink": "http://127.0.0.1:1/v1/users/8:bob/presenceDocs/messagingService",
            "availability": "Offline",
            "status": "Hidden",
            "capabilities": "A | B",
        },
    }


def test_encoding_normalises_offsets_and_refuses_naive_times() -> None:
    zone = dt.timezone(dt.timedelta(hours=-5))
    event = ConversationUpdateEvent(1, dt.datetime(2024, 1, 1, 20, 0, tzinfo=zone), "8:a", None)
    assert encode_event(event)["time"] == "2024-01-02T01:00:00Z"
    naive = ConversationUpdateEvent(1, dt.datetime(2024, 1, 1, 20, 0), "8:a", None)
    with pytest.raises(LocalProtocolError):
        encode_event(naive)


def test_unknown_event_encodes_to_its_raw_element() -> None:
    raw = raw_of("unknown_type")
    event = decode_one(raw)
    assert isinstance(event, UnknownEvent)
    assert encode_event(event) is event.raw
    assert event.raw == raw
    not_an_object = UnknownEvent(None, None, resource_type=None, raw=[1], reason="x")
    with pytest.raises(LocalProtocolError):
        encode_event(not_an_object)


def test_encoding_something_else_is_a_caller_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode_event(Event(1, None))
    with pytest.raises(LocalProtocolError):
        encode_event("event")  # type: ignore[arg-type]


def test_converter_structures_events_messages_and_lists() -> None:
    raw = raw_of("presence_online")
    event = converter.structure(raw, Event)
    assert converter.structure(raw, PresenceEvent) == event
    assert converter.structure(raw, TypedEvent) == event
    assert converter.structure([raw, 3], list[Event])[0] == event
    with pytest.raises(RemoteProtocolError) as caught:
        converter.structure(raw, TypingEvent)
    assert caught.value.message == "expected a TypingEvent, got: PresenceEvent"
    with pytest.raises(RemoteProtocolError) as caught:
        converter.structure(CRASH_CASES["presence-unknown-status"]["raw"], PresenceEvent)
    assert "DoNotDisturb" in caught.value.message
    assert converter.unstructure(event) == encode_event(event)
    message_event = decode_one(raw_of("new_text"))
    assert isinstance(message_event, MessageEvent)
    resource = raw_of("new_text")["resource"]
    assert converter.structure(resource, Message) == message_event.message
    assert converter.structure(converter.unstructure(message_event.message), Message) == (
        message_event.message
    )
    with pytest.raises(RemoteProtocolError):
        converter.structure({"content": 5}, Message)
    with pytest.raises(RemoteProtocolError):
        converter.structure("x", Message)


def test_events_are_frozen_hashable_and_unknown_repr_hides_raw() -> None:
    event = decode_one(raw_of("thread_update"))
    with pytest.raises(AttributeError):
        event.id = 5  # type: ignore[misc]
    assert len({event, decode_one(raw_of("thread_update"))}) == 1
    unknown = decode_one(CRASH_CASES["presence-unknown-status"]["raw"])
    assert "selfLink" not in repr(unknown)
    assert "DoNotDisturb" in repr(unknown)
    assert hash(unknown) == hash(decode_one(CRASH_CASES["presence-unknown-status"]["raw"]))
    everything = decode_events(body(*(raw_of(name) for name in CASES)))
    assert pickle.loads(pickle.dumps(everything)) == everything


def test_base_event_has_no_resource_type() -> None:
    assert Event(1, None).resource_type is None
    assert PresenceEvent.RESOURCE_TYPE == "UserPresence"


def test_decoder_bug_is_contained(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("boom")

    import skyproto.events as events_module

    monkeypatch.setitem(events_module._BUILDERS, "ThreadUpdate", broken)
    with caplog.at_level(logging.WARNING, logger="skyproto.events"):
        events = decode_events(body(raw_of("thread_update"), raw_of("typing")))
    assert isinstance(events[0], UnknownEvent)
    assert events[0].reason == "decoder error (KeyError)"
    assert isinstance(events[1], TypingEvent)
    assert "boom" not in caplog.text
    assert "KeyError" in caplog.text


# -- the emulator's events ----------------------------------------------------------------------


EMULATOR_CLASS = {
    "text": NewMessageEvent,
    "typing": TypingEvent,
    "presence": PresenceEvent,
    "endpoint_presence": EndpointPresenceEvent,
    "group_text": NewMessageEvent,
    "edit": EditMessageEvent,
    "clear_typing": TypingEvent,
    "call": CallEvent,
    "thread_activity": MessageEvent,
    "conversation_update": ConversationUpdateEvent,
    "thread_update": ThreadUpdateEvent,
    "custom": UnknownEvent,
}


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_emulator_events_decode_to_typed_events(kind: str) -> None:
    when = utc(2024, 3, 5, 14, 0, 0, 123000)
    raw = render_event(
        kind,
        base="http://127.0.0.1:9/v1",
        event_id=77,
        message_id="1709647200123",
        when=when,
        seq=3,
        user="me.myself",
    )
    event = decode_one(raw)
    assert type(event) is EMULATOR_CLASS[kind]
    assert event.id == 77
    if not isinstance(event, UnknownEvent):
        assert decode_one(encode_event(event)) == event


# -- SkPy 0.11 as an oracle ---------------------------------------------------------------------


class SkypeStub:
    """Stands in for ``skpy.Skype``: ``fromRaw`` only keeps a reference to it."""


def skpy_event(raw: dict[str, Any]) -> Any:
    skpy = pytest.importorskip("skpy")
    return skpy.SkypeEvent.fromRaw(SkypeStub(), copy.deepcopy(raw))


def assert_agrees_with_skpy(raw: dict[str, Any]) -> None:
    theirs = skpy_event(raw)
    ours = decode_one(raw)
    assert type(ours) is OUR_CLASS[type(theirs).__name__]
    assert ours.id == theirs.id
    if raw.get("time", "").endswith("Z") and len(raw["time"]) == 20:
        assert ours.time is not None
        assert ours.time.replace(tzinfo=None) == theirs.time
    for skpy_name, our_name in OUR_FIELD.items():
        if skpy_name in theirs.attrs:
            value = getattr(theirs, skpy_name)
            if skpy_name == "status":
                value = Status(str(value))
            elif skpy_name in ("capabilities", "userIds"):
                value = tuple(value)
            assert getattr(ours, our_name) == value, skpy_name
    if isinstance(ours, EndpointPresenceEvent):
        assert ours.device_type == theirs.type
    if isinstance(ours, MessageEvent):
        mine, msg = ours.message, theirs.msg
        # An integer message id stays an integer in SkPy; ours is always its decimal text.
        their_id = msg.id if msg.id is None else str(msg.id)
        assert (mine.id, mine.message_type, mine.client_id) == (their_id, msg.type, msg.clientId)
        assert (mine.user_id, mine.chat_id, mine.content) == (msg.userId, msg.chatId, msg.content)
        if mine.time is not None:
            assert mine.time.replace(tzinfo=None) == msg.time


def oracle_cases() -> dict[str, dict[str, Any]]:
    """The vector envelopes plus variations on which the reference does not crash."""
    cases = {name: raw_of(name) for name in CASES}
    variations: list[tuple[str, str, dict[str, Any]]] = [
        ("caps-odd", "presence_online", {"capabilities": " | A |  | B|C | D|"}),
        ("no-caps", "presence_offline", {"capabilities": None}),
        ("selflink-elsewhere", "presence_online", {"selfLink": "https://x.invalid/8:a"}),
        ("empty-client-id", "edit", {"clientmessageid": ""}),
        ("null-client-id", "edit", {"clientmessageid": None}),
        ("empty-edited-id", "new_group_text", {"skypeeditedid": ""}),
        ("integer-message-id", "new_text", {"id": 1709648582123}),
        ("no-message-id", "call", {"id": None}),
        ("video", "new_text", {"messagetype": "RichText/Media_Video"}),
        ("contacts", "new_text", {"messagetype": "RichText/Contacts"}),
        ("add-member", "other_message", {"messagetype": "ThreadActivity/AddMember"}),
        ("typing-nowhere", "typing", {"from": None, "conversationLink": None}),
        ("horizon-missing", "conversation_update", {"properties": None}),
        (
            "members-odd",
            "thread_update",
            {"members": [{"id": None}, {"id": ""}, {"id": "8:"}, {"id": "1:2:3"}]},
        ),
    ]
    for label, name, change in variations:
        raw = raw_of(name)
        for key, value in change.items():
            if value is None:
                raw["resource"].pop(key, None)
            else:
                raw["resource"][key] = value
        cases[label] = raw
    return cases


ORACLE_CASES = oracle_cases()


@pytest.mark.skpy
@pytest.mark.parametrize("name", sorted(ORACLE_CASES))
def test_agrees_with_skpy(name: str) -> None:
    assert_agrees_with_skpy(ORACLE_CASES[name])


@pytest.mark.skpy
@pytest.mark.parametrize("name", sorted(CRASH_CASES))
def test_skpy_crashes_where_we_give_unknown_events(name: str) -> None:
    raw = CRASH_CASES[name]["raw"]
    with pytest.raises((TypeError, AttributeError, ValueError)):
        skpy_event(raw)
    assert isinstance(decode_one(raw), UnknownEvent)


#: SkPy's message class -> our message kind, for every class SkPy 0.11 has.
SKPY_MESSAGE_KIND = {
    "SkypeTextMsg": MessageKind.TEXT,
    "SkypeContactMsg": MessageKind.CONTACT,
    "SkypeLocationMsg": MessageKind.LOCATION,
    "SkypeFileMsg": MessageKind.FILE,
    "SkypeImageMsg": MessageKind.IMAGE,
    "SkypeAudioMsg": MessageKind.AUDIO,
    "SkypeVideoMsg": MessageKind.VIDEO,
    "SkypeCardMsg": MessageKind.CARD,
    "SkypeCallMsg": MessageKind.CALL,
    "SkypeTopicPropertyMsg": MessageKind.PROPERTY_CHANGE,
    "SkypeOpenPropertyMsg": MessageKind.PROPERTY_CHANGE,
    "SkypeHistoryPropertyMsg": MessageKind.PROPERTY_CHANGE,
    "SkypeAddMemberMsg": MessageKind.MEMBER_CHANGE,
    "SkypeChangeMemberMsg": MessageKind.MEMBER_CHANGE,
    "SkypeRemoveMemberMsg": MessageKind.MEMBER_CHANGE,
    "SkypeMsg": MessageKind.GENERIC,
}
MESSAGE_TYPES = [
    "Text",
    "RichText",
    "RichText/Contacts",
    "RichText/Location",
    "RichText/Media_GenericFile",
    "RichText/UriObject",
    "RichText/Media_AudioMsg",
    "RichText/Media_Video",
    "RichText/Media_Card",
    "Event/Call",
    "ThreadActivity/TopicUpdate",
    "ThreadActivity/JoiningEnabledUpdate",
    "ThreadActivity/HistoryDisclosedUpdate",
    "ThreadActivity/AddMember",
    "ThreadActivity/RoleUpdate",
    "ThreadActivity/DeleteMember",
    "Control/Typing",
    "Control/ClearTyping",
    "Other/Thing",
]


@pytest.mark.skpy
@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_event_class_and_message_kind_agree_with_skpy(message_type: str) -> None:
    raw = {
        "id": 9,
        "resourceType": "NewMessage",
        "time": "2024-03-05T14:22:31Z",
        "resource": {"id": "5", "messagetype": message_type, "content": ""},
    }
    theirs = skpy_event(raw)
    ours = decode_one(raw)
    assert type(ours) is OUR_CLASS[type(theirs).__name__]
    if isinstance(ours, MessageEvent):
        assert ours.message.kind is SKPY_MESSAGE_KIND[type(theirs.msg).__name__]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([["Online"]], "presence status a JSON array is not known"),
        ({"label": "Online"}, "presence status a JSON object is not known"),
        ("x" * 10_000, "presence status '" + "x" * 36 + "... is not known"),
        (2**200, f"presence status {str(2**200)[:37]}... is not known"),
    ],
)
def test_reasons_stay_short_whatever_the_value(value: Any, reason: str) -> None:
    raw = raw_of("presence_online")
    raw["resource"]["status"] = value
    event = decode_one(raw)
    assert isinstance(event, UnknownEvent)
    assert event.reason == reason


def test_the_decoder_builds_events_equal_to_the_classes_own_constructors() -> None:
    from skyproto import events

    when = dt.datetime(2024, 3, 5, 14, 22, 31, tzinfo=dt.UTC)
    message = events.Message("1", "RichText", when, "c", "u", "8:u", "hi")
    assert events._make_message("1", "RichText", when, "c", "u", "8:u", "hi") == message
    cases: list[tuple[Any, Any, tuple[Any, ...]]] = [
        (events._make_presence, events.PresenceEvent, ("u", True, Status.Online, ("a",))),
        (events._make_endpoint_presence, events.EndpointPresenceEvent, ("u", "n", (), "t", "v")),
        (events._make_typing, events.TypingEvent, ("u", "8:u", True)),
        (events._make_conversation_update, events.ConversationUpdateEvent, ("8:u", "1;2;3")),
        (events._make_thread_update, events.ThreadUpdateEvent, ("19:t", ("a", "b"))),
        (events._make_edit, events.EditMessageEvent, (5, message, "c")),
    ]
    cases += [(make, cls, (5, message)) for cls, make in events._MAKE_MESSAGE_EVENT.items()]
    for make, cls, fields in cases:
        built = make(7, when, *fields, "https://ack")
        expected = cls(7, when, *fields, ack_url="https://ack")
        assert type(built) is cls
        assert built == expected
        assert repr(built) == repr(expected)
        assert hash(built) == hash(expected)
    unknown = events._make_unknown(
        id=None, time=None, ack_url=None, resource_type=None, raw=[], reason="r"
    )
    assert unknown == UnknownEvent(id=None, time=None, resource_type=None, raw=[], reason="r")


def test_a_class_with_a_validator_gets_no_fast_constructor() -> None:
    import attrs

    from skyproto import events

    @attrs.frozen
    class Checked:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match="needs its own __init__"):
        events._fast_constructor(Checked)
