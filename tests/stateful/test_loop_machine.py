"""The event loop as a hypothesis state machine: random poll answers against a scripted peer.

The peer is the pure emulator for everything but the poll and the acknowledgements, which the
machine answers itself: each rule scripts what the *next* poll gets, then drives the loop (a
:class:`~skyproto.Stepper`, step by step on the shared test peer and its fake clock,
``skyproto.emulator.testing.Peer``) until it waits on the poll after that, or ends. The poll answers cover every fault kind the loop knows:

* ``ok``: a batch of new events, events sent before (redelivered), events without an id, held
  for a while (so the keep-alive, and the renewal of expiring tokens, come due), optionally with
  the first acknowledgement failing (401, 404, 729, 500, a transport error);
* ``404``, ``403``, ``729``, ``401``: the recoveries;
* ``429`` with a ``Retry-After`` (some beyond :attr:`~skyproto.LoopPolicy.max_retry_after`), with
  an HTTP-date one (unreadable without a clock, so treated as absent) and without one;
* ``500``, ``502``, ``503``, a transport error, a timeout, and three malformed batches;
* ``400``, which ends the loop at once.

A model of the documented policy (failures and recoveries in a row, a 404 after a 404, the
session's one login and one registration per call) says after each answer whether the loop must go
on, with which wait, or end, with which exception. After every step:

* every event id in a batch the loop got is delivered exactly once, and events without an id once
  per arrival;
* deliveries and acknowledgements come in batch order, each acknowledgement after its delivery;
* every sleep is within ``[0, max(backoff_max, max_retry_after)]``, a backoff within its
  ``[cap / 2, cap]`` and a ``Retry-After`` exact; after it, the loop waits out the rest of
  :attr:`~skyproto.LoopPolicy.min_poll_interval` (counted from the start of the poll), exactly
  that and only when some is left;
* polls of different cycles start at least ``min_poll_interval`` apart (the session's own retry
  within one call, after a 401 or a 729, is the same cycle);
* every poll goes to an endpoint subscribed since the server last denied it, pinged less than
  ``ping_interval`` ago, and after a registration-level fault to a new endpoint;
* the loop ends only when the model says its bound was passed, with that exception.

A run that ended is started again at once on the same loop: de-duplication carries over.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import random
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from skyproto import (
    Credentials,
    Event,
    EventLoop,
    HttpRequest,
    HttpResponse,
    LoopPolicy,
    RemoteProtocolError,
    Session,
    SkypeApiException,
    SkypeRateLimitException,
    Stepper,
    TransportError,
    TransportTimeout,
)
from skyproto.emulator import DEFAULT_ACCOUNT, Emulator, Scenario
from skyproto.emulator.event_stream import render_event
from skyproto.emulator.testing import Peer, Took
from skyproto.endpoint import EndpointGoneError

T0 = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
POLICY = LoopPolicy(
    hold=30,
    ping_interval=45,
    backoff_initial=1,
    backoff_max=8,
    max_failures=4,
    max_recoveries=3,
    max_retry_after=20,
    min_poll_interval=2,
)
SLEEP_BOUND = max(POLICY.backoff_max, POLICY.max_retry_after)
# Short lifetimes, so that held polls and backoffs make both tokens come due now and then.
SCENARIO = Scenario(events=(), hold=0, token_lifetime=2400, registration_lifetime=1500)
CREDENTIALS = Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)
H = "https://client-s.gateway.messenger.live.com/v1"
ANONYMOUS_MESSAGE = 999_999
_SET_TOKEN = re.compile(r"registrationToken=([^;\s]+).*?endpointId=(\{[^}]+\})")
_TOKEN = re.compile(r"registrationToken=([^;\s]+)")

FAILURE_KINDS = (
    "500",
    "502",
    "503",
    "transport",
    "timeout",
    "not JSON",
    "half JSON",
    "eventMessages not a list",
    "429",
    "429 date",
)
RECOVERY_KINDS = ("404", "403", "729", "401")
FAULT_KINDS = (*FAILURE_KINDS, *RECOVERY_KINDS, "400")
RETRY_AFTERS = (0, 1, 7, 20, 21, 500)
ACK_FAULTS = (None, None, None, "401", "404", "729", "500", "transport")


# -- poll answers -------------------------------------------------------------------------------


@attrs.frozen
class New:
    """A new event: a text message asking for an ack when its id is even, else a presence."""


@attrs.frozen
class Old:
    """An event sent before, picked by index among those sent."""

    index: int


@attrs.frozen
class Anonymous:
    """An event without an id (an UnknownEvent), which asks for an ack."""


Item = New | Old | Anonymous


@attrs.frozen
class Ok:
    items: tuple[Item, ...]
    held: float
    ack_fault: str | None


@attrs.frozen
class Fault:
    kind: str
    retry_after: int | None = None


Outcome = Ok | Fault

items = st.lists(
    st.one_of(
        st.just(New()),
        st.builds(Old, st.integers(0, 10_000)),
        st.just(Anonymous()),
    ),
    max_size=5,
).map(tuple)
oks = st.builds(
    Ok,
    items=items,
    held=st.sampled_from([0.0, 1.0, 30.0, 400.0]),
    ack_fault=st.sampled_from(ACK_FAULTS),
)
faults = st.one_of(
    st.sampled_from((*FAILURE_KINDS, "400")).map(Fault),
    st.sampled_from(RECOVERY_KINDS).map(Fault),
    st.sampled_from(RETRY_AFTERS).map(lambda seconds: Fault("429 Retry-After", seconds)),
)


def error(status: int, code: int | None = None, headers: Any = None) -> HttpResponse:
    body = {"errorCode": code if code is not None else status, "message": "scripted"}
    return HttpResponse.build(status, json=body, headers=headers)


def fault_answer(fault: Fault) -> HttpResponse | BaseException:
    kind = fault.kind
    if kind == "transport":
        return TransportError("ConnectionResetError: POST poll")
    if kind == "timeout":
        return TransportTimeout("ReadTimeout: POST poll")
    if kind == "not JSON":
        return HttpResponse.build(200, content=b"<html>Service Unavailable</html>")
    if kind == "half JSON":
        return HttpResponse.build(200, content=b'{"eventMessages": [{"id": 4')
    if kind == "eventMessages not a list":
        return HttpResponse.build(200, json={"eventMessages": {"id": 1}})
    if kind == "729":
        return error(404, 729)
    if kind == "429 Retry-After":
        return error(429, headers=[("Retry-After", str(fault.retry_after))])
    if kind == "429 date":
        return error(429, headers=[("Retry-After", "Sat, 01 Jun 2024 12:00:30 GMT")])
    return error(int(kind))


# -- the model ----------------------------------------------------------------------------------


@attrs.frozen
class Expect:
    """What the loop must do after one poll answer."""

    #: ``None``: go on; else a check the exception ending the loop must pass.
    raises: Callable[[BaseException], bool] | None = None
    #: ``"backoff"``, a number of seconds, or ``None`` for no wait.
    sleep: str | float | None = None
    #: The failure count the backoff's cap comes from.
    failures: int = 0
    #: The next poll must go to another endpoint.
    new_endpoint: bool = False
    #: The next poll is the session's retry within the same call, not a new cycle.
    same_call: bool = False


def status_is(status: int) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        return (
            isinstance(exc, SkypeApiException)
            and not isinstance(exc, EndpointGoneError | RemoteProtocolError)
            and exc.status == status
        )

    return check


@attrs.define
class Model:
    """The loop's documented policy, reduced to counters."""

    failures: int = 0
    recoveries: int = 0
    after_404: bool = False
    logged_in_this_call: bool = False
    registered_this_call: bool = False

    def restart(self) -> None:
        self.failures = self.recoveries = 0
        self.after_404 = False
        self.end_call()

    def end_call(self) -> None:
        self.logged_in_this_call = self.registered_this_call = False

    def answer(self, outcome: Outcome, transport_error: BaseException | None) -> Expect:
        if isinstance(outcome, Ok):
            self.end_call()
            self.failures = self.recoveries = 0
            self.after_404 = False
            return Expect()
        kind = outcome.kind
        # The session recovers a 401 and a 729 itself, once each per call; the call goes on.
        if kind == "401" and not self.logged_in_this_call:
            self.logged_in_this_call = True
            return Expect(new_endpoint=True, same_call=True)
        if kind == "729" and not self.registered_this_call:
            self.registered_this_call = True
            return Expect(new_endpoint=True, same_call=True)
        self.end_call()
        was_404, self.after_404 = self.after_404, kind == "404"
        if kind == "401":
            return Expect(raises=status_is(401))
        if kind == "400":
            return Expect(raises=status_is(400))
        if kind in RECOVERY_KINDS:
            self.recoveries += 1
            if kind == "729":
                check: Callable[[BaseException], bool] = lambda e: isinstance(e, EndpointGoneError)  # noqa: E731
            else:
                check = status_is(int(kind))
            if self.recoveries > POLICY.max_recoveries:
                return Expect(raises=check)
            return Expect(new_endpoint=kind != "404" or was_404)
        # Failures.
        if kind == "429 Retry-After":
            assert outcome.retry_after is not None
            if outcome.retry_after > POLICY.max_retry_after:
                return Expect(raises=lambda e: isinstance(e, SkypeRateLimitException))
        self.failures += 1
        if self.failures > POLICY.max_failures:
            return Expect(raises=self._failure_check(kind, transport_error))
        if kind == "429 Retry-After":
            return Expect(sleep=float(outcome.retry_after or 0) or None)
        return Expect(sleep="backoff", failures=self.failures)

    @staticmethod
    def _failure_check(
        kind: str, transport_error: BaseException | None
    ) -> Callable[[BaseException], bool]:
        if transport_error is not None:
            return lambda e: e is transport_error
        if kind.startswith("429"):
            return lambda e: isinstance(e, SkypeRateLimitException)
        if kind.isdigit():
            return status_is(int(kind))
        return lambda e: isinstance(e, RemoteProtocolError)


