"""Every transport against a real HTTP/1.1 server on loopback (``tests/h11_server.py``).

Each test runs over the four transports: requests, httpx (sync), httpx (async, through
``run_async``) and the stdlib one. Requests go through the real drivers, so what is checked is
what a flow gets.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import requests
import requests.adapters
from h11_server import H11Server, Received, Reply, ThrowawayCA, refused_url, replies
from skyproto.transports import DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT, run_async, run_sync
from skyproto.transports.httpx import AsyncHttpxTransport, HttpxTransport
from skyproto.transports.requests import RequestsTransport
from skyproto.transports.stdlib import StdlibTransport

from skyproto import (
    Flow,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    SkypeApiException,
    SkypeRateLimitException,
    TransportError,
    TransportTimeout,
    external_call,
)
from skyproto._flow import request as request_flow
from skyproto.calls import USER_AGENT

pytestmark = pytest.mark.integration

KINDS = ["requests", "httpx", "httpx-async", "stdlib"]
CLIENT_KINDS = ["requests", "httpx", "httpx-async"]  # the ones that wrap a user's client

SECRETS = ("secret-skype-token", "hunter2-password", "secret-t-value")


class Client:
    """One transport, driven the same way whichever kind it is."""

    def __init__(self, kind: str, transport: Any) -> None:
        self.kind = kind
        self.transport = transport

    async def run(self, flow: Flow[Any]) -> Any:
        if self.kind == "httpx-async":
            return await run_async(flow, self.transport)
        return run_sync(flow, self.transport)

    async def send(self, req: HttpRequest) -> HttpResponse:
        response: HttpResponse = await self.run(request_flow(req))
        return response

    async def close(self) -> None:
        if self.kind == "httpx-async":
            await self.transport.aclose()
        else:
            self.transport.close()


def make(kind: str, user_client: Any = None, **limits: Any) -> Client:
    """A transport of ``kind``, around ``user_client`` if given (for stdlib: an SSLContext).

    ``limits`` go to the constructor (``default_timeout``, ``max_body_size``).
    """
    if kind == "requests":
        return Client(kind, RequestsTransport(user_client, **limits))
    if kind == "httpx":
        return Client(kind, HttpxTransport(user_client, **limits))
    if kind == "httpx-async":
        return Client(kind, AsyncHttpxTransport(user_client, **limits))
    return Client(kind, StdlibTransport(user_client, **limits))


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server() -> Iterator[H11Server]:
    with H11Server() as running:
        yield running
    assert running.errors == [] or all(isinstance(e, OSError) for e in running.errors)


@pytest.fixture
async def client(kind: str) -> AsyncIterator[Client]:
    made = make(kind)
    yield made
    await made.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


def host(server: H11Server) -> tuple[str, str]:
    return ("Host", f"127.0.0.1:{server.port}")


def only(server: H11Server) -> Received:
    assert len(server.received) == 1
    return server.received[0]


# What goes out


async def test_request_arrives_byte_for_byte(server: H11Server, client: Client) -> None:
    server.handler = lambda _: Reply(200, [("Content-Type", "application/json")], b'{"ok": 1}')
    target = "/v1/users/ME/endpoints/%7B3f2504e0%7D/a:b@c?name=a%20b&flag=%7C&empty="
    headers = (
        ("User-Agent", USER_AGENT),
        ("X-Repeat", "first"),
        ("Content-Type", "application/octet-stream"),
        ("x-repeat", "second"),  # same name, other case, not adjacent: kept as is
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("X-Spaces", "a  b\tc"),
    )
    body = bytes(range(256))
    req = HttpRequest("POST", server.url + target, headers, body, timeout=5)

    response = await client.send(req)

    got = only(server)
    assert got.method == "POST"
    assert got.target == target
    assert got.headers == (host(server), *headers, ("Content-Length", "256"))
    assert got.body == body
    assert response.status == 200
    assert response.body == b'{"ok": 1}'
    assert response.url == req.url
    assert response.header("content-type") == "application/json"


async def test_a_head_sent_again_goes_out_the_same_and_is_forgotten_on_close(
    server: H11Server, kind: str
) -> None:
    """The transports remember the heads they send (``WireHeads``): the same head again, and a
    body of another length, go out exactly as the first time would; closing forgets them, since
    they hold tokens."""
    server.handler = lambda _: Reply(204, [], b"")
    made = make(kind)
    url = server.url + "/v1/users/ME/endpoints/SELF/active"
    headers = (("RegistrationToken", "registrationToken=abc"), ("Content-Type", "application/json"))
    for body in (b'{"timeout": 12}', b'{"timeout": 12}', b'{"timeout": 123}'):
        await made.send(HttpRequest("POST", url, headers, body, timeout=5))
    assert len(made.transport._heads) == 2
    await made.close()
    assert len(made.transport._heads) == 0
    lengths = [("Content-Length", "15"), ("Content-Length", "15"), ("Content-Length", "16")]
    for got, length in zip(server.received, lengths, strict=True):
        assert got.headers == (host(server), *headers, length)


def test_requests_sends_polls_and_short_calls_on_one_session_and_reuses_the_connection(
    server: H11Server,
) -> None:
    """urllib3's pool costs nothing per connection, so one session serves both budgets: the poll
    goes out on the connection the call before it used, and a new pool holds no placeholder per
    slot (2,080 of them cost milliseconds per host to make and to drain)."""
    server.handler = lambda _: Reply(200, [], b"{}")
    with RequestsTransport() as transport:
        assert transport.poll_session is transport.session
        run_sync(request_flow(HttpRequest("POST", server.url + "/a", timeout=5)), transport)
        poll = HttpRequest("POST", server.url + "/poll", timeout=5, long_poll=True)
        run_sync(request_flow(poll), transport)
        manager = transport.session.get_adapter(server.url).poolmanager
        # urllib3's container refuses plain iteration; keys() is its way.
        pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118
        assert len(pools) == 1
        assert pools[0].pool is not None
        assert pools[0].pool.qsize() == 1  # the one idle connection, and no placeholders
    assert [got.connection for got in server.received] == [0, 0]


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS"])
async def test_bodiless_request_carries_only_host_and_our_headers(
    server: H11Server, client: Client, method: str
) -> None:
    headers = (("User-Agent", USER_AGENT), ("Accept", "application/json"))
    await client.send(HttpRequest(method, server.url + "/x", headers, timeout=5))
    got = only(server)
    assert got.method == method
    assert got.headers == (host(server), *headers)
    assert got.body == b""


async def test_request_without_headers_gets_nothing_added(
    server: H11Server, client: Client
) -> None:
    """No User-Agent, Accept, Accept-Encoding or Connection of the client's own."""
    await client.send(HttpRequest("GET", server.url + "/", timeout=5))
    await client.send(HttpRequest("POST", server.url + "/", timeout=5))
    assert [r.headers for r in server.received] == [
        (host(server),),
        (host(server), ("Content-Length", "0")),
    ]


