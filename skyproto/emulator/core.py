"""The pure emulator: ``Emulator.handle(request, now) -> response``.

Theory of operation
-------------------
An :class:`Emulator` is a state machine over its accounts (a main one, any others, and the guests
that join its public conversation), each a user with its own tokens, endpoints and presence. It never opens a socket or reads a clock: the time of every request is passed in,
and the loopback server (:mod:`skyproto.emulator.server`) is what puts it on the wire. The same
object can therefore answer the flows directly, as a fake transport, in tests.

Each request goes through four steps:

1. *Host mapping.* The request URL is mapped back from the emulator's base for a host (for
   example ``http://127.0.0.1:8080/login.live.com`` or ``https://127.0.0.1:8443``) to the real
   host, using the :class:`~skyproto.Hosts` profile the emulator was built with. A URL under no
   base answers 404; with the default profile the real URLs are served as they are.
2. *Routing.* Method and path select one route of :data:`~skyproto.emulator.scenario.ROUTES`.
   A known path with another method answers 405.
3. *Faults.* A :class:`~skyproto.emulator.scenario.Fault` of the scenario that matches the
   route, and has not been used up, answers instead of the route.
4. *The route itself* validates everything it receives (credentials, cookies, PPFT, CkTst,
   LockAndKey, tokens, endpoint ids, bodies) and answers as the real service does. Then, if the
   scenario says so, the answer's body is broken on purpose.

Every URL the emulator emits (redirects, ``Location``, ``ackrequired``, ``syncState`` links,
links inside events and listings) is built from the real URL with :meth:`Hosts.url`, so it points
back at the emulator.

Answers to bad input, where docs/protocol.md does not say what the real service does, follow one
convention, documented in ``docs/emulator.md``: the messaging and join services answer JSON
``{"errorCode": <code>, "message": <text>}`` (401 for a missing, unknown or expired token; 404
with code 729 for an unknown endpoint; 400 for a malformed body), ``api.skype.com`` and the edge
service answer a ``status`` object, and the Live pages answer an ``sErrTxt`` message.

Secrets (passwords, tokens, PPFT, t values) never appear in an error message.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import random
import re
import secrets
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .._http import HttpRequest, HttpResponse, encode_query
from ..errors import LocalProtocolError, RemoteProtocolError
from ..hosts import Hosts
from ..ids import Status, password_hash
from ..mac256 import APP_ID, mac256
from ..registration import normalise_endpoint_id
from ..tokens import utc
from . import pages
from .event_stream import EVENT_KINDS, epoch_millis, event_time, render_event
from .profile import (
    DEFAULT_ACCOUNT,
    DEFAULT_MEETING_ID,
    DEFAULT_MESSENGER_HOST,
    FOREIGN_BASE,
    FOREIGN_LOCATION,
    MESSENGER_HOSTS,
    REDIRECT_MESSENGER_HOST,
    SERVED_HOSTS,
    Account,
    check_accounts,
)
from .scenario import ROUTES, Scenario
from .teams import TEAMS_ROUTE_TABLE, TeamsService

__all__ = ["Emulator"]

K = TypeVar("K")
V = TypeVar("V")

CLIENT_ID = "578134"
REDIRECT_URI = "https://web.skype.com"
SITE_NAME = "lw.skype.com"
PARTNER = "999"
WREPLY = (
    "https://lw.skype.com/login/oauth/proxy?client_id=578134&site_name=lw.skype.com"
    "&redirect_uri=https%3A%2F%2Fweb.skype.com%2F"
)
#: How far (seconds) a LockAndKey ``time`` or a CkTst cookie may be from the emulator's now.
LOCK_AND_KEY_WINDOW = 300
_CKTST_WINDOW_MS = LOCK_AND_KEY_WINDOW * 1000
_PPFT_LIFETIME = dt.timedelta(minutes=15)
_TICKET_LIFETIME = dt.timedelta(minutes=10)
_SECURITY_TOKEN_LIFETIME = dt.timedelta(hours=1)
_JOIN_LIFETIME = dt.timedelta(hours=1)
#: Remembered items per table (sessions, tickets, tokens) before the oldest are forgotten.
_TABLE_LIMIT = 10_000
#: Entries a log (the server's requests, the acknowledged message ids) keeps by default; older
#: ones are forgotten, so a long run's memory stays flat.
LOG_SIZE = 5000
_MAX_PAGE_SIZE = 200

_NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_NS_WSSE = "http://schemas.xmlsoap.org/ws/2003/06/secext"
_NS_WSP = "http://schemas.xmlsoap.org/ws/2002/12/policy"
_NS_WSA = "http://schemas.xmlsoap.org/ws/2004/03/addressing"
_NS_WST = "http://schemas.xmlsoap.org/ws/2004/04/trust"
_NS_PS = "http://schemas.microsoft.com/Passport/SoapServices/PPCRL"
_ISSUE = "http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue"

_LOCK_AND_KEY = re.compile(
    r"appId=(?P<app>[^;\s]+);\s*time=(?P<time>[0-9]{1,12});\s*"
    r"lockAndKeyResponse=(?P<response>[0-9a-f]{32})"
)
_REG_TOKEN_VALUE = re.compile(r"registrationToken=([A-Za-z0-9+/=]+)", re.IGNORECASE)
_CKTST = re.compile(r"G([0-9]{1,16})")
_DESKTOP_BROWSER = re.compile(r"Mozilla/5\.0 \((?:Windows|Macintosh|X11)")
_ACK_IN_URL = re.compile(r"/messages/([^/]+)/ack$")
_PPFT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*$"
_OPID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_JWT_HEADER = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEwNiIsInR5cCI6IkpXVCJ9"
_CONSENT_ACTION = "https://account.live.com/tou/accrue?mkt=EN-US&uiflavor=host"
_TARGET_TYPES = (
    "Passport|Skype|Lync|Thread|Agent|ShortCircuit|PSTN|Flxt|NotificationStream|"
    "ModernBots|secureThreads|InviteFree"
)
_GONE_MESSAGE = "You must create an endpoint before performing this operation."

# (host, method, path pattern, route); "*" matches one non-empty segment; "messenger" stands for
# every messaging host. The path is split after the host's base, percent-decoded per segment.
_ROUTE_TABLE: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("login.live.com", "POST", ("RST.srf",), "soap"),
    ("login.live.com", "POST", ("GetCredentialType.srf",), "credential_type"),
    ("login.live.com", "GET", ("oauth20_authorize.srf",), "live_page"),
    ("login.live.com", "POST", ("ppsecure", "post.srf"), "live_credentials"),
    ("login.skype.com", "GET", ("login", "oauth", "microsoft"), "live_start"),
    ("login.skype.com", "POST", ("login", "microsoft"), "t_exchange"),
    ("login.skype.com", "GET", ("login", "login"), "refresh"),
    ("edge.skype.com", "POST", ("rps", "v1", "rps", "skypetoken"), "edge"),
    ("api.skype.com", "POST", ("login", "skypetoken"), "api_login"),
    ("api.skype.com", "GET", ("users", "self", "profile"), "profile"),
    ("join.skype.com", "GET", ("*",), "join_page"),
    ("api.join.skype.com", "GET", ("v1", "meetings", "*"), "meeting"),
    ("api.join.skype.com", "POST", ("v1", "threads", "*", "members"), "join_thread"),
    ("messenger", "POST", ("v1", "users", "ME", "endpoints"), "register"),
    (
        "messenger",
        "PUT",
        ("v1", "users", "ME", "endpoints", "*", "presenceDocs", "messagingService"),
        "config",
    ),
    ("messenger", "POST", ("v1", "users", "ME", "endpoints", "*", "active"), "ping"),
    ("messenger", "POST", ("v1", "users", "ME", "endpoints", "*", "subscriptions"), "subscribe"),
    (
        "messenger",
        "PUT",
        ("v1", "users", "ME", "endpoints", "*", "subscriptions", "0"),
        "presence_subscribe",
    ),
    (
        "messenger",
        "POST",
        ("v1", "users", "ME", "endpoints", "*", "subscriptions", "0", "poll"),
        "poll",
    ),
    (
        "messenger",
        "POST",
        ("v1", "users", "ME", "conversations", "ALL", "messages", "*", "ack"),
        "ack",
    ),
    ("messenger", "PUT", ("v1", "users", "ME", "presenceDocs", "messagingService"), "set_presence"),
    ("messenger", "GET", ("v1", "users", "ME", "presenceDocs", "messagingService"), "endpoints"),
    ("messenger", "PUT", ("v1", "users", "ME", "conversations", "*", "properties"), "consumption"),
    ("messenger", "GET", ("v1", "users", "ME", "conversations"), "conversations"),
    ("messenger", "GET", ("v1", "users", "ME", "conversations", "*", "messages"), "messages"),
    ("messenger", "POST", ("v1", "users", "ME", "conversations", "*", "messages"), "send"),
    ("messenger", "GET", ("v1", "threads", "*"), "thread"),
    *TEAMS_ROUTE_TABLE,
)
assert {row[3] for row in _ROUTE_TABLE} | {"live_confirm"} == set(ROUTES)


# -- records ---------------------------------------------------------------------------------


@attrs.define
class _User:
    user_id: str
    display_name: str
    guest: bool = False
    presence: str = "Online"
    #: The user's live endpoints by id, oldest first: a listing reads these, not every endpoint.
    endpoints: dict[str, _Endpoint] = attrs.Factory(dict)


@attrs.define
class _Grant:
    """A token (Skype, security, t value) granted to a user until ``expiry``."""

    user_id: str
    expiry: dt.datetime


@attrs.define
class _LiveSession:
    msprequ: str
    mspok: str
    uaid: str
    context: str
    expiry: dt.datetime
    user_id: str | None = None
    opid: str | None = None


@attrs.define
class _JoinSession:
    launcher: str
    meeting_id: str
    expiry: dt.datetime


@attrs.define
class _RegGrant:
    user_id: str
    endpoint_id: str
    expiry: dt.datetime


@attrs.define
class _Pending:
    """An event waiting for delivery: a kind to render, or a raw envelope."""

    kind: str | None
    raw: dict[str, Any] | None
    when: dt.datetime


@attrs.define
class _Endpoint:
    endpoint_id: str
    user_id: str
    base: str
    subscribed: bool = False
    epname: str | None = None
    public_info: dict[str, Any] | None = None
    backlog: deque[_Pending] = attrs.Factory(deque)


@attrs.frozen
class _Routed:
    route: str
    host: str
    base: str
    params: tuple[str, ...]


# -- small helpers -----------------------------------------------------------------------------


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse.build(status, headers=headers, json=body)


def _error(status: int, code: int, message: str) -> HttpResponse:
    return _json(status, {"errorCode": code, "message": message})


def _html(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse.build(
        status, headers=headers, content=text, content_type="text/html; charset=utf-8"
    )


def _soap(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse.build(
        status, content=text, content_type="application/soap+xml; charset=utf-8"
    )


def _status_object(code: int, text: str, status: int = 200) -> HttpResponse:
    return _json(status, {"status": {"code": code, "text": text}})


def _gone() -> HttpResponse:
    return _error(404, 729, _GONE_MESSAGE)


def _epoch(now: dt.datetime) -> int:
    return epoch_millis(now) // 1000


def _wire_id(endpoint_id: str) -> str:
    """An endpoint id as the service writes it in URLs: braces percent-encoded."""
    return endpoint_id.replace("{", "%7B").replace("}", "%7D")


def check_log_size(value: object) -> int:
    """``value`` if it is a positive whole number of log entries, else LocalProtocolError."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LocalProtocolError(f"log_size must be a positive whole number, not {value!r}")
    return value


