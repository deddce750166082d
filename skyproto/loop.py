"""The event loop: poll, decode, deliver, acknowledge, and recover, as one long-running flow.

Each cycle (docs/protocol.md §5.6, §5.7, §7.5, §7.6, with the recoveries the reference lacks):

0. Wait until :attr:`LoopPolicy.min_poll_interval` has passed since the previous cycle began
   (a backoff counts towards it), so a server that answers every poll at once is not polled in
   a tight loop.
1. Register again first when the previous cycle's fault asked for it (see below).
2. Poll once through :meth:`Session.call <skyproto.Session.call>`, so the session's policy applies
   (an expiring token is renewed first; 401 logs in and registers again; errorCode 729 registers
   again; each at most once per cycle). Every poll is prepared on the registration it goes to:
   a registration the loop has not subscribed yet (the first, and any new one, whoever made it)
   is subscribed first, and a keep-alive ping is sent first when it is due (at the start, after
   each subscription unless :attr:`LoopPolicy.ping_on_subscribe` is off, and every
   :attr:`LoopPolicy.ping_interval` seconds).
3. Decode the batch and hand each event to the handler through a :class:`~skyproto.Deliver`
   effect. Only after the handler returned is the event remembered as delivered and then
   acknowledged. An event already delivered (same id, even after a new subscription or
   registration) is not delivered again, only acknowledged again so the server stops sending it.

Faults: each exception is classified once into a :class:`Fault`, and the loop looks up what to do
in one table, :data:`FAULT_ACTIONS` (an :class:`Action` per fault):

============================  =========================================================
poll answer                   what the loop does
============================  =========================================================
404                           subscribe again, then poll; a 404 right after a 404
                              registers again instead
403, or errorCode 729         register again (and so subscribe again), then poll
401                           log in and register again (the session's rule), then
                              subscribe and poll; a second 401 in a row ends the loop
429                           wait ``Retry-After`` (backoff when absent); a wait longer
                              than :attr:`LoopPolicy.max_retry_after` ends the loop
5xx, transport error, or a    exponential backoff with jitter, at most
batch that is not JSON        :attr:`LoopPolicy.max_failures` times in a row
============================  =========================================================

The same rules apply when the subscription, the ping or a registration the loop asked for fails
(a registration that failed is tried again in the next cycle). A recovery that does not lead to
a good poll counts towards :attr:`LoopPolicy.max_recoveries`, and a 429 counts as a failure; past
either bound the last exception ends the loop. A successful poll resets both counts. An
:class:`~skyproto.UntrustedHostError` (a redirect to a foreign host) ends the loop at once, and so
does any other error (another 4xx, a failed login). The handler's own exceptions end the loop at
once, and that event is neither remembered nor acknowledged, so the server sends it again.

A failed acknowledgement is logged and counted; the event stays delivered (the server sends it
again and de-duplication only acknowledges it). A 404 on an acknowledgement means the server does
not know the message, not that the endpoint is gone, so it does not register again.

With a ``deadline`` the poll's timeout hint shrinks to the time left (at least half a second), no
wait lasts past the deadline, and a transport error (a timeout, typically) once the deadline has
passed ends the run normally.

:meth:`EventLoop.stop` ends the loop at the next step boundary (after the handler that called it,
or when the running poll returns). Under ``run_async``, cancelling the task is safe at any
``await``: an event whose handler did not finish is neither remembered nor acknowledged.

Only sleeping and the clock are the driver's; every decision, including the jitter (from the
``rng`` you pass, so a seeded ``random.Random`` makes it reproducible), is made here.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import random
import types
from collections.abc import Callable, Mapping

import attrs

from . import endpoint as _endpoint
from ._flow import Flow, deliver, now, sleep
from ._http import HttpResponse
from ._runs import Seen, backoff, count, failed_again, flag, positive, until_deadline
from .endpoint import POLL_TIMEOUT_MARGIN, EndpointGoneError
from .errors import (
    LocalProtocolError,
    RemoteProtocolError,
    SkypeApiException,
    SkypeRateLimitException,
    TransportError,
    UntrustedHostError,
)
from .events import Event, decode_events
from .registration import Registration
from .session import Session

__all__ = ["EventLoop", "LoopPolicy", "LoopStats"]

logger = logging.getLogger("skyproto")


@attrs.frozen
class LoopPolicy:
    """The event loop's timings and bounds (seconds where a time)."""

    #: How long the server may hold a poll.
    hold: float = attrs.field(default=30.0, validator=positive)
    #: Seconds between keep-alive pings.
    ping_interval: float = attrs.field(default=60.0, validator=positive)
    #: The ``timeout`` each ping asks for.
    ping_timeout: int = attrs.field(default=12, validator=count)
    #: Whether a ping goes out right after each subscription, before the first poll on it.
    #: ``False`` leaves the first ping for ``ping_interval`` after the subscription: the
    #: endpoint was just configured and subscribed, and the reference client never pings at
    #: all, so a fleet of sessions starting at once sends one request fewer each.
    ping_on_subscribe: bool = attrs.field(default=True, validator=flag)
    #: First backoff delay, doubled after each failure in a row ...
    backoff_initial: float = attrs.field(default=1.0, validator=positive)
    #: ... up to this cap. Each delay is drawn from [cap / 2, cap].
    backoff_max: float = attrs.field(default=60.0, validator=positive)
    #: Failures (5xx, transport, unreadable batch) in a row before the loop gives up.
    max_failures: int = attrs.field(default=8, validator=count)
    #: Recoveries (subscribe or register again) in a row before the loop gives up.
    max_recoveries: int = attrs.field(default=3, validator=count)
    #: The longest ``Retry-After`` the loop waits out; a longer one ends it.
    max_retry_after: float = attrs.field(default=600.0, validator=positive)
    #: How many delivered event ids are remembered for de-duplication.
    dedupe_window: int = attrs.field(default=10_000, validator=count)
    #: Polls start at least this far apart, so a server that answers at once (an empty batch
    #: without holding the poll) is not polled in a tight loop.
    min_poll_interval: float = attrs.field(default=1.0, validator=positive)


