"""Properties of the events decoder: round trips, and no input makes it fail the wrong way."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

import skyproto.events as events_module
from skyproto.errors import RemoteProtocolError
from skyproto.events import (
    CallEvent,
    ConversationUpdateEvent,
    EditMessageEvent,
    EndpointPresenceEvent,
    Event,
    Message,
    MessageEvent,
    NewMessageEvent,
    PresenceEvent,
    ThreadUpdateEvent,
    TypedEvent,
    TypingEvent,
    UnknownEvent,
    decode_events,
    encode_event,
)
from skyproto.ids import Status

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "events.json").read_text(encoding="utf-8")
)
ENVELOPES = [case["raw"] for case in VECTORS["cases"] + VECTORS["crash_cases"]]
TEXT_LIKE = [
    "Text",
    "RichText",
    "RichText/Contacts",
    "RichText/Media_GenericFile",
    "RichText/UriObject",
]
SPECIAL_TYPES = {*TEXT_LIKE, "Event/Call", "Control/Typing", "Control/ClearTyping"}
BASES = ["https://client-s.gateway.messenger.live.com/v1", "http://127.0.0.1:8080/v1"]


def body(*elements: Any) -> str:
    return json.dumps({"eventMessages": list(elements)})


# -- typed events -------------------------------------------------------------------------------

zones = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
)
times = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=zones
)
event_ids = st.integers(min_value=-(2**70), max_value=2**70)
texts = st.text(max_size=20)
optional_texts = st.none() | texts
# Ids as they appear in links: one or more characters, none of them a slash.
user_ids = st.text(min_size=1, max_size=16).filter(lambda text: "/" not in text)
chat_ids = st.builds(
    lambda prefix, rest: f"{prefix}:{rest}", st.sampled_from(["8", "19", "28"]), user_ids
)
capabilities = st.lists(st.from_regex(r"[A-Za-z0-9_.]{1,10}", fullmatch=True), max_size=4).map(
    tuple
)
ack_urls = st.none() | st.builds(
    lambda n: (
        f"https://client-s.gateway.messenger.live.com/v1/users/ME/conversations/ALL/messages/{n}/ack"
    ),
    st.integers(min_value=0),
)
digit_ids = st.from_regex(r"[0-9]{1,20}", fullmatch=True)


def messages(
    message_types: st.SearchStrategy[str | None], client_ids: st.SearchStrategy[str | None]
) -> Any:
    return st.builds(
        Message,
        st.none() | digit_ids,
        message_types,
        st.none() | times,
        client_ids,
        st.none() | user_ids,
        st.none() | chat_ids,
        optional_texts,
    )


def message_events(
    cls: type[MessageEvent],
    message_types: st.SearchStrategy[str | None],
    *extra: st.SearchStrategy[Any],
) -> Any:
    """Events of ``cls`` whose ``msg_id`` agrees with the message id; ``extra`` fields follow."""

    def build(
        event_id: int, time: dt.datetime, message: Message, ack_url: str | None, *rest: Any
    ) -> Any:
        msg_id = None if message.id is None else int(message.id)
        return cls(event_id, time, msg_id, message, *rest, ack_url=ack_url)

    return st.builds(
        build, event_ids, times, messages(message_types, optional_texts), ack_urls, *extra
    )


def with_ack(cls: type[TypedEvent], *fields: st.SearchStrategy[Any]) -> Any:
    return st.builds(
        lambda ack, *values: cls(*values, ack_url=ack), ack_urls, event_ids, times, *fields
    )


typed_events = st.one_of(
    with_ack(
        PresenceEvent, st.none() | user_ids, st.booleans(), st.sampled_from(Status), capabilities
    ),
    with_ack(
        EndpointPresenceEvent,
        st.none() | user_ids,
        optional_texts,
        capabilities,
        optional_texts,
        optional_texts,
    ),
    message_events(NewMessageEvent, st.sampled_from(TEXT_LIKE)),
    message_events(EditMessageEvent, st.sampled_from(TEXT_LIKE), st.text(min_size=1, max_size=20)),
    # An edit whose client id is its edited id, as in captured traffic.
    message_events(
        EditMessageEvent, st.sampled_from(TEXT_LIKE), st.just("4417934025553866001")
    ).map(lambda e: attrs.evolve(e, message=attrs.evolve(e.message, client_id=e.edited_id))),
    message_events(CallEvent, st.just("Event/Call")),
    message_events(MessageEvent, st.none() | texts.filter(lambda t: t not in SPECIAL_TYPES)),
    with_ack(TypingEvent, st.none() | user_ids, st.none() | chat_ids, st.booleans()),
    with_ack(ConversationUpdateEvent, optional_texts, optional_texts),
    with_ack(ThreadUpdateEvent, optional_texts, st.lists(user_ids, max_size=5).map(tuple)),
)


@given(st.lists(typed_events, max_size=6), st.sampled_from(BASES))
def test_typed_events_round_trip_through_the_wire_shape(events: list[Event], base: str) -> None:
    wire = json.dumps({"eventMessages": [encode_event(e, base=base) for e in events]})
    decoded = decode_events(wire)
    assert decoded == events
    assert [type(e) for e in decoded] == [type(e) for e in events]


unknown_types = texts.filter(
    lambda t: (
        t
        not in {
            "UserPresence",
            "EndpointPresence",
            "NewMessage",
            "ConversationUpdate",
            "ThreadUpdate",
        }
    )
)


@given(event_ids, times, unknown_types, st.dictionaries(texts, texts, max_size=3))
def test_unknown_kinds_round_trip_unchanged(
    event_id: int, time: dt.datetime, resource_type: str, resource: dict[str, str]
) -> None:
    raw = {
        "id": event_id,
        "resourceType": resource_type,
        "time": time.isoformat(),
        "resource": resource,
    }
    (event,) = decode_events(body(raw))
    assert isinstance(event, UnknownEvent)
    assert (event.id, event.time, event.resource_type, event.raw) == (
        event_id,
        time,
        resource_type,
        raw,
    )
    assert decode_events(body(encode_event(event))) == [event]


# -- hostile input ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def assert_decodes_or_refuses(data: bytes | str) -> None:
    try:
        result = decode_events(data)
    except RemoteProtocolError:
        return
    assert isinstance(result, list)
    for event in result:
        assert_well_formed(event)


def assert_well_formed(event: Event) -> None:
    if isinstance(event, UnknownEvent):
        assert not event.reason.startswith("decoder error"), event.reason
        assert event.id is None or type(event.id) is int
    else:
        assert isinstance(event, TypedEvent)
        assert type(event.id) is int
    if event.time is not None:
        assert event.time.utcoffset() == dt.timedelta(0)


@given(json_values)
def test_random_json_is_decoded_or_refused_with_remote_protocol_error(value: Any) -> None:
    assert_decodes_or_refuses(json.dumps(value))
    assert_decodes_or_refuses(json.dumps({"eventMessages": value}))


@given(st.binary(max_size=200))
def test_random_bytes_are_decoded_or_refused(data: bytes) -> None:
    assert_decodes_or_refuses(data)


@given(st.text(max_size=200))
def test_random_text_is_decoded_or_refused(data: str) -> None:
    assert_decodes_or_refuses(data)


@given(st.lists(json_values, max_size=6))
def test_any_list_of_elements_gives_one_event_each(elements: list[Any]) -> None:
    result = decode_events(body(*elements))
    assert len(result) == len(elements)
    for event in result:
        assert_well_formed(event)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


#: Keys the decoder reads, so that mutations can add them where they were absent.
KNOWN_KEYS = [
    "id", "time", "resourceType", "resource", "ackrequired", "selfLink", "availability", "status",
    "capabilities", "publicInfo", "privateInfo", "epname", "typ", "skypeNameVersion",
    "messagetype", "content", "clientmessageid", "skypeeditedid", "originalarrivaltime", "from",
    "conversationLink", "properties", "consumptionhorizon", "members",
]  # fmt: skip
#: Values that steer the decoder into its branches more often than random JSON does.
TELLING_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [None, "", "0", "12", "Online", "Text", "Event/Call", "Control/Typing", "NewMessage", "x/users/8:a",
     "x/conversations/8:a", "2024-03-05T14:22:31Z", "2024-03-05T14:22:31.5+01:00", [], {}]
)  # fmt: skip


def containers(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every dict inside ``value``, the top one included."""
    found = [prefix] if isinstance(value, dict) else []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found += containers(child, (*prefix, key))
    return found


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> Any:
    raw = copy.deepcopy(draw(st.sampled_from(ENVELOPES)))
    values = TELLING_VALUES | json_values  # drawn values are copied: the samples are shared
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "add":
            target = raw
            for step in draw(st.sampled_from(containers(raw))):
                target = target[step]
            target[draw(st.sampled_from(KNOWN_KEYS))] = copy.deepcopy(draw(values))
            continue
        targets = paths(raw)
        if not targets:
            continue
        path = draw(st.sampled_from(targets))
        parent = raw
        for step in path[:-1]:
            parent = parent[step]
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(values))
    return raw


