"""The session: its saved state, and the re-authentication policy.

Session
-------
:class:`Session` owns a :class:`SessionState` and runs every authenticated call through one policy,
written as flows (so the time comes from the driver and nothing here sleeps or sends):

* **Skype token missing, expired or within** :data:`~skyproto.tokens.REFRESH_LEEWAY` **of its
  expiry**: log in again with the session's credentials (:class:`~skyproto.Credentials`, a
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

Saved state
-----------
:class:`SessionState` is everything a session needs to resume without sending a request: the
user id, the Skype token, the registration (registration token, messaging base ``H`` and endpoint
id), the user's endpoint ids, the syncState links and whether the session is a guest's.

:func:`dump_snapshot` writes it as a versioned JSON object::

    {"version": 1, "user_id": "live:fred",
     "skype_token": {"token": "...", "expiry": "2100-01-01T00:00:00+00:00"},
     "registration": {"token": {"token": "registrationToken=...", "expiry": "..."},
                      "messenger": "https://db3-client-s.gateway.messenger.live.com/v1",
                      "endpoint_id": "{...}"},
     "endpoints": ["{...}"], "paging": {...}, "guest": false}

Expiries are ISO 8601 date-times with a UTC offset; a date-time without one is refused rather than
guessed (the reference keeps naive local times; docs/protocol.md §12.12). A password is never part of
the state, so it is never written.

:func:`load_snapshot` is strict, because the file may be damaged or tampered with. Every problem
is a :class:`~skyproto.SkypeTokenException` that names it and the field it is in, and never quotes
a value: not valid UTF-8 or JSON, a version other than :data:`SNAPSHOT_VERSION`, a missing,
unexpected or wrongly typed field (no coercion: ``1`` is not a string, ``"false"`` not a boolean), an
unusable token, or an expired Skype token. A registration whose messaging host ``hosts`` does not
trust is refused, since loading it would send the registration token there. An expired
registration is dropped (``registration=None``) so that the session registers again.

Expiry uses :meth:`SkypeToken.expired <skyproto.tokens.SkypeToken.expired>` with its default
leeway, so a token about to expire counts as expired already.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Collection
from typing import Any, TypeVar, get_args

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_sequence,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.preconf.json import make_converter

from . import endpoint as _endpoint
from . import paging as _paging
from ._flow import Flow, now, shared, sleep
from ._http import HeaderInput, HttpResponse, dump_json
from .auth import LoginMethod, fetch_user_id, guest_login, login
from .errors import LocalProtocolError, SkypeApiException, SkypeTokenException, TransportError
from .hosts import Hosts
from .ids import Status
from .paging import PagingState
from .registration import DEFAULT_MAX_REDIRECTS, Registration, register
from .tokens import Credentials, SkypeToken, utc

__all__ = [
    "CONNECT_ATTEMPTS",
    "CONNECT_BACKOFF",
    "MAX_CALL_ATTEMPTS",
    "SNAPSHOT_VERSION",
    "STALE_LINK_STATUSES",
    "CredentialSource",
    "GuestCredentials",
    "Listing",
    "Session",
    "SessionState",
    "dump_snapshot",
    "load_snapshot",
    "snapshot_converter",
    "usable_token",
]

logger = logging.getLogger("skyproto")

#: The snapshot format :func:`dump_snapshot` writes and :func:`load_snapshot` reads.
SNAPSHOT_VERSION = 1


def _endpoint_ids(value: Any) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class SessionState:
    """What a session needs to resume without traffic. Secrets are hidden from ``repr``."""

    user_id: str | None = None
    skype_token: SkypeToken | None = None
    registration: Registration | None = None
    endpoints: tuple[str, ...] = attrs.field(default=(), converter=_endpoint_ids)
    paging: PagingState = attrs.field(factory=PagingState)
    guest: bool = False

    @property
    def endpoint_id(self) -> str:
        """The endpoint the session's calls address: the registered one, else ``SELF``."""
        if self.registration is not None and self.registration.endpoint_id is not None:
            return self.registration.endpoint_id
        return "SELF"


# -- the converter ------------------------------------------------------------------------------


class _InvalidValue(ValueError):
    """A saved value of the wrong JSON type or form; the message never quotes the value."""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expect(value: Any, kinds: type | tuple[type, ...], wanted: str) -> None:
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise _InvalidValue(f"expected {wanted}, got {_json_kind(value)}")