# -- the server side: the machine's answers on the shared test peer ------------------------------


class Server:
    """The scripted poll and ack answers, and what the server knows of each endpoint, as route
    handlers on the test peer (the emulator answers the rest)."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.script: collections.deque[tuple[Outcome, HttpResponse | BaseException]] = (
            collections.deque()
        )
        self.ack_fault: str | None = None
        self.endpoint_of: dict[str, str] = {}
        self.subscribed: set[str] = set()
        self.pinged: dict[str, dt.datetime] = {}
        self.sent_ids: list[int] = []
        #: When the poll of each cycle was sent (the session's retry within a call is not one).
        self.cycle_starts: list[dt.datetime] = []
        #: The next poll is the session's retry within the call.
        self.retry_next = False
        peer.always("poll", self._poll)
        peer.always("ack", self._ack)
        for route in ("register", "subscribe", "ping"):
            peer.always(route, self._observed)

    def endpoint(self, request: HttpRequest) -> str:
        found = _TOKEN.search(request.header("RegistrationToken") or "")
        assert found is not None, "an endpoint call without a registration token"
        return self.endpoint_of[found.group(1)]

    def _observed(self, request: HttpRequest) -> HttpResponse:
        """The emulator's answer, noting registrations, subscriptions and pings."""
        peer = self.peer
        assert peer.emulator is not None
        route = peer.route(request)
        response = peer.emulator.handle(request, peer.clock.now)
        if route == "register" and response.status == 201:
            found = _SET_TOKEN.search(response.header("Set-RegistrationToken") or "")
            assert found is not None
            self.endpoint_of[found.group(1)] = found.group(2)
        elif route == "subscribe" and response.status == 201:
            self.subscribed.add(self.endpoint(request))
        elif route == "ping" and response.status == 201:
            self.pinged[self.endpoint(request)] = peer.clock.now
        return response

    def check_poll(self, request: HttpRequest) -> str:
        """The endpoint ``request`` polls, which must be subscribed and recently pinged."""
        endpoint = self.endpoint(request)
        assert endpoint in self.subscribed, "polled an endpoint that is not subscribed"
        last_ping = self.pinged.get(endpoint)
        assert last_ping is not None, "polled an endpoint never pinged"
        since = (self.peer.clock.now - last_ping).total_seconds()
        assert since < POLICY.ping_interval, "ping overdue"
        return endpoint

    def _poll(self, request: HttpRequest) -> Any:
        endpoint = self.check_poll(request)
        outcome, answer = self.script.popleft()
        if not self.retry_next:
            self.cycle_starts.append(self.peer.clock.now)
        self.retry_next = False
        self.ack_fault = None
        if isinstance(outcome, Ok):
            self.ack_fault = outcome.ack_fault
            return Took(outcome.held, answer)
        if outcome.kind == "404":
            self.subscribed.discard(endpoint)
        return answer

    def _ack(self, request: HttpRequest) -> HttpResponse | BaseException:
        fault, self.ack_fault = self.ack_fault, None
        if fault == "transport":
            return TransportError("ConnectionResetError: POST ack")
        if fault == "729":
            return error(404, 729)
        if fault is not None:
            return error(int(fault))
        return HttpResponse.build(201, url=request.url)

    def batch(self, outcome: Ok) -> tuple[HttpResponse, list[tuple[int | None, bool]]]:
        """The poll answer for ``outcome`` and its events as ``(id, asks for an ack)``."""
        elements = []
        described: list[tuple[int | None, bool]] = []
        for item in outcome.items:
            if isinstance(item, Anonymous):
                element = self._element(ANONYMOUS_MESSAGE, "text")
                del element["id"]
                described.append((None, True))
            else:
                if isinstance(item, Old) and self.sent_ids:
                    event_id = self.sent_ids[item.index % len(self.sent_ids)]
                else:
                    event_id = 1000 + len(self.sent_ids)
                    self.sent_ids.append(event_id)
                ack = event_id % 2 == 0
                element = self._element(event_id, "text" if ack else "presence")
                described.append((event_id, ack))
            elements.append(element)
        return HttpResponse.build(200, json={"eventMessages": elements}), described

    def _element(self, event_id: int, kind: str) -> dict[str, Any]:
        return render_event(
            kind,
            base=H,
            event_id=event_id,
            message_id=str(event_id),
            when=self.peer.clock.now,
            seq=event_id,
            user="live:fred",
        )


