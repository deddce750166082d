"""Connect cycle: log in, register, configure, subscribe, poll once and acknowledge, against
unmodified SkPy 0.11 doing the same on the same emulator, in the same run.

The emulator runs over TLS in a process of its own, and queues one text message (which asks to
be acknowledged) for each new endpoint. SkPy is pointed at it the way the fidelity tests do it:
the ``API_*`` constants of ``skpy.conn.SkypeConnection`` are patched onto the emulator's bases
for the duration, and ``REQUESTS_CA_BUNDLE`` names the emulator's CA. skyproto runs
``Session.connect()`` then one cycle of ``EventLoop.run`` over a new ``RequestsTransport``; SkPy
runs ``Skype(user, password)``, ``getEvents()`` and ``ack()`` on each event. Each cycle starts
from nothing on both sides (new HTTP sessions, so new TLS connections).

Both log in by SOAP (soap, edge, profile), register, configure the endpoint, list the endpoints,
subscribe, poll and acknowledge: nine requests each, over the same four TLS connections. By
default skyproto's event loop also sends a keep-alive ping right after subscribing, which the
reference never sends and the cycle does not name, so the graded row runs the loop with
``LoopPolicy(ping_on_subscribe=False)``; a second row, with no goal, times the default (ten
requests) beside the same SkPy cycles.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from skyproto.transports import run_sync
from skyproto.transports.requests import RequestsTransport

from skyproto import Credentials, EventLoop, Hosts, LoopPolicy, Session

from ._common import alternate, emulator_process, environment, row

#: skyproto's cycle may take at most this many times SkPy's.
GOAL = "<= 1.0"
REPEATS = 15
#: The cycle the goal names: no keep-alive ping before the first poll.
LOOP_POLICY = LoopPolicy(ping_on_subscribe=False)


def skyproto_cycle(
    hosts: Hosts, user: str, password: str, policy: LoopPolicy = LOOP_POLICY
) -> Callable[[], None]:
    def cycle() -> None:
        delivered: list[object] = []
        with RequestsTransport() as transport:
            session = Session(hosts, credentials=Credentials(user, password))
            run_sync(session.connect(), transport)
            loop = EventLoop(session, delivered.append, policy=policy)
            stats = run_sync(loop.run(max_polls=1), transport)
        if len(delivered) != 1 or stats.acks != 1:
            raise SystemExit(f"connect: skyproto's cycle went wrong ({stats})")

    return cycle


@contextlib.contextmanager
def skpy_pointed_at(hosts: Hosts) -> Iterator[Any]:
    """SkPy's ``Skype`` class, its service constants moved onto ``hosts`` for the block."""
    import skpy
    from skpy.conn import SkypeConnection

    saved: dict[str, str] = {}
    for name, real in vars(SkypeConnection).items():
        if name.startswith("API_") and isinstance(real, str) and hosts.url(real) != real:
            saved[name] = real
    try:
        for name, real in saved.items():
            setattr(SkypeConnection, name, hosts.url(real))
        yield skpy.Skype
    finally:
        for name, real in saved.items():
            setattr(SkypeConnection, name, real)
        SkypeConnection.extSess.close()


def skpy_cycle(skype_class: Any, user: str, password: str) -> Callable[[], None]:
    def cycle() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sk = skype_class(user, password)
            try:
                events = sk.getEvents()
                for event in events:
                    event.ack()
            finally:
                sk.conn.sess.close()
        if len(events) != 1:
            raise SystemExit(f"connect: SkPy's cycle went wrong ({len(events)} events)")

    return cycle


def main(smoke: bool = False) -> list[dict[str, Any]]:
    repeats = 1 if smoke else REPEATS
    with emulator_process("events=text", "hold=1", tls=True) as profile:
        hosts = Hosts.from_json(profile)
        user, password = profile["account"]["user"], profile["account"]["password"]
        ours = skyproto_cycle(hosts, user, password)
        pinging = skyproto_cycle(hosts, user, password, LoopPolicy())
        with environment(REQUESTS_CA_BUNDLE=profile["ca_bundle"], NO_PROXY="127.0.0.1,localhost"):
            if importlib.util.find_spec("skpy") is None:
                our_times, pinging_times = alternate([ours, pinging], 1, repeats)
                return _rows(min(our_times), min(pinging_times), None, repeats)
            with skpy_pointed_at(hosts) as skype_class:
                theirs = skpy_cycle(skype_class, user, password)
                our_times, pinging_times, their_times = alternate(
                    [ours, pinging, theirs], 1, repeats
                )
    return _rows(min(our_times), min(pinging_times), min(their_times), repeats)


def _rows(ours: float, pinging: float, theirs: float | None, repeats: int) -> list[dict[str, Any]]:
    common: dict[str, Any] = {
        "reference": None if theirs is None else theirs * 1e3,
        "unit": "ms/cycle",
        "reference_name": "SkPy 0.11 with requests",
        "statistic": f"min of {repeats} cycles, TLS",
        "ratio_is": "skyproto time / reference time",
    }
    return [
        row(
            "connect cycle",
            skyproto=ours * 1e3,
            ratio=None if theirs is None else ours / theirs,
            goal=GOAL,
            **common,
        ),
        # The default loop's extra ping, shown beside the graded row; "met" says only whether it
        # is no slower either.
        row(
            "connect cycle, default loop (with its ping)",
            skyproto=pinging * 1e3,
            ratio=None if theirs is None else pinging / theirs,
            goal="<= 1.1",
            **common,
        ),
    ]