def _structure_str(value: Any, _type: Any) -> str:
    _expect(value, str, "a string")
    return str(value)


def _structure_bool(value: Any, _type: Any) -> bool:
    _expect(value, bool, "a boolean")
    return bool(value)


def _structure_int(value: Any, _type: Any) -> int:
    _expect(value, int, "an integer")
    return int(value)


def _structure_float(value: Any, _type: Any) -> float:
    _expect(value, (int, float), "a number")
    return float(value)


def _structure_datetime(value: Any, _type: Any) -> dt.datetime:
    _expect(value, str, "an ISO 8601 date-time string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _InvalidValue("not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _InvalidValue("date-time has no UTC offset")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise _InvalidValue("date-time out of range") from None


def _unstructure_datetime(value: dt.datetime) -> str:
    return utc(value).isoformat()


def _array_hook_factory(type_: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], Any]:
    is_tuple = getattr(type_, "__origin__", type_) is tuple
    factory = homogenous_tuple_structure_factory if is_tuple else list_structure_factory
    inner = factory(type_, converter)

    def structure_array(value: Any, target: Any) -> Any:
        _expect(value, list, "an array")
        return inner(value, target)

    return structure_array


def _fixed_tuple_hook_factory(
    type_: Any, converter: cattrs.BaseConverter
) -> Callable[[Any, Any], Any]:
    item_types = get_args(type_)

    def structure_fixed_tuple(value: Any, _target: Any) -> tuple[Any, ...]:
        _expect(value, list, "an array")
        if len(value) != len(item_types):
            raise _InvalidValue(f"expected an array of {len(item_types)} items")
        return tuple(converter.structure(v, t) for v, t in zip(value, item_types, strict=True))

    return structure_fixed_tuple


def _is_fixed_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return getattr(type_, "__origin__", None) is tuple and bool(args) and args[-1] is not ...


def _object_hook_factory(type_: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], Any]:
    inner = mapping_structure_factory(type_, converter)

    def structure_object(value: Any, target: Any) -> Any:
        _expect(value, dict, "an object")
        return inner(value, target)

    return structure_object


def _record_hook_factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = converter.gen_structure_attrs_fromdict(type_)

    def structure_record(value: Any, target: Any) -> Any:
        _expect(value, dict, "an object")
        return inner(value, target)

    return structure_record


def _make_converter() -> cattrs.Converter:
    converter = make_converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(dt.datetime, _structure_datetime)
    converter.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    converter.register_structure_hook_factory(is_sequence, _array_hook_factory)
    converter.register_structure_hook_factory(_is_fixed_tuple, _fixed_tuple_hook_factory)
    converter.register_structure_hook_factory(is_mapping, _object_hook_factory)
    converter.register_structure_hook_factory(attrs.has, _record_hook_factory)
    return converter


#: The converter for saved state: strict JSON types, aware date-times, no extra keys.
snapshot_converter = _make_converter()


# -- error messages -----------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_MAX_REPORTED = 3


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _InvalidValue):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        names = sorted(exc.extra_fields)
        if all(_FIELD_NAME.fullmatch(n) for n in names):
            return "unexpected field(s) " + ", ".join(repr(n) for n in names)
        return f"{len(names)} unexpected field(s)"
    if isinstance(exc, OverflowError):
        return "value out of range"
    return f"invalid value ({type(exc).__name__})"


def _field_errors(exc: BaseException, path: str) -> list[tuple[str, str]]:
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        found: list[tuple[str, str]] = []
        for sub, attribute_note in with_notes:
            name = attribute_note.name
            found += _field_errors(sub, f"{path}.{name}" if path else name)
        return found + [(path, _describe(sub)) for sub in without]
    if isinstance(exc, cattrs.IterableValidationError):
        iterable_with_notes, iterable_without = exc.group_exceptions()
        found = []
        for sub, index_note in iterable_with_notes:
            # Mapping keys are not quoted: a damaged file could hold anything there.
            index = index_note.index
            found += _field_errors(sub, f"{path}[{index if isinstance(index, int) else '…'}]")
        return found + [(path, _describe(sub)) for sub in iterable_without]
    return [(path, _describe(exc))]


def _shape_error(errors: list[tuple[str, str]]) -> SkypeTokenException:
    parts = [
        f"saved state field {path!r}: {problem}" if path else f"saved state: {problem}"
        for path, problem in errors[:_MAX_REPORTED]
    ]
    if len(errors) > _MAX_REPORTED:
        parts.append(f"and {len(errors) - _MAX_REPORTED} more problem(s)")
    return SkypeTokenException("; ".join(parts))