async def test_core_request_built_with_json(server: H11Server, client: Client) -> None:
    from skyproto.calls import build_request

    req = build_request(
        "PUT",
        server.url + "/v1/users/ME/endpoints/%7Bid%7D/presenceDocs/messagingService",
        json={"id": "messagingService", "type": "EndpointPresenceDoc", "selfLink": "uri"},
        params={"name": "a|b"},
        timeout=5,
    )
    await client.send(req)
    got = only(server)
    assert got.target == (
        "/v1/users/ME/endpoints/%7Bid%7D/presenceDocs/messagingService?name=a%7Cb"
    )
    assert (
        got.body == b'{"id": "messagingService", "type": "EndpointPresenceDoc", "selfLink": "uri"}'
    )
    assert got.headers == (
        host(server),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(got.body))),
    )


# What comes back


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_is_returned_not_followed(
    server: H11Server, client: Client, status: int
) -> None:
    server.handler = lambda _: Reply(status, [("Location", "/elsewhere")], b"moved")
    response = await client.send(HttpRequest("POST", server.url + "/here", (), b"x", timeout=5))
    assert response.status == status
    assert response.header("location") == "/elsewhere"
    assert response.body == b"moved"
    assert [r.target for r in server.received] == ["/here"]


async def test_set_cookie_comes_back_and_is_never_sent(server: H11Server, client: Client) -> None:
    server.handler = replies(
        Reply(
            200,
            [
                ("Set-Cookie", "a=1; Path=/"),
                ("X-Between", "x"),
                ("Set-Cookie", "refresh-token=very-secret; Path=/; HttpOnly"),
            ],
        ),
        Reply(200),
    )
    first = await client.send(HttpRequest("GET", server.url + "/login", timeout=5))
    await client.send(HttpRequest("GET", server.url + "/next", timeout=5))

    assert first.header_all("set-cookie") == [
        "a=1; Path=/",
        "refresh-token=very-secret; Path=/; HttpOnly",
    ]
    assert server.received[1].header_all("cookie") == []
    assert server.received[1].headers == (host(server),)
    if client.kind.startswith("httpx"):
        assert len(client.transport.client.cookies.jar) == 0  # an owned client stores none
    if client.kind == "requests":
        assert len(client.transport.session.cookies) == 0


