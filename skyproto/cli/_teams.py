"""The Teams Free verbs of the command line: ``login --teams``, ``messages`` and ``send``, and
``conversations`` on a Teams session (docs/teams.md).

``login --teams`` signs in with a device code: one line on stderr holds the URL to open and the
code to enter; the verb polls until the sign-in finishes, saves the session to ``--state`` and
prints the Skype id. With a refresh token already in that file it refreshes once instead (and
saves the rotated refresh token); a refresh token the service refuses falls back to a device
code. The other verbs resume the saved session, re-minting its Skype token from the refresh
token when it lapsed, and write the file back when the session changed.

The saved-session helpers are those of :mod:`skyproto.cli._saved`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from .. import store
from .._flow import now
from ..auth.teams import DeviceCodeLogin, DevicePrompt
from ..chat import conversations_listing, messages_listing, send, summarise_message
from ..errors import LocalProtocolError, SkypeTokenException
from ..hosts import Hosts
from ..session import Session, SessionState
from ._base import EXIT_OK, CliContext, FlowRunner, Verb
from ._saved import (
    add_state_option,
    holding_state,
    positive_int,
    require_saved,
    save,
    save_if_changed,
)

__all__ = ["MESSAGES", "SEND", "add_teams_option", "list_conversations", "run_login"]

#: Messages ``messages`` prints when ``--count`` is not given.
DEFAULT_COUNT = 20
_MAX_PAGE = 200


def add_teams_option(parser: argparse.ArgumentParser) -> None:
    """``--teams`` on ``login``."""
    parser.add_argument(
        "--teams",
        action="store_true",
        help="sign in to Teams Free (the successor of consumer Skype) with a device code; "
        "with a refresh token in --state, refresh it instead",
    )


def _hosts(ctx: CliContext) -> Hosts:
    """The context's host map as a Teams Free profile (its trust rules, not the legacy ones)."""
    hosts = ctx.hosts
    return Hosts.teams(hosts.overrides, hosts.extra_trusted)


def _prompt(ctx: CliContext) -> Callable[[DevicePrompt], None]:
    def show(prompt: DevicePrompt) -> None:
        ctx.err(str(prompt))

    return show


def run_login(args: argparse.Namespace, ctx: CliContext) -> int:
    """``login --teams``."""
    if getattr(args, "user", None) or getattr(args, "guest", None):
        raise LocalProtocolError("--teams signs in with a device code; drop --user/--guest")
    hosts = _hosts(ctx)
    with ctx.runner() as runner:
        saved: SessionState | None = None
        if os.path.lexists(args.state):
            try:
                saved = store.load_state(args.state, now=runner.run(now()), hosts=hosts)
            except SkypeTokenException as exc:
                ctx.err(f"warning: ignoring the saved session ({exc.message})")
        state = SessionState()
        if saved is not None and saved.teams is not None and saved.teams.refresh_token:
            # Only what re-minting needs: the Skype token is minted afresh, once.
            state = SessionState(user_id=saved.user_id, paging=saved.paging, teams=saved.teams)
        session = Session(hosts, credentials=DeviceCodeLogin(_prompt(ctx)), state=state)
        state = runner.run(session.connect())
    save(args.state, state)
    if getattr(args, "json", False):
        ctx.out(json.dumps({"user_id": state.user_id, "state": args.state}))
        return EXIT_OK
    # The Skype id alone on stdout, so that scripts can take it as it is.
    ctx.out(f"{state.user_id}")
    ctx.err(f"state: {args.state}")
    return EXIT_OK


def _teams_session(args: argparse.Namespace, ctx: CliContext, runner: FlowRunner) -> Session:
    session = require_saved(args, ctx, runner)
    if not session.teams:
        raise LocalProtocolError(
            f"the session in {args.state!r} is not a Teams one; run 'skyproto login --teams'"
        )
    return Session(_hosts(ctx), state=session.state)


def list_conversations(
    args: argparse.Namespace, ctx: CliContext, runner: FlowRunner, session: Session
) -> int:
    """``conversations`` on a Teams session: one conversation id per line."""
    session = Session(_hosts(ctx), state=session.state)
    before = session.state
    skipped = 0
    found: list[str] = []
    try:
        for items in runner.pages(conversations_listing(session)):
            for item in items:
                ident = item.get("id") if isinstance(item, dict) else None
                if isinstance(ident, str) and ident and getattr(args, "json", False):
                    found.append(ident)
                elif isinstance(ident, str) and ident:
                    ctx.out(ident)
                else:
                    skipped += 1
    finally:
        save_if_changed(args.state, session, before)
    if getattr(args, "json", False):
        ctx.out(json.dumps(found))
    if skipped:
        ctx.err(f"warning: skipped {skipped} listing item(s) without a conversation id")
    return EXIT_OK


def _configure_messages(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("conversation", metavar="CONVERSATION", help="a conversation id")
    parser.add_argument(
        "--count",
        type=positive_int,
        default=DEFAULT_COUNT,
        help=f"how many messages to print, newest first (default: {DEFAULT_COUNT})",
    )
    add_state_option(parser)
    parser.epilog = (
        "Prints the newest messages of a conversation of the Teams session in --state, one JSON "
        "object per line with id, from, content, messagetype and composetime."
    )


def _run_messages(args: argparse.Namespace, ctx: CliContext) -> int:
    wanted: int = args.count
    with ctx.runner() as runner:
        session = _teams_session(args, ctx, runner)
        before = session.state
        printed = 0
        try:
            listing = messages_listing(session, args.conversation, count=min(wanted, _MAX_PAGE))
            for items in runner.pages(listing):
                for item in items[: wanted - printed]:
                    ctx.out(json.dumps(summarise_message(item), ensure_ascii=False))
                    printed += 1
                if printed >= wanted:
                    break
        finally:
            save_if_changed(args.state, session, before)
    return EXIT_OK


def _configure_send(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("conversation", metavar="CONVERSATION", help="a conversation id")
    parser.add_argument("text", metavar="TEXT", help="the message text (sent as plain text)")
    add_state_option(parser)
    parser.epilog = (
        "Sends TEXT to a conversation of the Teams session in --state and prints one JSON "
        "object: the clientmessageid, the id the service gave and its arrival time."
    )


def _run_send(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.runner() as runner:
        session = _teams_session(args, ctx, runner)
        before = session.state
        try:
            sent = runner.run(send(session, args.conversation, args.text))
        finally:
            save_if_changed(args.state, session, before)
    record: dict[str, Any] = {
        "clientmessageid": sent.clientmessageid,
        "id": sent.id,
        "arrival": sent.arrival.isoformat() if sent.arrival is not None else None,
    }
    ctx.out(json.dumps(record))
    return EXIT_OK


MESSAGES = Verb(
    "messages",
    "print a conversation's newest messages as JSON lines (Teams session)",
    holding_state(_run_messages, needs_saved=True),
    _configure_messages,
)
SEND = Verb(
    "send",
    "send a text message and print the service's answer (Teams session)",
    holding_state(_run_send, needs_saved=True),
    _configure_send,
)
