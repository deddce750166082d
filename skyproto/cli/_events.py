"""The ``events`` verb: each event as a line of JSON, acknowledged, until told to stop."""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import json
from typing import Any

import attrs

from .._flow import now
from ..events import Event, Message, UnknownEvent
from ..loop import EventLoop, LoopPolicy
from ..session import Session, SessionState
from ._base import EXIT_OK, CliContext, Verb
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

__all__ = ["CLI_LOOP_POLICY", "EVENTS", "event_record"]

#: The event loop's policy for ``events``: the command line never waits out a long Retry-After,
#: and gives up on a server that is gone after 6 failures in a row (at most about 35 s of backoff).
CLI_LOOP_POLICY = LoopPolicy(max_retry_after=5.0, backoff_max=10.0, max_failures=6)


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
        "then acknowledged. Ctrl-C stops it cleanly (exit 0). When the server cannot be reached it "
        "gives up after a few failures in a row (exit 1)."
    )


def _run_events(args: argparse.Namespace, ctx: CliContext) -> int:
    # Ctrl-C (exit 0), a closed stdout and a server that is gone are the command line's to report.
    session: Session | None = None
    before: SessionState | None = None
    with ctx.runner() as runner:
        try:
            session = resume(args, ctx, runner)
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
