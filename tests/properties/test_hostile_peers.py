"""Every flow against a hostile peer: it ends, within its bounds, and no credential leaves.

The peer answers each request a flow yields with a random status, random headers (a cross-host
``Location``, ``Set-RegistrationToken``, ``Retry-After``, ``Set-Cookie``) and a random body,
often a near-valid one for that step (a sign-in page with a PPFT, an edge answer with a token, a
registration header), so flows get past their first check. Now and then the transport fails
instead. The flow runs under the core's own :class:`~skyproto._flow.Stepper`, with a fake clock
for ``Now`` and ``Sleep``; ``Shared`` sub-flows run inline, ``Deliver`` calls the handler.

For every flow:

* it ends with a result or a :class:`~skyproto.SkypeException`, after at most :data:`FLOWS`'s
  bound of requests (each bound derived from the flow's documented limits);
* no request to a host that :class:`~skyproto.Hosts` does not trust carries a credential: the
  password or its hash, the Skype token, the registration token, the PPFT or the ``t`` value.
  The peer hands out the secrets below, so a leak of what it sent shows up too.

Both a default :class:`~skyproto.Hosts` and a loopback profile with overrides are used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from hostile import (
    header_safe,
    headers,
    json_values,
    page_bodies,
    raw_bytes,
    share_of_profile,
    urls,
)
from hypothesis import event, given
from hypothesis import strategies as st

from skyproto import (
    Credentials,
    EventLoop,
    Hosts,
    HttpRequest,
    HttpResponse,
    LoopPolicy,
    PagingState,
    Registration,
    RegistrationToken,
    Session,
    SessionState,
    SkypeException,
    SkypeToken,
    Status,
    TransportTimeout,
    endpoint,
    paging,
)
from skyproto._flow import Deliver, Now, Shared, Sleep, Stepper
from skyproto.auth import (
    api_login,
    fetch_user_id,
    guest_login,
    live_login,
    refresh_login,
    soap_login,
)
from skyproto.auth._redirects import MAX_REDIRECTS
from skyproto.emulator import pages as canned
from skyproto.hosts import SERVICE_URLS
from skyproto.ids import password_hash
from skyproto.registration import DEFAULT_MAX_REDIRECTS, NO_TOKEN_ATTEMPTS, register
from skyproto.session import MAX_CALL_ATTEMPTS

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)

# Secrets made of unreserved characters, so that no encoding on the way hides them.
PASSWORD = "PASSWORDsekrit1"
USER = "fred@example.com"
SKYPE_TOKEN = "SKYPETOKENsekrit2"
PEER_SKYPE_TOKEN = "PEERSKYPETOKENsekrit3"
REG_VALUE = "UkVHc2Vrcml0NA"
PEER_REG_VALUE = "UEVFUlJFR3Nla3JpdDU"
PPFT = "PPFTsekrit6"
T_VALUE = "Tsekrit7"
SECURITY_TOKEN = "SECURITYTOKENsekrit8"
SECRETS = (
    PASSWORD,
    password_hash(USER, PASSWORD),
    SKYPE_TOKEN,
    PEER_SKYPE_TOKEN,
    REG_VALUE,
    PEER_REG_VALUE,
    PPFT,
    T_VALUE,
    SECURITY_TOKEN,
)
CREDENTIALS = Credentials(USER, PASSWORD)
ENDPOINT_ID = "{12345678-1234-1234-1234-123456789abc}"

_SERVICE_HOSTS = sorted(
    {urllib.parse.urlsplit(url).hostname or "" for url in SERVICE_URLS.values()}
)
HOSTS_PROFILES = {
    "default": Hosts(),
    "loopback": Hosts(overrides={host: f"http://127.0.0.1:8080/{host}" for host in _SERVICE_HOSTS}),
}

# -- the peer -----------------------------------------------------------------------------------

#: Where a Location or a link sends the client: other hosts, downgrades, look-alikes, and home.
LOCATIONS = [
    "https://evil.example/login",
    "http://login.live.com/ppsecure/post.srf",
    "https://login.live.com.evil.example/",
    "//evil.example/x",
    "https://evil@login.live.com/",
    "https://evil.example/v1/users/ME/endpoints",
    "https://evil.example/v1/users/ME/endpoints/%7B12345678-1234-1234-1234-123456789abc%7D",
    "https://bn2-client-s.gateway.messenger.live.com/v1/users/ME/endpoints",
    "https://client-s.gateway.messenger.live.com/v1/users/ME/endpoints/%7B12345678-1234-1234-1234-123456789abc%7D",
    "http://127.0.0.1:8080/client-s.gateway.messenger.live.com/v1/users/ME/endpoints",
    "http://127.0.0.1:9999/v1/users/ME/endpoints",
    "/ppsecure/post.srf",
    "https://login.live.com/ppsecure/post.srf",
    "https://login.skype.com/login/microsoft",
    "https://api.join.skype.com/v1/meetings/AbCd",
    "https://login.live.com/../../evil",
]
locations = st.one_of(st.sampled_from(LOCATIONS), urls)
registration_headers = st.one_of(
    st.builds(
        lambda value, expires, tail: f"registrationToken={value}; expires={expires}{tail}",
        st.sampled_from([PEER_REG_VALUE, REG_VALUE]),
        st.one_of(
            st.sampled_from(["1900000000", "0", "99999999999999999999"]),
            st.integers(0, 2**40).map(str),
        ),
        st.sampled_from(["", f"; endpointId={ENDPOINT_ID}", "; endpointId=junk"]),
    ),
    st.text(max_size=30).map(header_safe),
)
peer_headers = st.lists(
    st.one_of(
        st.tuples(st.just("Location"), locations),
        st.tuples(st.just("Set-RegistrationToken"), registration_headers),
        st.tuples(
            st.just("Retry-After"),
            st.sampled_from(["0", "1", "700", "Wed, 21 Oct 2015 07:28:00 GMT", "x"]),
        ),
        st.tuples(
            st.just("Set-Cookie"),
            st.sampled_from(
                [
                    "MSPRequ=r",
                    "MSPOK=o; Secure",
                    "csrf_token=c",
                    "launcher_session_id=l; Domain=skype.com",
                    "a=b; Domain=evil.example",
                ]
            ),
        ),
    ),
    max_size=4,
).flatmap(lambda mine: headers.map(lambda theirs: mine + theirs))

statuses = st.one_of(
    st.just(200),
    st.just(200),
    st.just(200),
    st.sampled_from(
        [200, 201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 410, 429, 500, 503]
    ),
    st.integers(100, 599),
)
expiries = st.one_of(st.just(86400), st.integers(-5, 10**9), json_values)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _event(event_id: int, ack: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "time": "2024-05-06T07:08:09Z",
        "resourceType": "NewMessage",
        "resource": {
            "messagetype": "Text",
            "id": str(event_id),
            "content": "hi",
            "from": "https://x/v1/users/ME/contacts/8:alice",
            "conversationLink": "https://x/v1/users/ME/conversations/8:alice",
            "ackrequired": ack,
        },
    }


def _pages(*texts: str) -> st.SearchStrategy[bytes]:
    """One of ``texts``, encoded."""
    return st.one_of(*(st.just(text.encode()) for text in texts))


def near_valid_bodies(req: HttpRequest) -> st.SearchStrategy[bytes]:
    """A body that the step ``req`` belongs to would accept, or nearly."""
    path = urllib.parse.urlsplit(req.url).path
    token_json = st.builds(
        lambda token, expires: _json({"skypetoken": token, "expiresIn": expires}),
        st.sampled_from([PEER_SKYPE_TOKEN, "", None]),
        expiries,
    )
    if path.endswith("/RST.srf"):
        return _pages(
            canned.soap_token_response(SECURITY_TOKEN, "a", "b"),
            canned.soap_fault("wsse:FailedAuthentication", "no"),
        )
    if path.endswith(("/rps/skypetoken", "/login/skypetoken")) or path.endswith("/members"):
        return token_json
    if path.endswith("/oauth/microsoft"):
        return _pages(
            canned.live_sign_in_page("https://login.live.com/ppsecure/post.srf", PPFT, "ctx"),
            canned.live_error_page("it's wrong", PPFT, "ctx"),
            canned.live_confirm_page("https://login.skype.com/login/microsoft", T_VALUE),
        )
    if path.endswith("/post.srf"):
        return _pages(
            canned.live_opid_page(
                "https://login.live.com/ppsecure/post.srf?opid=ABC123", PPFT, "ctx"
            ),
            canned.live_confirm_page("https://evil.example/t", T_VALUE),
            canned.live_consent_page("https://evil.example/consent"),
            canned.live_two_factor_page(PPFT, "f***@example.com", "ctx"),
        )
    if path.endswith("/login/microsoft"):
        return st.builds(
            lambda expires: (
                canned.skype_token_page("https://evil.example", PEER_SKYPE_TOKEN, 1)
                .replace('value="1"', f'value="{expires}"')
                .encode()
            ),
            st.sampled_from(["86400", "-1", "x", "9" * 40]),
        )
    if path.endswith("/login"):
        return _pages(
            canned.live_confirm_page("https://login.skype.com/login/microsoft", T_VALUE),
            canned.refresh_error_page("session's gone"),
        )
    if "/meetings/" in path:
        return st.sampled_from(["19:abc@thread.skype", "..", "", "19:a/../b"]).map(
            lambda t: _json({"threadId": t})
        )
    if path.endswith("/profile"):
        return st.sampled_from(["fred.2", "guest:x", "", 5]).map(lambda u: _json({"username": u}))
    if path.endswith("/presenceDocs/messagingService") and req.method == "GET":
        return st.lists(st.sampled_from([*LOCATIONS, "x"]), max_size=3).map(
            lambda links: _json({"endpointPresenceDocs": [{"link": link} for link in links]})
        )
    if path.endswith("/poll"):
        return st.lists(
            st.tuples(
                st.integers(0, 5),
                st.sampled_from(
                    [
                        *LOCATIONS,
                        "https://client-s.gateway.messenger.live.com/v1/users/ME/conversations/ALL/messages/1/ack",
                    ]
                ),
            ),
            max_size=4,
        ).map(lambda events: _json({"eventMessages": [_event(i, ack) for i, ack in events]}))
    if path.endswith("/conversations") or "syncState" in req.url:
        return st.builds(
            lambda items, link: _json({"conversations": items, "_metadata": {"syncState": link}}),
            st.lists(st.just({"id": "8:alice"}), max_size=2),
            st.one_of(st.sampled_from(LOCATIONS), st.just(req.url + "&syncState=x"), urls),
        )
    if path.endswith("/users/ME/endpoints"):
        return st.one_of(st.just(b""), st.just(_json([{"id": ENDPOINT_ID}])))
    return st.just(b"")


def step_headers(req: HttpRequest) -> list[tuple[str, str]]:
    """The headers that the step ``req`` belongs to needs to go on (cookies, the token)."""
    path = urllib.parse.urlsplit(req.url).path
    if path.endswith("/oauth/microsoft"):
        return [("Set-Cookie", "MSPRequ=r; Path=/"), ("Set-Cookie", "MSPOK=o; Secure")]
    if "join" in req.url and req.method == "GET" and "/meetings/" not in path:
        return [("Set-Cookie", "csrf_token=c"), ("Set-Cookie", "launcher_session_id=l")]
    if path.endswith("/users/ME/endpoints"):
        value = f"registrationToken={PEER_REG_VALUE}; expires=1900000000; endpointId={ENDPOINT_ID}"
        return [("Set-RegistrationToken", value)]
    return []


def peer_answers(req: HttpRequest) -> st.SearchStrategy[HttpResponse | None]:
    """The hostile answer to ``req``; ``None`` stands for a transport failure."""
    bodies = st.one_of(near_valid_bodies(req), near_valid_bodies(req), page_bodies, raw_bytes)
    needed = step_headers(req)
    answer = st.builds(
        lambda status, needs, head, body: HttpResponse(
            status, tuple(needed if needs else []) + tuple(head), body, req.url
        ),
        statuses,
        st.booleans(),
        peer_headers,
        bodies,
    )
    return st.one_of(*[answer] * 11, st.none())


# -- the driver ---------------------------------------------------------------------------------


class Peer:
    """Answers a flow's effects: the hostile peer for requests, a fake clock for the rest."""

    def __init__(self, data: Any, hosts: Hosts) -> None:
        self.data = data
        self.hosts = hosts
        self.clock = T0
        self.requests: list[HttpRequest] = []

    def check(self, req: HttpRequest) -> None:
        if self.hosts.is_trusted(req.url):
            return
        sent = "\n".join(
            [req.url, *(f"{k}: {v}" for k, v in req.headers), req.body.decode("latin-1")]
        )
        leaked = [secret for secret in SECRETS if secret in sent]
        assert not leaked, f"credential sent to untrusted {req.method} {req.url}"

    def run(self, flow: Any, bound: int) -> Any:
        step = Stepper(flow)
        while not step.done:
            effect = step.pending
            if isinstance(effect, HttpRequest):
                self.requests.append(effect)
                assert len(self.requests) <= bound, f"more than {bound} requests"
                self.check(effect)
                answer = self.data.draw(peer_answers(effect), label=f"answer {len(self.requests)}")
                if answer is None:
                    step.throw(TransportTimeout("the peer went quiet"))
                else:
                    step.send(answer)
            elif isinstance(effect, Now):
                step.send(self.clock)
            elif isinstance(effect, Sleep):
                assert effect.seconds >= 0
                self.clock += dt.timedelta(seconds=effect.seconds)
                step.send(None)
            elif isinstance(effect, Shared):
                try:
                    outcome = self.run(effect.start(), bound)
                except SkypeException as exc:
                    step.throw(exc)
                else:
                    step.send(outcome)
            elif isinstance(effect, Deliver):
                effect.handler(effect.event)
                step.send(None)
            else:  # pragma: no cover - no flow yields anything else
                raise AssertionError(f"unexpected effect {type(effect).__name__}")
        return step.result


