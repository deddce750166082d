"""Endpoint operations (docs/protocol.md §5): exact requests, status mapping, trust checks."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    RemoteProtocolError,
    SkypeApiException,
    SkypeRateLimitException,
    Stepper,
)
from skyproto.calls import USER_AGENT
from skyproto.endpoint import (
    EndpointGoneError,
    ack,
    check_endpoint_status,
    configure_endpoint,
    endpoint_path,
    list_endpoints,
    mark_consumed,
    ping,
    poll,
    set_presence,
    subscribe,
    subscribe_presence,
)
from skyproto.ids import Status
from skyproto.registration import Registration
from skyproto.tokens import RegistrationToken

H = "https://db3-client-s.gateway.messenger.live.com/v1"
REG_TOKEN = "registrationToken=U2lnbmF0dXJlOjI="
REG = Registration(
    RegistrationToken(REG_TOKEN, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)), H, "{ab-cd}"
)
EP = "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}"
EP_WIRE = "%7B3f2504e0-4f89-41d3-9a0c-0305e82c3301%7D"
RESOURCES = [
    "/v1/users/ME/conversations/ALL/properties",
    "/v1/users/ME/conversations/ALL/messages",
    "/v1/threads/ALL",
]


def run(flow: Any, response: HttpResponse | None = None) -> tuple[list[HttpRequest], Any]:
    """Drive a one-request flow; answer with ``response`` (default: 201, empty)."""
    step = Stepper(flow)
    sent: list[HttpRequest] = []
    while not step.done:
        pending = step.pending
        assert isinstance(pending, HttpRequest)
        sent.append(pending)
        step.receive(response or HttpResponse(201, url=pending.url))
    return sent, step.result


def only(flow: Any, response: HttpResponse | None = None) -> HttpRequest:
    sent, _ = run(flow, response)
    assert len(sent) == 1
    req = sent[0]
    assert req.headers[:2] == (("User-Agent", USER_AGENT), ("RegistrationToken", REG_TOKEN))
    return req


def test_endpoint_path() -> None:
    assert endpoint_path(EP) == EP_WIRE
    assert endpoint_path(EP_WIRE) == EP_WIRE
    assert endpoint_path("SELF") == "SELF"
    for bad in ["", "a/b", "a?b", "a#b", "a b", "a\nb"]:
        with pytest.raises(LocalProtocolError):
            endpoint_path(bad)


def test_configure_endpoint_exact() -> None:
    req = only(configure_endpoint(REG, EP))
    assert (req.method, req.url) == (
        "PUT",
        f"{H}/users/ME/endpoints/{EP_WIRE}/presenceDocs/messagingService",
    )
    assert req.body == (
        b'{"id": "messagingService", "type": "EndpointPresenceDoc", "selfLink": "uri", '
        b'"privateInfo": {"epname": "skype"}, "publicInfo": {"capabilities": "", "type": 1, '
        b'"skypeNameVersion": "skype.com", "nodeInfo": "xx", "version": "908/1.30.0.128"}}'
    )
    assert req.header("Content-Type") == "application/json"


def test_configure_endpoint_on_wire_encoded_id() -> None:
    req = only(configure_endpoint(REG, EP_WIRE))
    assert req.url == f"{H}/users/ME/endpoints/{EP_WIRE}/presenceDocs/messagingService"
    event, _ = req.to_h11()
    assert (
        event.target == f"/v1/users/ME/endpoints/{EP_WIRE}/presenceDocs/messagingService".encode()
    )


def test_ping_exact() -> None:
    req = only(ping(REG))
    assert (req.method, req.url) == ("POST", f"{H}/users/ME/endpoints/SELF/active")
    assert req.body == b'{"timeout": 12}'
    assert only(ping(REG, EP, timeout=45)).body == b'{"timeout": 45}'
    for bad in [0, -1, 1.5, True]:
        with pytest.raises(LocalProtocolError):
            run(ping(REG, timeout=bad))  # type: ignore[arg-type]


def test_subscribe_exact() -> None:
    req = only(subscribe(REG))
    assert (req.method, req.url) == ("POST", f"{H}/users/ME/endpoints/SELF/subscriptions")
    assert req.body == (
        b'{"interestedResources": ["/v1/users/ME/conversations/ALL/properties", '
        b'"/v1/users/ME/conversations/ALL/messages", "/v1/threads/ALL"], '
        b'"channelType": "HttpLongPoll", "conversationType": 2047}'
    )


def test_subscribe_presence_exact() -> None:
    req = only(subscribe_presence(REG, ["live:bob_1", "8:alice", "carol", "8:live:bob_1"]))
    assert (req.method, req.url) == (
        "PUT",
        f"{H}/users/ME/endpoints/SELF/subscriptions/0?name=interestedResources",
    )
    assert json.loads(req.body) == {
        "interestedResources": [
            *RESOURCES,
            "/v1/users/ME/contacts/8:alice",
            "/v1/users/ME/contacts/8:carol",
            "/v1/users/ME/contacts/8:live:bob_1",
        ]
    }
    assert req.body.startswith(
        b'{"interestedResources": ["/v1/users/ME/conversations/ALL/properties", '
    )


def test_subscribe_presence_validation() -> None:
    with pytest.raises(LocalProtocolError):
        run(subscribe_presence(REG, "8:alice"))
    with pytest.raises(LocalProtocolError):
        run(subscribe_presence(REG, ["a/b"]))
    with pytest.raises(LocalProtocolError):
        run(subscribe_presence(REG, ["8:"]))
    assert json.loads(only(subscribe_presence(REG, [])).body) == {"interestedResources": RESOURCES}


@pytest.mark.parametrize("label", ["Offline", "Hidden", "Busy", "Away", "Idle", "Online"])
def test_set_presence(label: str) -> None:
    req = only(set_presence(REG, Status(label)))
    assert (req.method, req.url) == ("PUT", f"{H}/users/ME/presenceDocs/messagingService")
    assert req.body == b'{"status": "%s"}' % label.encode()


def test_set_presence_defaults_to_online() -> None:
    assert only(set_presence(REG)).body == b'{"status": "Online"}'


def test_set_presence_refuses_plain_strings() -> None:
    with pytest.raises(LocalProtocolError):
        run(set_presence(REG, "Online"))  # type: ignore[arg-type]


def test_list_endpoints() -> None:
    body = {
        "endpointPresenceDocs": [
            {
                "link": f"{H}/users/8:fred.2/endpoints/{{5d1c0000-aaaa-bbbb-cccc-000000000001}}/presenceDocs/messagingService"
            },
            {
                "link": f"{H}/users/8:fred.2/endpoints/%7B5D1C0000-AAAA-BBBB-CCCC-000000000002%7D/presenceDocs/messagingService"
            },
            {"link": f"{H}/users/8:fred.2/endpoints/%7b5d1c0000-aaaa-bbbb-cccc-000000000003%7d"},
            {"link": f"{H}/users/8:fred.2/endpoints/SELF/presenceDocs/messagingService"},
            {
                "link": "http://127.0.0.1:8080/client-s.gateway.messenger.live.com/v1/users/8:fred.2/endpoints/{5d1c0000-aaaa-bbbb-cccc-000000000004}/presenceDocs/messagingService"
            },
        ]
    }
    sent, ids = run(list_endpoints(REG), HttpResponse.build(200, json=body))
    assert [(r.method, r.url) for r in sent] == [
        ("GET", f"{H}/users/ME/presenceDocs/messagingService?view=expanded")
    ]
    assert ids == [
        "{5d1c0000-aaaa-bbbb-cccc-000000000001}",
        "{5d1c0000-aaaa-bbbb-cccc-000000000002}",
        "{5d1c0000-aaaa-bbbb-cccc-000000000003}",
        "SELF",
        "{5d1c0000-aaaa-bbbb-cccc-000000000004}",
    ]


def test_list_endpoints_skips_malformed_links(caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "endpointPresenceDocs": [
            {},
            {"link": None},
            {"link": "https://x/v1/users/8:a"},
            {"link": "https://x/v1/users/8:a/endpoints/not-an-id/presenceDocs"},
            "junk",
            {"link": f"{H}/users/8:a/endpoints/{EP}/presenceDocs/messagingService"},
        ]
    }
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        _, ids = run(list_endpoints(REG), HttpResponse.build(200, json=body))
    assert ids == [EP]
    assert [r.getMessage() for r in caplog.records] == [
        "endpoint listing: skipped 5 element(s) without a usable link"
    ]


def test_list_endpoints_empty_and_malformed_bodies() -> None:
    assert run(list_endpoints(REG), HttpResponse.build(200, json={}))[1] == []
    for body in [b"[]", b'{"endpointPresenceDocs": {}}', b"nope"]:
        with pytest.raises(RemoteProtocolError):
            run(list_endpoints(REG), HttpResponse(200, body=body))


def test_poll_exact() -> None:
    response = HttpResponse(200, body=b'{"eventMessages": []}')
    sent, result = run(poll(REG), response)
    req = sent[0]
    assert (req.method, req.url, req.body) == (
        "POST",
        f"{H}/users/ME/endpoints/SELF/subscriptions/0/poll",
        b"",
    )
    assert req.timeout == 45.0
    assert result is response
    assert run(poll(REG, EP, hold=10))[0][0].timeout == 25.0
    assert (
        run(poll(REG, EP, hold=10))[0][0].url
        == f"{H}/users/ME/endpoints/{EP_WIRE}/subscriptions/0/poll"
    )
    event, data = req.to_h11()
    assert ("Content-Length", "0") in [(k.decode().title(), v.decode()) for k, v in event.headers]
    assert data is None
    with pytest.raises(LocalProtocolError):
        run(poll(REG, hold=0))


def test_ack_trusted() -> None:
    url = f"{H}/users/ME/conversations/ALL/messages/1700000000000/ack"
    sent, result = run(ack(REG, url, hosts=Hosts()), HttpResponse(200))
    assert result is True
    assert [(r.method, r.url, r.body) for r in sent] == [("POST", url, b"")]
    assert sent[0].header("RegistrationToken") == REG_TOKEN


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://evil.example/ack?secret=1", "evil.example"),
        (
            "http://db3-client-s.gateway.messenger.live.com/v1/ack",
            "db3-client-s.gateway.messenger.live.com",
        ),
        ("https://[::1/ack", "<unparsable URL>"),
        ("not a url", "<no host>"),
    ],
)
def test_ack_untrusted_sends_nothing(
    url: str, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        sent, result = run(ack(REG, url, hosts=Hosts()))
    assert result is False
    assert sent == []
    assert [r.getMessage() for r in caplog.records] == [
        f"not acknowledging an event at untrusted host {shown}"
    ]


def test_ack_under_loopback_profile() -> None:
    hosts = Hosts(overrides={"client-s.gateway.messenger.live.com": "http://127.0.0.1:9/msg"})
    good = "http://127.0.0.1:9/msg/v1/users/ME/conversations/ALL/messages/1/ack"
    assert run(ack(REG, good, hosts=hosts), HttpResponse(201))[1] is True
    real = (
        "https://client-s.gateway.messenger.live.com/v1/users/ME/conversations/ALL/messages/1/ack"
    )
    assert run(ack(REG, real, hosts=hosts))[1] is False


def test_mark_consumed_exact() -> None:
    req = only(mark_consumed(REG, "19:abc@thread.skype", "1700000000000;1700000000001;42"))
    assert (req.method, req.url) == (
        "PUT",
        f"{H}/users/ME/conversations/19:abc@thread.skype/properties?name=consumptionhorizon",
    )
    assert req.body == b'{"consumptionhorizon": "1700000000000;1700000000001;42"}'
    with pytest.raises(LocalProtocolError):
        run(mark_consumed(REG, "19:a/b", "1"))


GONE_BODIES = [
    b'{"errorCode":729,"message":"You must create an endpoint before performing this operation."}',
    b'{"errorCode":404,"message":"Not found","standardizedError":{"errorCode":729,"message":"x"}}',
    b'{"errorCode":"729"}',
]


@pytest.mark.parametrize("body", GONE_BODIES)
@pytest.mark.parametrize(
    "flow",
    [
        lambda: configure_endpoint(REG, EP),
        lambda: ping(REG),
        lambda: subscribe(REG),
        lambda: subscribe_presence(REG, ["a"]),
        lambda: poll(REG),
        lambda: set_presence(REG, Status("Online")),
        lambda: list_endpoints(REG),
        lambda: mark_consumed(REG, "8:a", "1"),
    ],
)
def test_endpoint_gone(body: bytes, flow: Any) -> None:
    with pytest.raises(EndpointGoneError) as info:
        run(flow(), HttpResponse(404, body=body))
    assert info.value.status == 404
    assert "errorCode 729" in str(info.value)
    assert REG_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[729]",
        b'{"errorCode": 404}',
        b'{"errorCode": true}',
        b'{"standardizedError": 729}',
    ],
)
def test_plain_404_is_an_api_error(body: bytes) -> None:
    with pytest.raises(SkypeApiException) as info:
        run(poll(REG), HttpResponse(404, body=body))
    assert type(info.value) is SkypeApiException
    assert (
        str(info.value)
        == f"404 response from POST {H}/users/ME/endpoints/SELF/subscriptions/0/poll"
    )


def test_other_statuses() -> None:
    with pytest.raises(SkypeRateLimitException):
        run(ping(REG), HttpResponse(429, body=GONE_BODIES[0]))
    with pytest.raises(EndpointGoneError):
        run(ping(REG), HttpResponse(403, body=GONE_BODIES[0]))
    for status in (200, 201, 202, 204, 207):
        assert run(ping(REG), HttpResponse(status, body=GONE_BODIES[0]))[1].status == status


def test_check_endpoint_status_url_without_query() -> None:
    with pytest.raises(EndpointGoneError) as info:
        check_endpoint_status(
            HttpResponse(404, body=GONE_BODIES[0]), method="put", url=f"{H}/x?name=y"
        )
    assert str(info.value) == f"404 response from PUT {H}/x: endpoint is gone (errorCode 729)"


def test_endpoint_gone_message_names_the_url_as_check_status_does() -> None:
    # Same URL rendering as check_status: no query, no user info.
    url = "https://user:pw@db3-client-s.gateway.messenger.live.com/v1/x?name=y"
    with pytest.raises(EndpointGoneError) as info:
        check_endpoint_status(HttpResponse(404, body=GONE_BODIES[0]), method="PUT", url=url)
    assert str(info.value) == f"404 response from PUT {H}/x: endpoint is gone (errorCode 729)"
