"""The session verbs: ``login``, ``endpoints``, ``ping`` and ``conversations``.

Each runs all of its flows with one transport, through ``ctx.runner()``, holding the lock on the
state file (:mod:`skyproto.cli._saved`) from start to end.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from ._base import EXIT_OK, CliContext, Verb
from ._saved import (
    add_json_option,
    add_login_options,
    add_state_option,
    holding_state,
    new_session,
    positive_int,
    require_saved,
    save,
    save_if_changed,
)
from ._teams import add_teams_option, list_conversations
from ._teams import run_login as run_teams_login

__all__ = ["CONVERSATIONS", "ENDPOINTS", "LOGIN", "PING", "conversation_ids"]


# -- login --------------------------------------------------------------------------------------


def _configure_login(parser: argparse.ArgumentParser) -> None:
    add_login_options(parser)
    add_teams_option(parser)
    add_state_option(parser)
    add_json_option(parser)
    parser.epilog = (
        "Logs in, registers an endpoint and publishes its config, then prints the user id, the "
        "messaging base and the endpoint id (with --json, one object with user_id, messenger, "
        "endpoint_id and state), and saves the session (never the password) to --state, "
        "replacing that file. Global options go before or after the verb, e.g. "
        "'skyproto login --hosts emulator.json --user fred@example.com'."
    )


def _run_login(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.teams:  # the options were checked (_saved.check_login_usage)
        return run_teams_login(args, ctx)
    session = new_session(args, ctx)
    with ctx.runner() as runner, ctx.progress("logging in"):
        state = runner.run(session.connect())
    save(args.state, state)
    registration = state.registration
    record = {
        "user_id": state.user_id,
        "messenger": registration.messenger if registration else None,
        "endpoint_id": state.endpoint_id,
        "state": args.state,
    }
    if args.json:
        ctx.out(json.dumps(record))
        return EXIT_OK
    for key, value in record.items():
        ctx.out(f"{key}: {'(none)' if value is None else value}")
    return EXIT_OK


# -- endpoints, ping, conversations ---------------------------------------------------------


def _configure_endpoints(parser: argparse.ArgumentParser) -> None:
    add_state_option(parser)
    add_json_option(parser)
    parser.epilog = "Prints one endpoint id per line (with --json, one JSON array of them)."


def _run_endpoints(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.runner() as runner:
        session = require_saved(args, ctx, runner)
        before = session.state
        try:
            ids = runner.run(session.list_endpoints())
        finally:
            save_if_changed(args.state, session, before)
    if args.json:
        ctx.out(json.dumps(list(ids)))
        return EXIT_OK
    for endpoint_id in ids:
        ctx.out(endpoint_id)
    return EXIT_OK


def _configure_ping(parser: argparse.ArgumentParser) -> None:
    add_state_option(parser)
    parser.add_argument(
        "--timeout",
        metavar="N",
        type=positive_int,
        default=12,
        help="seconds the endpoint stays active (default: 12)",
    )


def _run_ping(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.runner() as runner:
        session = require_saved(args, ctx, runner)
        before = session.state
        try:
            response = runner.run(session.ping(args.timeout))
        finally:
            save_if_changed(args.state, session, before)
    ctx.out(
        f"ping: HTTP {response.status}, endpoint {session.state.endpoint_id} "
        f"active for {args.timeout} s"
    )
    return EXIT_OK


def _configure_conversations(parser: argparse.ArgumentParser) -> None:
    add_state_option(parser)
    add_json_option(parser)
    parser.epilog = (
        "Pages through the recent-conversations listing from its start, following each "
        "syncState link until an empty page, and prints one conversation id per line (with "
        "--json, one JSON array of them, printed once the listing ends)."
    )


def conversation_ids(items: list[Any]) -> Iterator[str | None]:
    for item in items:
        ident = item.get("id") if isinstance(item, dict) else None
        yield ident if isinstance(ident, str) and ident else None


def _run_conversations(args: argparse.Namespace, ctx: CliContext) -> int:
    skipped = 0
    found: list[str] = []
    with ctx.runner() as runner:
        session = require_saved(args, ctx, runner)
        if session.teams:
            return list_conversations(args, ctx, runner, session)
        before = session.state
        try:
            listing = session.conversations()
            # Listed in full every time: the registration first, so the right link is forgotten.
            runner.run(session.ensure_registration())
            listing.restart()
            for items in runner.pages(listing):
                for ident in conversation_ids(items):
                    if ident is None:
                        skipped += 1
                    elif args.json:
                        found.append(ident)
                    else:
                        ctx.out(ident)
        finally:
            save_if_changed(args.state, session, before)
    if args.json:
        ctx.out(json.dumps(found))
    if skipped:
        ctx.err(f"warning: skipped {skipped} listing item(s) without a conversation id")
    return EXIT_OK


LOGIN = Verb(
    "login",
    "log in, register an endpoint and save the session to --state",
    holding_state(_run_login, login=True),
    _configure_login,
)
ENDPOINTS = Verb(
    "endpoints",
    "list every endpoint id of the account",
    holding_state(_run_endpoints, needs_saved=True),
    _configure_endpoints,
)
PING = Verb(
    "ping",
    "keep this endpoint active",
    holding_state(_run_ping, needs_saved=True),
    _configure_ping,
)
CONVERSATIONS = Verb(
    "conversations",
    "list the recent conversations' ids (syncState paging)",
    holding_state(_run_conversations, needs_saved=True),
    _configure_conversations,
)
