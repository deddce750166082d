"""The Teams Free verbs of the command line: ``login --teams``, ``messages`` and ``send`` (which
also work on a legacy session, through its messaging host), and ``conversations`` on a Teams
session (docs/teams.md).

``login --teams`` signs in with a device code: one line on stderr holds the URL to open and the
code to enter; the verb polls until the sign-in finishes, saves the session to ``--state`` and
prints the Skype id. With a refresh token already in that file it refreshes once instead (and
saves the rotated refresh token); a refresh token the service refuses falls back to a device
code. The other verbs resume the saved session, re-minting its Skype token from the refresh
token when it lapsed (and only then: no identity or authz call while it is valid), and write the
file back when the session changed. A refresh token refused for good ends them with a
:class:`~skyproto.SkypeAuthException` asking for ``skyproto login --teams``.

The saved-session helpers are those of :mod:`skyproto.cli._saved`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .. import store
from .._flow import now
from ..auth.teams import DeviceCodeLogin, DeviceLoginRequired, DevicePrompt
from ..chat import conversations_listing, messages_listing, send, summarise_message
from ..errors import LocalProtocolError, SkypeAuthException, SkypeTokenException
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
        try:
            state = runner.run(session.connect())
        except BaseException:
            if saved is not None and _rotated(saved, session.state):
                # The saved refresh token is spent: its successor goes to the file, or is lost.
                save(args.state, attrs.evolve(saved, teams=session.state.teams))
            raise
    save(args.state, state)
    if getattr(args, "json", False):
        ctx.out(json.dumps({"user_id": state.user_id, "state": args.state}))
        return EXIT_OK
    # The Skype id alone on stdout, so that scripts can take it as it is.
    ctx.out(f"{state.user_id}")
    ctx.err(f"state: {args.state}")
    return EXIT_OK


def _chat_session(args: argparse.Namespace, ctx: CliContext, runner: FlowRunner) -> Session:
    """The session saved at ``--state``: a Teams Free one under the Teams trust rules, or a
    legacy one as it is (``messages`` and ``send`` then go through its messaging host)."""
    session = require_saved(args, ctx, runner)
    if not session.teams:
        return session
    return Session(_hosts(ctx), state=session.state)


def _rotated(before: SessionState, after: SessionState) -> bool:
    """Whether ``after`` holds a new refresh token in place of the one ``before`` held."""
    old = before.teams.refresh_token if before.teams is not None else None
    new = after.teams.refresh_token if after.teams is not None else None
    return old is not None and new not in (None, old)


@contextlib.contextmanager
def _resuming(args: argparse.Namespace, session: Session) -> Iterator[None]:
    """Run a verb on a saved session: save it back if it changed; a refresh token the identity
    service refused for good becomes a :class:`~skyproto.SkypeAuthException` that says what to
    run, and is dropped from the file so that it is never sent again. A refresh token rotated
    before the verb failed (its predecessor is spent) is saved too."""
    before = session.state
    try:
        yield
    except DeviceLoginRequired as exc:
        state = session.state
        if state.teams is not None and before.teams is not None and state.teams != before.teams:
            save(args.state, state)
        raise SkypeAuthException(
            f"{exc.message}; run 'skyproto login --teams' to sign in again"
        ) from exc
    except BaseException:
        if _rotated(before, session.state):
            save(args.state, session.state)
        raise
    finally:
        save_if_changed(args.state, session, before)


def list_conversations(
    args: argparse.Namespace, ctx: CliContext, runner: FlowRunner, session: Session
) -> int:
    """``conversations`` on a Teams session: one conversation id per line."""
    session = Session(_hosts(ctx), state=session.state)
    skipped = 0
    found: list[str] = []
    with _resuming(args, session):
        for items in runner.pages(conversations_listing(session)):
            for item in items:
                ident = item.get("id") if isinstance(item, dict) else None
                if isinstance(ident, str) and ident and getattr(args, "json", False):
                    found.append(ident)
                elif isinstance(ident, str) and ident:
                    ctx.out(ident)
                else:
                    skipped += 1
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
        "Prints the newest messages of a conversation of the session in --state (Teams or "
        "legacy), newest first, one JSON object per line with id, from (the sender's id, such "
        "as 8:live:.cid.123), content (as the service sent it), messagetype and composetime."
    )


def _run_messages(args: argparse.Namespace, ctx: CliContext) -> int:
    wanted: int = args.count
    with ctx.runner() as runner:
        session = _chat_session(args, ctx, runner)
        printed = 0
        with _resuming(args, session):
            listing = messages_listing(session, args.conversation, count=min(wanted, _MAX_PAGE))
            if not session.teams:
                # A legacy listing keeps its syncState link in the session: from the newest.
                runner.run(session.ensure_registration())
                listing.restart()
            for items in runner.pages(listing):
                for item in items[: wanted - printed]:
                    ctx.out(json.dumps(summarise_message(item), ensure_ascii=False))
                    printed += 1
                if printed >= wanted:
                    break
    return EXIT_OK


def _configure_send(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("conversation", metavar="CONVERSATION", help="a conversation id")
    parser.add_argument("text", metavar="TEXT", help="the message text (sent as plain text)")
    add_state_option(parser)
    parser.epilog = (
        "Sends TEXT to a conversation of the session in --state (Teams or legacy) and prints "
        "one JSON object: the clientmessageid, the message id, and arrival: the service's "
        "OriginalArrivalTime as it was given."
    )


def _run_send(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.runner() as runner:
        session = _chat_session(args, ctx, runner)
        with _resuming(args, session):
            sent = runner.run(send(session, args.conversation, args.text))
    record: dict[str, Any] = {
        "clientmessageid": sent.clientmessageid,
        "id": sent.id,
        # As the service gave it (a number or a string), not reformatted.
        "arrival": sent.original_arrival_time,
    }
    ctx.out(json.dumps(record))
    return EXIT_OK


MESSAGES = Verb(
    "messages",
    "print a conversation's newest messages as JSON lines",
    holding_state(_run_messages, needs_saved=True),
    _configure_messages,
)
SEND = Verb(
    "send",
    "send a text message and print the service's answer",
    holding_state(_run_send, needs_saved=True),
    _configure_send,
)
