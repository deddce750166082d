"""The ``demo`` verb: a whole session against an in-process emulator, with a transcript."""

from __future__ import annotations

import argparse
import datetime as dt
import urllib.parse
from typing import TYPE_CHECKING

from .. import endpoint as _endpoint
from ..auth import choose_method, fetch_user_id, login
from ..events import Event, MessageEvent, UnknownEvent, decode_events
from ..registration import Registration, register
from ..session import Session, SessionState
from ..tokens import Credentials
from ._base import EXIT_OK, CliContext, FlowRunner, Verb
from ._events import event_record
from ._session_verbs import conversation_ids

if TYPE_CHECKING:
    from ..emulator import EmulatorServer

__all__ = ["DEMO"]


# -- demo ---------------------------------------------------------------------------------------

#: Event kinds the demo queues, in order (several kinds, two of them acknowledged messages).
DEMO_EVENTS = ("text", "typing", "edit", "presence", "group_text", "custom")
DEMO_HOLD = 1.0
DEMO_EVENTS_PER_POLL = 4
DEMO_MAX_POLLS = 5


def _configure_demo(parser: argparse.ArgumentParser) -> None:
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
            ids = [ident or "(no id)" for ident in conversation_ids(items)]
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
    from ..emulator import EmulatorServer, Scenario  # sockets and threads only for this verb

    scenario = Scenario(events=(), hold=DEMO_HOLD, events_per_poll=DEMO_EVENTS_PER_POLL)
    with EmulatorServer(scenario) as server, ctx.runner() as runner:
        _Demo(ctx, runner, server).run()
    return EXIT_OK


DEMO = Verb(
    "demo",
    "run a whole session against an in-process emulator, with a redacted transcript",
    _run_demo,
    _configure_demo,
)