# -- the flows ----------------------------------------------------------------------------------


def _registration(hosts: Hosts) -> Registration:
    token = RegistrationToken(f"registrationToken={REG_VALUE}", T0 + dt.timedelta(days=1))
    return Registration(token, hosts.messenger, ENDPOINT_ID)


def _session(hosts: Hosts) -> Session:
    state = SessionState(
        user_id="fred.2",
        skype_token=SkypeToken(SKYPE_TOKEN, T0 + dt.timedelta(days=1)),
        registration=_registration(hosts),
    )
    return Session(hosts, credentials=CREDENTIALS, state=state)


def _event_loop(hosts: Hosts) -> Any:
    loop = EventLoop(_session(hosts), lambda event: None, policy=LoopPolicy(), rng=random.Random(0))
    return loop.run(max_polls=1)


_SKYPE = SkypeToken(SKYPE_TOKEN, T0 + dt.timedelta(days=1))
#: Requests of one login page stage: the first, and every redirect.
_STAGE = MAX_REDIRECTS + 1
#: A registration: the handshake's posts, then the endpoint config and listing.
_REGISTER = DEFAULT_MAX_REDIRECTS + NO_TOKEN_ATTEMPTS
#: A fresh login (SOAP: two requests) and the user id (one).
_LOGIN = 2 + 1
#: Session.connect: login, then a registration that may log in again after a 401 and redo it.
_CONNECT = _LOGIN + (_REGISTER + _LOGIN + _REGISTER + 2)
#: One call under the session's policy: its attempts, a login and a registration in between.
_CALL = _CONNECT + MAX_CALL_ATTEMPTS * 3
_LOOP_POLICY = LoopPolicy()
#: Cycles before the loop gives up: failures and recoveries in a row, each one past its bound.
_CYCLES = _LOOP_POLICY.max_failures + _LOOP_POLICY.max_recoveries + 2
#: One cycle: a registration first, the poll call (subscribe, ping, poll), an ack per event (4).
_LOOP = _CYCLES * (_CONNECT + _CALL + 4 * _CALL)