# -- dump and load ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def usable_token(token: str) -> bool:
    """Whether ``token`` can go into a header: not empty, no control characters."""
    return bool(token) and _CONTROL.search(token) is None


def dump_snapshot(state: SessionState) -> bytes:
    """The versioned JSON snapshot of ``state``."""
    body = snapshot_converter.unstructure(state, SessionState)
    return dump_json({"version": SNAPSHOT_VERSION, **body})


def _parse_json(data: bytes | str) -> dict[str, Any]:
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise SkypeTokenException("saved state is not valid UTF-8") from None
    else:
        text = data
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise SkypeTokenException("saved state is not valid JSON (truncated?)") from None
    if not isinstance(document, dict):
        raise SkypeTokenException(f"saved state is {_json_kind(document)}, not a JSON object")
    return document


def _check_version(document: dict[str, Any]) -> None:
    if "version" not in document:
        raise SkypeTokenException("saved state has no version")
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise SkypeTokenException(f"saved state version is {_json_kind(version)}, not an integer")
    if version != SNAPSHOT_VERSION:
        shown = str(version) if abs(version) < 10**9 else "(out of range)"
        raise SkypeTokenException(
            f"saved state version {shown} is not supported (expected {SNAPSHOT_VERSION})"
        )


def _structure(document: dict[str, Any]) -> SessionState:
    body = {k: v for k, v in document.items() if k != "version"}
    missing = [a.name for a in attrs.fields(SessionState) if a.name not in body]
    if missing:
        raise _shape_error([(name, "required field missing") for name in missing])
    try:
        return snapshot_converter.structure(body, SessionState)
    except cattrs.BaseValidationError as exc:
        raise _shape_error(_field_errors(exc, "")) from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        raise _shape_error([("", _describe(exc))]) from None


def _host_of(url: str) -> str:
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        host = None
    return host or url[:100]