def _remember(table: dict[K, V], key: K, value: V) -> None:
    """Store ``value``, forgetting the oldest entries beyond the table limit."""
    table[key] = value
    while len(table) > _TABLE_LIMIT:
        del table[next(iter(table))]


def _fields(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Form or query fields by name; the first occurrence wins."""
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _cookie_values(request: HttpRequest) -> dict[str, list[str]]:
    """Every value sent for each cookie name (a name can appear twice, docs/protocol.md §1.2)."""
    jar: dict[str, list[str]] = {}
    for header in request.header_all("cookie"):
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                jar.setdefault(name, []).append(value)
    return jar


def _match(pattern: tuple[str, ...], segments: list[str]) -> tuple[str, ...] | None:
    if len(pattern) != len(segments):
        return None
    captured: list[str] = []
    for want, got in zip(pattern, segments, strict=True):
        if want == "*":
            if not got:
                return None
            captured.append(got)
        elif want != got:
            return None
    return tuple(captured)


def _json_object(request: HttpRequest) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise RemoteProtocolError("request body is not a JSON object")
    return body


def _malform(route: str, response: HttpResponse) -> HttpResponse:
    """``response`` with its body broken in a way a parser must notice."""
    headers = list(response.headers)
    content_type = (response.header("content-type") or "").lower()
    if route == "register":
        headers = [(k, v) for k, v in headers if k.lower() != "set-registrationtoken"]
        headers.append(("Set-RegistrationToken", "registrationToken=; expires=soon"))
        return attrs.evolve(response, headers=tuple(headers))
    if "html" in content_type:
        body = pages.plain_page("Error", "Something went wrong. Please try again later.")
        return attrs.evolve(response, body=body.encode("utf-8"))
    if not response.body:
        headers.append(("Content-Type", "application/json"))
        return attrs.evolve(response, headers=tuple(headers), body=b"{")
    # Half of a JSON object or an XML document is never well-formed.
    return attrs.evolve(response, body=response.body[: max(1, len(response.body) // 2)])


# -- conversations seeded into every emulator -------------------------------------------------

_SEED_CONVERSATIONS: tuple[dict[str, Any], ...] = (
    {
        "id": "8:alice.smith",
        "messages": (
            ("8:alice.smith", "RichText", "Hello <b>there</b>", "2024-03-05T14:23:02.123Z"),
            ("8:live:fred", "Text", "Hi Alice!", "2024-03-05T14:23:40.000Z"),
            ("8:alice.smith", "Text", "Lunch tomorrow?", "2024-03-05T14:25:00.500Z"),
        ),
    },
    {
        "id": "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype",
        "topic": "Project X",
        "members": (
            ("8:alice.smith", "Admin"),
            ("8:live:bob_1", "User"),
            ("28:concierge", "User"),
            ("8:live:fred", "User"),
        ),
        "messages": (
            ("8:live:bob_1", "Text", "Lunch at 1?", "2024-03-05T14:25:10.456Z"),
            ("8:alice.smith", "Text", "Works for me", "2024-03-05T14:26:00.000Z"),
            ("8:live:fred", "RichText", "<i>See you there</i>", "2024-03-05T14:27:30.250Z"),
        ),
    },
    {
        "id": "8:live:bob_1",
        "messages": (
            ("8:live:bob_1", "Text", "Did you get the file?", "2024-03-04T09:00:00.000Z"),
            ("8:live:fred", "Text", "Yes, thanks", "2024-03-04T09:05:00.000Z"),
        ),
    },
    {
        "id": "28:concierge",
        "messages": (("28:concierge", "Text", "Welcome to Skype!", "2024-01-01T00:00:00.000Z"),),
    },
    {
        "id": "19:5e2b8c1d9a7f4e3b6c0d1a2f3e4b5c6d@thread.skype",
        "topic": "Book club",
        "members": (("8:alice.smith", "Admin"), ("8:live:bob_1", "User"), ("8:live:fred", "User")),
        "messages": (
            ("8:alice.smith", "Text", "Next book?", "2024-02-20T19:00:00.000Z"),
            ("8:live:bob_1", "Text", "Something short", "2024-02-20T19:02:00.000Z"),
        ),
    },
)


def _millis_of(stamp: str) -> int:
    # The seed data's own stamps (``...T19:00:00.000Z``); fromisoformat reads them without the
    # lazy import strptime would do mid-flow.
    return epoch_millis(dt.datetime.fromisoformat(stamp))


# -- the emulator ------------------------------------------------------------------------------


class Emulator:
    """The Skype services of docs/protocol.md, as a pure function of requests and time.

    ``hosts`` is the profile whose bases the emulator answers on and writes into the URLs it
    emits (default: the real URLs). ``account`` is the main account (what :attr:`account` is and
    what the inspection methods default to); ``accounts`` are more, each logging in with its own
    name and password as its own user. No login name may name two accounts (else
    LocalProtocolError). ``seed makes every generated token and id reproducible.
    ``meetings`` maps public join ids to thread ids. ``log_size`` bounds :attr:`acknowledged`.

    Not thread-safe: the server serialises calls.
    """

    def __init__(
        self,
        *,
        hosts: Hosts | None = None,
        scenario: Scenario | None = None,
        account: Account | None = None,
        accounts: Sequence[Account] = (),
        seed: int | None = None,
        meetings: Mapping[str, str] | None = None,
        log_size: int = LOG_SIZE,
    ) -> None:
        self._hosts = hosts if hosts is not None else Hosts()
        self._scenario = scenario if scenario is not None else Scenario()
        self._account = account if account is not None else DEFAULT_ACCOUNT
        everyone = check_accounts(self._account, accounts)
        #: Every account by Skype name (its user id), and by each login name it accepts.
        self._accounts: dict[str, Account] = {a.skype_name: a for a in everyone}
        self._by_email: dict[str, Account] = {a.user.lower(): a for a in everyone}
        # Test data, not secrets: a seedable generator keeps runs reproducible.
        self._rng = random.Random(secrets.randbits(64) if seed is None else seed)  # noqa: S311
        self._meetings: dict[str, str] = dict(
            meetings
            if meetings is not None
            else {DEFAULT_MEETING_ID: "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"}
        )
        self._bases = self._build_bases()
        self._users: dict[str, _User] = {
            a.skype_name: _User(a.skype_name, a.display_name) for a in everyone
        }
        self._skype_tokens: dict[str, _Grant] = {}
        self._security_tokens: dict[str, _Grant] = {}
        self._live_sessions: dict[str, _LiveSession] = {}
        self._tickets: dict[str, _Grant] = {}
        self._join_sessions: dict[str, _JoinSession] = {}
        self._reg_tokens: dict[str, _RegGrant] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._stash: deque[_Pending] = deque(maxlen=_TABLE_LIMIT)
        self._fault_uses: dict[int, int] = {}
        self._ackable: dict[str, None] = {}
        self._acknowledged: deque[str] = deque(maxlen=check_log_size(log_size))
        self._horizons: dict[tuple[str, str], str] = {}
        self._sync_states: dict[str, tuple[str, str, int, int]] = {}
        self._sync_tokens: dict[tuple[str, str, int, int], str] = {}
        #: Messages sent through the legacy chat route, by conversation (oldest first).
        self._sent: dict[str, list[tuple[str, str, str, str, str]]] = {}
        self._next_event_id = 1000
        self._last_message_id = 0
        self._event_seq = 0
        self._teams = TeamsService(self)

    # -- public state ------------------------------------------------------------------------

    @property
    def hosts(self) -> Hosts:
        """The profile this emulator answers on."""
        return self._hosts

    @property
    def account(self) -> Account:
        """The main account."""
        return self._account

    @property
    def accounts(self) -> tuple[Account, ...]:
        """Every account: the main one first, then the others in the order given."""
        return tuple(self._accounts.values())

    @property
    def teams(self) -> TeamsService:
        """The Teams Free services (identity, authz, chat; :mod:`skyproto.emulator.teams`)."""
        return self._teams

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, value: Scenario) -> None:
        self.set_scenario(value)

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch to ``scenario``; fault counts start again from zero."""
        if not isinstance(scenario, Scenario):
            raise LocalProtocolError(f"expected a Scenario, not {type(scenario).__name__}")
        self._scenario = scenario
        self._fault_uses.clear()

    @property
    def meetings(self) -> Mapping[str, str]:
        """Public join ids and the thread each one joins."""
        return dict(self._meetings)

    @property
    def acknowledged(self) -> tuple[str, ...]:
        """Message ids acknowledged through ``ackrequired``, in order (repeats included).

        Only the latest ``log_size`` are kept.
        """
        return tuple(self._acknowledged)

    def endpoint_ids(self, user_id: str | None = None) -> tuple[str, ...]:
        """Ids (``{uuid}``) of the live endpoints of ``user_id`` (default: the main account)."""
        user = self._users.get(user_id if user_id is not None else self._account.skype_name)
        return tuple(user.endpoints) if user is not None else ()

    def subscribed(self, endpoint_id: str) -> bool:
        endpoint = self._endpoints.get(endpoint_id)
        return endpoint is not None and endpoint.subscribed

    def presence(self, user_id: str | None = None) -> str | None:
        """The presence status last set by ``user_id`` (default: the main account)."""
        user = self._users.get(user_id if user_id is not None else self._account.skype_name)
        return user.presence if user is not None else None

    def horizon(self, chat_id: str, user_id: str | None = None) -> str | None:
        """The consumption horizon last set on ``chat_id`` (default user: the main account)."""
        user = user_id if user_id is not None else self._account.skype_name
        return self._horizons.get((user, chat_id))

    def guests(self) -> tuple[str, ...]:
        """User ids of the guests that joined."""
        return tuple(u.user_id for u in self._users.values() if u.guest)

    def forget_endpoints(self) -> None:
        """Drop every endpoint, as the service does when they lapse: calls on them answer 729."""
        self._endpoints.clear()
        for user in self._users.values():
            user.endpoints.clear()

    def messenger_base(self, host: str = DEFAULT_MESSENGER_HOST) -> str:
        """The messaging base ``H`` for a messaging host, as clients see it."""
        return self._hosts.url(f"https://{host}/v1")

    # -- entry points ------------------------------------------------------------------------

    def route(self, request: HttpRequest) -> str | None:
        """The route name ``request`` would take, or ``None`` (unknown host, path or method)."""
        routed = self._route(request)
        return routed.route if isinstance(routed, _Routed) else None

    def handle(self, request: HttpRequest, now: dt.datetime) -> HttpResponse:
        """Answer ``request`` as the service would at ``now`` (an aware datetime)."""
        now = utc(now)
        routed = self._route(request)
        if isinstance(routed, HttpResponse):
            return attrs.evolve(routed, url=request.url)
        response = self._take_fault(routed.route)
        if response is None:
            handler: Callable[[HttpRequest, _Routed, dt.datetime], HttpResponse]
            handler = getattr(self, f"_on_{routed.route}", None) or self._teams.handler(
                routed.route
            )
            try:
                response = handler(request, routed, now)
            except RemoteProtocolError as exc:
                response = _error(400, 400, f"Bad request: {exc.message}")
            if response.status < 400 and self._scenario.is_malformed(routed.route):
                response = _malform(routed.route, response)
        return attrs.evolve(response, url=request.url)

    def poll_would_wait(self, request: HttpRequest, now: dt.datetime) -> bool:
        """Whether ``request`` is a valid long poll with nothing to deliver yet.

        The server holds such a request until this turns false or its hold time ends.
        """
        now = utc(now)
        routed = self._route(request)
        if not isinstance(routed, _Routed) or routed.route != "poll":
            return False
        if self._peek_fault("poll") is not None:
            return False
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return False
        endpoint = self._endpoint(grant, routed.params[0])
        if isinstance(endpoint, HttpResponse) or not endpoint.subscribed:
            return False
        return not endpoint.backlog

    def queue_event(self, event: str | Mapping[str, Any], now: dt.datetime) -> int:
        """Queue an event for every subscribed endpoint; return how many will receive it.

        ``event`` is a kind name from :data:`EVENT_KINDS`, or a raw ``eventMessages`` element
        (its ``id`` and ``time`` are filled in when missing). With no endpoint subscribed yet,
        the event waits for the next subscription and 0 is returned.
        """
        now = utc(now)
        if isinstance(event, str):
            if event not in EVENT_KINDS:
                raise LocalProtocolError(
                    f"unknown event kind {event!r}; known kinds: {', '.join(EVENT_KINDS)}"
                )
            pending = _Pending(event, None, now)
        elif isinstance(event, Mapping):
            pending = _Pending(None, copy.deepcopy(dict(event)), now)
        else:
            raise LocalProtocolError("an event is a kind name or a mapping")
        targets = [e for e in self._endpoints.values() if e.subscribed]
        if not targets:
            self._stash.append(pending)
            return 0
        for endpoint in targets:
            endpoint.backlog.append(pending)
        return len(targets)

    # -- routing -----------------------------------------------------------------------------

    def _build_bases(self) -> list[tuple[tuple[str, str, int], str, str]]:
        """``(origin, base path, real host)`` for each served host, longest path first."""
        out = []
        for host in SERVED_HOSTS:
            base = urllib.parse.urlsplit(self._hosts.url(f"https://{host}"))
            scheme = base.scheme.lower()
            port = base.port or (443 if scheme == "https" else 80)
            origin = (scheme, (base.hostname or "").lower(), port)
            out.append((origin, base.path.rstrip("/"), host))
        out.sort(key=lambda item: len(item[1]), reverse=True)
        return out

    def _real_target(self, url: str) -> tuple[str, str] | None:
        """``(real host, path after the base)`` for a URL under one of the bases."""
        try:
            parts = urllib.parse.urlsplit(url)
            scheme = parts.scheme.lower()
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            return None
        origin = (scheme, (parts.hostname or "").lower(), port)
        for base_origin, base_path, host in self._bases:
            if base_origin != origin:
                continue
            if base_path and parts.path != base_path and not parts.path.startswith(base_path + "/"):
                continue
            return host, parts.path[len(base_path) :]
        return None

    def _route(self, request: HttpRequest) -> _Routed | HttpResponse:
        target = self._real_target(request.url)
        if target is None:
            return plain_not_found("No such service here.")
        host, path = target
        segments = [urllib.parse.unquote(s) for s in path.split("/")[1:]]
        kind = "messenger" if host in MESSENGER_HOSTS else host
        allowed: list[str] = []
        for row_host, method, pattern, route in _ROUTE_TABLE:
            if row_host != kind:
                continue
            params = _match(pattern, segments)
            if params is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            if route == "live_credentials" and self._is_confirm(request):
                route = "live_confirm"
            base = self.messenger_base(host) if kind == "messenger" else ""
            return _Routed(route, host, base, params)
        if allowed:
            return HttpResponse.build(
                405, headers=[("Allow", ", ".join(sorted(set(allowed))))], content=b""
            )
        if kind == "messenger":
            return _error(404, 404, "Resource not found.")
        return plain_not_found("The page you requested was not found.")

    @staticmethod
    def _is_confirm(request: HttpRequest) -> bool:
        try:
            return any(name == "opid" for name, _ in request.form())
        except RemoteProtocolError:
            return False

    # -- faults ------------------------------------------------------------------------------

    def _peek_fault(self, route: str) -> int | None:
        for index, fault in enumerate(self._scenario.faults):
            if not fault.matches(route):
                continue
            if fault.times == 0 or self._fault_uses.get(index, 0) < fault.times:
                return index
        return None

    def _take_fault(self, route: str) -> HttpResponse | None:
        index = self._peek_fault(route)
        if index is None:
            return None
        self._fault_uses[index] = self._fault_uses.get(index, 0) + 1
        fault = self._scenario.faults[index]
        if fault.status == 729:
            return _gone()
        if fault.status == 429:
            response = _error(429, 429, "Too many requests. Please retry later.")
            return attrs.evolve(
                response, headers=(*response.headers, ("Retry-After", str(fault.retry_after)))
            )
        messages = {
            400: "Bad request.",
            401: "Authentication failed.",
            403: "Forbidden.",
            404: "Resource not found.",
            500: "Internal server error.",
            502: "Bad gateway.",
            503: "Service unavailable.",
        }
        return _error(fault.status, fault.status, messages[fault.status])

    # -- generated values --------------------------------------------------------------------

    def _b64(self, size: int, *, urlsafe: bool = False) -> str:
        raw = self._rng.randbytes(size)
        text = base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)
        return text.decode("ascii").rstrip("=")

    def _chars(self, alphabet: str, size: int) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(size))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _issue_skype_token(self, user_id: str, now: dt.datetime) -> tuple[str, int]:
        lifetime = self._scenario.token_lifetime
        token = f"{_JWT_HEADER}.{self._b64(96, urlsafe=True)}.{self._b64(32, urlsafe=True)}"
        _remember(self._skype_tokens, token, _Grant(user_id, now + dt.timedelta(seconds=lifetime)))
        return token, lifetime

    def _skype_token_user(self, token: str | None, now: dt.datetime) -> str | None:
        grant = self._skype_tokens.get(token) if token else None
        if grant is None or now >= grant.expiry:
            return None
        return grant.user_id

    def _account_named(self, login: str) -> Account | None:
        """The account ``login`` names (:meth:`Account.knows`), if any: two dict look-ups."""
        return self._accounts.get(login) or self._by_email.get(login.lower())

    def _sign_in(self, login: str, given: str, *, hashed: bool = False) -> Account | None:
        """The account ``login`` names, if ``given`` is its password (``hashed``: its API
        password hash); else ``None``."""
        account = self._account_named(login)
        if self._scenario.wrong_password or account is None:
            return None
        password = account.password
        expected = password_hash(login, password) if hashed else password
        if not secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            return None
        return account

    def _url(self, host: str, path: str) -> str:
        return self._hosts.url(f"https://{host}{path}")

    # -- SOAP and edge (docs/protocol.md §2.1) ------------------------------------------------------

    def _on_soap(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        text = request.body.decode("utf-8", "replace")
        if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
            return _soap(
                pages.soap_fault("S:Client", "Document type declarations are not allowed."), 400
            )
        try:
            # No DTDs reach the parser (refused above), so entity expansion cannot happen.
            root = ET.fromstring(request.body)  # noqa: S314
        except ET.ParseError:
            return _soap(pages.soap_fault("S:Client", "The request is not well-formed XML."), 400)
        if root.tag != f"{{{_NS_SOAP}}}Envelope":
            return _soap(pages.soap_fault("S:Client", "Expected a SOAP 1.1 Envelope."), 400)
        user = root.find(
            f"./{{{_NS_SOAP}}}Header/{{{_NS_WSSE}}}Security/"
            f"{{{_NS_WSSE}}}UsernameToken/{{{_NS_WSSE}}}Username"
        )
        password = root.find(
            f"./{{{_NS_SOAP}}}Header/{{{_NS_WSSE}}}Security/"
            f"{{{_NS_WSSE}}}UsernameToken/{{{_NS_WSSE}}}Password"
        )
        rst = root.find(
            f"./{{{_NS_SOAP}}}Body/{{{_NS_PS}}}RequestMultipleSecurityTokens/"
            f"{{{_NS_WST}}}RequestSecurityToken"
        )
        if user is None or password is None:
            return _soap(pages.soap_fault("wsse:InvalidSecurity", "Missing UsernameToken."))
        if rst is None:
            return _soap(pages.soap_fault("wst:InvalidRequest", "Missing RequestSecurityToken."))
        request_type = rst.findtext(f"{{{_NS_WST}}}RequestType") or ""
        address = (
            rst.findtext(
                f"{{{_NS_WSP}}}AppliesTo/{{{_NS_WSA}}}EndpointReference/{{{_NS_WSA}}}Address"
            )
            or ""
        )
        policy = rst.find(f"{{{_NS_WSSE}}}PolicyReference")
        if (
            request_type.strip() != _ISSUE
            or address.strip() != "wl.skype.com"
            or policy is None
            or policy.get("URI") != "MBI_SSL"
        ):
            return _soap(pages.soap_fault("wst:InvalidRequest", "Invalid request."))
        account = self._sign_in(user.text or "", password.text or "")
        if account is None:
            return _soap(pages.soap_fault("wsse:FailedAuthentication", "Authentication Failure"))
        token = f"t=EwA{self._b64(240)}&p="
        _remember(
            self._security_tokens,
            token,
            _Grant(account.skype_name, now + _SECURITY_TOKEN_LIFETIME),
        )
        return _soap(
            pages.soap_token_response(
                token, event_time(now), event_time(now + _SECURITY_TOKEN_LIFETIME)
            )
        )

    def _on_edge(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        form = _fields(request.form())
        if form.get("partner") != PARTNER or form.get("scopes") != "client":
            return _status_object(40000, "Invalid request: partner or scopes missing or wrong.")
        grant = self._security_tokens.get(form.get("access_token", ""))
        if grant is None or now >= grant.expiry:
            return _status_object(40120, "Authentication failed. Bad username or password.")
        token, lifetime = self._issue_skype_token(grant.user_id, now)
        return _json(
            200,
            {
                "skypetoken": token,
                "expiresIn": lifetime,
                "skypeid": grant.user_id,
                "signinname": self._accounts[grant.user_id].user,
            },
        )

    def _on_credential_type(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        body = _json_object(request)
        login = body.get("username")
        if not isinstance(login, str):
            return _json(400, {"error": {"code": "InvalidRequest", "message": "username"}})
        exists = self._account_named(login) is not None
        return _json(
            200,
            {
                "Username": login,
                "Display": login,
                "IfExistsResult": 0 if exists else 1,
                "IsUnmanaged": False,
                "ThrottleStatus": 0,
            },
        )

    # -- Live web form (docs/protocol.md §2.2) ------------------------------------------------------

    def _on_live_start(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        query = _fields(request.query())
        if query.get("client_id") != CLIENT_ID or query.get("redirect_uri") != REDIRECT_URI:
            return _html(400, pages.plain_page("Bad request", "Unknown client or redirect URI."))
        proxy = (
            f"https://lw.skype.com/login/oauth/proxy?client_id={CLIENT_ID}&site_name={SITE_NAME}"
            "&redirect_uri=https%3A%2F%2Fweb.skype.com"
        )
        params = encode_query(
            [
                ("client_id", CLIENT_ID),
                ("scope", "service::lw.skype.com::MBI_SSL"),
                ("redirect_uri", proxy),
                ("response_type", "code"),
                ("state", self._b64(12, urlsafe=True)),
            ]
        )
        location = self._url("login.live.com", f"/oauth20_authorize.srf?{params}")
        return HttpResponse.build(302, headers=[("Location", location)], content=b"")

    def _post_srf_url(self, opid: str | None = None) -> str:
        params = [("wa", "wsignin1.0"), ("wp", "MBI_SSL"), ("wreply", WREPLY)]
        if opid is not None:
            params.insert(2, ("opid", opid))
        return self._url("login.live.com", f"/ppsecure/post.srf?{encode_query(params)}")

    def _cookie_attributes(self) -> str:
        return "; path=/; HttpOnly" + ("; Secure" if self._secure else "")

    @property
    def _secure(self) -> bool:
        return self._hosts.url("https://login.live.com").startswith("https:")

    def _on_live_page(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        query = _fields(request.query())
        if query.get("client_id") != CLIENT_ID:
            return _html(400, pages.plain_page("Bad request", "Unknown client."))
        ppft = f"DQSsAb{self._chars(_PPFT_ALPHABET, 90)}"
        session = _LiveSession(
            msprequ=f"id=N&lt={_epoch(now)}&co=1",
            mspok=f"$uuid-{self._uuid()}",
            uaid=self._uuid().replace("-", ""),
            # Not the uaid: a cookie's value never appears in a page (--verbose redacts cookies).
            context=self._uuid().replace("-", ""),
            expiry=now + _PPFT_LIFETIME,
        )
        _remember(self._live_sessions, ppft, session)
        attributes = self._cookie_attributes()
        # As Live does: the session cookies (required back by post.srf, §2.2), then a
        # correlation id nobody has to return, with its attributes spelt in mixed case.
        headers = [
            ("Set-Cookie", f"MSPRequ={session.msprequ}{attributes}"),
            ("Set-Cookie", f"MSPOK={session.mspok}{attributes}"),
            ("Set-Cookie", f"uaid={session.uaid}; Path=/; httponly; SameSite=None"),
        ]
        page = pages.live_sign_in_page(self._post_srf_url(), ppft, session.context)
        return _html(200, page, headers)

    def _live_session(
        self, request: HttpRequest, form: Mapping[str, str], now: dt.datetime
    ) -> tuple[str, _LiveSession] | HttpResponse:
        """The sign-in session named by the PPFT, checked against cookies and CkTst."""
        query = _fields(request.query())
        if (
            query.get("wa") != "wsignin1.0"
            or query.get("wp") != "MBI_SSL"
            or query.get("wreply") != WREPLY
        ):
            return _html(400, pages.plain_page("Bad request", "Unexpected sign-in parameters."))
        ppft = form.get("PPFT", "")
        session = self._live_sessions.get(ppft)
        if session is None or now >= session.expiry:
            message = "We couldn't sign you in: the sign-in session has expired. Please try again."
            context = self._uuid().replace("-", "")
            return _html(200, pages.live_error_page(message, "expired", context))
        cookies = _cookie_values(request)
        if session.msprequ not in cookies.get("MSPRequ", []) or session.mspok not in cookies.get(
            "MSPOK", []
        ):
            message = "Your browser's cookies are turned off or the session cookies are missing."
            return _html(200, pages.live_error_page(message, ppft, session.context))
        if not any(self._cktst_ok(value, now) for value in cookies.get("CkTst", [])):
            message = (
                "We couldn't sign you in: your browser's cookie test failed. Please try again."
            )
            return _html(200, pages.live_error_page(message, ppft, session.context))
        return ppft, session

    @staticmethod
    def _cktst_ok(value: str, now: dt.datetime) -> bool:
        match = _CKTST.fullmatch(value)
        return (
            match is not None and abs(int(match.group(1)) - epoch_millis(now)) <= _CKTST_WINDOW_MS
        )

    def _on_live_credentials(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        form = _fields(request.form())
        found = self._live_session(request, form, now)
        if isinstance(found, HttpResponse):
            return found
        ppft, session = found
        if form.get("loginoptions") != "3" or "login" not in form or "passwd" not in form:
            return _html(400, pages.plain_page("Bad request", "Missing sign-in fields."))
        account = self._sign_in(form["login"], form["passwd"])
        if account is None:
            page = pages.live_error_page(pages.BAD_PASSWORD_MESSAGE, ppft, session.context)
            return _html(200, page)
        if self._scenario.two_factor:
            masked = account.masked_email()
            return _html(200, pages.live_two_factor_page(ppft, masked, session.context))
        if self._scenario.consent:
            return _html(200, pages.live_consent_page(_CONSENT_ACTION))
        opid = self._chars(_OPID_ALPHABET, 16)
        session.user_id = account.skype_name
        session.opid = opid
        return _html(200, pages.live_opid_page(self._post_srf_url(opid), ppft, session.context))

    def _on_live_confirm(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        form = _fields(request.form())
        found = self._live_session(request, form, now)
        if isinstance(found, HttpResponse):
            return found
        ppft, session = found
        expected = {
            "site_name": SITE_NAME,
            "oauthPartner": PARTNER,
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "type": "28",
        }
        if any(form.get(name) != value for name, value in expected.items()):
            return _html(400, pages.plain_page("Bad request", "Unexpected confirmation fields."))
        opid = form.get("opid", "")
        if session.opid is None or session.user_id is None or opid != session.opid:
            message = "We couldn't sign you in: the confirmation doesn't match. Please try again."
            return _html(200, pages.live_error_page(message, ppft, session.context))
        session.opid = None
        return _html(200, pages.live_confirm_page(WREPLY, self._issue_ticket(session.user_id, now)))

    def _issue_ticket(self, user_id: str, now: dt.datetime) -> str:
        ticket = f"EwB{self._b64(180)}"
        _remember(self._tickets, ticket, _Grant(user_id, now + _TICKET_LIFETIME))
        return ticket

    def _on_t_exchange(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        query = _fields(request.query())
        form = _fields(request.form())
        expected = {
            "client_id": CLIENT_ID,
            "oauthPartner": PARTNER,
            "site_name": SITE_NAME,
            "redirect_uri": REDIRECT_URI,
        }
        if (
            query.get("client_id") != CLIENT_ID
            or query.get("redirect_uri") != REDIRECT_URI
            or any(form.get(name) != value for name, value in expected.items())
        ):
            return _html(400, pages.plain_page("Bad request", "Unexpected sign-in parameters."))
        # A t value is good for one exchange.
        grant = self._tickets.pop(form.get("t", ""), None)
        if grant is None or now >= grant.expiry:
            return _html(
                200, pages.plain_page("Sign-in failed", "The sign-in ticket is invalid or expired.")
            )
        token, lifetime = self._issue_skype_token(grant.user_id, now)
        return _html(200, pages.skype_token_page("https://web.skype.com/", token, lifetime))

    def _on_refresh(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        query = _fields(request.query())
        if query.get("client_id") != CLIENT_ID or query.get("redirect_uri") != REDIRECT_URI:
            return _html(400, pages.plain_page("Bad request", "Unknown client or redirect URI."))
        for token in _cookie_values(request).get("refresh-token", []):
            user_id = self._skype_token_user(token, now)
            if user_id is not None:
                return _html(200, pages.live_confirm_page(WREPLY, self._issue_ticket(user_id, now)))
        return _html(
            200, pages.refresh_error_page("Your session has expired. Please sign in again.")
        )

    # -- Skype API (docs/protocol.md §2.3, §2.7) ----------------------------------------------------

    def _on_api_login(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        body = _json_object(request)
        login, given = body.get("username"), body.get("passwordHash")
        if (
            not isinstance(login, str)
            or not isinstance(given, str)
            or body.get("scopes") != "client"
        ):
            return _status_object(40000, "Invalid request: username, passwordHash and scopes.")
        account = self._sign_in(login, given, hashed=True)
        if account is None:
            return _status_object(40120, "Authentication failed. Bad username or password.")
        token, lifetime = self._issue_skype_token(account.skype_name, now)
        return _json(200, {"skypetoken": token, "expiresIn": lifetime})

    def _on_profile(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        token = request.header("x-skypetoken")
        authorization = request.header("authorization") or ""
        if token is None and authorization.startswith("skype_token "):
            token = authorization[len("skype_token ") :]
        user_id = self._skype_token_user(token, now)
        if user_id is None:
            return _status_object(40100, "Authentication failed. Invalid or expired token.", 401)
        user = self._users[user_id]
        account = self._accounts.get(user_id)  # None for a guest
        first, _, last = user.display_name.partition(" ")
        return _json(
            200,
            {
                "about": None,
                "avatarUrl": None,
                "birthday": None,
                "city": None,
                "country": "gb",
                "emails": [account.user] if account is not None else [],
                "firstname": first,
                "gender": None,
                "homepage": None,
                "jobtitle": None,
                "language": "en",
                "lastname": last or None,
                "mood": None,
                "phoneHome": None,
                "phoneMobile": None,
                "phoneOffice": None,
                "province": None,
                "richMood": None,
                "username": user_id,
            },
        )

    # -- guests (docs/protocol.md §2.6) -------------------------------------------------------------

    def _on_join_page(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        meeting_id = routed.params[0]
        if meeting_id not in self._meetings:
            return plain_not_found("This conversation link is not valid.")
        if not _DESKTOP_BROWSER.match(request.header("user-agent") or ""):
            return _html(
                200, pages.plain_page("Unsupported device", "Join from a desktop browser.")
            )
        csrf = self._chars("0123456789abcdef", 32)
        session = _JoinSession(self._uuid(), meeting_id, now + _JOIN_LIFETIME)
        _remember(self._join_sessions, csrf, session)
        attributes = "; path=/" + ("; Secure" if self._secure else "")
        headers = [
            ("Set-Cookie", f"csrf_token={csrf}{attributes}"),
            ("Set-Cookie", f"launcher_session_id={session.launcher}{attributes}"),
        ]
        join_url = self._url("join.skype.com", f"/{meeting_id}")
        return _html(200, pages.join_page(meeting_id, join_url), headers)

    def _on_meeting(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        meeting_id = routed.params[0]
        thread = self._meetings.get(meeting_id)
        if thread is None:
            return _error(404, 404, "Meeting not found.")
        return _json(
            200,
            {
                "threadId": thread,
                "joinUrl": self._url("join.skype.com", f"/{meeting_id}"),
                "isGuestJoinEnabled": True,
            },
        )

    def _on_join_thread(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        thread = routed.params[0]
        session = self._join_sessions.get(request.header("csrf_token") or "")
        if session is None or now >= session.expiry:
            return _error(403, 403, "CSRF token validation failed.")
        request_id = request.header("x-skype-request-id")
        if request_id is not None and request_id != session.launcher:
            return _error(403, 403, "Request id does not match the join session.")
        if self._meetings.get(session.meeting_id) != thread:
            return _error(404, 404, "Thread not found.")
        body = _json_object(request)
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            return _error(400, 400, "displayName must be a non-empty string.")
        slug = re.sub(r"[^a-z0-9]", "", name.lower())[:20] or "guest"
        user_id = f"guest:{slug}_{self._chars('0123456789abcdef', 8)}"
        self._users[user_id] = _User(user_id, name.strip(), guest=True)
        token, _lifetime = self._issue_skype_token(user_id, now)
        return _json(200, {"skypetoken": token, "threadId": thread, "userId": f"8:{user_id}"})

    # -- registration (docs/protocol.md §3, §4) -----------------------------------------------------

    def _lock_and_key_ok(self, value: str | None, now: dt.datetime) -> bool:
        match = _LOCK_AND_KEY.fullmatch((value or "").strip())
        if match is None or match.group("app") != APP_ID:
            return False
        if abs(int(match.group("time")) - _epoch(now)) > LOCK_AND_KEY_WINDOW:
            return False
        return secrets.compare_digest(mac256(match.group("time")), match.group("response"))

    def _redirect(self, request: HttpRequest, location: str) -> HttpResponse:
        as_404 = (request.header("behavioroverride") or "").strip().lower() == "redirectas404"
        return HttpResponse.build(
            404 if as_404 else 301, headers=[("Location", location)], content=b""
        )

    def _on_register(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        authentication = (request.header("authentication") or "").strip()
        token = (
            authentication[len("skypetoken=") :]
            if authentication.startswith("skypetoken=")
            else None
        )
        user_id = self._skype_token_user(token, now)
        if user_id is None:
            return _error(
                401, 401, "Authentication failed: missing, unknown or expired Skype token."
            )
        if not self._lock_and_key_ok(request.header("lockandkey"), now):
            return _error(401, 401, "Authentication failed: LockAndKey is missing or wrong.")
        body = _json_object(request)
        if not isinstance(body.get("endpointFeatures"), str):
            return _error(400, 400, "endpointFeatures is required.")
        scenario = self._scenario
        here = routed.host
        if scenario.foreign_location and here == DEFAULT_MESSENGER_HOST:
            return self._redirect(request, FOREIGN_LOCATION)
        if scenario.endless_redirect:
            other = (
                REDIRECT_MESSENGER_HOST
                if here == DEFAULT_MESSENGER_HOST
                else DEFAULT_MESSENGER_HOST
            )
            return self._redirect(request, f"{self.messenger_base(other)}/users/ME/endpoints")
        if scenario.host_redirect and here == DEFAULT_MESSENGER_HOST:
            target = self.messenger_base(REDIRECT_MESSENGER_HOST)
            return self._redirect(request, f"{target}/users/ME/endpoints")
        endpoint_id = "{" + self._uuid() + "}"
        value = base64.b64encode(b"Signature:2:28:" + self._rng.randbytes(66)).decode("ascii")
        expires = _epoch(now) + scenario.registration_lifetime
        expiry = dt.datetime.fromtimestamp(expires, dt.UTC)
        _remember(self._reg_tokens, value, _RegGrant(user_id, endpoint_id, expiry))
        endpoint = _Endpoint(endpoint_id, user_id, routed.base)
        self._endpoints[endpoint_id] = endpoint
        self._users[user_id].endpoints[endpoint_id] = endpoint
        headers = [
            ("Location", f"{routed.base}/users/ME/endpoints/{_wire_id(endpoint_id)}"),
            (
                "Set-RegistrationToken",
                f"registrationToken={value}; expires={expires}; endpointId={endpoint_id}",
            ),
        ]
        return HttpResponse.build(201, headers=headers, content=b"")

    # -- endpoint operations (docs/protocol.md §5) --------------------------------------------------

    def _reg_grant(self, request: HttpRequest, now: dt.datetime) -> _RegGrant | HttpResponse:
        header = request.header("registrationtoken")
        if not header:
            return _error(
                401, 401, "Authentication failed: the RegistrationToken header is missing."
            )
        match = _REG_TOKEN_VALUE.search(header)
        grant = self._reg_tokens.get(match.group(1)) if match else None
        if grant is None:
            return _error(401, 401, "Authentication failed: unknown registration token.")
        if now >= grant.expiry:
            return _error(401, 401, "Authentication failed: the registration token has expired.")
        return grant

    def _endpoint(self, grant: _RegGrant, segment: str) -> _Endpoint | HttpResponse:
        endpoint_id = grant.endpoint_id if segment == "SELF" else normalise_endpoint_id(segment)
        endpoint = self._endpoints.get(endpoint_id) if endpoint_id else None
        if endpoint is None or endpoint.user_id != grant.user_id:
            return _gone()
        return endpoint

    def _endpoint_call(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> _Endpoint | HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        return self._endpoint(grant, routed.params[0])

    def _on_config(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        endpoint = self._endpoint_call(request, routed, now)
        if isinstance(endpoint, HttpResponse):
            return endpoint
        body = _json_object(request)
        private, public = body.get("privateInfo"), body.get("publicInfo")
        if (
            body.get("id") != "messagingService"
            or body.get("type") != "EndpointPresenceDoc"
            or not isinstance(private, dict)
            or not isinstance(private.get("epname"), str)
            or not isinstance(public, dict)
        ):
            return _error(400, 400, "Expected an EndpointPresenceDoc for messagingService.")
        endpoint.epname = private["epname"]
        endpoint.public_info = dict(public)
        return _json(200, self._endpoint_doc(endpoint))

    def _endpoint_doc(self, endpoint: _Endpoint) -> dict[str, Any]:
        link = (
            f"{endpoint.base}/users/8:{endpoint.user_id}/endpoints/{_wire_id(endpoint.endpoint_id)}"
            "/presenceDocs/messagingService"
        )
        return {
            "id": "messagingService",
            "type": "EndpointPresenceDoc",
            "selfLink": link,
            "link": link,
            "privateInfo": {"epname": endpoint.epname or ""},
            "publicInfo": endpoint.public_info or {},
        }

    def _on_ping(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        endpoint = self._endpoint_call(request, routed, now)
        if isinstance(endpoint, HttpResponse):
            return endpoint
        timeout = _json_object(request).get("timeout")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            return _error(400, 400, "timeout must be a positive number of seconds.")
        return HttpResponse.build(201, content=b"")

    def _on_subscribe(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        endpoint = self._endpoint_call(request, routed, now)
        if isinstance(endpoint, HttpResponse):
            return endpoint
        body = _json_object(request)
        resources = body.get("interestedResources")
        if (
            not isinstance(resources, list)
            or not resources
            or not all(isinstance(r, str) for r in resources)
            or body.get("channelType") != "HttpLongPoll"
            or isinstance(body.get("conversationType"), bool)
            or not isinstance(body.get("conversationType"), int)
        ):
            return _error(
                400, 400, "Expected interestedResources, channelType and conversationType."
            )
        if not endpoint.subscribed:  # the first subscription gets the stash and the script
            endpoint.subscribed = True
            endpoint.backlog.extend(self._stash)
            self._stash.clear()
            script = list(self._scenario.events)
            script += [EVENT_KINDS[i % len(EVENT_KINDS)] for i in range(self._scenario.event_count)]
            endpoint.backlog.extend(_Pending(kind, None, now) for kind in script)
        wire_id = _wire_id(endpoint.endpoint_id)
        location = f"{routed.base}/users/ME/endpoints/{wire_id}/subscriptions/0"
        return HttpResponse.build(201, headers=[("Location", location)], content=b"")

    def _on_presence_subscribe(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        endpoint = self._endpoint_call(request, routed, now)
        if isinstance(endpoint, HttpResponse):
            return endpoint
        if _fields(request.query()).get("name") != "interestedResources":
            return _error(400, 400, "Expected name=interestedResources.")
        if not endpoint.subscribed:
            return _error(404, 404, "Subscription not found.")
        resources = _json_object(request).get("interestedResources")
        if (
            not isinstance(resources, list)
            or not resources
            or not all(isinstance(r, str) and r.startswith("/v1/") for r in resources)
        ):
            return _error(400, 400, "interestedResources must be a list of /v1/ paths.")
        return HttpResponse.build(200, content=b"")

    def _on_poll(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        endpoint = self._endpoint_call(request, routed, now)
        if isinstance(endpoint, HttpResponse):
            return endpoint
        if not endpoint.subscribed:
            return _error(404, 404, "Subscription not found.")
        events: list[dict[str, Any]] = []
        while endpoint.backlog and len(events) < self._scenario.events_per_poll:
            events.append(self._render(endpoint.backlog.popleft(), endpoint))
        return _json(200, {"eventMessages": events})

    def _next_message_id(self, when: dt.datetime) -> str:
        self._last_message_id = max(self._last_message_id + 1, epoch_millis(when))
        return str(self._last_message_id)

    def _render(self, pending: _Pending, endpoint: _Endpoint) -> dict[str, Any]:
        event_id = self._next_event_id
        self._next_event_id += 1
        if pending.raw is not None:
            event = copy.deepcopy(pending.raw)
            event.setdefault("id", event_id)
            event.setdefault("time", event_time(pending.when))
            resource = event.get("resource")
            ack = resource.get("ackrequired") if isinstance(resource, dict) else None
            if isinstance(ack, str):
                found = _ACK_IN_URL.search(ack)
                if found:
                    _remember(self._ackable, found.group(1), None)
            return event
        assert pending.kind is not None
        message_id = self._next_message_id(pending.when)
        self._event_seq += 1
        event = render_event(
            pending.kind,
            base=endpoint.base,
            event_id=event_id,
            message_id=message_id,
            when=pending.when,
            seq=self._event_seq,
            user=endpoint.user_id,
        )
        if "ackrequired" in event["resource"]:
            _remember(self._ackable, message_id, None)
        return event

    def _on_ack(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        message_id = routed.params[0]
        if message_id not in self._ackable:
            return _error(404, 404, "Message not found.")
        self._acknowledged.append(message_id)
        return HttpResponse.build(201, content=b"")

    def _on_set_presence(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        try:
            status = Status.parse(_json_object(request).get("status"))
        except RemoteProtocolError:
            return _error(
                400, 400, "status must be one of Offline, Hidden, Busy, Away, Idle, Online."
            )
        self._users[grant.user_id].presence = status.value
        return HttpResponse.build(200, content=b"")

    def _on_endpoints(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        user = self._users[grant.user_id]
        doc: dict[str, Any] = {
            "id": "messagingService",
            "type": "UserPresenceDoc",
            "selfLink": f"{routed.base}/users/8:{user.user_id}/presenceDocs/messagingService",
            "availability": "Offline" if user.presence in ("Offline", "Hidden") else "Online",
            "status": user.presence,
        }
        if _fields(request.query()).get("view") == "expanded":
            doc["endpointPresenceDocs"] = [self._endpoint_doc(e) for e in user.endpoints.values()]
        return _json(200, doc)

    def _on_consumption(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        chat = routed.params[0]
        if _fields(request.query()).get("name") != "consumptionhorizon":
            return _error(400, 400, "Expected name=consumptionhorizon.")
        if not any(seed["id"] == chat for seed in _SEED_CONVERSATIONS):
            return _error(404, 404, "Conversation not found.")
        horizon = _json_object(request).get("consumptionhorizon")
        if not isinstance(horizon, str):
            return _error(400, 400, "consumptionhorizon must be a string.")
        self._horizons[(grant.user_id, chat)] = horizon
        return HttpResponse.build(200, content=b"")

    # -- listings (docs/protocol.md §6) -------------------------------------------------------------

    def _page_request(
        self, request: HttpRequest, grant: _RegGrant, listing: str
    ) -> tuple[int, int] | HttpResponse:
        """``(offset, page size)`` for a listing request, from its syncState or its query."""
        query = _fields(request.query())
        size_text = query.get("pageSize")
        size = self._scenario.page_size
        if size_text is not None:
            if (
                not (size_text.isascii() and size_text.isdigit())
                or not 0 < int(size_text) <= _MAX_PAGE_SIZE
            ):
                return _error(400, 400, f"pageSize must be between 1 and {_MAX_PAGE_SIZE}.")
            size = int(size_text)
        state = query.get("syncState")
        if state is None:
            return 0, size
        found = self._sync_states.get(state)
        if found is None or found[0] != grant.user_id or found[1] != listing:
            return _error(400, 400, "Unknown syncState.")
        return found[2], size

    def _sync_link(
        self, base: str, path: str, user_id: str, listing: str, offset: int, size: int, view: str
    ) -> str:
        key = (user_id, listing, offset, size)
        state = self._sync_tokens.get(key)
        if state is None:
            state = self._b64(24, urlsafe=True)
            _remember(self._sync_tokens, key, state)
            _remember(self._sync_states, state, key)
        params = [("startTime", "0"), ("syncState", state), ("pageSize", str(size)), ("view", view)]
        if listing == "conversations":
            params.append(("targetType", _TARGET_TYPES))
        return f"{base}{path}?{encode_query(params)}"

    def _message_items(self, base: str, seed: Mapping[str, Any]) -> list[dict[str, Any]]:
        chat = seed["id"]
        items = []
        seeded = [(*message, None) for message in seed["messages"]]
        for sender, kind, content, stamp, client_id in [*seeded, *self._sent.get(chat, ())]:
            message_id = str(_millis_of(stamp))
            items.append(
                {
                    "id": message_id,
                    "originalarrivaltime": stamp,
                    "messagetype": kind,
                    "version": message_id,
                    "composetime": stamp,
                    "clientmessageid": client_id or str(int(message_id) * 7 % 10**19),
                    "conversationLink": f"{base}/users/ME/conversations/{chat}",
                    "content": content,
                    "type": "Message",
                    "conversationid": chat,
                    "from": f"{base}/users/ME/contacts/{sender}",
                }
            )
        items.reverse()  # newest first, as the service lists them
        return items

    def _conversation_item(self, base: str, seed: Mapping[str, Any]) -> dict[str, Any]:
        chat = seed["id"]
        last = self._message_items(base, seed)[0]
        item: dict[str, Any] = {
            "id": chat,
            "type": "Conversation",
            "version": int(last["id"]),
            "targetLink": f"{base}/users/ME/contacts/{chat}",
            "properties": {"consumptionhorizon": f"{last['id']};{last['id']};0"},
            "lastMessage": last,
            "messages": f"{base}/users/ME/conversations/{chat}/messages",
            "lastUpdatedMessageId": int(last["id"]),
        }
        if "topic" in seed:
            item["targetLink"] = f"{base}/threads/{chat}"
            item["threadProperties"] = {"topic": seed["topic"], "membercount": "4"}
        return item

    def _listing(
        self,
        request: HttpRequest,
        routed: _Routed,
        now: dt.datetime,
        *,
        listing: str,
        path: str,
        view: str,
        key: str,
        items: Callable[[], list[dict[str, Any]]],
    ) -> HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        found = self._page_request(request, grant, listing)
        if isinstance(found, HttpResponse):
            return found
        offset, size = found
        everything = items()
        page = everything[offset : offset + size]
        following = offset + len(page)
        base = FOREIGN_BASE if self._scenario.foreign_sync_state else routed.base
        link = self._sync_link(base, path, grant.user_id, listing, following, size, view)
        metadata = {"totalCount": len(everything), "syncState": link}
        return _json(200, {key: page, "_metadata": metadata})

    def _on_conversations(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        base = routed.base
        return self._listing(
            request,
            routed,
            now,
            listing="conversations",
            path="/users/ME/conversations",
            view="msnp24Equivalent",
            key="conversations",
            items=lambda: [self._conversation_item(base, s) for s in _SEED_CONVERSATIONS],
        )

    def _on_messages(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        chat = routed.params[0]
        seed = next((s for s in _SEED_CONVERSATIONS if s["id"] == chat), None)
        if seed is None:
            grant = self._reg_grant(request, now)
            if isinstance(grant, HttpResponse):
                return grant
            return _error(404, 404, "Conversation not found.")
        base = routed.base
        return self._listing(
            request,
            routed,
            now,
            listing=f"messages:{chat}",
            path=f"/users/ME/conversations/{chat}/messages",
            view="msnp24Equivalent|supportsMessageProperties",
            key="messages",
            items=lambda: self._message_items(base, seed),
        )

    def _on_send(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        """A message sent through the legacy chat service: 201 with ``OriginalArrivalTime`` (epoch
        milliseconds, a JSON number); a repeated ``clientmessageid`` is recognised, not posted."""
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        chat = routed.params[0]
        if not any(seed["id"] == chat for seed in _SEED_CONVERSATIONS):
            return _error(404, 404, "Conversation not found.")
        body = _json_object(request)
        content, kind = body.get("content"), body.get("messagetype")
        client_id = body.get("clientmessageid")
        if not isinstance(content, str) or kind not in ("Text", "RichText", "RichText/Html"):
            return _error(400, 400, "content and messagetype are required.")
        if not isinstance(client_id, str) or not (client_id.isascii() and client_id.isdigit()):
            return _error(400, 400, "clientmessageid must be a numeric string.")
        sent = self._sent.setdefault(chat, [])
        for *_, stamp, known in sent:
            if known == client_id:
                return _json(201, {"OriginalArrivalTime": _millis_of(stamp)})
        seed = next(s for s in _SEED_CONVERSATIONS if s["id"] == chat)
        newest = max(_millis_of(m[3]) for m in [*seed["messages"], *sent])
        millis = max(epoch_millis(now), newest + 1)
        when = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
        stamp = f"{when:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"
        sent.append((f"8:{grant.user_id}", kind, content, stamp, client_id))
        del sent[:-_TABLE_LIMIT]  # the oldest go first; a conversation stays bounded
        return _json(201, {"OriginalArrivalTime": millis})

    def _on_thread(self, request: HttpRequest, routed: _Routed, now: dt.datetime) -> HttpResponse:
        grant = self._reg_grant(request, now)
        if isinstance(grant, HttpResponse):
            return grant
        thread = routed.params[0]
        seed = next((s for s in _SEED_CONVERSATIONS if s["id"] == thread and "topic" in s), None)
        if seed is None:
            return _error(404, 404, "Thread not found.")
        last = self._message_items(routed.base, seed)[0]
        return _json(
            200,
            {
                "id": thread,
                "type": "Thread",
                "version": int(last["id"]),
                "properties": {
                    "topic": seed["topic"],
                    "creator": seed["members"][0][0],
                    "joiningenabled": "true",
                    "historydisclosed": "true",
                },
                "members": [
                    {"id": member, "userLink": f"{routed.base}/users/{member}", "role": role}
                    for member, role in seed["members"]
                ],
                "messages": f"{routed.base}/users/ME/conversations/{thread}/messages",
            },
        )


def plain_not_found(text: str) -> HttpResponse:
    """A 404 page."""
    return _html(404, pages.plain_page("Not found", text))