@given(st.lists(mutated_envelopes(), min_size=1, max_size=4))
def test_mutated_events_never_raise(elements: list[Any]) -> None:
    result = decode_events(body(*elements))
    assert len(result) == len(elements)
    for event in result:
        assert_well_formed(event)


@given(mutated_envelopes(), st.sampled_from(BASES))
def test_whatever_decodes_re_encodes_to_the_same_event(raw: Any, base: str) -> None:
    (event,) = decode_events(body(raw))
    assert decode_events(body(encode_event(event, base=base))) == [event]


# -- times --------------------------------------------------------------------------------------

canonical = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)).map(
    # Whole seconds, then a fraction of 0 to 6 digits (sometimes a bare dot), then Z.
    lambda when: (
        when.isoformat(timespec="seconds") + when.strftime(".%f")[: 1 + when.microsecond % 7] + "Z"
    )
)


@st.composite
def near_timestamps(draw: st.DrawFn) -> str:
    chars = list(draw(canonical))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        index = draw(st.integers(min_value=0, max_value=len(chars) - 1))
        chars[index] = draw(st.sampled_from("0123456789-T:Z.+ z\u0665"))
    return "".join(chars)


@given(near_timestamps())
def test_time_fast_path_agrees_with_the_general_parser(text: str) -> None:
    assert events_module._parse_time(text) == events_module._parse_time_general(text)


@given(times)
def test_any_aware_time_survives_the_wire_format(time: dt.datetime) -> None:
    event = ConversationUpdateEvent(1, time, None, None)
    (decoded,) = decode_events(body(encode_event(event)))
    assert decoded.time == time
    assert decoded.time is not None
    assert decoded.time.tzinfo is dt.UTC


@given(st.text(alphabet=" |aB", max_size=30))
def test_capabilities_survive_re_encoding_whatever_the_text(text: str) -> None:
    raw = copy.deepcopy(ENVELOPES[0])
    raw["resource"]["capabilities"] = text
    (event,) = decode_events(body(raw))
    assert isinstance(event, PresenceEvent)
    assert "" not in event.capabilities
    assert decode_events(body(encode_event(event))) == [event]
