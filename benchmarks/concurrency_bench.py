"""Concurrency: many sessions in one process, each holding long polls, against one emulator.

N sessions share one :class:`~skyproto.transports.httpx.AsyncHttpxTransport` (as configured by
default) in one client process; the emulator serves them from another process. Each session
signs in as an account of its own (the emulator serves N numbered accounts, as N bots would be
N accounts: with one shared account every session's endpoint listing would carry every other
session's endpoint, and the run would cost N squared), connects (SOAP login, registration,
endpoint config and listing), then runs the event loop for
:data:`POLLS` answered polls: it subscribes, pings, and polls; the server holds every poll until
it queues the next event, every :data:`INTERVAL` seconds, for every subscribed endpoint; each
poll returns at most one event (a session that fell behind finds its next one waiting), which
the loop delivers and acknowledges. So the polls are held for about ``POLLS * INTERVAL``
seconds, the floor of the wall time.

Measured per N: wall time (first connect to last poll), the time until every session was
connected, the client process's peak RSS (``resource.getrusage`` in the client subprocess) and
its growth per session, and errors by kind. Beside it, the reference client, SkPy 0.11, with one
thread per session (its way: each ``Skype`` has its own ``requests`` session), getting and
acknowledging events the same way. Both sides talk TLS to the emulator, since SkPy only speaks
``https``.

Goals at N = :data:`GOAL_SESSIONS`: no error, a client peak RSS of at most
:data:`GOAL_RSS_MB` MB, and a wall time within :data:`GOAL_WALL_FACTOR` times the hold time.
``main(smoke=True)`` runs N = 10 on both sides with a short interval and checks nothing about
time. ``python -m benchmarks.concurrency_bench [--smoke] [--sessions N ...] [--skpy N ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import row

#: Answered polls per session.
POLLS = 10
#: Seconds between the events the server queues (so, about how long each poll is held).
INTERVAL = 5.0
SMOKE_INTERVAL = 0.2
#: Session counts for skyproto and for the reference client.
SESSIONS = (100, 1000, 5000)
SKPY_SESSIONS = (100, 1000)
GOAL_SESSIONS = 1000
GOAL_RSS_MB = 150.0
GOAL_WALL_FACTOR = 2.0
#: A client run that takes longer than this is killed and reported as failed.
CLIENT_LIMIT = 900.0
_ROOT = Path(__file__).resolve().parent.parent


# -- the server process ----------------------------------------------------------------------


def serve(interval: float, tls: bool, accounts: int) -> int:
    """Run the emulator with ``accounts`` numbered accounts, print its profile, queue a ``text``
    event every ``interval`` seconds until standard input closes, then print the server's CPU
    seconds."""
    from skyproto.emulator import EmulatorServer, Scenario, numbered_accounts

    # One event per poll: a session that fell behind catches up one poll (and one ack) at a
    # time, so every session does the same work however long the run takes.
    scenario = Scenario(hold=max(30.0, 3 * interval), events=(), events_per_poll=1)
    with EmulatorServer(scenario, tls=tls, accounts=numbered_accounts(accounts)) as server:
        print(server.profile_json(), flush=True)
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(interval):
                server.queue_event("text")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        sys.stdin.read()
        stop.set()
        ticker.join()
        errors = len(server.errors)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "server_errors": errors}))
    return 0


# -- the client processes --------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _error_name(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(exc).__name__ + (f" ({type(cause).__name__})" if cause is not None else "")


async def _skyproto_clients(sessions: int, profile: dict[str, Any]) -> dict[str, Any]:
    from skyproto.transports import run_async
    from skyproto.transports.httpx import AsyncHttpxTransport

    from skyproto import Credentials, EventLoop, LoopPolicy, Session
    from skyproto.emulator.profile import hosts_for, numbered_accounts

    hosts = hosts_for(profile["hosts"])
    bots = numbered_accounts(profile["accounts"])
    errors: Counter[str] = Counter()
    counts = Counter[str]()
    connected_at: list[float] = []
    # The default budgets hold DEFAULT_POLL_CONNECTIONS polls; more sessions need a bigger one.
    from skyproto.transports import DEFAULT_POLL_CONNECTIONS

    options: dict[str, Any] = (
        {"poll_connections": sessions} if sessions > DEFAULT_POLL_CONNECTIONS else {}
    )
    async with AsyncHttpxTransport(**options) as transport:
        baseline = _peak_rss_mb()
        started = time.perf_counter()

        async def one(bot: Any) -> None:
            session = Session(hosts, credentials=Credentials(bot.user, bot.password))
            try:
                await run_async(session.connect(), transport)
                connected_at.append(time.perf_counter() - started)
                loop = EventLoop(session, lambda _event: None, policy=LoopPolicy(hold=30.0))
                stats = await run_async(loop.run(max_polls=POLLS), transport)
                counts["events"] += stats.delivered
                counts["acks"] += stats.acks
                counts["failures"] += stats.failures + stats.ack_failures
            except Exception as exc:
                errors[_error_name(exc)] += 1

        cpu = _cpu_s()
        await asyncio.gather(*(one(bot) for bot in bots[:sessions]))
        wall = time.perf_counter() - started
        cpu = _cpu_s() - cpu
    return _result(sessions, wall, connected_at, baseline, errors, counts, cpu, options)


def _skpy_clients(sessions: int, profile: dict[str, Any]) -> dict[str, Any]:
    import skpy
    from skpy.conn import SkypeConnection

    from skyproto.emulator.profile import hosts_for, numbered_accounts

    hosts = hosts_for(profile["hosts"])
    bots = numbered_accounts(profile["accounts"])
    for name in sorted(vars(SkypeConnection)):
        real = getattr(SkypeConnection, name)
        if name.startswith("API_") and isinstance(real, str):
            setattr(SkypeConnection, name, hosts.url(real))
    os.environ["REQUESTS_CA_BUNDLE"] = profile["ca_bundle"]
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    errors: Counter[str] = Counter()
    counts = Counter[str]()
    connected_at: list[float] = []
    lock = threading.Lock()
    baseline = _peak_rss_mb()
    started = time.perf_counter()

    def one(bot: Any) -> None:
        try:
            sk = skpy.Skype(bot.user, bot.password)
            with lock:
                connected_at.append(time.perf_counter() - started)
            endpoint = sk.conn.endpoints["main"]
            endpoint.subscribe()
            for _ in range(POLLS):
                for raw in endpoint.getEvents():
                    event = skpy.SkypeEvent.fromRaw(sk, raw)
                    event.ack()
                    with lock:
                        counts["events"] += 1
                        counts["acks"] += 1
            sk.conn.sess.close()
        except Exception as exc:
            with lock:
                errors[_error_name(exc)] += 1

    cpu = _cpu_s()
    threads = [threading.Thread(target=one, args=(bot,), daemon=True) for bot in bots[:sessions]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu = _cpu_s() - cpu
    return _result(sessions, wall, connected_at, baseline, errors, counts, cpu, {})


def _result(
    sessions: int,
    wall: float,
    connected_at: list[float],
    baseline: float,
    errors: Counter[str],
    counts: Counter[str],
    cpu: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    peak = _peak_rss_mb()
    return {
        "sessions": sessions,
        "wall_s": round(wall, 2),
        "connected": len(connected_at),
        "all_connected_s": round(max(connected_at), 2) if connected_at else None,
        "peak_rss_mb": round(peak, 1),
        "per_session_kb": round((peak - baseline) * 1024 / sessions, 1),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "events": counts["events"],
        "acks": counts["acks"],
        "loop_failures": counts["failures"],
        "client_cpu_s": round(cpu, 2),
        "options": options,
    }


def client(kind: str, sessions: int, profile: dict[str, Any]) -> int:
    """Run ``sessions`` sessions of ``kind`` (``skyproto`` or ``skpy``); print the result."""
    if kind == "skyproto":
        result = asyncio.run(_skyproto_clients(sessions, profile))
    else:
        result = _skpy_clients(sessions, profile)
    print(json.dumps(result), flush=True)
    return 0


# -- the parent: one server and one client process per run -----------------------------------


def run(kind: str, sessions: int, interval: float) -> dict[str, Any]:
    """One measurement: a fresh server process and a client process with ``sessions``."""
    server = subprocess.Popen(
        [sys.executable, "-m", __spec__.name, "--serve", str(interval), str(sessions), "--tls"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=_ROOT,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        profile = server.stdout.readline()
        # httpx trusts the emulator's CA through SSL_CERT_FILE (SkPy's requests through
        # REQUESTS_CA_BUNDLE, set in its client).
        env = {**os.environ, "SSL_CERT_FILE": json.loads(profile)["ca_bundle"]}
        try:
            done = subprocess.run(
                [sys.executable, "-m", __spec__.name, "--client", kind, str(sessions), profile],
                capture_output=True,
                text=True,
                timeout=CLIENT_LIMIT,
                check=False,
                cwd=_ROOT,
                env=env,
            )
            if done.returncode != 0 or not done.stdout.strip():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                result: dict[str, Any] = {"sessions": sessions, "failed": last}
            else:
                result = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            result = {"sessions": sessions, "failed": f"over {CLIENT_LIMIT:g} s"}
        server.stdin.close()
        tail = server.stdout.read().strip().splitlines()
        server.wait(30)
        if tail:
            result.update(json.loads(tail[-1]))
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    result["kind"] = kind
    result["held_s"] = POLLS * interval
    return result


def _rows(ours: dict[str, Any], theirs: dict[str, Any] | None, smoke: bool) -> list[dict[str, Any]]:
    n = ours["sessions"]
    graded = n == GOAL_SESSIONS and not smoke and "failed" not in ours
    extra = {k: v for k, v in ours.items() if k not in ("wall_s", "peak_rss_mb", "errors")}
    ref = theirs if theirs is not None and "failed" not in theirs else None
    held = ours["held_s"]
    rows = []
    # Each goal bounds skyproto's own figure; the "ratio" is the figure the goal is about.
    for metric, unit, goal, ratio_is, figure in (
        (
            "wall_s",
            "s",
            f"<= {GOAL_WALL_FACTOR:g}",
            "wall time / time the polls are held",
            lambda v: v / held,
        ),
        ("peak_rss_mb", "MB", f"<= {GOAL_RSS_MB:g}", "the client's peak RSS in MB", lambda v: v),
        ("errors", "errors", "<= 0", "the number of errors", lambda v: v),
    ):
        value = ours.get(metric)
        other = ref.get(metric) if ref is not None else None
        ratio = figure(value) if graded and isinstance(value, int | float) else None
        rows.append(
            row(
                f"concurrency {n} sessions: {metric}",
                skyproto=value if isinstance(value, int | float) else float("nan"),
                reference=other if isinstance(other, int | float) else None,
                ratio=round(ratio, 3) if ratio is not None else None,
                goal=goal,
                unit=unit,
                reference_name=(
                    f"SkPy 0.11, a thread per session, {theirs.get('sessions')} sessions"
                    if theirs is not None
                    else "none"
                ),
                statistic="one run, client and emulator in separate processes",
                ratio_is=ratio_is,
                **(
                    {"reference_detail": theirs}
                    if theirs is not None and metric == "errors"
                    else {}
                ),
                **(extra if metric == "errors" else {}),
            )
        )
    return rows


#: Per-session cost at any N may be at most this many times the cost at the smallest N.
GOAL_GROWTH = 1.5


def _per_session(result: dict[str, Any]) -> dict[str, float] | None:
    if "failed" in result or not result.get("sessions"):
        return None
    return {
        "cpu": result["client_cpu_s"] * 1e3 / result["sessions"],
        "memory": result["per_session_kb"],
    }


def _growth_rows(
    results: list[dict[str, Any]], theirs: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Client CPU and memory per session at each N, against the same at the smallest N: cost
    that grows linearly with N keeps the ratio near 1."""
    measured = [(r["sessions"], cost) for r in results if (cost := _per_session(r)) is not None]
    if not measured:
        return []
    base = measured[0][1]
    rows = []
    for n, cost in measured:
        other = _per_session(theirs[n]) if n in theirs else None
        for key, label, unit, statistic in (
            ("cpu", "client CPU per session", "ms", "one run; the client's CPU time / N"),
            (
                "memory",
                "memory per session",
                "KB",
                "one run; (peak RSS - RSS before the sessions) / N",
            ),
        ):
            rows.append(
                row(
                    f"concurrency {n} sessions: {label}",
                    skyproto=round(cost[key], 2),
                    reference=None if other is None else round(other[key], 2),
                    ratio=round(cost[key] / base[key], 3) if base[key] > 0 else None,
                    goal=f"<= {GOAL_GROWTH:g}",
                    unit=unit,
                    reference_name=(
                        "none"
                        if other is None
                        else f"SkPy 0.11, a thread per session, {n} sessions"
                    ),
                    statistic=statistic,
                    ratio_is=f"per-session cost at N / at N = {measured[0][0]}",
                )
            )
    return rows