@attrs.define
class LoopStats:
    """What the loop has done so far (over every run of one :class:`EventLoop`)."""

    #: Polls answered with a 2xx (a batch, readable or not).
    polls: int = 0
    #: Events handed to the handler (the handler returned).
    delivered: int = 0
    #: Events not delivered because their id was delivered before.
    duplicates: int = 0
    #: Acknowledgements the server accepted.
    acks: int = 0
    #: Acknowledgements that failed (logged; the event stays delivered).
    ack_failures: int = 0
    subscribes: int = 0
    #: Registrations the loop asked for (a 403, a 729 the session's own registration did not
    #: cure, a 404 after a 404); the session's own (expiry, 401, a first 729) are not counted.
    registrations: int = 0
    pings: int = 0
    #: Failures that count towards :attr:`LoopPolicy.max_failures` (429s included).
    failures: int = 0
    #: 429 answers, including one that ended the loop.
    rate_limited: int = 0
    #: Seconds of backoff, ``Retry-After`` and minimum poll interval asked of the driver.
    slept: float = 0.0


def backoff_delay(failures: int, policy: LoopPolicy, rng: random.Random) -> float:
    """The wait after ``failures`` failures in a row: within [cap / 2, cap], where the cap is
    ``backoff_initial * 2 ** (failures - 1)``, at most ``backoff_max``."""
    return backoff(failures, policy.backoff_initial, policy.backoff_max, rng)


class Fault(enum.Enum):
    """What kind of failure ended a step of the loop (see ``_classify``)."""

    #: 429.
    RATE_LIMITED = "rate limited"
    #: errorCode 729 (the session's own registration did not cure it): the endpoint is gone.
    ENDPOINT_GONE = "endpoint gone"
    #: 404: the subscription is gone.
    NOT_FOUND = "not found"
    #: 403: the registration is refused.
    FORBIDDEN = "forbidden"
    #: 5xx.
    SERVER_ERROR = "server error"
    #: A 2xx the loop cannot read, or another malformed answer.
    MALFORMED = "malformed answer"
    #: The transport could not complete the exchange (a timeout, a refused connection).
    TRANSPORT = "transport error"
    #: A redirect to a host the session does not trust.
    UNTRUSTED_HOST = "untrusted host"
    #: Anything else: another 4xx, a 401 that logging in again did not cure, a failed login.
    OTHER = "other error"


