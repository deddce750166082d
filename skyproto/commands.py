"""The session verbs of the command line: ``login``, ``events``, ``endpoints``, ``ping``,
``conversations`` and ``demo``.

Each verb is a ``configure(parser)`` / ``run(args, ctx)`` pair, listed in :data:`VERB_SPECS`
(which :mod:`skyproto.cli` turns into its ``VERBS``). A verb runs all of its flows with one
transport, through ``ctx.runner()``.

The saved session
-----------------
``login`` writes the session to a state file (``--state``, default :data:`DEFAULT_STATE_FILE` in
the current directory) with :func:`skyproto.store.save_state`: atomically, mode 0600, replacing any
file that was there. No password is ever part of it. The other verbs resume from that file without
logging in or registering while its tokens are valid, and write it back when the session changed
(a token refreshed, a new registration, another endpoint list).

One process at a time uses a state file: each verb holds its lock from start to end, ``events``
included (:func:`skyproto.store.lock_state`; a ``.NAME.lock`` file beside the state, so its
directory must be writable). ``login`` refuses at once when another process holds it, before
asking for a password or sending anything; the verbs that resume a session wait up to
:data:`STATE_LOCK_WAIT` seconds first. ``login`` also proves that the file can be written (the
directory takes a new file; the target is not a link, a directory or a FIFO) before its first
request, so a failing save never wastes a login and a registered endpoint.

Passwords
---------
The password comes from the environment variable :data:`PASSWORD_ENV`, or from an interactive
prompt when standard input is a terminal; with neither, the verb fails before sending anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import getpass
import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from . import endpoint as _endpoint
from . import store
from . import teams_commands as _teams
from ._flow import now
from .auth import LoginMethod, choose_method, fetch_user_id, login
from .errors import LocalProtocolError, SkypeAuthException, SkypeTokenException
from .events import Event, Message, MessageEvent, UnknownEvent, decode_events
from .loop import EventLoop, LoopPolicy
from .registration import Registration, register
from .session import GuestCredentials, Session, SessionState
from .tokens import Credentials

if TYPE_CHECKING:
    from .cli import CliContext, FlowRunner
    from .emulator import EmulatorServer

__all__ = [
    "CLI_LOOP_POLICY",
    "DEFAULT_STATE_FILE",
    "PASSWORD_ENV",
    "STATE_LOCK_WAIT",
    "VERB_SPECS",
    "event_record",
]

#: Where the session is saved when ``--state`` is not given (relative to the current directory).
DEFAULT_STATE_FILE = "skyproto-state.json"
#: The environment variable holding the account password.
PASSWORD_ENV = "SKYPROTO_PASSWORD"
#: Seconds a verb resuming a saved session waits for another process to release the state file.
STATE_LOCK_WAIT = 3.0
#: The event loop's policy for ``events``: the command line never waits out a long Retry-After,
#: and gives up on a server that is gone after 6 failures in a row (at most about 35 s of backoff).
CLI_LOOP_POLICY = LoopPolicy(max_retry_after=5.0, backoff_max=10.0, max_failures=6)

EXIT_OK = 0

RunVerb = Callable[[argparse.Namespace, "CliContext"], int]
ConfigureVerb = Callable[[argparse.ArgumentParser], None]


# -- options shared by several verbs ----------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _add_state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        metavar="FILE",
        default=DEFAULT_STATE_FILE,
        help=f"the saved session (default: ./{DEFAULT_STATE_FILE}; written atomically, mode 0600; "
        "used by one process at a time)",
    )


def _add_login_options(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group()
    who.add_argument(
        "--user",
        metavar="USER",
        help=f"e-mail address or Skype name; the password is read from ${PASSWORD_ENV}, "
        "or asked for when standard input is a terminal",
    )
    who.add_argument(
        "--guest",
        metavar="JOIN_URL",
        help="join a public conversation as a guest (https://join.skype.com/<id>); needs --name",
    )
    parser.add_argument("--name", metavar="NAME", help="the guest's display name")
    parser.add_argument(
        "--method",
        choices=[method.value for method in LoginMethod],
        default=LoginMethod.AUTO.value,
        help="password login to use; auto: SOAP for an e-mail address, Live for a Skype name",
    )


# -- credentials and the saved session ----------------------------------------------------------


def _password(user: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise SkypeAuthException(
            f"no password for {user}: set {PASSWORD_ENV}, or run in a terminal to be asked"
        )
    password = getpass.getpass(f"Password for {user}: ")
    if not password:
        raise SkypeAuthException(f"no password given for {user}")
    return password


def _guest(args: argparse.Namespace) -> GuestCredentials | None:
    join = getattr(args, "guest", None)
    if join is None:
        return None
    name = getattr(args, "name", None)
    if not name or not name.strip():
        raise LocalProtocolError("--guest needs --name NAME, the guest's display name")
    return GuestCredentials(join, name)


def _method(args: argparse.Namespace) -> LoginMethod:
    return LoginMethod(getattr(args, "method", LoginMethod.AUTO.value))


def _credentials(args: argparse.Namespace) -> Credentials | GuestCredentials | None:
    """The credentials the options name (asking for the password now); ``None`` without any."""
    guest = _guest(args)
    if guest is not None:
        return guest
    user = getattr(args, "user", None)
    return Credentials(user, _password(user)) if user else None


def _new_session(args: argparse.Namespace, ctx: CliContext) -> Session:
    credentials = _credentials(args)
    if credentials is None:
        raise LocalProtocolError("logging in needs --user USER, or --guest JOIN_URL --name NAME")
    return Session(ctx.hosts, credentials=credentials, method=_method(args))


def _resume(args: argparse.Namespace, ctx: CliContext, runner: FlowRunner) -> Session | None:
    """The session saved at ``--state``, checked at the driver's time; ``None`` if no file.

    The credentials are asked for only if the session must log in again."""
    if not os.path.lexists(args.state):
        return None
    current = runner.run(now())
    state = store.load_state(args.state, now=current, hosts=ctx.hosts)
    return Session(
        ctx.hosts, credentials=lambda: _credentials(args), method=_method(args), state=state
    )


def _require_saved(args: argparse.Namespace, ctx: CliContext, runner: FlowRunner) -> Session:
    session = _resume(args, ctx, runner)
    if session is None:
        raise SkypeTokenException(f"no saved session at {args.state!r}; run 'skyproto login' first")
    return session


def _save(path: str, state: SessionState) -> None:
    store.save_state(path, state)  # under the verb's lock (re-entrant); errors name the file


def _save_if_changed(path: str, session: Session, before: SessionState | None) -> None:
    state = session.state
    if state.skype_token is not None and state != before:
        _save(path, state)


def _holding_state(run: RunVerb, *, login: bool = False, needs_saved: bool = False) -> RunVerb:
    """``run`` holding the lock on ``--state`` from start to end (see the module docstring).

    ``login``: refuse at once if the lock is held, and prove the file can be saved before
    running; otherwise wait up to :data:`STATE_LOCK_WAIT` seconds. ``needs_saved``: the verb only
    refuses without a saved session, so a missing file takes no lock (and leaves no lock file)."""

    def locked(args: argparse.Namespace, ctx: CliContext) -> int:
        if needs_saved and not os.path.lexists(args.state):
            return run(args, ctx)
        with store.lock_state(args.state, wait=0.0 if login else STATE_LOCK_WAIT):
            if login:
                store.check_writable(args.state)
            return run(args, ctx)

    return locked


# -- login --------------------------------------------------------------------------------------


def _configure_login(parser: argparse.ArgumentParser) -> None:
    _add_login_options(parser)
    _add_state_option(parser)
    _teams.add_teams_option(parser)
    parser.epilog = (
        "Logs in, registers an endpoint and publishes its config, then prints the user id, the "
        "messaging base and the endpoint id, and saves the session (never the password) to "
        "--state, replacing that file. Global options go before the verb, e.g. "
        "'skyproto --hosts emulator.json --ca-bundle ca.pem login --user fred@example.com'."
    )


def _run_login(args: argparse.Namespace, ctx: CliContext) -> int:
    if getattr(args, "teams", False):
        return _teams.run_login(args, ctx)
    session = _new_session(args, ctx)
    with ctx.runner() as runner:
        state = runner.run(session.connect())
    _save(args.state, state)
    registration = state.registration
    ctx.out(f"user_id: {state.user_id}")
    ctx.out(f"messenger: {registration.messenger if registration else '(none)'}")
    ctx.out(f"endpoint_id: {state.endpoint_id}")
    ctx.out(f"state: {args.state}")
    return EXIT_OK


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
    _add_state_option(parser)
    parser.add_argument(
        "--count", metavar="N", type=_positive_int, help="stop right after N events"
    )
    parser.add_argument(
        "--timeout", metavar="S", type=_positive_seconds, help="stop after S seconds"
    )
    _add_login_options(parser)
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
            session = _resume(args, ctx, runner)
            if session is not None:
                before = session.state
            else:
                session = _new_session(args, ctx)
                runner.run(session.connect())
            deadline = None
            if args.timeout is not None:
                deadline = runner.run(now()) + dt.timedelta(seconds=args.timeout)
            loop = EventLoop(
                session, lambda event: _print_event(ctx, event), policy=CLI_LOOP_POLICY
            )
            runner.run(loop.run(max_events=args.count, deadline=deadline))
        finally:
            if session is not None:
                _save_if_changed(args.state, session, before)
    return EXIT_OK


# -- endpoints, ping, conversations ---------------------------------------------------------


def _configure_endpoints(parser: argparse.ArgumentParser) -> None:
    _add_state_option(parser)


def _run_endpoints(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.runner() as runner:
        session = _require_saved(args, ctx, runner)
        before = session.state
        try:
            ids = runner.run(session.list_endpoints())
        finally:
            _save_if_changed(args.state, session, before)
    for endpoint_id in ids:
        ctx.out(endpoint_id)
    return EXIT_OK


def _configure_ping(parser: argparse.ArgumentParser) -> None:
    _add_state_option(parser)
    parser.add_argument(
        "--timeout",
        metavar="N",
        type=_positive_int,
        default=12,
        help="seconds the endpoint stays active (default: 12)",
    )


def _run_ping(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.runner() as runner:
        session = _require_saved(args, ctx, runner)
        before = session.state
        try:
            response = runner.run(session.ping(args.timeout))
        finally:
            _save_if_changed(args.state, session, before)
    ctx.out(
        f"ping: HTTP {response.status}, endpoint {session.state.endpoint_id} "
        f"active for {args.timeout} s"
    )
    return EXIT_OK


def _configure_conversations(parser: argparse.ArgumentParser) -> None:
    _add_state_option(parser)
    parser.epilog = (
        "Pages through the recent-conversations listing from its start, following each "
        "syncState link until an empty page, and prints one conversation id per line."
    )


def _conversation_ids(items: list[Any]) -> Iterator[str | None]:
    for item in items:
        ident = item.get("id") if isinstance(item, dict) else None
        yield ident if isinstance(ident, str) and ident else None


def _run_conversations(args: argparse.Namespace, ctx: CliContext) -> int:
    skipped = 0
    with ctx.runner() as runner:
        session = _require_saved(args, ctx, runner)
        if session.teams:
            return _teams.list_conversations(args, ctx, runner, session)
        before = session.state
        try:
            listing = session.conversations()
            # Listed in full every time: the registration first, so the right link is forgotten.
            runner.run(session.ensure_registration())
            listing.restart()
            for items in runner.pages(listing):
                for ident in _conversation_ids(items):
                    if ident is None:
                        skipped += 1
                    else:
                        ctx.out(ident)
        finally:
            _save_if_changed(args.state, session, before)
    if skipped:
        ctx.err(f"warning: skipped {skipped} listing item(s) without a conversation id")
    return EXIT_OK


# -- demo ---------------------------------------------------------------------------------------

#: Event kinds the demo queues, in order (several kinds, two of them acknowledged messages).
DEMO_EVENTS = ("text", "typing", "edit", "presence", "group_text", "custom")
DEMO_HOLD = 1.0
DEMO_EVENTS_PER_POLL = 4
DEMO_MAX_POLLS = 5


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    from .cli import TRANSPORTS  # by then cli is fully loaded

    # Also accepted after the verb; argparse.SUPPRESS keeps the global value when absent.
    parser.add_argument(
        "--transport", choices=TRANSPORTS, default=argparse.SUPPRESS, help="HTTP stack to use"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="write the HTTP traffic, with secrets redacted, to stderr",
    )
    parser.epilog = (
        "Starts the loopback emulator in this process and walks through a session: login, "
        "registration, endpoint config, subscription, polls with acknowledgements and a "
        "syncState listing. Secrets are never shown."
    )


def _hidden(kind: str, expiry: dt.datetime) -> str:
    return f"{kind}: received (value hidden), expires {expiry.isoformat()}"


def _event_line(event: Event) -> str:
    head = f"#{event.id} {type(event).__name__}"
    if isinstance(event, MessageEvent):
        message = event.message
        return f"{head} from {message.user_id} in {message.chat_id}: {message.content!r}"
    if isinstance(event, UnknownEvent):
        return f"{head} ({event.resource_type}): {event.reason}"
    record = event_record(event)
    details = ", ".join(
        f"{key}={value}"
        for key, value in record.items()
        if key not in ("type", "resource_type", "id", "time") and value not in (None, [], "")
    )
    return f"{head} {details}".rstrip()


class _Demo:
    """The demo's steps, each printing its part of the transcript."""

    def __init__(self, ctx: CliContext, runner: FlowRunner, server: EmulatorServer) -> None:
        self.ctx = ctx
        self.runner = runner
        self.server = server
        self.hosts = server.hosts

    def say(self, text: str = "") -> None:
        self.ctx.out(text)

    def run(self) -> None:
        account = self.server.account
        where = urllib.parse.urlsplit(self.hosts.api)
        self.say(f"skyproto demo: the loopback emulator at {where.scheme}://{where.netloc}")
        self.say(f"transport: {self.ctx.transport}")
        self.say(f"account: {account.user} (the emulator's test password is used, never shown)")
        self.say()

        method = choose_method(account.user)
        self.say(f"1. login ({method.value.upper()}, since the user name is an e-mail address)")
        credentials = Credentials(account.user, account.password)
        skype_token = self.runner.run(login(credentials, hosts=self.hosts, method=method))
        user_id = self.runner.run(fetch_user_id(skype_token, hosts=self.hosts))
        self.say("   " + _hidden("Skype token", skype_token.expiry))
        self.say(f"   user id: {user_id}")

        self.say("2. register (registration-token handshake)")
        reg = self.runner.run(register(skype_token, hosts=self.hosts))
        self.say(f"   messaging base: {reg.messenger}")
        self.say(f"   endpoint id: {reg.endpoint_id}")
        self.say("   " + _hidden("registration token", reg.token.expiry))

        state = SessionState(user_id=user_id, skype_token=skype_token, registration=reg)
        endpoint_id = state.endpoint_id
        self.say("3. endpoint config (presence document)")
        answer = self.runner.run(_endpoint.configure_endpoint(reg, endpoint_id))
        self.say(
            f"   PUT …/endpoints/{endpoint_id}/presenceDocs/messagingService: HTTP {answer.status}"
        )

        self.say("4. subscribe (long-poll channel)")
        answer = self.runner.run(_endpoint.subscribe(reg, "SELF"))
        self.say(f"   HTTP {answer.status}, subscription {answer.header('location') or '(none)'}")

        self.say("5. events")
        for kind in DEMO_EVENTS:
            self.server.queue_event(kind)
        self.say(f"   queued on the emulator: {', '.join(DEMO_EVENTS)}")
        self.poll(reg)

        self.say("6. recent conversations (syncState paging)")
        listing = Session(self.hosts, state=state).conversations()
        found: list[str] = []
        for number, items in enumerate(self.runner.pages(listing), start=1):
            ids = [ident or "(no id)" for ident in _conversation_ids(items)]
            found += ids
            self.say(f"   page {number}: {', '.join(ids)}")
        self.say(
            f"   {listing.pages} pages fetched (the last one empty ends the listing), "
            f"{len(found)} conversations"
        )
        self.say()
        self.say("done: every step succeeded; no password or token was shown")

    def poll(self, reg: Registration) -> None:
        expected = len(DEMO_EVENTS)
        received = 0
        for number in range(1, DEMO_MAX_POLLS + 1):
            response = self.runner.run(_endpoint.poll(reg, "SELF", hold=DEMO_HOLD))
            events = decode_events(response.body)
            if not events:
                self.say(f"   poll {number}: no events (the server held it {DEMO_HOLD:g} s)")
                break
            self.say(f"   poll {number}: {len(events)} event(s)")
            for event in events:
                received += 1
                self.say(f"     {_event_line(event)}")
                if event.ack_url is not None:
                    acked = self.runner.run(_endpoint.ack(reg, event.ack_url, hosts=self.hosts))
                    where = event.ack_url.split("/users/ME/", 1)[-1]
                    outcome = "accepted" if acked else "not sent (untrusted host)"
                    self.say(f"       ack POST …/{where}: {outcome}")
        self.say(f"   {received} of {expected} queued events received")