async def test_response_header_lines_are_kept(server: H11Server, client: Client) -> None:
    lines = [
        ("X-One", "1"),
        ("Set-Cookie", "a=1"),
        ("X-Two", "two  spaces"),
        ("set-cookie", "b=2"),
        ("Content-Length", "2"),
    ]
    server.handler = lambda _: Reply(200, lines, b"ok")
    response = await client.send(HttpRequest("GET", server.url + "/", timeout=5))
    if client.kind == "requests":
        # urllib3 groups a response's lines by name (first spelling of the name wins).
        assert response.headers == (
            ("X-One", "1"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Two", "two  spaces"),
            ("Content-Length", "2"),
        )
    else:
        assert response.headers == tuple(lines)
    assert response.header_all("set-cookie") == ["a=1", "b=2"]


async def test_content_encoding_is_left_alone(server: H11Server, client: Client) -> None:
    packed = gzip.compress(b'{"hello": "world"}', mtime=0)
    server.handler = lambda _: Reply(200, [("Content-Encoding", "gzip")], packed)
    response = await client.send(HttpRequest("GET", server.url + "/", timeout=5))
    assert response.body == packed
    assert response.header("content-encoding") == "gzip"
    assert only(server).header("accept-encoding") is None


async def test_chunked_response_is_reassembled(server: H11Server, client: Client) -> None:
    payload = b"x" * 70000 + b"end"
    server.handler = lambda _: Reply(200, [("Transfer-Encoding", "chunked")], payload)
    response = await client.send(HttpRequest("GET", server.url + "/", timeout=5))
    assert response.body == payload


async def test_head_response_has_no_body(server: H11Server, client: Client) -> None:
    server.handler = lambda _: Reply(200, [("Content-Length", "10")])
    response = await client.send(HttpRequest("HEAD", server.url + "/", timeout=5))
    assert (response.status, response.body) == (200, b"")
    assert response.header("content-length") == "10"


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\n\r\nuntil the close", 200, b"until the close", id="eof-body"
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            201,
            b"ok",
            id="interim-100",
        ),
        pytest.param(b"HTTP/1.0 204 No Content\r\n\r\n", 204, b"", id="http-1.0"),
    ],
)
async def test_unusual_but_valid_answers(
    server: H11Server, client: Client, raw: bytes, status: int, body: bytes
) -> None:
    server.handler = lambda _: Reply(raw=raw)
    response = await client.send(HttpRequest("GET", server.url + "/", timeout=5))
    assert (response.status, response.body) == (status, body)


# Failures


def secret_request(url: str, *, timeout: float = 5) -> HttpRequest:
    return HttpRequest(
        "POST",
        url + "/path?t=secret-t-value&x=1",
        (("X-SkypeToken", "secret-skype-token"),),
        b"passwd=hunter2-password",
        timeout=timeout,
    )


def assert_clean(error: BaseException, url: str) -> None:
    text = f"{error} {error!r}"
    assert "POST" in text
    assert url + "/path?t=%3Credacted%3E&x=1" in text
    for secret in SECRETS:
        assert secret not in text