class Action(enum.Enum):
    """What the loop does about a :class:`Fault`."""

    #: Wait ``Retry-After`` (backoff when absent); a failure; a wait past the limit gives up.
    WAIT_OUT = "wait out"
    #: Exponential backoff with jitter; a failure.
    BACK_OFF = "back off"
    #: As :attr:`BACK_OFF`, except that once the deadline has passed the run ends normally.
    BACK_OFF_BEFORE_DEADLINE = "back off before the deadline"
    #: Subscribe again before the next poll (register again after a 404 in a row); a recovery.
    RESUBSCRIBE = "subscribe again"
    #: Register (and so subscribe) again before the next poll; a recovery.
    REREGISTER = "register again"
    #: End the loop with the exception.
    GIVE_UP = "give up"


#: The loop's policy as data: one action per fault. Logging in again is not here: the session
#: does it within the call (once), so a 401 that reaches the loop is :attr:`Fault.OTHER`.
FAULT_ACTIONS: Mapping[Fault, Action] = types.MappingProxyType(
    {
        Fault.RATE_LIMITED: Action.WAIT_OUT,
        Fault.ENDPOINT_GONE: Action.REREGISTER,
        Fault.NOT_FOUND: Action.RESUBSCRIBE,
        Fault.FORBIDDEN: Action.REREGISTER,
        Fault.SERVER_ERROR: Action.BACK_OFF,
        Fault.MALFORMED: Action.BACK_OFF,
        Fault.TRANSPORT: Action.BACK_OFF_BEFORE_DEADLINE,
        Fault.UNTRUSTED_HOST: Action.GIVE_UP,
        Fault.OTHER: Action.GIVE_UP,
    }
)


def _classify(exc: BaseException) -> Fault:
    """The :class:`Fault` an exception from a step of the loop stands for.

    A subclass is tested before its base: a rate limit and a lost endpoint are also
    :class:`~skyproto.SkypeApiException`, an untrusted host also a
    :class:`~skyproto.RemoteProtocolError`."""
    if isinstance(exc, TransportError):
        return Fault.TRANSPORT
    if isinstance(exc, SkypeRateLimitException):
        return Fault.RATE_LIMITED
    if isinstance(exc, EndpointGoneError):
        return Fault.ENDPOINT_GONE
    if isinstance(exc, UntrustedHostError):
        return Fault.UNTRUSTED_HOST
    if isinstance(exc, RemoteProtocolError):
        return Fault.MALFORMED
    if isinstance(exc, SkypeApiException) and exc.status is not None:
        if exc.status == 404:
            return Fault.NOT_FOUND
        if exc.status == 403:
            return Fault.FORBIDDEN
        if 500 <= exc.status <= 599:
            return Fault.SERVER_ERROR
    return Fault.OTHER