def _run_demo(args: argparse.Namespace, ctx: CliContext) -> int:
    from .emulator import EmulatorServer, Scenario  # sockets and threads only for this verb

    scenario = Scenario(events=(), hold=DEMO_HOLD, events_per_poll=DEMO_EVENTS_PER_POLL)
    with EmulatorServer(scenario) as server, ctx.runner() as runner:
        _Demo(ctx, runner, server).run()
    return EXIT_OK


# -- the table cli.py reads -----------------------------------------------------------------------

#: ``(name, help, run, configure)`` of each verb here, in ``--help`` order.
VERB_SPECS: tuple[tuple[str, str, RunVerb, ConfigureVerb], ...] = (
    (
        "login",
        "log in, register an endpoint and save the session to --state",
        _holding_state(_run_login, login=True),
        _configure_login,
    ),
    (
        "events",
        "print events as JSON lines (and acknowledge them) until --count, --timeout or Ctrl-C",
        _holding_state(_run_events),
        _configure_events,
    ),
    (
        "endpoints",
        "list every endpoint id of the account",
        _holding_state(_run_endpoints, needs_saved=True),
        _configure_endpoints,
    ),
    (
        "ping",
        "keep this endpoint active",
        _holding_state(_run_ping, needs_saved=True),
        _configure_ping,
    ),
    (
        "conversations",
        "list the recent conversations' ids (syncState paging)",
        _holding_state(_run_conversations, needs_saved=True),
        _configure_conversations,
    ),
    (
        "demo",
        "run a whole session against an in-process emulator, with a redacted transcript",
        _run_demo,
        _configure_demo,
    ),
    *_teams.VERB_SPECS,
)