def main(
    smoke: bool = False,
    sessions: Sequence[int] | None = None,
    skpy_sessions: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Measure, print one line per run, and return the rows (see the module docstring)."""
    interval = SMOKE_INTERVAL if smoke else INTERVAL
    ours_ns = (10,) if smoke else tuple(sessions or SESSIONS)
    theirs_ns = (10,) if smoke else tuple(SKPY_SESSIONS if skpy_sessions is None else skpy_sessions)
    theirs: dict[int, dict[str, Any]] = {}
    for n in theirs_ns:
        theirs[n] = run("skpy", n, interval)
        print(_line(theirs[n]), flush=True)
    rows: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for n in ours_ns:
        ours = run("skyproto", n, interval)
        print(_line(ours), flush=True)
        rows += _rows(ours, theirs.get(n), smoke)
        results.append(ours)
    rows += _growth_rows(results, theirs)
    if smoke:
        for row in rows:
            assert "failed" not in row, row
    return rows


def _line(result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"concurrency ({result['kind']}, {result['sessions']} sessions): FAILED {result['failed']}"
    return (
        f"concurrency ({result['kind']}, {result['sessions']} sessions): "
        f"wall {result['wall_s']:.1f} s (polls held {result['held_s']:.0f} s, all connected "
        f"after {result['all_connected_s']} s), peak RSS {result['peak_rss_mb']:.0f} MB "
        f"({result['per_session_kb']:.0f} KB/session), errors {result['errors']} "
        f"{result['error_kinds'] or ''}, events {result['events']}, acks {result['acks']}, "
        f"client CPU {result['client_cpu_s']:.1f} s, server CPU {result.get('cpu_s', 0):.1f} s"
    )


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.concurrency_bench")
    parser.add_argument(
        "--serve", nargs=2, metavar=("INTERVAL", "ACCOUNTS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--client", nargs=3, metavar=("KIND", "N", "PROFILE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--smoke", action="store_true", help="N=10 on both sides, quickly")
    parser.add_argument("--sessions", type=int, nargs="+", help="skyproto session counts")
    parser.add_argument("--skpy", type=int, nargs="*", help="SkPy session counts")
    args = parser.parse_args(argv)
    if args.serve is not None:
        interval, accounts = args.serve
        return serve(float(interval), args.tls, int(accounts))
    if args.client is not None:
        kind, n, profile = args.client
        return client(kind, int(n), json.loads(profile))
    rows = main(args.smoke, args.sessions, args.skpy)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