class EventLoop:
    """Deliver a session's events to ``handler`` until stopped; :meth:`run` is the flow.

    ``handler(event)`` may be a plain function or, under ``run_async``, a coroutine function.
    With ``auto_ack`` (the default) every event carrying an ``ackrequired`` URL is acknowledged
    after the handler returned. ``rng`` draws the backoff jitter.
    """

    def __init__(
        self,
        session: Session,
        handler: Callable[[Event], object],
        *,
        policy: LoopPolicy | None = None,
        rng: random.Random | None = None,
        auto_ack: bool = True,
    ) -> None:
        self.session = session
        self.handler = handler
        self.policy = policy if policy is not None else LoopPolicy()
        self.rng = rng if rng is not None else random.Random()  # noqa: S311 (jitter, not secrets)
        self.auto_ack = auto_ack
        self.stats = LoopStats()
        self._seen = Seen(self.policy.dedupe_window)
        self._subscribed: Registration | None = None
        self._last_ping: dt.datetime | None = None
        self._last_poll_start: dt.datetime | None = None
        self._register_first = False
        self._stopping = False

    def __repr__(self) -> str:
        return f"EventLoop({self.session!r}, stats={self.stats!r}, stopping={self._stopping})"

    def stop(self) -> None:
        """End :meth:`run` at the next step boundary."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    def seen(self, event_id: int) -> bool:
        """Whether the event ``event_id`` was delivered (within the de-duplication window)."""
        return event_id in self._seen

    def run(
        self,
        *,
        max_events: int | None = None,
        deadline: dt.datetime | None = None,
        max_polls: int | None = None,
    ) -> Flow[LoopStats]:
        """Flow: deliver events until :meth:`stop`, ``max_events`` deliveries, ``deadline`` (an
        aware datetime) or ``max_polls`` answered polls (``max_polls=1`` is one cycle).

        The arguments are checked, and an earlier :meth:`stop` forgotten, when this is called; a
        :meth:`stop` after that call ends the flow, even before a driver first steps it."""
        for name, value in (("max_events", max_events), ("max_polls", max_polls)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise LocalProtocolError(f"{name} must be a whole number, not negative")
        if deadline is not None and (
            not isinstance(deadline, dt.datetime) or deadline.utcoffset() is None
        ):
            raise LocalProtocolError("deadline must be a timezone-aware datetime")
        # Cleared here, when the flow is made, not when a driver first steps it: a stop() that
        # comes in between (another thread, another task) must not be lost.
        self._stopping = False
        return self._run(max_events, deadline, max_polls)

    def _run(
        self, max_events: int | None, deadline: dt.datetime | None, max_polls: int | None
    ) -> Flow[LoopStats]:
        target = None if max_events is None else self.stats.delivered + max_events
        last_poll = None if max_polls is None else self.stats.polls + max_polls
        failures = 0
        recoveries = 0
        after_404 = False
        while (
            not self._stopping
            and (target is None or self.stats.delivered < target)
            and (last_poll is None or self.stats.polls < last_poll)
        ):
            current = yield from now()
            if deadline is not None and current >= deadline:
                break
            if not (yield from self._keep_poll_interval(deadline)):
                break
            was_404, after_404 = after_404, False
            try:
                if self._register_first:
                    yield from self.session.reregister()
                    self._register_first = False
                    self.stats.registrations += 1
                response = yield from self.session.call(
                    lambda reg: self._poll_once(reg, deadline), reregister_on_404=False
                )
                self.stats.polls += 1
                events = decode_events(response.body)
            except (SkypeApiException, TransportError) as exc:
                fault = _classify(exc)
                action = FAULT_ACTIONS[fault]
                if fault is Fault.RATE_LIMITED:
                    self.stats.rate_limited += 1
                if action is Action.GIVE_UP:
                    raise
                if action is Action.BACK_OFF_BEFORE_DEADLINE and deadline is not None:
                    current = yield from now()
                    if current >= deadline:
                        break  # a timeout once the deadline has passed ends the run normally
                if action is Action.RESUBSCRIBE:
                    after_404 = True
                    if was_404:
                        action = Action.REREGISTER  # subscribing again did not help
                    else:
                        self._subscribed = None
                if action is Action.REREGISTER:
                    self._register_first = True  # kept even when this ends the run
                if action in (Action.RESUBSCRIBE, Action.REREGISTER):
                    recoveries = self._recovering(recoveries, exc)
                    continue
                if action is Action.WAIT_OUT and isinstance(exc, SkypeRateLimitException):
                    if (
                        exc.retry_after is not None
                        and exc.retry_after > self.policy.max_retry_after
                    ):
                        raise
                    failures = self._failing(failures, exc)
                    yield from self._wait_out(exc, failures, deadline)
                else:
                    failures = self._failing(failures, exc)
                    yield from self._back_off(failures, deadline)
            else:
                failures = recoveries = 0
                yield from self._hand_over(events, target)
        return self.stats

    # -- the steps ------------------------------------------------------------------------------

    def _keep_poll_interval(self, deadline: dt.datetime | None) -> Flow[bool]:
        """Wait until :attr:`LoopPolicy.min_poll_interval` has passed since the last poll began
        (a backoff counts towards it); then this poll begins. False: stopped or past the
        deadline meanwhile."""
        current = yield from now()
        if self._last_poll_start is not None:
            since = (current - self._last_poll_start).total_seconds()
            if since < self.policy.min_poll_interval:
                yield from self._pause(self.policy.min_poll_interval - since, deadline)
                current = yield from now()
                if self._stopping or (deadline is not None and current >= deadline):
                    return False
        self._last_poll_start = current
        return True

    def _poll_once(self, reg: Registration, deadline: dt.datetime | None) -> Flow[HttpResponse]:
        """Subscribe ``reg`` if it is new to the loop, ping if due, then poll it."""
        fresh = self._subscribed is not reg
        if fresh:
            yield from _endpoint.subscribe(reg, "SELF")
            self.stats.subscribes += 1
            self._subscribed = reg
            self._last_ping = None
        current = yield from now()
        if fresh and not self.policy.ping_on_subscribe:
            self._last_ping = current
        due = self._last_ping is None or (
            (current - self._last_ping).total_seconds() >= self.policy.ping_interval
        )
        if due:
            yield from _endpoint.ping(reg, "SELF", self.policy.ping_timeout)
            self.stats.pings += 1
            self._last_ping = current
        return (
            yield from _endpoint.poll(
                reg, "SELF", hold=self.policy.hold, timeout=self._poll_timeout(current, deadline)
            )
        )

    def _poll_timeout(self, current: dt.datetime, deadline: dt.datetime | None) -> float | None:
        if deadline is None:
            return None
        left = (deadline - current).total_seconds()
        return max(0.5, min(left, self.policy.hold + POLL_TIMEOUT_MARGIN))

    def _hand_over(self, events: list[Event], target: int | None) -> Flow[None]:
        for event in events:
            if self._stopping or (target is not None and self.stats.delivered >= target):
                return  # not acknowledged: the server sends the rest again
            if event.id is not None and event.id in self._seen:
                self.stats.duplicates += 1
            else:
                yield from deliver(event, self.handler)
                if event.id is not None:
                    self._seen.add(event.id)
                self.stats.delivered += 1
            if self.auto_ack and event.ack_url is not None:
                yield from self._ack(event.ack_url)

    def _ack(self, url: str) -> Flow[None]:
        try:
            sent = yield from self.session.ack(url)
        except UntrustedHostError:
            raise
        except (TransportError, SkypeApiException) as exc:
            # Delivered already; the server sends it again and de-duplication drops it.
            self.stats.ack_failures += 1
            logger.warning("event acknowledgement failed: %s", exc)
        else:
            if sent:
                self.stats.acks += 1

    def _recovering(self, recoveries: int, exc: BaseException) -> int:
        recoveries += 1
        if recoveries > self.policy.max_recoveries:
            raise exc
        return recoveries

    def _failing(self, failures: int, exc: BaseException) -> int:
        self.stats.failures += 1
        return failed_again(failures, exc, limit=self.policy.max_failures, what="event poll")

    def _back_off(self, failures: int, deadline: dt.datetime | None) -> Flow[None]:
        yield from self._pause(backoff_delay(failures, self.policy, self.rng), deadline)

    def _wait_out(
        self, exc: SkypeRateLimitException, failures: int, deadline: dt.datetime | None
    ) -> Flow[None]:
        if exc.retry_after is None:
            yield from self._back_off(failures, deadline)
        else:
            yield from self._pause(exc.retry_after, deadline)

    def _pause(self, seconds: float, deadline: dt.datetime | None) -> Flow[None]:
        seconds = yield from until_deadline(seconds, deadline)
        self.stats.slept += seconds
        yield from sleep(seconds)
