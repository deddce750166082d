"""The Session as a hypothesis state machine over the pure emulator and a fake clock.

Rules move the clock (small steps, into the refresh leeway or past the expiry of either token),
arm faults (401, 404, 729, 429 or 503 on a route, a number of times), switch the knobs that
point the client elsewhere (a registration redirect, to a trusted or a foreign host; foreign
``syncState`` links), run operations and resume the session from its snapshot. After every step:

* every request that carried a token went to a host ``session.hosts`` trusts;
* the last operation sent at most :func:`call_bound` requests (:data:`CONNECT_BOUND` for
  ``connect``);
* the state is consistent (user id, trusted messaging base, fresh tokens after a success) and
  its snapshot loads back to the same state;
* an operation raised only a documented exception, and only when a fault it met explains it.

The request bound
-----------------
One call under the policy makes at most ``MAX_CALL_ATTEMPTS`` (3) attempts, so it registers at
most three times: before the first attempt (registration due), after a 401, after a 404/729. It
logs in at most ``2 + 3`` times: once for a Skype token that is due, once after a 401 on the call,
and once per registration whose handshake answers 401. A registration runs the handshake at most
twice (before and after that re-login); each handshake posts at most ``redirects +
NO_TOKEN_ATTEMPTS`` times (the emulator redirects at most once); then config and the endpoint
listing. So, with a SOAP login of 3 requests::

    handshake    <= 1 + 2                  = 3
    registration <= 2 * handshake + 2      = 8
    call         <= 3 + 3 * 8 + 5 * 3      = 42

``connect`` logs in at most twice (token due, handshake 401) and registers once: 2 * 3 + 8 = 14.
The bound is far above the real cost (see ``tests/unit/test_session.py``: the worst re-auth path
of one call is 12 requests, 19 with both tokens lapsed and a redirect); the machine records the
largest count it saw, and the point is that no interleaving of faults and clock moves escapes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from skyproto.transports import run_sync

from skyproto import (
    Credentials,
    Hosts,
    HttpRequest,
    HttpResponse,
    RemoteProtocolError,
    SkypeApiException,
    SkypeException,
    SkypeRateLimitException,
    SkypeTokenException,
    UntrustedHostError,
)
from skyproto._flow import Flow
from skyproto.emulator import DEFAULT_ACCOUNT, Emulator, Fault, Scenario
from skyproto.emulator.profile import SERVED_HOSTS
from skyproto.registration import NO_TOKEN_ATTEMPTS
from skyproto.session import MAX_CALL_ATTEMPTS, Session, load_snapshot
from skyproto.tokens import REFRESH_LEEWAY

T0 = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
TOKEN_LIFETIME = 4 * 3600
REGISTRATION_LIFETIME = 3 * 3600
HOSTS = Hosts(overrides={host: f"https://emulator.test/{host}" for host in SERVED_HOSTS})
CLIENT_S = "https://emulator.test/client-s.gateway.messenger.live.com/v1"
DB3 = "https://emulator.test/db3-client-s.gateway.messenger.live.com/v1"
CREDENTIALS = Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)
TOKEN_HEADERS = frozenset({"x-skypetoken", "authorization", "registrationtoken", "authentication"})

SOAP_LOGIN = 3  # RST.srf, edge, profile
EMULATOR_REDIRECTS = 1  # host_redirect moves a registration once; foreign_location raises
HANDSHAKE_BOUND = EMULATOR_REDIRECTS + NO_TOKEN_ATTEMPTS
REGISTRATION_BOUND = 2 * HANDSHAKE_BOUND + 2
CALL_REGISTRATIONS = MAX_CALL_ATTEMPTS
CALL_LOGINS = 2 + CALL_REGISTRATIONS
CONNECT_BOUND = 2 * SOAP_LOGIN + REGISTRATION_BOUND


def call_bound() -> int:
    """Requests one call under the policy may send (module docstring)."""
    return MAX_CALL_ATTEMPTS + CALL_REGISTRATIONS * REGISTRATION_BOUND + CALL_LOGINS * SOAP_LOGIN


FAULT_ROUTES = (
    "ping",
    "subscribe",
    "endpoints",
    "conversations",
    "register",
    "config",
    "soap",
    "edge",
    "profile",
)
FAULT_STATUSES = (401, 404, 729, 429, 503)
#: The largest request count one operation reached, over the whole run (for the report).
LARGEST = {"call": 0, "connect": 0}


@attrs.define
class ArmedFault:
    route: str
    status: int
    remaining: int


class SessionMachine(RuleBasedStateMachine):
    """A Session driven over the pure emulator; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.emulator = Emulator(hosts=HOSTS, scenario=self._scenario_base(), seed=11)
        self.faults: list[ArmedFault] = []
        self.host_redirect = False
        self.foreign_location = False
        self.foreign_sync_state = False
        self.session = Session(HOSTS, credentials=CREDENTIALS)
        self.untrusted: list[str] = []
        self.sent: list[HttpRequest] = []  # requests of the current operation
        self.faulted: list[tuple[str, int]] = []  # faults met by the current operation
        self.foreign_register = False
        self.foreign_page = False
        self.connected_once = False
        self.listing = self.session.conversations(max_pages=4)
        # Set when a resume dropped a lapsed registration: its messaging base is forgotten, so
        # links kept under it may outlive a registration that lands on another base.
        self.messenger_forgotten = False
        self.last_operation = ("none", "call", 0)

    # -- the fake transport ----------------------------------------------------------------------

    def clock(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def send(self, req: HttpRequest) -> HttpResponse:
        self.sent.append(req)
        carries_token = any(name.lower() in TOKEN_HEADERS for name, _ in req.headers)
        if carries_token and not self.session.hosts.is_trusted(req.url):
            self.untrusted.append(req.url)
        route = self.emulator.route(req)
        if route == "register" and req.url.startswith(CLIENT_S) and self.foreign_location:
            self.foreign_register = True
        if route == "conversations" and self.foreign_sync_state:
            self.foreign_page = True
        for fault in self.faults:
            if fault.route == route and fault.remaining > 0:
                fault.remaining -= 1
                self.faulted.append((fault.route, fault.status))
                break
        return self.emulator.handle(req, self.now)

    # -- scenario ------------------------------------------------------------------------------

    @staticmethod
    def _scenario_base() -> Scenario:
        return Scenario(token_lifetime=TOKEN_LIFETIME, registration_lifetime=REGISTRATION_LIFETIME)

    def _apply_scenario(self) -> None:
        """Give the emulator the knobs and the faults still armed (its counts restart)."""
        self.faults = [f for f in self.faults if f.remaining > 0]
        self.emulator.scenario = attrs.evolve(
            self._scenario_base(),
            host_redirect=self.host_redirect,
            foreign_location=self.foreign_location,
            foreign_sync_state=self.foreign_sync_state,
            faults=tuple(Fault(f.route, f.status, f.remaining) for f in self.faults),
        )

    # -- running operations ----------------------------------------------------------------------

    def _run(self, name: str, flow: Flow[Any], *, kind: str = "call", quiet: bool = False) -> Any:
        """Run one operation and check it. ``quiet``: it may end without a request (a listing
        past its page bound), and then it has nothing to refresh."""
        self.sent = []
        self.faulted = []
        self.foreign_register = False
        self.foreign_page = False
        started = self.now
        try:
            result = run_sync(flow, self, clock=self.clock, sleep=self.advance)
        except SkypeException as exc:
            self._check_failure(name, exc)
            result = exc
        else:
            assert not isinstance(result, BaseException)
            if not (quiet and not self.sent):
                self._check_success(kind, started)
        self.last_operation = (name, kind, len(self.sent))
        LARGEST[kind] = max(LARGEST[kind], len(self.sent))
        return result

    def _check_failure(self, name: str, exc: SkypeException) -> None:
        explained = bool(self.faulted) or self.foreign_register or self.foreign_page
        assert explained, f"{name} raised {exc!r} with no fault to explain it"
        assert isinstance(exc, SkypeApiException), f"{name} raised {exc!r}"
        if isinstance(exc, UntrustedHostError):
            assert self.foreign_register or self.foreign_page, exc
        elif isinstance(exc, SkypeRateLimitException):
            assert any(status == 429 for _, status in self.faulted), exc
        elif isinstance(exc, RemoteProtocolError):
            # Two registration answers without a token: faults on the handshake.
            assert any(route == "register" for route, _ in self.faulted), exc
        else:
            met = {404 if status == 729 else status for _, status in self.faulted}
            assert exc.status in met, (exc, self.faulted)

    def _check_success(self, kind: str, started: dt.datetime) -> None:
        state = self.session.state
        assert state.user_id == DEFAULT_ACCOUNT.skype_name
        reg = state.registration
        assert reg is not None
        assert not reg.token.expired(started)
        if kind == "connect":
            token = state.skype_token
            assert token is not None
            assert not token.expired(started)
            self.connected_once = True

    # -- rules: the clock ------------------------------------------------------------------------

    @initialize(connect=st.booleans())
    def start(self, connect: bool) -> None:
        if connect:
            self._run("connect", self.session.connect(), kind="connect")

    @rule(seconds=st.integers(min_value=1, max_value=900))
    def small_step(self, seconds: int) -> None:
        self.advance(seconds)

    @rule(
        which=st.sampled_from(["skype", "registration"]),
        past=st.sampled_from([-1, 0, 1, int(REFRESH_LEEWAY.total_seconds()) + 1]),
    )
    def to_expiry(self, which: str, past: int) -> None:
        """Move to a second before a token's refresh point, to it (``past=0``), just after it
        or beyond the token's real expiry."""
        state = self.session.state
        expiry = None
        if which == "skype" and state.skype_token is not None:
            expiry = state.skype_token.expiry
        if which == "registration" and state.registration is not None:
            expiry = state.registration.token.expiry
        if expiry is None:
            return
        target = expiry - REFRESH_LEEWAY + dt.timedelta(seconds=past)
        self.now = max(self.now, target)

    # -- rules: faults and knobs -----------------------------------------------------------------

    @rule(
        route=st.sampled_from(FAULT_ROUTES),
        status=st.sampled_from(FAULT_STATUSES),
        times=st.integers(min_value=1, max_value=3),
    )
    def arm_fault(self, route: str, status: int, times: int) -> None:
        self.faults.append(ArmedFault(route, status, times))
        self._apply_scenario()

    @rule(
        faults=st.lists(
            st.tuples(
                st.sampled_from(FAULT_ROUTES[:5]),
                st.sampled_from(FAULT_STATUSES),
                st.integers(min_value=1, max_value=2),
            ),
            min_size=2,
            max_size=4,
        )
    )
    def arm_faults(self, faults: list[tuple[str, int, int]]) -> None:
        """Several faults at once, so one operation can meet a chain of them."""
        self.faults.extend(ArmedFault(route, status, times) for route, status, times in faults)
        self._apply_scenario()

    @rule()
    def clear_faults(self) -> None:
        self.faults = []
        self._apply_scenario()

    @rule(on=st.booleans())
    def host_redirect_knob(self, on: bool) -> None:
        self.host_redirect = on
        self._apply_scenario()

    @rule(on=st.booleans())
    def foreign_location_knob(self, on: bool) -> None:
        self.foreign_location = on
        self._apply_scenario()

    @rule(on=st.booleans())
    def foreign_sync_state_knob(self, on: bool) -> None:
        self.foreign_sync_state = on
        self._apply_scenario()

    # -- rules: operations -----------------------------------------------------------------------

    @rule()
    def connect(self) -> None:
        self._run("connect", self.session.connect(), kind="connect")

    @rule()
    def ping(self) -> None:
        response = self._run("ping", self.session.ping())
        if isinstance(response, HttpResponse):
            assert response.status == 201

    @rule()
    def subscribe(self) -> None:
        self._run("subscribe", self.session.subscribe())

    @rule()
    def list_endpoints(self) -> None:
        ids = self._run("list_endpoints", self.session.list_endpoints())
        if isinstance(ids, list):
            assert tuple(ids) == self.session.state.endpoints
            assert self.session.state.endpoint_id in ids

    @rule()
    def conversations_page(self) -> None:
        if self.listing.finished:
            self.listing = self.session.conversations(max_pages=4)
        items = self._run("conversations", self.listing.next_page(), quiet=True)
        if isinstance(items, list):
            assert 0 < len(items) <= 2
        if not self.sent:
            assert items is None
            assert self.listing.pages == self.listing.max_pages

    @rule()
    def reregister(self) -> None:
        self._run("reregister", self.session.reregister())

    @precondition(lambda self: self.session.state.skype_token is not None)
    @rule()
    def resume_from_snapshot(self) -> None:
        data = self.session.snapshot()
        token = self.session.state.skype_token
        assert token is not None
        if token.expired(self.now):
            return
        self.session = Session.from_snapshot(
            data, now=self.now, hosts=HOSTS, credentials=CREDENTIALS
        )
        if self.session.state.registration is None and self.session.state.paging.links:
            self.messenger_forgotten = True
        self.listing = self.session.conversations(max_pages=4)

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def operations_stay_within_the_request_bound(self) -> None:
        name, kind, count = self.last_operation
        bound = CONNECT_BOUND if kind == "connect" else call_bound()
        assert count <= bound, (name, count, bound)

    @invariant()
    def tokens_only_went_to_trusted_hosts(self) -> None:
        assert self.untrusted == []

    @invariant()
    def state_is_consistent(self) -> None:
        state = self.session.state
        if self.connected_once:
            assert state.user_id == DEFAULT_ACCOUNT.skype_name
            assert state.skype_token is not None
        if state.user_id is not None:
            assert state.guest is False
        reg = state.registration
        if reg is not None:
            assert self.session.hosts.is_trusted(reg.messenger)
            assert reg.messenger in (CLIENT_S, DB3)
            assert reg.endpoint_id is not None
        for key in state.paging.links:
            method, _, url = key.partition(" ")
            assert method == "GET"
            assert url.startswith((CLIENT_S + "/", DB3 + "/")), key
            if reg is not None and not self.messenger_forgotten:
                assert url.startswith(reg.messenger + "/"), (key, reg.messenger)
        for link in state.paging.links.values():
            assert self.session.hosts.is_trusted(link)

    @invariant()
    def snapshot_round_trips(self) -> None:
        state = self.session.state
        data = self.session.snapshot()
        token = state.skype_token
        if token is not None and token.expired(self.now):
            try:
                load_snapshot(data, now=self.now, hosts=HOSTS)
            except SkypeTokenException:
                return
            raise AssertionError("a snapshot with a lapsed Skype token loaded")
        loaded = load_snapshot(data, now=self.now, hosts=HOSTS)
        expected = state
        if state.registration is not None and state.registration.token.expired(self.now):
            expected = attrs.evolve(state, registration=None)
        assert loaded == expected


TestSessionMachine = SessionMachine.TestCase
