"""The Teams Free chat-service flows (docs/teams.md §B), driven with canned responses.

Pins: the exact headers (the Skype token in ``Authentication``, the product headers), listing
parameters only on the first page, backwardLink paging that stops at an empty page, a repeated
link or ``max_pages``, links refused when untrusted or outside the listing's base (before they
are sent), quota answers as rate limits, the send body and its answer (numbers or strings).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from skyproto import (
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    Now,
    RemoteProtocolError,
    SkypeApiException,
    SkypeRateLimitException,
    SkypeToken,
    Stepper,
    UntrustedHostError,
)
from skyproto._flow import Flow
from skyproto.chat import (
    AFD_BASE,
    MSGAPI_BASE,
    chat_headers,
    conversations_url,
    listing,
    messages_url,
    parse_sent,
    send_legacy_message,
    send_message,
    summarise_message,
)
from skyproto.hosts import Hosts
from skyproto.registration import Registration
from skyproto.tokens import RegistrationToken

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HOSTS = Hosts.teams()
TOKEN = SkypeToken("SKYPE-TOKEN-SECRET", NOW + dt.timedelta(days=1))
URL = conversations_url(AFD_BASE)


def drive(flow: Flow[Any], answers: list[HttpResponse], sent: list[HttpRequest]) -> Any:
    step = Stepper(flow)
    while not step.done:
        if isinstance(step.pending, Now):
            step.send(NOW)
            continue
        assert isinstance(step.pending, HttpRequest)
        sent.append(step.pending)
        step.receive(answers.pop(0))
    assert not answers
    return step.result


def page(items: list[Any], backward: Any = None, **metadata: Any) -> HttpResponse:
    if backward is not None:
        metadata["backwardLink"] = backward
    return HttpResponse.build(200, json={"conversations": items, "_metadata": metadata})


def run_listing(answers: list[HttpResponse], **options: Any) -> tuple[Any, list[HttpRequest]]:
    sent: list[HttpRequest] = []
    flow = listing(
        TOKEN,
        URL,
        base=AFD_BASE,
        hosts=HOSTS,
        items_key="conversations",
        params=[("pageSize", "2")],
        **options,
    )
    return drive(flow, answers, sent), sent


def test_headers_are_the_skype_token_and_the_product_ones() -> None:
    names = [name.lower() for name, _ in chat_headers(TOKEN)]
    assert names[:6] == [
        "authentication",
        "accept",
        "ms-ic3-product",
        "ms-ic3-additional-product",
        "x-ms-client-consumer-type",
        "behavioroverride",
    ]
    assert dict(chat_headers(TOKEN))["Authentication"] == "skypetoken=SKYPE-TOKEN-SECRET"
    assert "registrationtoken" not in names
    assert "x-skypetoken" not in names


def test_listing_follows_backward_links_with_params_only_first() -> None:
    second = f"{URL}?syncState=abc&pageSize=2"
    (items, sync), sent = run_listing(
        [
            page([{"id": "1"}, {"id": "2"}], second, syncState=f"{URL}?syncState=new"),
            page([{"id": "3"}], f"{URL}?syncState=def"),
            page([], ""),
        ]
    )
    assert [i["id"] for i in items] == ["1", "2", "3"]
    assert sync == f"{URL}?syncState=new"
    assert sent[0].url == f"{URL}?pageSize=2"
    assert sent[1].url == second
    assert sent[2].url == f"{URL}?syncState=def"


def test_repeated_link_ends_the_listing() -> None:
    link = f"{URL}?syncState=same"
    (items, _), sent = run_listing([page([{"id": "1"}], link), page([{"id": "2"}], link)])
    assert len(items) == len(sent) == 2


def test_listing_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    answers = [page([{"id": str(n)}], f"{URL}?syncState={n}") for n in range(3)]
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        (items, _), _sent = run_listing(answers, max_pages=3)
    assert len(items) == 3
    assert "did not end within 3 pages" in caplog.text


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/api/chatsvc/consumer/v1/users/ME/conversations?s=1",
        # trusted, but another service: the Skype token must stay with the chat base
        "https://teams.live.com/api/mt/beta/users",
        f"{MSGAPI_BASE}/v1/users/ME/conversations?s=1",
        "http://teams.live.com/api/chatsvc/consumer/v1/users/ME/conversations",
    ],
)
def test_links_outside_the_chat_base_are_refused_before_sending(link: str) -> None:
    sent: list[HttpRequest] = []
    flow = listing(TOKEN, URL, base=AFD_BASE, hosts=HOSTS, items_key="conversations")
    with pytest.raises(UntrustedHostError):
        drive(flow, [page([{"id": "1"}], link)], sent)
    assert len(sent) == 1


def test_relative_backward_link_is_resolved_against_the_request() -> None:
    (items, _), sent = run_listing([page([{"id": "1"}], "conversations?syncState=x"), page([])])
    assert sent[1].url == f"{URL}?syncState=x"
    assert len(items) == 1


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (HttpResponse.build(429, headers=[("Retry-After", "30")], json={"errorCode": 429}), 30),
        (HttpResponse.build(403, headers=[("Retry-After", "300")], json={"errorCode": "803"}), 300),
        (HttpResponse.build(400, json={"errorCode": 803, "message": ""}), None),
    ],
)
def test_quota_answers_are_rate_limits(answer: HttpResponse, retry_after: float | None) -> None:
    with pytest.raises(SkypeRateLimitException) as caught:
        run_listing([answer])
    assert caught.value.retry_after == retry_after
    assert "SKYPE-TOKEN-SECRET" not in repr(caught.value)


def test_a_non_decimal_error_code_is_not_a_quota_answer() -> None:
    # str.isdigit() holds for superscripts, which int() refuses.
    with pytest.raises(SkypeApiException) as caught:
        run_listing([HttpResponse.build(403, json={"errorCode": "\u00b2"})])
    assert not isinstance(caught.value, SkypeRateLimitException)


def test_other_failures_are_api_errors() -> None:
    with pytest.raises(SkypeApiException) as caught:
        run_listing([HttpResponse.build(404, json={"errorCode": 404, "message": ""})])
    assert not isinstance(caught.value, SkypeRateLimitException)


@pytest.mark.parametrize(
    "answer",
    [
        HttpResponse.build(200, json={"conversations": {}}),
        HttpResponse.build(200, json={"conversations": [], "_metadata": "x"}),
        HttpResponse.build(200, json={"conversations": [1], "_metadata": {"backwardLink": 5}}),
        # urljoin() raises ValueError on an unclosed IPv6 bracket.
        HttpResponse.build(
            200, json={"conversations": [1], "_metadata": {"backwardLink": "https://["}}
        ),
        HttpResponse.build(200, json={"conversations": [1], "_metadata": {"syncState": "//[x]/"}}),
        HttpResponse.build(200, content=b"<html>", content_type="text/html"),
    ],
)
def test_malformed_pages(answer: HttpResponse) -> None:
    with pytest.raises(RemoteProtocolError):
        run_listing([answer])


def test_send_body_and_answer() -> None:
    sent: list[HttpRequest] = []
    answer = HttpResponse.build(201, json={"OriginalArrivalTime": "1772323200123", "x": None})
    result = drive(
        send_message(
            TOKEN, "8:live:.cid.a", "1 < 2", base=MSGAPI_BASE, hosts=HOSTS, clientmessageid="42"
        ),
        [answer],
        sent,
    )
    assert sent[0].url == f"{MSGAPI_BASE}/v1/users/ME/conversations/8%3Alive%3A.cid.a/messages"
    assert sent[0].json() == {
        "content": "1 &lt; 2",
        "messagetype": "RichText/Html",
        "contenttype": "text",
        "clientmessageid": "42",
        "amsreferences": [],
    }
    assert (result.id, result.clientmessageid) == ("1772323200123", "42")
    assert result.arrival == dt.datetime(2026, 3, 1, 0, 0, 0, 123000, tzinfo=dt.UTC)
    assert result.original_arrival_time == "1772323200123"  # as given: a string stays one


@pytest.mark.parametrize("given", [1772323200123, "1772323200123", 1772323200123.0])
def test_the_arrival_time_is_kept_as_given(given: Any) -> None:
    result = parse_sent(HttpResponse.build(201, json={"OriginalArrivalTime": given}), "7")
    assert result.original_arrival_time == given
    assert type(result.original_arrival_time) is type(given)
    assert result.id == "1772323200123"


def test_legacy_send_goes_to_the_messaging_host_with_the_registration_token() -> None:
    messenger = "https://client-s.gateway.messenger.live.com/v1"
    reg = Registration(
        RegistrationToken("registrationToken=REG-SECRET", NOW.replace(year=2027)), messenger
    )
    sent: list[HttpRequest] = []
    answer = HttpResponse.build(201, json={"OriginalArrivalTime": 1772323200123})
    result = drive(send_legacy_message(reg, "8:bob", "a & b", clientmessageid="9"), [answer], sent)
    [request] = sent
    assert request.method == "POST"
    assert request.url == f"{messenger}/users/ME/conversations/8%3Abob/messages"
    assert request.header("RegistrationToken") == "registrationToken=REG-SECRET"
    assert request.header("Authentication") is None
    assert request.json() == {
        "content": "a &amp; b",
        "messagetype": "RichText/Html",
        "contenttype": "text",
        "clientmessageid": "9",
        "amsreferences": [],
    }
    assert (result.id, result.original_arrival_time) == ("1772323200123", 1772323200123)


def test_send_makes_a_numeric_client_message_id() -> None:
    sent: list[HttpRequest] = []
    answer = HttpResponse.build(201, json={"OriginalArrivalTime": 1})
    result = drive(send_message(TOKEN, "8:x", "hi", base=AFD_BASE, hosts=HOSTS), [answer], sent)
    assert result.clientmessageid.isdigit()
    assert result.clientmessageid.startswith(str(int(NOW.timestamp() * 1000)))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"OriginalArrivalTime": "soon"},
        {"OriginalArrivalTime": -1},
        # str.isdigit() holds for superscripts, which int() refuses.
        {"OriginalArrivalTime": "\u00b2"},
        [],
        None,
    ],
)
def test_send_answers_without_an_arrival_time(body: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_sent(HttpResponse.build(201, json=body), "1")


def test_bad_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        messages_url(AFD_BASE, "")
    with pytest.raises(LocalProtocolError):
        next(send_message(TOKEN, "8:x", "hi", base=AFD_BASE, hosts=HOSTS, clientmessageid="a1"))


def test_summary_of_a_message() -> None:
    message = {
        "id": "1",
        "from": "https://msgapi.teams.live.com/v1/users/ME/contacts/8:live:.cid.a",
        "content": "hi",
        "messagetype": "Text",
        "composetime": "2026-01-01T00:00:00.000Z",
        "extra": {"x": 1},
    }
    assert summarise_message(message) == {
        "id": "1",
        "from": "8:live:.cid.a",
        "content": "hi",
        "messagetype": "Text",
        "composetime": "2026-01-01T00:00:00.000Z",
    }
    assert summarise_message({"content": ["x"]})["content"] is None
    with pytest.raises(RemoteProtocolError):
        summarise_message([])