async def test_timeout_raises_transport_timeout(server: H11Server, client: Client) -> None:
    server.handler = lambda _: Reply(200, delay=1.0)
    began = time.monotonic()
    with pytest.raises(TransportTimeout) as caught:
        await client.send(secret_request(server.url, timeout=0.2))
    assert 0.15 < time.monotonic() - began < 0.8
    assert_clean(caught.value, server.url)


async def test_the_timeout_bounds_the_whole_exchange(server: H11Server, client: Client) -> None:
    """A server that trickles its answer, each wait short, is still cut off at the deadline.

    The sync httpx transport notices it at the first chunk after the deadline (one piece late).
    """
    body = b"0123456789" * 20
    server.handler = lambda _: Reply(200, body=body, pace=0.05)  # about 30 pieces: 1.5 s
    began = time.monotonic()
    with pytest.raises(TransportTimeout) as caught:
        await client.send(HttpRequest("GET", server.url + "/slowly", timeout=0.25))
    assert 0.2 < time.monotonic() - began < 1.2
    assert "GET" in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="accepts-never-answers"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", id="head-then-stall"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", id="body-stalls"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            id="chunks-stall",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="head-stalls"),
    ],
)
async def test_a_silent_server_times_out_within_the_bound(
    server: H11Server, kind: str, raw: bytes
) -> None:
    """A server that stops talking, before or during its answer, never hangs a transport."""
    server.handler = lambda _: Reply(raw=raw, hang=True)
    for limits, timeout in [({}, 0.3), ({"default_timeout": 0.3}, None)]:
        client = make(kind, **limits)
        began = time.monotonic()
        try:
            with pytest.raises(TransportTimeout):
                await client.send(HttpRequest("GET", server.url + "/", timeout=timeout))
        finally:
            await client.close()
        assert 0.25 < time.monotonic() - began < 2.0


async def test_refused_connection_raises_transport_error(client: Client) -> None:
    url = refused_url()
    with pytest.raises(TransportError) as caught:
        await client.send(secret_request(url))
    assert not isinstance(caught.value, TransportTimeout)
    assert_clean(caught.value, url)
    # The kind of error, then the system's word where there is one (anyio says only OSError).
    assert re.match(r"\w+( \((ConnectionRefusedError|OSError)\))?: POST ", str(caught.value))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="closed-before-answer"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", id="truncated-body"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", id="chunk"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", id="unfinished-head"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="head-cut-mid-line"),
        pytest.param(b"HTTP/1.1 20", id="status-line-cut"),
        pytest.param(b"garbage\r\n\r\n", id="not-http"),
    ],
)
async def test_broken_answer_raises_transport_error_and_the_next_request_works(
    server: H11Server, client: Client, raw: bytes, request: pytest.FixtureRequest
) -> None:
    if client.kind == "requests" and raw.endswith(b"Content-Le"):
        reason = "http.client takes a head cut off mid-line by the close as a 200 with no headers"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    server.handler = replies(Reply(200), Reply(raw=raw), Reply(200, body=b"again"))
    await client.send(HttpRequest("GET", server.url + "/warm", timeout=5))  # a pooled connection
    with pytest.raises(TransportError) as caught:
        await client.send(secret_request(server.url))
    assert not isinstance(caught.value, TransportTimeout)
    assert_clean(caught.value, server.url)
    response = await client.send(HttpRequest("GET", server.url + "/after", timeout=5))
    assert response.body == b"again"


async def test_connections_are_released_and_reused(server: H11Server, client: Client) -> None:
    server.handler = lambda _: Reply(200, body=b"x" * 1000)
    for _ in range(3):
        await client.send(HttpRequest("GET", server.url + "/", timeout=5))
    connections = [r.connection for r in server.received]
    if client.kind == "stdlib":
        assert connections == [0, 1, 2]  # one connection per request, each closed after use
    else:
        assert connections == [0, 0, 0]  # the pool got its connection back each time


# The user's own client


class CountingAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, default_timeout: float | None = None) -> None:
        super().__init__()
        self.sent = 0
        self.closed = False
        self.default_timeout = default_timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.sent += 1
        if self.default_timeout is not None:
            kwargs.setdefault("timeout", self.default_timeout)
        return super().send(request, **kwargs)

    def close(self) -> None:
        self.closed = True
        super().close()