def load_snapshot(data: bytes | str, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read a snapshot written by :func:`dump_snapshot` and check it can be used at ``now``.

    Raises :class:`~skyproto.SkypeTokenException` naming the problem; see the module docstring.
    """
    document = _parse_json(data)
    _check_version(document)
    state = _structure(document)
    if state.skype_token is not None:
        if not usable_token(state.skype_token.token):
            raise _shape_error([("skype_token.token", "not a usable token")])
        if state.skype_token.expired(now):
            raise SkypeTokenException(
                f"saved Skype token expired at {state.skype_token.expiry.isoformat()}; log in again"
            )
    registration = state.registration
    if registration is not None:
        if not usable_token(registration.token.token):
            raise _shape_error([("registration.token.token", "not a usable token")])
        if registration.token.expired(now):
            return attrs.evolve(state, registration=None)
        if not hosts.is_trusted(registration.messenger):
            raise SkypeTokenException(
                f"saved state names messaging host {_host_of(registration.messenger)!r}, "
                "which is not trusted"
            )
    return state


# -- the live session ---------------------------------------------------------------------------

#: Attempts one call gets at most: the first, one after a fresh login, one after a registration.
MAX_CALL_ATTEMPTS = 3
#: Attempts :meth:`Session.connect` makes when the exchange itself fails (the first included).
CONNECT_ATTEMPTS = 4
#: Seconds :meth:`Session.connect` waits before its second attempt, doubled before each later one.
CONNECT_BACKOFF = 0.5
#: Answers to a syncState link after which the link is forgotten and its listing starts over.
STALE_LINK_STATUSES = frozenset({400, 404, 410})
GUEST_PREFIX = "guest:"


@attrs.frozen
class GuestCredentials:
    """Join the conversation behind ``join`` (a join URL or bare id) as a guest called ``name``."""

    join: str
    name: str


#: What a session logs in with: credentials, or a callable asked for them when a login is due.
CredentialSource = (
    Credentials | GuestCredentials | Callable[[], "Credentials | GuestCredentials | None"]
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

    # -- tokens ---------------------------------------------------------------------------------

    def skype_token(self) -> Flow[SkypeToken]:
        """Flow: a Skype token valid for at least the refresh leeway, logging in if needed."""
        current = yield from now()
        token = self.state.skype_token
        if token is not None and not token.expired(current):
            return token
        return (yield from self._fresh_login(token))

    def ensure_registration(self) -> Flow[Registration]:
        """Flow: a registration valid for at least the leeway, registering (and logging in) if
        needed."""
        current = yield from now()
        reg = self.state.registration
        if reg is not None and not reg.token.expired(current):
            # A state given to the constructor (or assigned) was never checked against these
            # hosts, and every registration-token call goes to this base: UntrustedHostError
            # before anything is sent there.
            self.hosts.require_trusted(reg.messenger, "the session's registration")
            return reg
        return (yield from self._fresh_registration(reg))

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

    def _login(self) -> Flow[SkypeToken]:
        source = self._source()
        if isinstance(source, GuestCredentials):
            token = yield from guest_login(source.join, source.name, hosts=self.hosts)
        else:
            token = yield from login(source, hosts=self.hosts, method=self.method)
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


@attrs.frozen
class _Fetched:
    """One listing page as fetched: the listing URL, its link before and after, the body."""

    url: str
    before: str | None
    after: str | None
    body: dict[str, Any]


class Listing:
    """A syncState listing, one page per :meth:`next_page` flow; its links live in the session.

    Drive it with ``skyproto.transports.iterate_pages`` (sync) or ``aiterate_pages`` (async), or
    run :meth:`next_page` until it returns ``None``. It ends at an empty page, at a page that
    brings no new link, or after ``max_pages`` pages.
    """

    def __init__(
        self,
        session: Session,
        path: str,
        *,
        items_key: str,
        method: str = "GET",
        params: _paging.Params = None,
        headers: HeaderInput = None,
        max_pages: int = _paging.DEFAULT_MAX_PAGES,
    ) -> None:
        if not path.startswith("/"):
            raise LocalProtocolError("a listing path starts with '/'")
        if max_pages < 1:
            raise LocalProtocolError("max_pages must be at least 1")
        self.session = session
        self.path = path
        self.items_key = items_key
        self.method = method.upper()
        self.params = params
        self.headers = headers
        self.max_pages = max_pages
        self.pages = 0
        self.finished = False

    def __repr__(self) -> str:
        return f"Listing({self.method} {self.path}, pages={self.pages}, finished={self.finished})"

    def restart(self) -> None:
        """Start over: forget the stored link of this listing under the current registration's
        messaging base, and the pages counted so far."""
        state = self.session.state
        if state.registration is not None:
            url = state.registration.messenger + self.path
            self.session.state = attrs.evolve(state, paging=state.paging.without(self.method, url))
        self.pages = 0
        self.finished = False

    def next_page(self) -> Flow[list[Any] | None]:
        """Flow: the next page's items, or ``None`` once the listing has ended."""
        if self.finished:
            return None
        if self.pages >= self.max_pages:
            logger.warning(
                "listing %s %s did not end within %d pages", self.method, self.path, self.max_pages
            )
            self.finished = True
            return None
        session = self.session

        def fetch(reg: Registration) -> Flow[_Fetched]:
            url = reg.messenger + self.path
            before = session.state.paging.link(self.method, url)
            try:
                paging, body = yield from _paging.page(
                    session.state.paging,
                    self.method,
                    url,
                    reg=reg,
                    hosts=session.hosts,
                    params=self.params,
                    headers=self.headers,
                )
            except SkypeApiException as exc:
                if before is not None and exc.status in STALE_LINK_STATUSES:
                    # The server no longer knows the link: forget it, so the listing (and the
                    # session's retry after a 404) starts over instead of failing for ever.
                    current = session.state.paging
                    if current.link(self.method, url) == before:
                        forgotten = current.without(self.method, url)
                        session.state = attrs.evolve(session.state, paging=forgotten)
                raise
            return _Fetched(url, before, paging.link(self.method, url), body)

        fetched = yield from session.call(fetch)
        self.pages += 1
        # Only this listing's link is written back, into the state as it is now: other flows
        # may have changed the state while the page was in flight (another listing's link, a
        # registration that moved to another messaging base and dropped the links under the old
        # one). A link from a base the session has left is not kept.
        reg = session.state.registration
        if (
            fetched.after is not None
            and fetched.after != fetched.before
            and reg is not None
            and reg.messenger + self.path == fetched.url
        ):
            paging = session.state.paging.with_link(self.method, fetched.url, fetched.after)
            session.state = attrs.evolve(session.state, paging=paging)
        items = _paging.page_items(fetched.body, self.items_key)
        if not items or fetched.after == fetched.before:
            self.finished = True
        return items if items else None
