"""The live session and its re-authentication policy.

Session
-------
:class:`Session` owns a :class:`SessionState` and runs every authenticated call through one policy,
written as flows (so the time comes from the driver and nothing here sleeps or sends):

* **Skype token missing, expired or within the refresh leeway of its expiry**
  (:func:`~skyproto.tokens.refresh_leeway`: :data:`~skyproto.tokens.REFRESH_LEEWAY`, or half the
  token's lifetime when that is shorter; the lifetime is the expiry minus the time this session
  received the token, unknown for a token it was given): log in again with the session's credentials (:class:`~skyproto.Credentials`, a
  :class:`GuestCredentials`, or a callable returning one, asked only when a login is due). With no
  credentials, :class:`~skyproto.SkypeTokenException`.
* **Registration token missing or expiring**: register again (the handshake, the endpoint config and
  the endpoint listing, as the reference client does).
* **401 on a call**: one fresh login (and, for registration-token calls, a fresh registration),
  then the call once more.
* **404, or errorCode 729, on an endpoint call**: register again, then the call once more.

Each recovery happens at most once per call, so a call costs at most three attempts. Logins and
registrations go through :class:`~skyproto.Shared` effects keyed by a generation counter: under
``run_async``, callers that find the same stale token wait for one refresh instead of starting one
each; a caller whose token was replaced meanwhile just uses the new one.

The state it keeps, :class:`SessionState`, and its saved form live in ``skyproto._snapshot``
(:func:`dump_snapshot`, :func:`load_snapshot`); its listings are :class:`~skyproto.paging.Listing`
objects, which keep their links in the session's state. Both are importable from here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import TypeVar

import attrs

from . import endpoint as _endpoint
from . import paging as _paging
from ._flow import Flow, now, shared, sleep
from ._http import HeaderInput, HttpResponse
from ._snapshot import (
    GUEST_PREFIX,
    SessionState,
    TeamsState,
    dump_snapshot,
    load_snapshot,
)
from .auth import LoginMethod, fetch_user_id, guest_login, login
from .auth.teams import DeviceCodeLogin, DeviceLoginRequired, Region, authz, teams_tokens
from .errors import LocalProtocolError, SkypeApiException, SkypeTokenException, TransportError
from .hosts import Hosts
from .ids import Status
from .paging import Listing, PagingState
from .registration import DEFAULT_MAX_REDIRECTS, Registration, register
from .tokens import Credentials, RegistrationToken, SkypeToken, refresh_leeway

__all__ = [
    "GuestCredentials",
    "Listing",
    "Session",
    "SessionState",
    "TeamsState",
    "dump_snapshot",
    "load_snapshot",
]

# -- the live session ---------------------------------------------------------------------------

#: Attempts one call gets at most: the first, one after a fresh login, one after a registration.
MAX_CALL_ATTEMPTS = 3
#: Attempts :meth:`Session.connect` makes when the exchange itself fails (the first included).
CONNECT_ATTEMPTS = 4
#: Seconds :meth:`Session.connect` waits before its second attempt, doubled before each later one.
CONNECT_BACKOFF = 0.5


@attrs.frozen
class GuestCredentials:
    """Join the conversation behind ``join`` (a join URL or bare id) as a guest called ``name``."""

    join: str
    name: str


#: What a session logs in with: credentials, or a callable asked for them when a login is due;
#: or, for a Teams Free session, how to run a device-code login when no refresh token works.
CredentialSource = (
    Credentials
    | GuestCredentials
    | DeviceCodeLogin
    | Callable[[], "Credentials | GuestCredentials | None"]
)

T = TypeVar("T")


class Session:
    """A session's state and its re-authentication policy; every operation is a flow.

    ``credentials`` may be a callable, asked only when a login is due, so a password need not
    stay in memory. It is never shown by ``repr``. Run the flows with a driver::

        session = Session(hosts, credentials=Credentials("fred@example.com", password))
        run_sync(session.connect(), transport)
        run_sync(session.ping(), transport)
    """

    def __init__(
        self,
        hosts: Hosts | None = None,
        *,
        credentials: CredentialSource | None = None,
        method: LoginMethod = LoginMethod.AUTO,
        state: SessionState | None = None,
        endpoint_name: str = "skype",
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ) -> None:
        if not isinstance(method, LoginMethod):
            raise LocalProtocolError(f"method must be a LoginMethod, not {type(method).__name__}")
        self.hosts = hosts if hosts is not None else Hosts()
        self.method = method
        self.state = state if state is not None else SessionState()
        self.endpoint_name = endpoint_name
        self.max_redirects = max_redirects
        self._credentials = credentials
        self._logins = 0
        self._registrations = 0
        #: Per kind, a token this session received and its lifetime (expiry - time received).
        self._lifetimes: dict[str, tuple[object, dt.timedelta]] = {}

    def __repr__(self) -> str:
        state = self.state
        return (
            f"Session(user_id={state.user_id!r}, logged_in={state.skype_token is not None}, "
            f"registered={state.registration is not None}, guest={state.guest})"
        )

    @classmethod
    def from_snapshot(
        cls,
        data: bytes | str,
        *,
        now: dt.datetime,
        hosts: Hosts | None = None,
        credentials: CredentialSource | None = None,
        method: LoginMethod = LoginMethod.AUTO,
    ) -> Session:
        """A session resumed from :meth:`snapshot` output, checked with :func:`load_snapshot`."""
        hosts = hosts if hosts is not None else Hosts()
        state = load_snapshot(data, now=now, hosts=hosts)
        return cls(hosts, credentials=credentials, method=method, state=state)

    def snapshot(self) -> bytes:
        """The versioned JSON snapshot of the current state (no password is ever in it)."""
        return dump_snapshot(self.state)

    @property
    def user_id(self) -> str | None:
        """The account's user id, once known."""
        return self.state.user_id

    @property
    def registration(self) -> Registration | None:
        """The current registration, if any."""
        return self.state.registration

    @property
    def paging(self) -> PagingState:
        """The syncState links of the session's listings (part of ``state``)."""
        return self.state.paging

    @paging.setter
    def paging(self, value: PagingState) -> None:
        self.state = attrs.evolve(self.state, paging=value)

    # -- tokens ---------------------------------------------------------------------------------

    def skype_token(self) -> Flow[SkypeToken]:
        """Flow: a Skype token valid for at least the refresh leeway, logging in if needed."""
        current = yield from now()
        token = self.state.skype_token
        if token is not None and not token.expired(current, self._leeway("skype", token)):
            return token
        return (yield from self._fresh_login(token))

    def renew_skype_token(self) -> Flow[SkypeToken]:
        """Flow: a Skype token minted now, for a service that refused the current one (401);
        concurrent callers share one login."""
        return (yield from self._fresh_login(self.state.skype_token))

    def ensure_registration(self) -> Flow[Registration]:
        """Flow: a registration valid for at least the leeway, registering (and logging in) if
        needed."""
        if self.teams:
            raise LocalProtocolError(
                "a Teams Free session has no endpoint registration; use skyproto.chat"
            )
        current = yield from now()
        reg = self.state.registration
        if reg is not None and not reg.token.expired(current, self._leeway("reg", reg.token)):
            # A state given to the constructor (or assigned) was never checked against these
            # hosts, and every registration-token call goes to this base: UntrustedHostError
            # before anything is sent there.
            self.hosts.require_trusted(reg.messenger, "the session's registration")
            return reg
        return (yield from self._fresh_registration(reg))

    def _leeway(self, kind: str, token: SkypeToken | RegistrationToken) -> dt.timedelta:
        known = self._lifetimes.get(kind)
        return refresh_leeway(known[1] if known is not None and known[0] is token else None)

    def _received(self, kind: str, token: SkypeToken | RegistrationToken) -> Flow[None]:
        """Remember ``token``'s lifetime, counted from now (just after it arrived)."""
        current = yield from now()
        self._lifetimes[kind] = (token, token.expiry - current)

    def _fresh_login(self, stale: SkypeToken | None) -> Flow[SkypeToken]:
        current = self.state.skype_token
        if current is not None and current is not stale:
            return current  # someone else logged in since ``stale`` was read
        token: SkypeToken = yield from shared(self, ("login", self._logins), self._login)
        return token

    def _fresh_registration(self, stale: Registration | None) -> Flow[Registration]:
        current = self.state.registration
        if current is not None and current is not stale:
            return current
        reg: Registration = yield from shared(
            self, ("register", self._registrations), self._register
        )
        return reg

    def _source(self) -> Credentials | GuestCredentials:
        source = self._credentials
        if callable(source) and not isinstance(source, Credentials | GuestCredentials):
            source = source()
        if source is None:
            raise SkypeTokenException("no valid Skype token, and no credentials to log in with")
        if not isinstance(source, Credentials | GuestCredentials):
            raise LocalProtocolError(
                f"credentials must be Credentials or GuestCredentials, not {type(source).__name__}"
            )
        return source

    @property
    def teams(self) -> bool:
        """Whether this is a Teams Free session (a Teams state, or a device-code login source)."""
        return self.state.teams is not None or isinstance(self._credentials, DeviceCodeLogin)

    def chat_base(self) -> str:
        """The Teams Free chat-service base: the front-door base authz named, else the default
        one (docs/teams.md §B.1), checked against the trusted hosts."""
        from .chat import AFD_BASE

        region = self.state.teams.region if self.state.teams is not None else Region()
        base = region.chat_service_afd or self.hosts.url(AFD_BASE)
        return self.hosts.require_trusted(base, "the chat service")

    def _teams_login(self) -> Flow[SkypeToken]:
        teams = self.state.teams
        device = self._credentials if isinstance(self._credentials, DeviceCodeLogin) else None
        refresh = teams.refresh_token if teams is not None else None
        try:
            tokens, refreshed = yield from teams_tokens(
                self.hosts, refresh_token=refresh, device=device
            )
        except DeviceLoginRequired:
            if teams is not None and teams.refresh_token is not None:
                forgotten = attrs.evolve(teams, refresh_token=None)
                self.state = attrs.evolve(self.state, teams=forgotten, skype_token=None)
            raise
        rotated = tokens.refresh_token
        if refreshed and teams is not None:
            # The old refresh token is spent: keep its successor even if authz fails.
            self.state = attrs.evolve(self.state, teams=attrs.evolve(teams, refresh_token=rotated))
        auth = yield from authz(tokens.access_token, self.hosts)
        if self.state.user_id is not None and auth.skype_id != self.state.user_id:
            self.state = SessionState()  # a different account: nothing of the old one is reused
        kept = self.state.teams  # the same account keeps its Trouter endpoint id
        self.state = attrs.evolve(
            self.state,
            user_id=auth.skype_id,
            skype_token=auth.skype_token,
            teams=TeamsState(
                rotated, auth.region, kept.trouter_endpoint if kept is not None else None
            ),
        )
        self._logins += 1
        return auth.skype_token

    def _login(self) -> Flow[SkypeToken]:
        if self.teams:
            return (yield from self._teams_login())
        source = self._source()
        if isinstance(source, GuestCredentials):
            token = yield from guest_login(source.join, source.name, hosts=self.hosts)
        else:
            token = yield from login(source, hosts=self.hosts, method=self.method)
        yield from self._received("skype", token)
        user_id = yield from fetch_user_id(token, hosts=self.hosts)
        if self.state.user_id is not None and user_id != self.state.user_id:
            # A different account: nothing of the old one may be reused with this token.
            self.state = SessionState()
        self.state = attrs.evolve(
            self.state,
            user_id=user_id,
            skype_token=token,
            guest=user_id.startswith(GUEST_PREFIX),
        )
        self._logins += 1
        return token

    def _register(self) -> Flow[Registration]:
        token = yield from self.skype_token()
        old = self.state.registration
        messenger = old.messenger if old is not None else None
        try:
            reg = yield from register(
                token, hosts=self.hosts, messenger=messenger, max_redirects=self.max_redirects
            )
        except SkypeApiException as exc:
            if exc.status != 401:
                raise
            token = yield from self._fresh_login(token)
            reg = yield from register(
                token, hosts=self.hosts, messenger=messenger, max_redirects=self.max_redirects
            )
        paging = self.state.paging
        if old is not None and old.messenger != reg.messenger:
            paging = paging.rebased(old.messenger)
        yield from self._received("reg", reg.token)
        self.state = attrs.evolve(self.state, registration=reg, paging=paging)
        self._registrations += 1
        if reg.endpoint_id is not None:
            yield from _endpoint.configure_endpoint(reg, reg.endpoint_id, name=self.endpoint_name)
        ids = yield from _endpoint.list_endpoints(reg)
        self.state = attrs.evolve(self.state, endpoints=tuple(ids))
        return reg

    # -- calls under the policy -----------------------------------------------------------------

    def call(
        self, operation: Callable[[Registration], Flow[T]], *, reregister_on_404: bool = True
    ) -> Flow[T]:
        """Flow: ``operation(registration)`` under the policy (401: log in and register again;
        404 or errorCode 729: register again; each once)."""
        reg = yield from self.ensure_registration()
        logged_in = registered = False
        for _ in range(MAX_CALL_ATTEMPTS):
            token_used = self.state.skype_token
            try:
                return (yield from operation(reg))
            except SkypeApiException as exc:
                gone = isinstance(exc, _endpoint.EndpointGoneError) or (
                    exc.status == 404 and reregister_on_404
                )
                if exc.status == 401 and not logged_in:
                    logged_in = True
                    yield from self._fresh_login(token_used)
                elif gone and not registered:
                    registered = True
                else:
                    raise
                reg = yield from self._fresh_registration(reg)
        raise LocalProtocolError("unreachable: the call loop is bounded by its recoveries")

    def call_with_token(self, operation: Callable[[SkypeToken], Flow[T]]) -> Flow[T]:
        """Flow: ``operation(skype_token)`` under the policy (401: one fresh login)."""
        token = yield from self.skype_token()
        try:
            return (yield from operation(token))
        except SkypeApiException as exc:
            if exc.status != 401:
                raise
        token = yield from self._fresh_login(token)
        return (yield from operation(token))

    # -- operations -----------------------------------------------------------------------------

    def connect(self) -> Flow[SessionState]:
        """Flow: log in if needed, register if needed (config and endpoint listing included).

        A Teams Free session only makes sure of its Skype token: its chat service needs no
        registration.

        A :class:`~skyproto.TransportError` (refused, reset, timed out: no answer) is tried
        again, :data:`CONNECT_ATTEMPTS` attempts in all, after :data:`CONNECT_BACKOFF` seconds,
        then twice as long each time (:class:`~skyproto.Sleep` effects). Each attempt starts
        from what the previous ones achieved (a token obtained is kept). An answer, even an
        error status, is never retried here; the call policy above handles those.
        """
        attempt = 1
        while True:
            try:
                return (yield from self._connect_once())
            except TransportError:
                if attempt >= CONNECT_ATTEMPTS:
                    raise
            yield from sleep(CONNECT_BACKOFF * 2.0 ** (attempt - 1))
            attempt += 1

    def _connect_once(self) -> Flow[SessionState]:
        yield from self.skype_token()
        if self.teams:
            return self.state
        if self.state.user_id is None:
            user_id = yield from self.call_with_token(
                lambda token: fetch_user_id(token, hosts=self.hosts)
            )
            self.state = attrs.evolve(
                self.state, user_id=user_id, guest=user_id.startswith(GUEST_PREFIX)
            )
        yield from self.ensure_registration()
        return self.state

    def configure(self) -> Flow[HttpResponse]:
        """Flow: publish the endpoint's presence document (docs/protocol.md §5.2)."""
        return (
            yield from self.call(
                lambda reg: _endpoint.configure_endpoint(
                    reg, self.state.endpoint_id, name=self.endpoint_name
                )
            )
        )

    def ping(self, timeout: int = 12) -> Flow[HttpResponse]:
        """Flow: keep the endpoint alive for ``timeout`` seconds."""
        return (yield from self.call(lambda reg: _endpoint.ping(reg, "SELF", timeout)))

    def subscribe(self) -> Flow[HttpResponse]:
        """Flow: subscribe the endpoint to conversation and thread events."""
        return (yield from self.call(lambda reg: _endpoint.subscribe(reg, "SELF")))

    def subscribe_presence(self, contact_ids: Collection[str]) -> Flow[HttpResponse]:
        """Flow: ask for presence events of ``contact_ids``."""
        ids = tuple(contact_ids) if not isinstance(contact_ids, str) else contact_ids
        return (yield from self.call(lambda reg: _endpoint.subscribe_presence(reg, ids)))

    def set_presence(self, status: Status = Status.Online) -> Flow[HttpResponse]:
        """Flow: set this account's presence."""
        return (yield from self.call(lambda reg: _endpoint.set_presence(reg, status)))

    def list_endpoints(self) -> Flow[list[str]]:
        """Flow: every endpoint id of the account; also kept in ``state.endpoints``."""
        ids = yield from self.call(_endpoint.list_endpoints)
        self.state = attrs.evolve(self.state, endpoints=tuple(ids))
        return ids

    def poll(self, hold: float = 30.0, *, timeout: float | None = None) -> Flow[HttpResponse]:
        """Flow: one long poll. A 404 is the caller's to handle (subscribe again). After a 401
        or errorCode 729 the retry goes to a new registration that is not subscribed yet;
        :class:`~skyproto.EventLoop` handles all of this."""
        return (
            yield from self.call(
                lambda reg: _endpoint.poll(reg, "SELF", hold=hold, timeout=timeout),
                reregister_on_404=False,
            )
        )

    def reregister(self) -> Flow[Registration]:
        """Flow: register again now (the event loop's answer to a forgotten endpoint)."""
        return (yield from self._fresh_registration(self.state.registration))

    def ack(self, url: str) -> Flow[bool]:
        """Flow: acknowledge an event; ``False`` (nothing sent) for an untrusted URL."""
        # A 404 here means the server does not know the message, not the endpoint.
        return (
            yield from self.call(
                lambda reg: _endpoint.ack(reg, url, hosts=self.hosts), reregister_on_404=False
            )
        )

    def mark_consumed(self, chat_id: str, horizon: str) -> Flow[HttpResponse]:
        """Flow: set a conversation's consumption horizon."""
        return (yield from self.call(lambda reg: _endpoint.mark_consumed(reg, chat_id, horizon)))

    def listing(
        self,
        path: str,
        *,
        items_key: str,
        method: str = "GET",
        params: _paging.Params = None,
        headers: HeaderInput = None,
        max_pages: int = _paging.DEFAULT_MAX_PAGES,
    ) -> Listing:
        """A syncState listing of ``path`` under the messaging base (e.g. ``/users/ME/...``)."""
        return Listing(
            self,
            path,
            items_key=items_key,
            method=method,
            params=params,
            headers=headers,
            max_pages=max_pages,
        )

    def conversations(self, *, max_pages: int = _paging.DEFAULT_MAX_PAGES) -> Listing:
        """The recent-conversations listing (docs/protocol.md §6)."""
        return self.listing(
            "/users/ME/conversations",
            items_key="conversations",
            params=_paging.CONVERSATION_PARAMS,
            max_pages=max_pages,
        )