class CountingTransport(httpx.HTTPTransport):
    sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


class CountingAsyncTransport(httpx.AsyncHTTPTransport):
    sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


def user_client(kind: str, *, timeout: float | None = None) -> tuple[Any, Any]:
    """A configured client of ``kind`` with defaults that must not reach the wire."""
    if kind == "requests":
        session = requests.Session()
        adapter = CountingAdapter(timeout)
        session.mount("http://", adapter)
        session.headers["X-Session-Default"] = "no"
        session.cookies.set("jar", "no")
        session.auth = ("user", "no")
        session.params = {"p": "no"}
        return session, adapter
    settings: dict[str, Any] = {
        "headers": {"X-Client-Default": "no"},
        "cookies": {"jar": "no"},
        "auth": ("user", "no"),
        "params": {"p": "no"},
    }
    if timeout is not None:
        settings["timeout"] = timeout
    if kind == "httpx":
        counter: Any = CountingTransport()
        return httpx.Client(transport=counter, **settings), counter
    counter = CountingAsyncTransport()
    return httpx.AsyncClient(transport=counter, **settings), counter


@pytest.mark.parametrize("kind", CLIENT_KINDS)
async def test_user_client_is_used_but_its_defaults_are_not(server: H11Server, kind: str) -> None:
    server.handler = lambda _: Reply(200, [("Set-Cookie", "s=1")])
    theirs, counter = user_client(kind)
    transport = make(kind, theirs)
    wrapped = transport.transport
    assert (wrapped.session if kind == "requests" else wrapped.client) is theirs
    await transport.send(HttpRequest("GET", server.url + "/x", (("User-Agent", "ua"),), timeout=5))
    await transport.send(HttpRequest("GET", server.url + "/x", (("User-Agent", "ua"),), timeout=5))
    assert counter.sent == 2
    for got in server.received:
        assert got.target == "/x"
        assert got.headers == (host(server), ("User-Agent", "ua"))

    await transport.close()  # not ours to close
    if kind == "requests":
        assert counter.closed is False
        assert theirs.cookies.get("jar") == "no"  # the user's jar is untouched...
        assert theirs.cookies.get("s") is None  # ...and the adapter path never fills it
        theirs.close()
        assert counter.closed is True
    else:
        assert theirs.is_closed is False
        assert theirs.cookies.get("jar") == "no"
        if kind == "httpx":
            theirs.close()
        else:
            await theirs.aclose()


async def test_default_timeout_applies_only_without_ours(server: H11Server, kind: str) -> None:
    """``timeout=None`` gets the transport's ``default_timeout`` (not the client's, which may
    be none); a timeout of ours overrides it."""
    if kind == "stdlib":
        theirs = None
    else:
        theirs, _ = user_client(kind, timeout=30)
    transport = make(kind, theirs, default_timeout=0.2)
    server.handler = lambda _: Reply(200, delay=0.5)
    with pytest.raises(TransportTimeout):
        await transport.send(HttpRequest("GET", server.url + "/slow"))
    response = await transport.send(HttpRequest("GET", server.url + "/slow", timeout=3))
    assert response.status == 200
    await transport.close()
    await close_theirs(theirs)


def test_the_default_timeout_is_finite() -> None:
    for transport in (
        RequestsTransport(),
        HttpxTransport(),
        AsyncHttpxTransport(),
        StdlibTransport(),
    ):
        assert transport.default_timeout == DEFAULT_TIMEOUT
        assert transport.max_body_size == DEFAULT_MAX_BODY_SIZE == 16 * 1024 * 1024
    assert 0 < DEFAULT_TIMEOUT < float("inf")


