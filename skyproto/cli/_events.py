"""The ``events`` verb: each event as a line of JSON, acknowledged, until told to stop.

A legacy session long-polls (:class:`~skyproto.EventLoop`); a Teams Free session runs the
Trouter client (docs/trouter.md, "From the command line") with its Skype token, the endpoint id
kept in its saved state, a re-mint through the session on 401, and the chat service's listing
as the catch-up after a gap."""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import json
import uuid
from collections.abc import Sequence
from typing import Any

import attrs

from .._flow import Flow, now
from ..chat import conversations_listing, messages_listing
from ..errors import LocalProtocolError
from ..events import Event, Message, UnknownEvent
from ..loop import EventLoop, LoopPolicy
from ..session import Session, SessionState
from ..trouter import TrouterClient, TrouterPolicy, events_from_messages
from ._base import EXIT_OK, CliContext, FlowRunner, Verb
from ._saved import (
    add_login_options,
    add_state_option,
    holding_state,
    new_session,
    positive_int,
    positive_seconds,
    resume,
    save_if_changed,
)
from ._teams import _hosts as teams_hosts
from ._teams import _resuming as resuming

__all__ = ["CLI_LOOP_POLICY", "CLI_TROUTER_POLICY", "EVENTS", "event_record"]

#: The event loop's policy for ``events``: the command line never waits out a long Retry-After,
#: and gives up on a server that is gone after 6 failures in a row (at most about 35 s of backoff).
CLI_LOOP_POLICY = LoopPolicy(max_retry_after=5.0, backoff_max=10.0, max_failures=6)
#: The same limits for a Teams Free session's Trouter client (docs/trouter.md).
CLI_TROUTER_POLICY = TrouterPolicy(max_retry_after=5.0, backoff_max=10.0, max_failures=6)
#: Bounds on the catch-up listing after a gap: conversation pages, and message pages per
#: conversation (newest first; the listing stops at the first message older than the run).
_CATCH_UP_CONVERSATION_PAGES = 10
_CATCH_UP_MESSAGE_PAGES = 10


# -- events -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _message_fields(message: Message) -> dict[str, Any]:
    return {
        "user_id": message.user_id,
        "chat_id": message.chat_id,
        "message_id": message.id,
        "message_type": message.message_type,
        "content": message.content,
    }


def event_record(event: Event) -> dict[str, Any]:
    """``event`` as a JSON-ready object: its class, resource type, id and ISO time first, then
    its own fields (a message's sender, chat, id, type and content); an unknown event keeps its
    ``raw`` element and the ``reason`` it could not be read."""
    record: dict[str, Any] = {
        "type": type(event).__name__,
        "resource_type": event.resource_type,
        "id": event.id,
        "time": _plain(event.time),
    }
    if isinstance(event, UnknownEvent):
        record["reason"] = event.reason
        record["raw"] = event.raw
        return record
    for field in attrs.fields(type(event)):
        if field.name in ("id", "time", "ack_url"):
            continue
        value = getattr(event, field.name)
        if isinstance(value, Message):
            record.update(_message_fields(value))
        else:
            record[field.name] = _plain(value)
    return record


def _print_event(ctx: CliContext, event: Event) -> None:
    ctx.out(json.dumps(event_record(event)))


def _configure_events(parser: argparse.ArgumentParser) -> None:
    add_state_option(parser)
    parser.add_argument("--count", metavar="N", type=positive_int, help="stop right after N events")
    parser.add_argument(
        "--timeout", metavar="S", type=positive_seconds, help="stop after S seconds"
    )
    add_login_options(parser)
    parser.epilog = (
        "Resumes the session saved in --state without logging in; without a state file it "
        "logs in as 'login' does (--user/--guest). Each event is printed as one line of JSON, "
        "then acknowledged. On a Teams Free session (login --teams) events are pushed over "
        "Trouter, and the chat service is listed after a gap so that nothing is lost or printed "
        "twice (docs/trouter.md). Ctrl-C stops it cleanly (exit 0). When the server cannot be "
        "reached it gives up after a few failures in a row (exit 1)."
    )


def _millis(item: Any) -> int | None:
    """A listed message's arrival in epoch milliseconds: its id (the service's ids are arrival
    times in milliseconds), else its ``originalarrivaltime``; ``None`` when neither reads."""
    if isinstance(item, dict):
        ident = item.get("id")
        if isinstance(ident, str) and ident.isascii() and ident.isdigit() and len(ident) < 19:
            return int(ident)
        stamp = item.get("originalarrivaltime") or item.get("version")
        if isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) < 19:
            return int(stamp)
        if isinstance(stamp, str) and len(stamp) < 64:
            try:
                moment = dt.datetime.fromisoformat(stamp)
            except ValueError:
                return None
            if moment.utcoffset() is not None:
                return int(moment.timestamp() * 1000)
    return None