FlowFactory = Callable[[Hosts], Any]
#: Each endpoint call sends one request: the hostile peer's answer decides the rest.
ENDPOINT_CALLS: dict[str, tuple[FlowFactory, int]] = {
    "configure": (lambda h: endpoint.configure_endpoint(_registration(h), ENDPOINT_ID), 1),
    "ping": (lambda h: endpoint.ping(_registration(h)), 1),
    "subscribe": (lambda h: endpoint.subscribe(_registration(h)), 1),
    "subscribe_presence": (lambda h: endpoint.subscribe_presence(_registration(h), ["8:alice"]), 1),
    "set_presence": (lambda h: endpoint.set_presence(_registration(h), Status.Busy), 1),
    "list": (lambda h: endpoint.list_endpoints(_registration(h)), 1),
    "poll": (lambda h: endpoint.poll(_registration(h)), 1),
    "ack": (
        lambda h: endpoint.ack(
            _registration(h), h.messenger + "/users/ME/conversations/ALL/messages/1/ack", hosts=h
        ),
        1,
    ),
    "mark_consumed": (lambda h: endpoint.mark_consumed(_registration(h), "8:alice", "1;2;3"), 1),
}
FLOWS: dict[str, tuple[FlowFactory, int]] = {
    "login.soap": (lambda h: soap_login(CREDENTIALS, hosts=h), 2),
    "login.live": (lambda h: live_login(CREDENTIALS, hosts=h), 4 * _STAGE),
    "login.api": (lambda h: api_login(CREDENTIALS, hosts=h), 1),
    "login.refresh": (lambda h: refresh_login(_SKYPE, hosts=h), 2 * _STAGE),
    "login.guest": (
        lambda h: guest_login("https://join.skype.com/AbCd", "Guest", hosts=h),
        3 * _STAGE,
    ),
    "login.profile": (lambda h: fetch_user_id(_SKYPE, hosts=h), 1),
    "registration": (lambda h: register(_SKYPE, hosts=h), _REGISTER),
    "paging.page": (
        lambda h: paging.page(
            PagingState(),
            "GET",
            h.messenger + "/users/ME/conversations",
            reg=_registration(h),
            hosts=h,
        ),
        1,
    ),
    "paging.exhaust": (
        lambda h: paging.exhaust(
            PagingState(),
            "GET",
            h.messenger + "/users/ME/conversations",
            reg=_registration(h),
            hosts=h,
            items_key="conversations",
            max_pages=5,
        ),
        5,
    ),
    "session.connect": (lambda h: Session(h, credentials=CREDENTIALS).connect(), _CONNECT),
    "event_loop.cycle": (_event_loop, _LOOP),
}