class LoopMachine(RuleBasedStateMachine):
    """The loop under random poll answers; see the module docstring."""

    peer: Peer
    server: Server
    loop: EventLoop
    step: Stepper[Any]

    @initialize()
    def start(self) -> None:
        self.peer = Peer(Emulator(scenario=SCENARIO, seed=0), start=T0)
        self.server = Server(self.peer)
        self.session = Session(self.peer.emulator.hosts, credentials=CREDENTIALS)
        self.loop = EventLoop(self.session, self.handler, policy=POLICY, rng=random.Random(0))
        self.model = Model()
        self.delivered: list[int | None] = []
        self.expected_ids: list[int] = []  # in order of first arrival
        self.anonymous = 0
        self.ended: BaseException | None = None
        self.restarts = 0
        self.register_pending = False
        self.begin()

    def handler(self, event: Event) -> None:
        self.delivered.append(event.id)
        self.peer.handler(event)

    def begin(self) -> None:
        self.ended = None
        self.step = Stepper(self.loop.run())
        self.drive()

    # Driving.

    def drive(self) -> None:
        """Carry out effects until the loop waits on an unscripted poll, or ends."""
        step, peer, server = self.step, self.peer, self.server

        def unscripted_poll(effect: Any) -> bool:
            return (
                isinstance(effect, HttpRequest)
                and peer.route(effect) == "poll"
                and not server.script
            )

        try:
            peer.advance(step, unscripted_poll)
        except AssertionError:
            raise
        except Exception as exc:
            self.ended = exc
            return
        if step.done:
            raise AssertionError("the loop returned although nothing stops it")
        server.check_poll(step.pending)

    def pending_endpoint(self) -> str:
        """The endpoint of the poll the loop waits on."""
        pending = self.step.pending
        assert isinstance(pending, HttpRequest)
        return self.server.endpoint(pending)

    def answer(self, outcome: Outcome) -> None:
        peer = self.peer
        described: list[tuple[int | None, bool]] = []
        if isinstance(outcome, Ok):
            response, described = self.server.batch(outcome)
            answer: HttpResponse | BaseException = response
            if any(isinstance(i, Old) for i in outcome.items):
                event("poll answer: ok with a redelivered event")
            if any(isinstance(i, Anonymous) for i in outcome.items):
                event("poll answer: ok with an event without id")
            if outcome.ack_fault is not None and any(ack for _, ack in described):
                event(f"ack answer: {outcome.ack_fault}")
        else:
            answer = fault_answer(outcome)
        event(f"poll answer: {outcome.kind if isinstance(outcome, Fault) else 'ok'}")
        before_endpoint = self.pending_endpoint()
        mark, sleep_mark = len(peer.journal), len(peer.sleeps)
        expect = self.model.answer(outcome, answer if isinstance(answer, BaseException) else None)
        self.server.script.append((outcome, answer))
        self.drive()
        after = peer.journal[mark:]
        assert after[0] == "poll"
        after = after[1:]

        # Ending: only when the model says so, with the exception it names.
        if expect.raises is None:
            assert self.ended is None, f"the loop ended early: {self.ended!r}"
        else:
            assert self.ended is not None, "the loop went on past its bound"
            assert expect.raises(self.ended), f"ended with {self.ended!r}"
            event("the loop ended")

        # Waits: the fault's own, then the rest of the minimum poll interval (a new cycle only).
        sleeps = peer.sleeps[sleep_mark:]
        if expect.sleep is None:
            waited: list[float] = []
        elif expect.sleep == "backoff":
            cap = min(POLICY.backoff_max, POLICY.backoff_initial * 2 ** (expect.failures - 1))
            assert sleeps
            assert cap / 2 <= sleeps[0] <= cap
            waited = sleeps[:1]
        else:
            waited = [expect.sleep]
        assert sleeps[: len(waited)] == waited
        held = outcome.held if isinstance(outcome, Ok) else 0.0
        left = POLICY.min_poll_interval - held - sum(waited)
        if expect.raises is None and not expect.same_call and left > 0:
            assert len(sleeps) == len(waited) + 1
            assert sleeps[-1] == pytest.approx(left, abs=1e-5)  # the clock has microseconds
            event("waited out the minimum poll interval")
        else:
            assert sleeps == waited
        self.server.retry_next = expect.same_call

        # Deliveries and acknowledgements, in batch order.
        if isinstance(outcome, Ok):
            wanted: list[str] = []
            first_ack = True
            for event_id, asks_ack in described:
                if event_id is None:
                    self.anonymous += 1
                    wanted.append("deliver None")
                elif event_id not in self.expected_ids:
                    self.expected_ids.append(event_id)
                    wanted.append(f"deliver {event_id}")
                if asks_ack:
                    repeat = 2 if first_ack and outcome.ack_fault in ("401", "729") else 1
                    wanted += [f"ack {event_id or ANONYMOUS_MESSAGE}"] * repeat
                    first_ack = False
            trace = [entry for entry in after if entry.startswith(("deliver ", "ack "))]
            assert trace == wanted
        else:
            assert [e for e in after if e.startswith("deliver ")] == []

        # Where the next poll goes.
        if self.ended is None and expect.new_endpoint:
            next_endpoint = self.pending_endpoint()
            assert next_endpoint != before_endpoint, "polled the old endpoint again"

        if self.ended is not None:
            self.restart()

    def restart(self) -> None:
        """Run the loop again at once, as an application would after logging the error."""
        self.restarts += 1
        self.model.restart()
        self.begin()
        assert self.ended is None, f"a restart ended at once: {self.ended!r}"

    # Rules.

    @rule(outcome=oks)
    def poll_ok(self, outcome: Ok) -> None:
        self.answer(outcome)

    @rule(outcome=faults)
    def poll_fault(self, outcome: Fault) -> None:
        self.answer(outcome)

    # Invariants.

    @invariant()
    def each_event_delivered_exactly_once(self) -> None:
        ids = [i for i in self.delivered if i is not None]
        assert ids == self.expected_ids
        assert self.delivered.count(None) == self.anonymous
        for event_id in self.expected_ids:
            assert self.loop.seen(event_id)

    @invariant()
    def sleeps_are_bounded(self) -> None:
        for seconds in self.peer.sleeps:
            assert 0 <= seconds <= SLEEP_BOUND

    @invariant()
    def polls_of_different_cycles_start_the_minimum_interval_apart(self) -> None:
        starts = list(self.server.cycle_starts)
        if not self.step.done and not self.server.retry_next:
            starts.append(self.peer.clock.now)  # the poll the loop waits on
        for earlier, later in itertools.pairwise(starts):
            assert (later - earlier).total_seconds() >= POLICY.min_poll_interval - 1e-5

    @invariant()
    def stats_agree(self) -> None:
        stats = self.loop.stats
        assert stats.delivered == len(self.delivered)
        assert stats.slept == sum(self.peer.sleeps)


LoopMachine.TestCase.settings = settings(
    settings.default,
    stateful_step_count=40,
)
TestLoopMachine = LoopMachine.TestCase
