"""The emulator server over real loopback sockets, driven with ``http.client`` and ``ssl``.

These tests use no skyproto client flow: requests are written by hand, so the server is tested
on its own (keep-alive, long-poll holds, shutdown, TLS, the ``serve()`` command, fixtures).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any

import pytest

from skyproto import Hosts, LocalProtocolError
from skyproto.emulator import (
    DEFAULT_ACCOUNT,
    EmulatorServer,
    Fault,
    Scenario,
)
from skyproto.emulator import server as server_module
from skyproto.emulator.core import LOG_SIZE
from skyproto.emulator.profile import SERVED_HOSTS
from skyproto.mac256 import mac256

pytestmark = pytest.mark.integration

H = "https://client-s.gateway.messenger.live.com/v1"
SOAP = """<Envelope xmlns='http://schemas.xmlsoap.org/soap/envelope/'
 xmlns:wsse='http://schemas.xmlsoap.org/ws/2003/06/secext'
 xmlns:wsp='http://schemas.xmlsoap.org/ws/2002/12/policy'
 xmlns:wsa='http://schemas.xmlsoap.org/ws/2004/03/addressing'
 xmlns:wst='http://schemas.xmlsoap.org/ws/2004/04/trust'
 xmlns:ps='http://schemas.microsoft.com/Passport/SoapServices/PPCRL'>
 <Header><wsse:Security><wsse:UsernameToken Id='user'>
  <wsse:Username>{user}</wsse:Username><wsse:Password>{password}</wsse:Password>
 </wsse:UsernameToken></wsse:Security></Header>
 <Body><ps:RequestMultipleSecurityTokens Id='RSTS'><wst:RequestSecurityToken Id='RST0'>
  <wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>
  <wsp:AppliesTo><wsa:EndpointReference><wsa:Address>wl.skype.com</wsa:Address>
  </wsa:EndpointReference></wsp:AppliesTo>
  <wsse:PolicyReference URI='MBI_SSL'></wsse:PolicyReference>
 </wst:RequestSecurityToken></ps:RequestMultipleSecurityTokens></Body>