def _catch_up(session: Session, since: int) -> Flow[Sequence[Event]]:
    """Flow: the chat messages that arrived since ``since`` (epoch ms), as the events a push
    would have carried: the conversation listing, then each recently active conversation's
    messages, newest first, until one is older than ``since``. Ids de-duplicate what was also
    pushed (the client's window)."""
    found: list[tuple[int, Any]] = []
    conversations = conversations_listing(session, max_pages=_CATCH_UP_CONVERSATION_PAGES)
    while (page := (yield from conversations.next_page())) is not None:
        for item in page:
            chat = item.get("id") if isinstance(item, dict) else None
            latest = _millis(item.get("lastMessage")) if isinstance(item, dict) else None
            if not isinstance(chat, str) or not chat or (latest is not None and latest < since):
                continue
            messages = messages_listing(session, chat, max_pages=_CATCH_UP_MESSAGE_PAGES)
            while (items := (yield from messages.next_page())) is not None:
                # A message without a readable arrival time is left out: it could not be told
                # apart from history, and it would come back at every catch-up.
                times = [(_millis(m), m) for m in items]
                found.extend((t, m) for t, m in times if t is not None and t >= since)
                if any(t is not None and t < since for t, _ in times):
                    break
    found.sort(key=lambda pair: pair[0])  # oldest first, as pushes come
    return events_from_messages([message for _, message in found])


def _trouter_endpoint(session: Session) -> str:
    """The session's Trouter endpoint id, made and kept in its Teams state the first time."""
    teams = session.state.teams
    if teams is None:
        raise LocalProtocolError("a Trouter endpoint belongs to a Teams Free session")
    if teams.trouter_endpoint is None:
        teams = attrs.evolve(teams, trouter_endpoint=str(uuid.uuid4()))
        session.state = attrs.evolve(session.state, teams=teams)
    return teams.trouter_endpoint or ""


def _run_trouter(
    args: argparse.Namespace, ctx: CliContext, runner: FlowRunner, session: Session
) -> None:
    """``events`` on a Teams Free session: push events over Trouter (docs/trouter.md)."""
    session = Session(teams_hosts(ctx), state=session.state)
    with resuming(args, session):
        token = runner.run(session.skype_token())
        start = runner.run(now())
        since = int(start.timestamp() * 1000)

        def renew() -> Flow[str]:
            fresh = yield from session.renew_skype_token()
            return fresh.token

        client = TrouterClient(
            token.token,
            _trouter_endpoint(session),
            lambda event: _print_event(ctx, event),
            hosts=session.hosts,
            renew_token=renew,
            catch_up=lambda: _catch_up(session, since),
            policy=CLI_TROUTER_POLICY,
        )
        deadline = None if args.timeout is None else start + dt.timedelta(seconds=args.timeout)
        runner.run(client.run(max_events=args.count, deadline=deadline))


def _run_events(args: argparse.Namespace, ctx: CliContext) -> int:
    # Ctrl-C (exit 0), a closed stdout and a server that is gone are the command line's to report.
    session: Session | None = None
    before: SessionState | None = None
    with ctx.runner() as runner:
        try:
            session = resume(args, ctx, runner)
            if session is not None and session.teams:
                teams, session = session, None  # saved by _run_trouter, as it ends
                _run_trouter(args, ctx, runner, teams)
                return EXIT_OK
            if session is not None:
                before = session.state
            else:
                session = new_session(args, ctx)
                with ctx.progress("logging in"):
                    runner.run(session.connect())
            deadline = None
            if args.timeout is not None:
                deadline = runner.run(now()) + dt.timedelta(seconds=args.timeout)
            loop = EventLoop(
                session, lambda event: _print_event(ctx, event), policy=CLI_LOOP_POLICY
            )
            with ctx.progress("waiting for events (Ctrl-C stops)"):
                runner.run(loop.run(max_events=args.count, deadline=deadline))
        finally:
            if session is not None:
                save_if_changed(args.state, session, before)
    return EXIT_OK


EVENTS = Verb(
    "events",
    "print events as JSON lines (and acknowledge them) until --count, --timeout or Ctrl-C",
    holding_state(_run_events),
    _configure_events,
)