def _flows(names: list[str]) -> st.SearchStrategy[tuple[str, FlowFactory, int]]:
    table = {**FLOWS, **{f"endpoint.{k}": v for k, v in ENDPOINT_CALLS.items()}}
    return st.sampled_from(names).map(lambda name: (name, *table[name]))


#: What each test runs: one flow, or (for the endpoint calls) one of a group.
GROUPS = {name: [name] for name in FLOWS} | {
    "endpoint.calls": [f"endpoint.{name}" for name in ENDPOINT_CALLS]
}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_flow_ends_and_leaks_nothing(group: str) -> None:
    @share_of_profile(0.5)
    @given(st.data(), st.sampled_from(sorted(HOSTS_PROFILES)), _flows(GROUPS[group]))
    def hostile_run(data: st.DataObject, profile: str, flow: tuple[str, FlowFactory, int]) -> None:
        name, make, bound = flow
        hosts = HOSTS_PROFILES[profile]
        peer = Peer(data, hosts)
        if len(GROUPS[group]) > 1:
            event(name)
        try:
            peer.run(make(hosts), bound)
        except SkypeException as exc:
            ended: SkypeException | None = exc
            event(f"ended with {type(exc).__name__}")
        else:
            ended = None
            event("ended with a result")
        assert ended is None or ended.message, "a skyproto error with no message"
        event(f"requests: {_bucket(len(peer.requests))}")

    hostile_run()


def _bucket(count: int) -> str:
    return str(count) if count < 4 else "4-9" if count < 10 else "10-99" if count < 100 else "100+"


class _AlwaysOk:
    """Stands in for hypothesis' data object: every request gets an empty 200."""

    def draw(self, strategy: object, label: object = None) -> HttpResponse:
        return HttpResponse(200)


def test_the_peer_catches_a_leak() -> None:
    def leaky(hosts: Hosts) -> Any:
        yield HttpRequest("POST", "https://evil.example/x", (), f"t={T_VALUE}".encode())

    with pytest.raises(AssertionError, match="credential sent to untrusted"):
        Peer(_AlwaysOk(), Hosts()).run(leaky(Hosts()), 1)


def test_the_peer_enforces_the_bound() -> None:
    def endless(hosts: Hosts) -> Any:
        while True:
            with contextlib.suppress(SkypeException):
                yield HttpRequest("GET", "https://api.skype.com/x")

    with pytest.raises(AssertionError, match="more than 3 requests"):
        Peer(_AlwaysOk(), Hosts()).run(endless(Hosts()), 3)