</Envelope>"""
REG_TOKEN = re.compile(r"registrationToken=([A-Za-z0-9+/=]+); expires=[0-9]+; endpointId=\{")


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def connect(
    url: str, context: ssl.SSLContext | None = None, timeout: float = 10
) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


def exchange(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | str = b"",
) -> Answer:
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, target, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return Answer(response.status, response.getheaders(), data)


def send(
    server: EmulatorServer,
    method: str,
    real_url: str,
    headers: dict[str, str] | None = None,
    body: bytes | str = b"",
    *,
    timeout: float = 10,
) -> Answer:
    url = server.url(real_url)
    context = server.client_ssl_context() if server.ca_bundle else None
    conn = connect(url, context, timeout)
    try:
        return exchange(conn, method, url, headers, body)
    finally:
        conn.close()


def skype_token(server: EmulatorServer) -> str:
    account = server.account
    soap = send(
        server,
        "POST",
        "https://login.live.com/RST.srf",
        body=SOAP.format(user=account.user, password=account.password),
    )
    assert soap.status == 200
    found = re.search(rb"<wsse:BinarySecurityToken[^>]*>([^<]*)<", soap.body)
    assert found is not None
    security_token = found.group(1).decode().replace("&amp;", "&")
    form = urllib.parse.urlencode(
        [("partner", "999"), ("access_token", security_token), ("scopes", "client")]
    )
    edge = send(
        server,
        "POST",
        "https://edge.skype.com/rps/v1/rps/skypetoken",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form,
    )
    token: str = edge.json()["skypetoken"]
    return token


def register(server: EmulatorServer, base: str = H) -> tuple[str, Answer]:
    token = skype_token(server)
    now = int(time.time())
    headers = {
        "LockAndKey": f"appId=msmsgs@msnmsgr.com; time={now}; lockAndKeyResponse={mac256(str(now))}",
        "Authentication": f"skypetoken={token}",
        "BehaviorOverride": "redirectAs404",
        "Content-Type": "application/json",
    }
    answer = send(
        server, "POST", f"{base}/users/ME/endpoints", headers, '{"endpointFeatures": "Agent"}'
    )
    found = REG_TOKEN.match(answer.header("Set-RegistrationToken") or "")
    reg = f"registrationToken={found.group(1)}" if found else ""
    return reg, answer


def subscribed(server: EmulatorServer) -> str:
    reg, answer = register(server)
    assert answer.status == 201
    body = json.dumps(
        {
            "interestedResources": ["/v1/users/ME/conversations/ALL/messages"],
            "channelType": "HttpLongPoll",
            "conversationType": 2047,
        }
    )
    headers = {"RegistrationToken": reg, "Content-Type": "application/json"}
    sub = send(server, "POST", f"{H}/users/ME/endpoints/SELF/subscriptions", headers, body)
    assert sub.status == 201
    return reg


def poll(server: EmulatorServer, reg: str, timeout: float = 10) -> Answer:
    return send(
        server,
        "POST",
        f"{H}/users/ME/endpoints/SELF/subscriptions/0/poll",
        {"RegistrationToken": reg},
        timeout=timeout,
    )


def emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("skyproto-emulator")]


# -- plain HTTP ---------------------------------------------------------------------------------


def test_plain_profile_uses_one_port_with_a_prefix_per_host() -> None:
    with EmulatorServer() as server:
        profile = json.loads(server.profile_json())
        assert list(profile) == ["hosts", "ca_bundle", "account", "accounts"]
        assert profile["accounts"] == 0
        port = urllib.parse.urlsplit(profile["hosts"]["login.live.com"]).port
        assert profile["hosts"] == {h: f"http://127.0.0.1:{port}/{h}" for h in SERVED_HOSTS}
        assert profile["ca_bundle"] is None
        assert profile["account"] == {"user": "fred@example.com", "password": "skype-emulator-pass"}
        assert Hosts.from_json(profile) == server.hosts
        assert (
            server.hosts.messenger
            == f"http://127.0.0.1:{port}/client-s.gateway.messenger.live.com/v1"
        )


def test_the_request_log_keeps_only_the_latest_requests() -> None:
    with EmulatorServer(log_size=3) as server:
        for index in range(5):
            send(server, "GET", f"https://api.skype.com/nowhere/{index}")
        assert [entry.request.path for entry in server.requests] == [
            "/api.skype.com/nowhere/2",
            "/api.skype.com/nowhere/3",
            "/api.skype.com/nowhere/4",
        ]
        assert server.routes() == [None, None, None]
        server.clear_requests()
        assert server.requests == []


def test_the_request_log_is_bounded_by_default() -> None:
    assert EmulatorServer().log_size == LOG_SIZE
    assert 1000 <= LOG_SIZE <= 10_000


def test_login_registration_and_events_over_the_socket() -> None:
    with EmulatorServer(Scenario(hold=0.2)) as server:
        reg, answer = register(server)
        assert answer.status == 201
        location = answer.header("Location") or ""
        assert location.startswith(f"{server.hosts.messenger}/users/ME/endpoints/%7B")
        reg = subscribed(server)
        events = poll(server, reg).json()["eventMessages"]
        assert [e["resourceType"] for e in events] == [
            "NewMessage",
            "NewMessage",
            "UserPresence",
            "ConversationUpdate",
        ]
        ack_url = events[0]["resource"]["ackrequired"]
        assert ack_url.startswith(f"{server.hosts.messenger}/users/ME/conversations/ALL/messages/")
        conn = connect(ack_url)
        try:
            assert exchange(conn, "POST", ack_url, {"RegistrationToken": reg}).status == 201
        finally:
            conn.close()
        assert server.emulator.acknowledged == (events[0]["resource"]["id"],)
        assert server.routes() == [
            *("soap", "edge", "register"),
            *("soap", "edge", "register", "subscribe"),
            *("poll", "ack"),
        ]
        assert server.errors == []


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    with EmulatorServer() as server:
        url = server.url("https://api.skype.com/users/self/profile")
        conn = connect(url)
        try:
            first = exchange(conn, "GET", url)
            sock = conn.sock
            second = exchange(conn, "GET", url, {"X-SkypeToken": "nope"})
            third = exchange(conn, "GET", server.url("https://login.live.com/missing"))
            assert conn.sock is sock  # not reconnected
        finally:
            conn.close()
        assert [first.status, second.status, third.status] == [401, 401, 404]
        assert [e.route for e in server.requests] == ["profile", "profile", None]
        assert server.requests[1].request.header("x-skypetoken") == "nope"
        assert server.requests[0].request.url == url


def test_long_poll_returns_early_when_an_event_is_queued() -> None:
    with EmulatorServer(Scenario(events=(), hold=10)) as server:
        reg = subscribed(server)
        result: list[Answer] = []
        poller = threading.Thread(target=lambda: result.append(poll(server, reg)))
        started = time.monotonic()
        poller.start()
        time.sleep(0.3)
        assert server.queue_event("group_text") == 1
        poller.join(5)
        elapsed = time.monotonic() - started
        assert 0.25 < elapsed < 3
        events = result[0].json()["eventMessages"]
        assert [e["resource"]["messagetype"] for e in events] == ["Text"]


def test_long_poll_returns_empty_when_the_hold_ends() -> None:
    with EmulatorServer(Scenario(events=(), hold=0.5)) as server:
        reg = subscribed(server)
        started = time.monotonic()
        answer = poll(server, reg)
        elapsed = time.monotonic() - started
        assert (answer.status, answer.json()) == (200, {"eventMessages": []})
        assert 0.45 < elapsed < 3


def test_a_bad_poll_is_answered_at_once() -> None:
    with EmulatorServer(Scenario(events=(), hold=10)) as server:
        started = time.monotonic()
        answer = poll(server, "registrationToken=bogus")
        assert answer.status == 401
        assert time.monotonic() - started < 2


def test_stop_wakes_held_polls_and_leaves_nothing_behind() -> None:
    server = EmulatorServer(Scenario(events=(), hold=30)).start()
    reg = subscribed(server)
    port = urllib.parse.urlsplit(server.hosts.api).port
    idle = socket.create_connection(("127.0.0.1", port))  # an idle keep-alive connection
    outcome: list[object] = []

    def held() -> None:
        try:
            outcome.append(poll(server, reg, timeout=15).status)
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    poller = threading.Thread(target=held)
    poller.start()
    time.sleep(0.3)
    assert server.routes()[-1] == "poll"
    started = time.monotonic()
    server.stop()
    poller.join(5)
    idle.close()
    assert time.monotonic() - started < 3
    assert outcome == [200]
    assert emulator_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    server.stop()  # idempotent


def test_hundreds_of_held_polls_share_one_thread() -> None:
    with EmulatorServer(Scenario(events=(), hold=1.5)) as server:
        reg = subscribed(server)
        url = urllib.parse.urlsplit(server.url(f"{H}/users/ME/endpoints/SELF/subscriptions/0/poll"))
        head = (
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nRegistrationToken: {reg}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        started = time.monotonic()
        socks = [socket.create_connection((url.hostname, url.port), timeout=10) for _ in range(300)]
        try:
            for sock in socks:
                sock.sendall(head)
            while server.routes().count("poll") < 300:
                assert time.monotonic() - started < 10
                time.sleep(0.05)
            assert len(emulator_threads()) == 1  # one event loop, however many connections
            for sock in socks:
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert time.monotonic() - started < 10
        finally:
            for sock in socks:
                sock.close()
    assert server.errors == []


def test_the_listen_backlog_is_large_but_capped_by_somaxconn(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server_module.LISTEN_BACKLOG == 4096
    cap = tmp_path / "somaxconn"
    cap.write_text("128\n")
    monkeypatch.setattr(server_module, "_SOMAXCONN", str(cap))
    assert server_module.listen_backlog() == 128
    cap.write_text("65535\n")
    assert server_module.listen_backlog() == 4096
    monkeypatch.setattr(server_module, "_SOMAXCONN", str(tmp_path / "missing"))
    assert server_module.listen_backlog() == 4096


def test_scenario_can_change_while_running() -> None:
    with EmulatorServer() as server:
        assert skype_token(server)
        server.scenario = Scenario(wrong_password=True)
        account = server.account
        soap = send(
            server,
            "POST",
            "https://login.live.com/RST.srf",
            body=SOAP.format(user=account.user, password=account.password),
        )
        assert b"<faultcode>wsse:FailedAuthentication</faultcode>" in soap.body
        server.scenario = Scenario(faults=(Fault("profile", 429, retry_after=9),))
        limited = send(server, "GET", "https://api.skype.com/users/self/profile")
        assert (limited.status, limited.header("Retry-After")) == (429, "9")
        with pytest.raises(LocalProtocolError):
            server.scenario = "wrong_password=true"  # type: ignore[assignment]


def test_delay_knob_slows_only_the_chosen_route() -> None:
    with EmulatorServer(Scenario(delay=0.4, delay_routes=("profile",))) as server:
        started = time.monotonic()
        send(server, "GET", "https://api.skype.com/users/self/profile")
        slow = time.monotonic() - started
        started = time.monotonic()
        send(server, "GET", "https://api.join.skype.com/v1/meetings/nope")
        fast = time.monotonic() - started
        assert slow >= 0.38
        assert fast < slow - 0.15


def test_host_redirect_location_points_at_the_other_prefix() -> None:
    with EmulatorServer(Scenario(host_redirect=True)) as server:
        _reg, answer = register(server)
        assert answer.status == 404
        db3 = server.url("https://db3-client-s.gateway.messenger.live.com/v1")
        assert answer.header("Location") == f"{db3}/users/ME/endpoints"
        reg, moved = register(server, "https://db3-client-s.gateway.messenger.live.com/v1")
        assert moved.status == 201
        assert reg.startswith("registrationToken=")


def test_two_emulators_run_side_by_side() -> None:
    with EmulatorServer(seed=1) as first, EmulatorServer(seed=1) as second:
        assert first.hosts.api != second.hosts.api
        token = skype_token(first)
        headers = {"X-SkypeToken": token}
        assert send(first, "GET", "https://api.skype.com/users/self/profile", headers).status == 200
        # same seed, but the second has not issued this token yet
        assert (
            send(second, "GET", "https://api.skype.com/users/self/profile", headers).status == 401
        )
        assert len(first.requests) == 3
        assert len(second.requests) == 1


def test_broken_http_gets_400_and_a_closed_connection() -> None:
    with EmulatorServer() as server:
        port = urllib.parse.urlsplit(server.hosts.api).port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            data = sock.recv(4096)
            assert data.startswith(b"HTTP/1.1 400 ")
            assert sock.recv(4096) == b""


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_only_loopback_addresses_are_bound(host: str) -> None:
    with pytest.raises(LocalProtocolError):
        EmulatorServer(host=host)


def test_localhost_binds_127_0_0_1() -> None:
    with EmulatorServer(host="localhost") as server:
        assert server.hosts.api.startswith("http://127.0.0.1:")


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = EmulatorServer(host="::1").start()
    except OSError:
        pytest.skip("::1 cannot be bound here")
    with server:
        assert server.hosts.api.startswith("http://[::1]:")
        assert send(server, "GET", "https://api.skype.com/users/self/profile").status == 401


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_gives_every_host_its_own_port_and_a_ca_bundle() -> None:
    with EmulatorServer(tls=True) as server:
        profile = server.profile()
        bases = profile["hosts"]
        assert list(bases) == list(SERVED_HOSTS)
        ports = set()
        for base in bases.values():
            assert re.fullmatch(r"https://127\.0\.0\.1:[0-9]+", base)
            ports.add(urllib.parse.urlsplit(base).port)
        assert len(ports) == len(SERVED_HOSTS)
        ca_bundle = profile["ca_bundle"]
        assert ca_bundle == server.ca_bundle
        assert ca_bundle is not None
        with open(ca_bundle, encoding="ascii") as fh:
            assert fh.read().startswith("-----BEGIN CERTIFICATE-----")
        assert server.hosts.messenger == f"{bases['client-s.gateway.messenger.live.com']}/v1"
        # A registration over TLS has the Location form the reference client parses.
        _reg, answer = register(server)
        location = answer.header("Location") or ""
        found = re.search(r"(https://[^/]+/v1)/users/ME/endpoints(/(%7B[a-z0-9\-]+%7D))?", location)
        assert found is not None
        assert found.group(1) == server.hosts.messenger
        assert found.group(3)
    assert not os.path.exists(ca_bundle)


def test_tls_certificate_verifies_for_localhost_and_not_without_the_ca() -> None:
    with EmulatorServer(tls=True) as server:
        port = urllib.parse.urlsplit(server.hosts.api).port
        context = server.client_ssl_context()
        conn = http.client.HTTPSConnection("localhost", port, timeout=5, context=context)
        try:
            assert exchange(conn, "GET", "/users/self/profile").status == 401
        finally:
            conn.close()
        strict = ssl.create_default_context()
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=strict)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                exchange(conn, "GET", "/users/self/profile")
        finally:
            conn.close()
    assert emulator_threads() == []


# -- serve() ------------------------------------------------------------------------------------

SERVE = "import sys; from skyproto.emulator import serve; sys.exit(serve(sys.argv[1:]))"


def test_serve_prints_the_profile_and_exits_cleanly_on_sigterm() -> None:
    command = [sys.executable, "-c", SERVE, "--scenario", "hold=1", "--scenario", "events=all"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            profile = json.loads(line)
            assert list(profile) == ["hosts", "ca_bundle", "account", "accounts"]
            assert profile["account"]["user"] == DEFAULT_ACCOUNT.user
            hosts = Hosts.from_json(line)
            url = hosts.url("https://api.skype.com/users/self/profile")
            conn = connect(url)
            try:
                assert exchange(conn, "GET", url).status == 401
            finally:
                conn.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            assert proc.stdout.read() == ""  # exactly one line of output
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_serve_help_names_the_default_account_and_bad_knobs_exit_2() -> None:
    helped = subprocess.run(
        [sys.executable, "-c", SERVE, "--help"], capture_output=True, text=True, timeout=30
    )
    assert helped.returncode == 0
    assert DEFAULT_ACCOUNT.user in helped.stdout
    assert DEFAULT_ACCOUNT.password in helped.stdout
    bad = subprocess.run(
        [sys.executable, "-c", SERVE, "--scenario", "nope=1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "unknown scenario key 'nope'" in bad.stderr
    assert bad.stdout == ""


# -- the pytest plugin ----------------------------------------------------------------------------


def test_fixtures(
    skype_emulator: EmulatorServer, skype_hosts: Hosts, skype_emulator_factory: Any
) -> None:
    assert skype_emulator.running
    assert skype_hosts == skype_emulator.hosts
    assert skype_emulator.scenario == Scenario()
    assert skype_emulator.ca_bundle is None
    other = skype_emulator_factory(Scenario(wrong_password=True), tls=True)
    assert other.running
    assert other.scenario.wrong_password
    assert other.hosts.api.startswith("https://127.0.0.1:")
    assert send(other, "GET", "https://api.skype.com/users/self/profile").status == 401