@pytest.mark.parametrize(
    "limits",
    [
        {"default_timeout": None},
        {"default_timeout": 0},
        {"default_timeout": float("inf")},
        {"default_timeout": float("nan")},
        {"max_body_size": 0},
        {"max_body_size": 1.5},
        {"max_body_size": None},
    ],
)
def test_limits_must_be_finite_and_positive(kind: str, limits: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        make(kind, **limits)
    assert next(iter(limits)) in str(caught.value)


async def test_a_request_timeout_that_is_not_finite_is_refused(
    server: H11Server, client: Client
) -> None:
    with pytest.raises(LocalProtocolError):
        await client.send(HttpRequest("GET", server.url + "/", timeout=float("inf")))
    assert server.received == []


# Body size


LIMIT = 1000


def framed(body: bytes, framing: str) -> Reply:
    """``body`` in an answer framed by ``Content-Length``, chunks, or the connection's close."""
    if framing == "content-length":
        return Reply(200, body=body)
    if framing == "chunked":
        return Reply(200, [("Transfer-Encoding", "chunked")], body)
    return Reply(raw=b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_body_size_limit(server: H11Server, kind: str, framing: str) -> None:
    """A body of ``max_body_size`` bytes passes; one byte more is a TransportError naming the
    limit, with or without a Content-Length, and the transport works on afterwards."""
    server.handler = replies(
        framed(b"a" * LIMIT, framing), framed(b"b" * (LIMIT + 1), framing), Reply(200, body=b"ok")
    )
    client = make(kind, max_body_size=LIMIT)
    try:
        response = await client.send(HttpRequest("GET", server.url + "/fits", timeout=5))
        assert response.body == b"a" * LIMIT
        with pytest.raises(TransportError) as caught:
            await client.send(HttpRequest("GET", server.url + "/over", timeout=5))
        assert not isinstance(caught.value, TransportTimeout)
        assert f"{LIMIT}-byte limit" in str(caught.value)
        assert "GET" in str(caught.value)
        assert (await client.send(HttpRequest("GET", server.url + "/", timeout=5))).body == b"ok"
    finally:
        await client.close()


async def _over_the_limit(server: H11Server, kind: str, path: str) -> tuple[TransportError, float]:
    """``GET path`` with a body limit of ``LIMIT`` bytes: the error it raised, and the seconds
    it took."""
    client = make(kind, max_body_size=LIMIT)
    began = time.monotonic()
    try:
        with pytest.raises(TransportError) as caught:
            await client.send(HttpRequest("GET", server.url + path, timeout=5))
    finally:
        await client.close()
    return caught.value, time.monotonic() - began


async def test_too_large_content_length_is_refused_before_the_body(
    server: H11Server, kind: str
) -> None:
    """The head alone is enough: the transport does not wait for (or read) a body too large."""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {400 * 1024 * 1024}\r\n\r\n".encode()
    server.handler = lambda _: Reply(raw=head + b"x" * 100, hang=True)
    error, took = await _over_the_limit(server, kind, "/huge")
    assert not isinstance(error, TransportTimeout)
    assert f"{LIMIT}-byte limit" in str(error)
    assert took < 2


async def test_a_large_body_that_goes_on_is_cut_off_at_the_limit(
    server: H11Server, kind: str
) -> None:
    """A chunked body far over the limit fails once the limit is passed, not at its end."""
    server.handler = lambda _: Reply(
        200, [("Transfer-Encoding", "chunked")], b"z" * (200 * LIMIT), pace=0.01, piece=LIMIT
    )
    error, took = await _over_the_limit(server, kind, "/long")
    assert not isinstance(error, TransportTimeout)
    assert took < 1.5  # 200 pieces would take 2 s


async def test_head_and_bodiless_answers_may_declare_any_length(
    server: H11Server, kind: str
) -> None:
    big = str(400 * 1024 * 1024)
    server.handler = lambda req: Reply(
        200 if req.method == "HEAD" else 304, [("Content-Length", big)]
    )
    client = make(kind, max_body_size=LIMIT)
    try:
        head = await client.send(HttpRequest("HEAD", server.url + "/", timeout=5))
        assert (head.status, head.body) == (200, b"")
        unchanged = await client.send(HttpRequest("GET", server.url + "/", timeout=5))
        assert (unchanged.status, unchanged.body) == (304, b"")
    finally:
        await client.close()


# TLS


def trusting(kind: str, ca: ThrowawayCA) -> Any:
    if kind == "requests":
        session = requests.Session()
        session.verify = str(ca.ca_path)
        return session
    if kind == "httpx":
        return httpx.Client(verify=ca.client_context())
    if kind == "httpx-async":
        return httpx.AsyncClient(verify=ca.client_context())
    return ca.client_context()


async def close_theirs(theirs: Any) -> None:
    """Close a client the test made for a transport (which leaves it open)."""
    if isinstance(theirs, httpx.AsyncClient):
        await theirs.aclose()
    elif isinstance(theirs, requests.Session | httpx.Client):
        theirs.close()


async def test_tls_verified_against_the_given_trust(kind: str, ca: ThrowawayCA) -> None:
    theirs = trusting(kind, ca)
    with H11Server(lambda _: Reply(200, body=b"secure"), tls=ca.server_context()) as server:
        transport = make(kind, theirs)
        response = await transport.send(HttpRequest("GET", server.url + "/tls", timeout=5))
        await transport.close()
        await close_theirs(theirs)
    assert response.body == b"secure"
    assert server.received[0].headers == (host(server),)


async def test_tls_refused_without_trust(kind: str, ca: ThrowawayCA) -> None:
    with H11Server(tls=ca.server_context()) as server:
        transport = make(kind)
        with pytest.raises(TransportError) as caught:
            await transport.send(secret_request(server.url))
        await transport.close()
    assert not isinstance(caught.value, TransportTimeout)
    assert server.received == []
    assert_clean(caught.value, server.url)
    assert "SSLCertVerificationError" in str(caught.value)


# A real flow end to end


async def test_external_call_end_to_end(server: H11Server, client: Client) -> None:
    server.handler = replies(
        Reply(200, [("Content-Type", "application/json")], b'{"a": 1}'),
        Reply(500, body=b"oops"),
        Reply(429, [("Retry-After", "7")]),
    )
    url = server.url + "/config/v1"

    response = await client.run(external_call("GET", url, params={"q": "x y"}, timeout=5))
    assert response.json() == {"a": 1}
    with pytest.raises(SkypeApiException) as failed:
        await client.run(external_call("GET", url, timeout=5))
    assert str(failed.value) == f"500 response from GET {url}"
    assert failed.value.status == 500
    with pytest.raises(SkypeRateLimitException) as limited:
        await client.run(external_call("POST", url, json={"k": "v"}, timeout=5))
    assert limited.value.retry_after == 7

    assert [(r.method, r.target) for r in server.received] == [
        ("GET", "/config/v1?q=x+y"),
        ("GET", "/config/v1"),
        ("POST", "/config/v1"),
    ]
    assert server.received[0].headers == (host(server), ("User-Agent", USER_AGENT))
    assert server.received[2].headers == (
        host(server),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/json"),
        ("Content-Length", "10"),
    )
    assert server.received[2].body == b'{"k": "v"}'


async def test_async_transport_does_not_block_the_loop(server: H11Server) -> None:
    server.handler = lambda _: Reply(200, delay=1.0)
    async with AsyncHttpxTransport() as transport:
        began = time.monotonic()
        await asyncio.gather(
            *(
                run_async(request_flow(HttpRequest("GET", server.url + f"/{i}")), transport)
                for i in range(3)
            )
        )
    # Three 1 s waits overlapped; one after another they would take 3 s. The margin is wide
    # because a loaded machine can delay each answer by a fraction of a second.
    assert time.monotonic() - began < 2.5
    assert sorted(r.target for r in server.received) == ["/0", "/1", "/2"]


# Installation


@pytest.mark.parametrize(
    ("blocked", "module", "extra"),
    [
        ("requests", "skyproto.transports.requests", "skyproto[requests]"),
        ("httpx", "skyproto.transports.httpx", "skyproto[httpx]"),
    ],
)
def test_missing_client_library_names_the_extra(blocked: str, module: str, extra: str) -> None:
    """With neither client library importable, the core and the stdlib transport still are."""
    script = textwrap.dedent(
        f"""
        import importlib, sys

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("requests", "httpx", "urllib3"):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Refuse())

        import skyproto.transports, skyproto.transports.stdlib  # need neither library
        try:
            importlib.import_module({module!r})
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            print("imported")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"ImportError: {module} needs the '{blocked}' package: pip install '{extra}'"
    )
