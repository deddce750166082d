"""The Trouter client against the pure peer as a state machine, in memory, on a virtual clock.

Hypothesis interleaves pushes, duplicate pushes, dropped and reset sockets, expired sessions, loss reports,
lost (slow) answers and the passing of time. Whatever the order:

- no message is delivered twice, and once things settle every message pushed was delivered;
- a pushed message is delivered only after its ``3:::`` answer reached the peer (or, when it
  came by the catch-up, after the backlog listed it);
- on every connection the pings come every 30 s from the moment it opened.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
from collections.abc import Sequence

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from skyproto import Event, Hosts, HttpRequest, NewMessageEvent
from skyproto._flow import Flow, request
from skyproto.emulator.trouter import PeerDriver, TrouterPeer
from skyproto.events import decode_events
from skyproto.trouter.client import TrouterClient, TrouterPolicy

T0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
PING = 30.0
#: Long enough for every recovery: the peer's 10 s answer timeout, the longest backoff (64 s).
SETTLE = 200.0


class TrouterMachine(RuleBasedStateMachine):
    @initialize(redeliver=st.booleans(), gzip=st.booleans(), seed=st.integers(0, 2**16))
    def start(self, redeliver: bool, gzip: bool, seed: int) -> None:
        self.peer = TrouterPeer(ttl=900, redeliver=redeliver, gzip_bodies=gzip)
        self.pushed: list[str] = []
        self.delivered: list[str] = []
        #: For each delivery: the message id and how long the peer's log was at that moment.
        self.deliveries: list[tuple[str, int]] = []

        def catch_up() -> Flow[Sequence[Event]]:
            response = yield from request(
                HttpRequest("GET", "https://go.trouter.skype.com/backlog")
            )
            return decode_events(response.body)

        self.client = TrouterClient(
            "token",
            "epid",
            self.handle,
            hosts=Hosts(),
            catch_up=catch_up,
            rng=random.Random(seed),
            policy=TrouterPolicy(ping_interval=PING, registration_ttl=500, max_failures=10_000),
        )
        self.driver = PeerDriver(self.client.run(), self.peer, T0)
        self.driver.settle()

    def handle(self, event: Event) -> None:
        assert isinstance(event, NewMessageEvent)
        message_id = event.message.id
        assert message_id is not None
        self.delivered.append(message_id)
        self.deliveries.append((message_id, len(self.peer.log)))

    # -- rules ------------------------------------------------------------------------------------

    @rule(count=st.integers(1, 3))
    def push(self, count: int) -> None:
        for _ in range(count):
            self.pushed.append(str(self.peer.push("hi", now=self.driver.now)))
        self.driver.settle()

    @precondition(lambda self: bool(self.pushed))
    @rule(data=st.data())
    def push_a_duplicate(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(self.pushed))
        self.peer.push_again(message_id, now=self.driver.now)
        self.driver.settle()

    @rule()
    def drop(self) -> None:
        self.peer.drop(self.driver.now)
        self.driver.settle()

    @rule()
    def reset(self) -> None:
        self.peer.drop(self.driver.now, reset=True)
        self.driver.settle()

    @rule()
    def expire(self) -> None:
        self.peer.expire(self.driver.now)
        self.driver.settle()

    @rule()
    def report_loss(self) -> None:
        self.peer.report_loss(self.driver.now)
        self.driver.settle()

    @rule()
    def lose_the_next_answer(self) -> None:
        self.peer.lose_answers += 1

    @rule(seconds=st.sampled_from([0.5, 5, 11, 29.5, 30, 31, 75, 240]))
    def advance(self, seconds: float) -> None:
        self.driver.advance(seconds)

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def the_client_runs(self) -> None:
        assert not self.driver.done

    @invariant()
    def nothing_is_delivered_twice(self) -> None:
        counts = collections.Counter(self.delivered)
        assert [m for m, n in counts.items() if n > 1] == []
        assert set(self.delivered) <= set(self.pushed)

    @invariant()
    def delivery_follows_the_answer_or_the_listing(self) -> None:
        log = self.peer.log
        for message_id, at in self.deliveries:
            before = log[:at]
            answered = any(
                e.what in ("response", "answer lost") and e.detail[1] == message_id for e in before
            )
            listed = any(e.what == "backlog" and message_id in e.detail for e in before)
            assert answered or listed, f"message {message_id} delivered before its answer"

    @invariant()
    def pings_keep_their_schedule(self) -> None:
        for start, end, pings in self._connections():
            expected = []
            when = start + dt.timedelta(seconds=PING)
            while when < end:
                expected.append(when)
                when += dt.timedelta(seconds=PING)
            # A ping due the very instant the connection ended may or may not have gone out.
            assert [p for p in pings if p < end] == expected
            assert all(p <= end for p in pings)

    def _connections(self) -> list[tuple[dt.datetime, dt.datetime, list[dt.datetime]]]:
        """Each connection's start, end (or now) and pings, from the peer's log."""
        out: list[tuple[dt.datetime, dt.datetime, list[dt.datetime]]] = []
        current: tuple[dt.datetime, list[dt.datetime]] | None = None
        for entry in self.peer.log:
            if entry.what == "connect":
                current = (entry.when, [])
            elif entry.what in ("drop", "closed") and current is not None:  # drop: or reset
                out.append((current[0], entry.when, current[1]))
                current = None
            elif entry.what == "ping" and current is not None:
                current[1].append(entry.when)
        if current is not None:
            # Open: the next ping may be due this very instant and not sent yet.
            out.append((current[0], self.driver.now, current[1]))
        return out

    def teardown(self) -> None:
        if not hasattr(self, "driver"):
            return
        self.driver.advance(SETTLE)
        assert not self.driver.done
        assert sorted(self.delivered) == sorted(self.pushed)
        assert self.client.stats.delivered == len(self.pushed)


TrouterMachine.TestCase.settings = settings(settings.default, stateful_step_count=30)
TestTrouterMachine = TrouterMachine.TestCase


def test_the_connections_helper_sees_what_it_must() -> None:
    machine = TrouterMachine()
    machine.start(redeliver=True, gzip=False, seed=1)
    machine.driver.advance(65)
    machine.drop()
    starts = [start for start, _, _ in machine._connections()]
    assert starts[0] == T0
    assert machine._connections()[0][2] == [T0 + dt.timedelta(seconds=30 * n) for n in (1, 2)]
    machine.teardown()
