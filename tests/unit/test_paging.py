"""syncState paging (docs/protocol.md §6), including the worked example."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import cattrs
import pytest

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    RemoteProtocolError,
    SkypeApiException,
    UntrustedHostError,
)
from skyproto._flow import Flow
from skyproto.calls import USER_AGENT
from skyproto.emulator.testing import Peer
from skyproto.endpoint import EndpointGoneError
from skyproto.paging import (
    MAX_LISTINGS,
    Listing,
    ListingOwner,
    PagingState,
    conversations,
    exhaust,
    page,
)
from skyproto.registration import Registration
from skyproto.tokens import RegistrationToken

H = "https://client-s.gateway.messenger.live.com/v1"
REG_TOKEN = "registrationToken=U2lnbmF0dXJlOjI="
REG = Registration(RegistrationToken(REG_TOKEN, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)), H)
URL = f"{H}/users/ME/conversations"
AAA = f"{URL}?startTime=0&syncState=AAA&pageSize=2&view=msnp24Equivalent"
BBB = f"{URL}?startTime=0&syncState=BBB"
CCC = f"{URL}?startTime=0&syncState=CCC"
PARAMS = {"startTime": "0", "view": "x"}


def listing(items: list[Any], link: str | None = None, key: str = "conversations") -> HttpResponse:
    body: dict[str, Any] = {key: items}
    if link is not None:
        body["_metadata"] = {"syncState": link, "lastCompleteSegmentStartTime": 0}
    return HttpResponse.build(200, json=body)


def answering(answer: Callable[[HttpRequest], HttpResponse]) -> Peer:
    """The test peer, answering every request with ``answer(request)``."""
    peer = Peer()
    peer.always("https://", answer)
    return peer


def scripted(*responses: HttpResponse) -> Peer:
    return Peer(answers=responses)


def test_worked_example() -> None:
    server = scripted(
        listing([{"id": 1}], AAA),
        listing([{"id": 2}], BBB),
        listing([], CCC),
        listing([{"id": 4}]),
        listing([]),
    )
    state = PagingState()
    items_per_call = []
    for _ in range(5):
        state, body = server.run(page(state, "GET", URL, reg=REG, hosts=Hosts(), params=PARAMS))
        items_per_call.append(len(body["conversations"]))
    assert [r.url for r in server.sent] == [f"{URL}?startTime=0&view=x", AAA, BBB, CCC, CCC]
    assert items_per_call == [1, 1, 0, 1, 0]
    assert state == PagingState({f"GET {URL}": CCC})
    for req in server.sent:
        assert req.method == "GET"
        assert req.headers == (("User-Agent", USER_AGENT), ("RegistrationToken", REG_TOKEN))


def test_worked_example_exhaust_stops_at_empty_page() -> None:
    server = scripted(listing([{"id": 1}], AAA), listing([{"id": 2}], BBB), listing([], CCC))
    state, items = server.run(
        exhaust(
            PagingState(),
            "GET",
            URL,
            reg=REG,
            hosts=Hosts(),
            items_key="conversations",
            params=PARAMS,
        )
    )
    assert items == [{"id": 1}, {"id": 2}]
    assert [r.url for r in server.sent] == [f"{URL}?startTime=0&view=x", AAA, BBB]
    assert state.link("GET", URL) == CCC
    assert state.link("get", URL) == CCC


def test_exhaust_stops_when_no_new_link() -> None:
    server = scripted(listing([{"id": 1}], AAA), listing([{"id": 2}]))
    state, items = server.run(
        exhaust(PagingState(), "GET", URL, reg=REG, hosts=Hosts(), items_key="conversations")
    )
    assert items == [{"id": 1}, {"id": 2}]
    assert [r.url for r in server.sent] == [URL, AAA]
    assert state.link("GET", URL) == AAA


def test_exhaust_stops_when_link_repeats() -> None:
    server = answering(lambda req: listing([{"id": len(server.sent)}], AAA))
    _, items = server.run(
        exhaust(PagingState(), "GET", URL, reg=REG, hosts=Hosts(), items_key="conversations")
    )
    assert items == [{"id": 1}, {"id": 2}]
    assert [r.url for r in server.sent] == [URL, AAA]


def test_exhaust_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    server = answering(
        lambda req: listing([len(server.sent)], f"{URL}?syncState={len(server.sent)}")
    )
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        state, items = server.run(
            exhaust(
                PagingState(),
                "GET",
                URL,
                reg=REG,
                hosts=Hosts(),
                items_key="conversations",
                max_pages=7,
            )
        )
    assert items == [1, 2, 3, 4, 5, 6, 7]
    assert len(server.sent) == 7
    assert state.link("GET", URL) == f"{URL}?syncState=7"
    assert [r.getMessage() for r in caplog.records] == [
        f"listing GET {URL} did not end within 7 pages"
    ]


def test_exhaust_with_no_page_allowed_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    start = PagingState({f"GET {URL}": AAA})
    server = scripted()
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        state, items = server.run(
            exhaust(start, "GET", URL, reg=REG, hosts=Hosts(), items_key="x", max_pages=0)
        )
    assert (state, items, server.sent) == (start, [], [])
    assert [r.getMessage() for r in caplog.records] == [
        f"listing GET {URL} did not end within 0 pages"
    ]


class Owner:
    """A :class:`ListingOwner` with one registration and no recovery policy."""

    def __init__(self, paging: PagingState) -> None:
        self.hosts = Hosts()
        self.paging = paging
        self.registration: Registration | None = REG

    def call(self, operation: Callable[[Registration], Flow[Any]]) -> Flow[Any]:
        return operation(REG)


SCRIPTS = {
    "empty page": [listing([1], AAA), listing([2], BBB), listing([], CCC)],
    "no new link": [listing([1], AAA), listing([2])],
    "link repeats": [listing([1], AAA), listing([2], AAA)],
    "bounded": [listing([n], f"{URL}?syncState={n}") for n in range(3)],
    "first page empty": [listing([])],
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_exhaust_is_a_listing_run_to_its_end(name: str) -> None:
    start = PagingState({f"GET {H}/other": f"{H}/other?s=1"})
    by_exhaust = scripted(*SCRIPTS[name])
    state, items = by_exhaust.run(
        exhaust(start, "GET", URL, reg=REG, hosts=Hosts(), items_key="conversations", max_pages=3)
    )
    owner: ListingOwner = Owner(start)
    pager = Listing(owner, "/users/ME/conversations", items_key="conversations", max_pages=3)
    by_listing = scripted(*SCRIPTS[name])
    pages = []
    while (found := by_listing.run(pager.next_page())) is not None:
        pages.append(found)
    assert [r.url for r in by_exhaust.sent] == [r.url for r in by_listing.sent]
    assert items == [item for found in pages for item in found]
    assert state == owner.paging


def test_exhaust_fails_on_a_stale_link_and_returns_no_state() -> None:
    server = scripted(HttpResponse(404, body=b"{}"))
    with pytest.raises(SkypeApiException):
        server.run(
            exhaust(
                PagingState({f"GET {URL}": AAA}),
                "GET",
                URL,
                reg=REG,
                hosts=Hosts(),
                items_key="conversations",
            )
        )
    assert [r.url for r in server.sent] == [AAA]


def test_exhaust_with_missing_items_ends() -> None:
    server = scripted(HttpResponse.build(200, json={"_metadata": {"syncState": AAA}}))
    _, items = server.run(
        exhaust(PagingState(), "GET", URL, reg=REG, hosts=Hosts(), items_key="messages")
    )
    assert items == []


def test_conversations_exact_params() -> None:
    server = scripted(listing([{"id": "19:a@thread.skype"}], AAA), listing([]))
    state, items = server.run(conversations(REG, PagingState(), Hosts()))
    assert items == [{"id": "19:a@thread.skype"}]
    assert server.sent[0].url == (
        f"{URL}?startTime=0&view=supportsExtendedHistory%7Cmsnp24Equivalent"
        "&targetType=Passport%7CSkype%7CLync%7CThread%7CAgent%7CShortCircuit%7CPSTN%7CFlxt"
        "%7CNotificationStream%7CModernBots%7CsecureThreads%7CInviteFree"
    )
    state, items = server.run(conversations(REG, state, Hosts()))
    assert items == []
    assert server.sent[1].url == AAA


def test_headers_are_sent_on_every_page() -> None:
    extra = {"BehaviorOverride": "redirectAs404", "Sec-Fetch-Dest": "empty"}
    server = scripted(listing([1], AAA, "messages"), listing([], None, "messages"))
    server.run(
        exhaust(
            PagingState(), "GET", URL, reg=REG, hosts=Hosts(), items_key="messages", headers=extra
        )
    )
    for req in server.sent:
        assert req.headers[2:] == (
            ("BehaviorOverride", "redirectAs404"),
            ("Sec-Fetch-Dest", "empty"),
        )


def test_untrusted_link_refused_on_arrival() -> None:
    server = scripted(listing([1], "https://evil.example/v1/users/ME/conversations?syncState=X"))
    with pytest.raises(UntrustedHostError, match=r"evil\.example"):
        server.run(page(PagingState(), "GET", URL, reg=REG, hosts=Hosts()))


def test_untrusted_stored_link_refused_before_sending() -> None:
    state = PagingState({f"GET {URL}": "https://evil.example/next"})
    server = scripted()
    with pytest.raises(UntrustedHostError):
        server.run(page(state, "GET", URL, reg=REG, hosts=Hosts()))
    assert server.sent == []


def test_untrusted_listing_url_refused() -> None:
    server = scripted()
    with pytest.raises(UntrustedHostError):
        server.run(page(PagingState(), "GET", "https://evil.example/list", reg=REG, hosts=Hosts()))
    assert server.sent == []


def test_relative_link_resolved_against_request() -> None:
    server = scripted(listing([1], "?syncState=REL"))
    state, _ = server.run(page(PagingState(), "GET", URL, reg=REG, hosts=Hosts(), params=PARAMS))
    assert state.link("GET", URL) == f"{URL}?syncState=REL"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"null",
        b"not json",
        b'{"_metadata": []}',
        b'{"_metadata": {"syncState": 5}}',
        b'{"conversations": {}}',
    ],
)
def test_malformed_pages(body: bytes) -> None:
    server = scripted(HttpResponse(200, body=body))
    with pytest.raises(RemoteProtocolError):
        server.run(conversations(REG, PagingState(), Hosts()))


def test_empty_sync_state_is_no_link() -> None:
    server = scripted(
        HttpResponse.build(200, json={"conversations": [1], "_metadata": {"syncState": ""}})
    )
    state, _ = server.run(conversations(REG, PagingState(), Hosts()))
    assert state == PagingState()


def test_status_errors() -> None:
    with pytest.raises(SkypeApiException, match=f"500 response from GET {URL}$"):
        scripted(HttpResponse(500)).run(conversations(REG, PagingState(), Hosts()))
    with pytest.raises(EndpointGoneError):
        scripted(HttpResponse(404, body=b'{"errorCode": 729}')).run(
            conversations(REG, PagingState(), Hosts())
        )


def test_state_is_bounded_and_keeps_latest() -> None:
    state = PagingState()
    for index in range(MAX_LISTINGS + 10):
        state = state.with_link("GET", f"{H}/l/{index}", f"{H}/l/{index}?s=1")
    state = state.with_link("GET", f"{H}/l/{MAX_LISTINGS + 9}", f"{H}/l/x?s=2")
    assert len(state.links) == MAX_LISTINGS
    assert state.link("GET", f"{H}/l/0") is None
    assert state.link("GET", f"{H}/l/10") == f"{H}/l/10?s=1"
    assert list(state.links)[-1] == f"GET {H}/l/{MAX_LISTINGS + 9}"
    small = (
        PagingState()
        .with_link("GET", "a", "1", max_listings=1)
        .with_link("POST", "a", "2", max_listings=1)
    )
    assert small.links == {"POST a": "2"}
    assert small.without("POST", "a") == PagingState()


def test_rebased_forgets_only_the_listings_under_the_old_base() -> None:
    other = "https://db3-client-s.gateway.messenger.live.com/v1"
    state = (
        PagingState()
        .with_link("GET", URL, AAA)
        .with_link("POST", f"{H}/users/ME/x", f"{H}/users/ME/x?s=1")
        .with_link("GET", f"{other}/users/ME/conversations", f"{other}/c?s=2")
        .with_link("GET", f"{H}x/users/ME/conversations", f"{H}x/c?s=3")
    )
    assert state.rebased(H + "/").links == {
        f"GET {other}/users/ME/conversations": f"{other}/c?s=2",
        f"GET {H}x/users/ME/conversations": f"{H}x/c?s=3",
    }


def test_state_is_a_value_and_round_trips_through_cattrs() -> None:
    original = PagingState().with_link("GET", URL, AAA)
    updated = original.with_link("GET", URL, BBB)
    assert original.links == {f"GET {URL}": AAA}
    assert updated.links == {f"GET {URL}": BBB}
    raw = cattrs.unstructure(updated)
    assert raw == {"links": {f"GET {URL}": BBB}}
    assert cattrs.structure(raw, PagingState) == updated
    source = {"k": "v"}
    state = PagingState(source)
    source["k"] = "changed"
    assert state.links == {"k": "v"}
