"""The Session's re-authentication policy over every transport, against the emulator server.

The unit tests pin each rule against the pure emulator; these show the same sequences survive
real sockets, keep-alive connections and the async driver, with the emulator's log as the witness.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import attrs
import pytest
from skyproto.transports import aiterate_pages, iterate_pages, run_async
from skyproto.transports.httpx import AsyncHttpxTransport

from skyproto import (
    Credentials,
    GuestCredentials,
    RegistrationToken,
    Session,
    SkypeApiException,
    SkypeToken,
)
from skyproto.emulator import (
    DEFAULT_ACCOUNT,
    DEFAULT_MEETING_ID,
    Account,
    EmulatorServer,
    Fault,
    Scenario,
    numbered_accounts,
)
from skyproto.emulator.pytest_plugin import EmulatorFactory

from .matrix_support import Runner

pytestmark = pytest.mark.integration

HOLD = 0.3
LOGIN = ["soap", "edge", "profile"]
REGISTER = ["register", "config", "endpoints"]


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(hold=HOLD)


def new_session(server: EmulatorServer, account: Account | None = None, **options: Any) -> Session:
    """A session of ``account`` (default: the server's main account)."""
    account = account if account is not None else server.account
    return Session(server.hosts, credentials=Credentials(account.user, account.password), **options)


def connected(runner: Runner, server: EmulatorServer) -> Session:
    session = new_session(server)
    runner.run(session.connect())
    server.clear_requests()
    return session


def test_connect_logs_in_registers_and_lists_endpoints(
    runner: Runner, server: EmulatorServer
) -> None:
    session = new_session(server)
    state = runner.run(session.connect())
    assert server.routes() == [*LOGIN, *REGISTER]
    assert state.user_id == DEFAULT_ACCOUNT.skype_name
    assert state.registration is not None
    assert state.endpoints == (state.registration.endpoint_id,)
    with server.lock:
        assert server.emulator.endpoint_ids() == (state.registration.endpoint_id,)


def test_sessions_of_two_accounts_each_list_only_their_own_endpoint(
    runner: Runner, skype_emulator_factory: EmulatorFactory
) -> None:
    (other,) = numbered_accounts(1)
    server = skype_emulator_factory(Scenario(hold=HOLD), accounts=[other])
    fred, bot = new_session(server), new_session(server, other)
    fred_state = runner.run(fred.connect())
    bot_state = runner.run(bot.connect())
    assert (fred_state.user_id, bot_state.user_id) == (DEFAULT_ACCOUNT.skype_name, "live:user0")
    assert fred_state.registration is not None
    assert bot_state.registration is not None
    fred_id, bot_id = fred_state.registration.endpoint_id, bot_state.registration.endpoint_id
    assert (fred_state.endpoints, bot_state.endpoints) == ((fred_id,), (bot_id,))
    assert runner.run(fred.list_endpoints()) == [fred_id]
    assert runner.run(bot.list_endpoints()) == [bot_id]
    with server.lock:
        assert server.emulator.endpoint_ids("live:user0") == (bot_id,)
    assert server.errors == []


def test_401_logs_in_and_registers_once_then_retries(
    runner: Runner, server: EmulatorServer
) -> None:
    session = connected(runner, server)
    server.scenario = Scenario(hold=HOLD, faults=(Fault("ping", 401),))
    runner.run(session.ping())
    assert server.routes() == ["ping", *LOGIN, *REGISTER, "ping"]


def test_729_registers_again_then_retries(runner: Runner, server: EmulatorServer) -> None:
    session = connected(runner, server)
    old = session.registration
    server.scenario = Scenario(hold=HOLD, faults=(Fault("subscribe", 729),))
    runner.run(session.subscribe())
    assert server.routes() == ["subscribe", *REGISTER, "subscribe"]
    assert session.registration is not old


def test_a_second_401_is_not_retried_again(runner: Runner, server: EmulatorServer) -> None:
    session = connected(runner, server)
    server.scenario = Scenario(hold=HOLD, faults=(Fault("ping", 401, times=2),))
    with pytest.raises(SkypeApiException) as caught:
        runner.run(session.ping())
    assert caught.value.status == 401
    assert server.routes() == ["ping", *LOGIN, *REGISTER, "ping"]


def test_expired_tokens_renew_before_the_call(runner: Runner, server: EmulatorServer) -> None:
    session = connected(runner, server)
    # Both tokens lapse on the client's clock (the emulator would still take them).
    lapsed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    state = session.state
    assert state.skype_token is not None
    assert state.registration is not None
    session.state = attrs.evolve(
        state,
        skype_token=SkypeToken(state.skype_token.token, lapsed),
        registration=attrs.evolve(
            state.registration,
            token=RegistrationToken(state.registration.token.token, lapsed),
        ),
    )
    runner.run(session.ping())
    # One login and one registration, however many tokens lapsed.
    assert server.routes() == [*LOGIN, *REGISTER, "ping"]


def test_guest_session_connects(runner: Runner, server: EmulatorServer) -> None:
    join = f"https://join.skype.com/{DEFAULT_MEETING_ID}"
    session = Session(server.hosts, credentials=GuestCredentials(join, "Grace"))
    state = runner.run(session.connect())
    assert state.guest is True
    assert state.user_id is not None
    assert state.user_id.startswith("guest:")
    assert server.routes() == ["join_page", "meeting", "join_thread", "profile", *REGISTER]


def test_snapshot_resumes_without_traffic(runner: Runner, server: EmulatorServer) -> None:
    session = connected(runner, server)
    now = dt.datetime.now(dt.UTC)
    resumed = Session.from_snapshot(session.snapshot(), now=now, hosts=server.hosts)
    runner.run(resumed.ping())
    assert server.routes() == ["ping"]


def test_conversations_page_until_empty(runner: Runner, server: EmulatorServer) -> None:
    session = connected(runner, server)
    pages: list[list[Any]] = []
    while (page := runner.run(session.conversations().next_page())) is not None:
        pages.append(page)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert server.routes() == ["conversations"] * 4


def test_sync_page_iterator(server: EmulatorServer) -> None:
    runner = Runner("requests")
    try:
        session = connected(runner, server)
        transport = runner._sync
        assert transport is not None
        ids = [
            item["id"]
            for page in iterate_pages(session.conversations(), transport)
            for item in page
        ]
    finally:
        runner.close()
    assert len(ids) == 5
    assert len(set(ids)) == 5


def test_concurrent_async_callers_share_one_refresh(server: EmulatorServer) -> None:
    async def main() -> list[str]:
        session = new_session(server)
        async with AsyncHttpxTransport() as transport:
            await asyncio.gather(*(run_async(session.connect(), transport) for _ in range(5)))
            server.scenario = Scenario(hold=HOLD, faults=(Fault("ping", 401, times=5),))
            server.clear_requests()
            # Five pings meet the 401 at once; one login and one registration serve them all.
            results = await asyncio.gather(
                *(run_async(session.ping(), transport) for _ in range(5)),
                return_exceptions=True,
            )
            assert all(not isinstance(result, BaseException) for result in results), results
            ids = [
                item["id"]
                async for page in aiterate_pages(session.conversations(), transport)
                for item in page
            ]
            assert len(ids) == 5
        return server.routes()

    routes = asyncio.run(main())
    assert routes.count("soap") == 1
    assert routes.count("register") == 1
    assert routes.count("ping") == 10  # five refused, five retried
