"""Scenario knobs: how the emulator should misbehave (or not) for one run.

A :class:`Scenario` is a frozen value. Build one in Python (``Scenario(host_redirect=True)``), or
from ``key=value`` strings with :func:`parse_scenario` (what ``--scenario`` on the command line
takes). A running server accepts a new scenario at any time; see
:attr:`skyproto.emulator.EmulatorServer.scenario`.

Routes are named by the short, stable names in :data:`ROUTES`; a few group names
(:data:`ROUTE_GROUPS`) stand for several routes at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import LocalProtocolError
from .event_stream import DEFAULT_EVENTS, EVENT_KINDS
from .teams import TEAMS_ROUTES

__all__ = ["Fault", "Scenario"]

#: Every route the emulator serves, by its short name, with the request it answers.
ROUTES: Mapping[str, str] = {
    "soap": "POST login.live.com/RST.srf (SOAP security-token request)",
    "credential_type": "POST login.live.com/GetCredentialType.srf (account-existence check)",
    "live_start": "GET login.skype.com/login/oauth/microsoft (redirects to the sign-in page)",
    "live_page": "GET login.live.com/oauth20_authorize.srf (sign-in page: PPFT, MSPRequ, MSPOK)",
    "live_credentials": "POST login.live.com/ppsecure/post.srf with login/passwd (opid page)",
    "live_confirm": "POST login.live.com/ppsecure/post.srf with opid (page with the t value)",
    "t_exchange": "POST login.skype.com/login/microsoft (t value for a Skype token)",
    "refresh": "GET login.skype.com/login/login with the refresh-token cookie (fresh t value)",
    "edge": "POST edge.skype.com/rps/v1/rps/skypetoken (security token for a Skype token)",
    "api_login": "POST api.skype.com/login/skypetoken (user name and password hash)",
    "profile": "GET api.skype.com/users/self/profile (the user id)",
    "join_page": "GET join.skype.com/{meeting} (guest join page: csrf_token cookie)",
    "meeting": "GET api.join.skype.com/v1/meetings/{meeting} (the meeting's thread id)",
    "join_thread": "POST api.join.skype.com/v1/threads/{thread}/members (guest Skype token)",
    "register": "POST {H}/users/ME/endpoints (registration-token handshake)",
    "config": "PUT {H}/users/ME/endpoints/{id}/presenceDocs/messagingService",
    "ping": "POST {H}/users/ME/endpoints/{id}/active",
    "subscribe": "POST {H}/users/ME/endpoints/{id}/subscriptions",
    "presence_subscribe": "PUT {H}/users/ME/endpoints/{id}/subscriptions/0?name=interestedResources",
    "poll": "POST {H}/users/ME/endpoints/{id}/subscriptions/0/poll (long poll for events)",
    "ack": "POST {H}/users/ME/conversations/ALL/messages/{id}/ack",
    "set_presence": "PUT {H}/users/ME/presenceDocs/messagingService",
    "endpoints": "GET {H}/users/ME/presenceDocs/messagingService?view=expanded",
    "consumption": "PUT {H}/users/ME/conversations/{chat}/properties?name=consumptionhorizon",
    "conversations": "GET {H}/users/ME/conversations (syncState pages)",
    "messages": "GET {H}/users/ME/conversations/{chat}/messages (syncState pages)",
    "send": "POST {H}/users/ME/conversations/{chat}/messages (201 with OriginalArrivalTime)",
    "thread": "GET {H}/threads/{thread} (a group conversation's properties and members)",
    **TEAMS_ROUTES,
}

#: Names that stand for several routes in :class:`Fault`, ``malformed`` and ``delay_routes``.
ROUTE_GROUPS: Mapping[str, tuple[str, ...]] = {
    "live": ("live_start", "live_page", "live_credentials", "live_confirm"),
    "guest": ("join_page", "meeting", "join_thread"),
    "messenger": (
        "register",
        "config",
        "ping",
        "subscribe",
        "presence_subscribe",
        "poll",
        "ack",
        "set_presence",
        "endpoints",
        "consumption",
        "conversations",
        "messages",
        "send",
        "thread",
    ),
    "teams": ("teams_devicecode", "teams_token", "teams_authz"),
    "chat": ("chat_conversations", "chat_messages", "chat_send"),
    "all": tuple(ROUTES),
}

#: Statuses a :class:`Fault` can inject. 729 is sent as a 404 whose body carries
#: ``{"errorCode": 729, ...}`` (the "endpoint is gone" answer).
FAULT_STATUSES = frozenset({400, 401, 403, 404, 429, 500, 502, 503, 729})


def routes_named(name: str) -> tuple[str, ...]:
    """The routes a route or group name stands for; :class:`LocalProtocolError` if unknown."""
    if name in ROUTES:
        return (name,)
    if name in ROUTE_GROUPS:
        return ROUTE_GROUPS[name]
    known = ", ".join([*ROUTES, *ROUTE_GROUPS])
    raise LocalProtocolError(f"unknown route {name!r}; known routes and groups: {known}")


def _check_route(_instance: object, _attribute: object, value: str) -> None:
    routes_named(value)


def _check_routes(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    for name in value:
        routes_named(name)


def _non_negative_int(_instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LocalProtocolError(f"{attribute.name} must be a whole number >= 0, not {value!r}")


def _positive_int(_instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LocalProtocolError(f"{attribute.name} must be a whole number > 0, not {value!r}")


def _non_negative_number(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise LocalProtocolError(f"{attribute.name} must be a finite number >= 0, not {value!r}")


def _one_of(*allowed: object) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            names = ", ".join(str(a) for a in allowed)
            raise LocalProtocolError(f"{attribute.name} must be one of {names}, not {value!r}")

    return check


def _check_status(_instance: object, _attribute: object, value: int) -> None:
    if value not in FAULT_STATUSES:
        allowed = ", ".join(str(s) for s in sorted(FAULT_STATUSES))
        raise LocalProtocolError(f"fault status must be one of {allowed}, not {value!r}")


def _check_event_kinds(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    for kind in value:
        if kind not in EVENT_KINDS:
            raise LocalProtocolError(
                f"unknown event kind {kind!r}; known kinds: {', '.join(EVENT_KINDS)}"
            )


#: The steps of :attr:`Scenario.trouter_script`.
TROUTER_STEPS = ("message", "typing", "presence", "call", "again", "missed", "drop", "loss")


def _check_trouter_steps(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    for step in value:
        if step not in TROUTER_STEPS:
            raise LocalProtocolError(
                f"unknown Trouter step {step!r}; known steps: {', '.join(TROUTER_STEPS)}"
            )


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise LocalProtocolError("give a sequence of names, not one string")
    return tuple(value)


def _fault_tuple(value: Iterable[Fault]) -> tuple[Fault, ...]:
    out = tuple(value)
    for fault in out:
        if not isinstance(fault, Fault):
            raise LocalProtocolError(f"faults must be Fault values, not {type(fault).__name__}")
    return out


@attrs.frozen
class Fault:
    """Answer ``route`` with ``status`` the next ``times`` times (0: every time).

    429 answers carry ``Retry-After: <retry_after>``.
    """

    route: str = attrs.field(validator=_check_route)
    status: int = attrs.field(validator=_check_status)
    times: int = attrs.field(default=1, validator=_non_negative_int)
    retry_after: int = attrs.field(default=2, validator=_non_negative_int)

    def matches(self, route: str) -> bool:
        return route in routes_named(self.route)


@attrs.frozen
class Scenario:
    """Every knob of the emulator. The default is a well-behaved service.

    Registration: ``host_redirect`` sends the first POST from the default messaging host to the
    ``db3-`` host with a 404 and a ``Location``; ``endless_redirect`` makes the two hosts send
    the client to each other forever; ``foreign_location`` redirects to
    ``https://evil.example/v1/users/ME/endpoints``. ``foreign_sync_state`` makes every listing's
    ``syncState`` link point at ``https://evil.example/v1``.

    Logins: ``wrong_password`` refuses the account's password everywhere; ``two_factor`` and
    ``consent`` answer the Live credentials step with a two-factor page or an ``fmHF`` form.

    Failures: ``faults`` inject statuses on routes; ``malformed`` routes answer a broken body
    (and, for ``register``, a broken ``Set-RegistrationToken``); ``delay`` seconds are added by
    the server before answering ``delay_routes`` (every route when empty).

    Events: every endpoint's first subscription queues ``events`` (kind names, see
    :data:`~skyproto.emulator.event_stream.EVENT_KINDS`) followed by ``event_count`` events
    cycling through every kind. A poll returns at most ``events_per_poll`` events and, when
    there are none, the server holds it for ``hold`` seconds.

    Tokens: Skype tokens live ``token_lifetime`` seconds and registration tokens
    ``registration_lifetime`` seconds. Listings without ``pageSize`` use ``page_size``.

    Teams Free (:mod:`skyproto.emulator.teams`): a device code asks for polls every
    ``device_interval`` seconds; its first ``device_slow_down`` polls answer ``slow_down``,
    the next ``device_pending`` ``authorization_pending``, then the user's
    ``device_outcome`` (``approve``, ``declined`` or ``expired``). ``refresh_dead`` refuses
    every refresh token; a refused one is answered ``refresh_refusal`` (``invalid_grant``,
    or ``interaction_required`` as for a sign-in that needs the user). ``authz_shape`` is
    ``personal`` or ``work``. Chat listings hold at most ``chat_page_size`` items a page;
    ``chat_quota`` chat calls a minute per user are allowed (0: no limit), then the quota
    answer: ``quota_code`` 429, or 803.

    Trouter (:mod:`skyproto.emulator.trouter`): ``trouter_script`` is a list of steps the
    peer carries out one by one while an endpoint is connected and registered, each once
    the pushes before it were answered: ``message`` (a chat message, also added to the
    chat service), ``typing``, ``presence``, ``call`` (pushes of each kind), ``again`` (the
    last message pushed once more), ``missed`` (a message added to the chat service but
    not pushed), ``drop`` (the sockets close) and ``loss`` (``trouter.message_loss``).
    ``trouter_foreign`` (``socketio`` or ``surl``) makes the session answer name
    ``https://evil.example`` there; ``trouter_gzip`` sends push bodies as base64 gzip.
    """

    host_redirect: bool = False
    endless_redirect: bool = False
    foreign_location: bool = False
    foreign_sync_state: bool = False
    wrong_password: bool = False
    two_factor: bool = False
    consent: bool = False
    faults: tuple[Fault, ...] = attrs.field(default=(), converter=_fault_tuple)
    malformed: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_check_routes
    )
    delay: float = attrs.field(default=0.0, validator=_non_negative_number)
    delay_routes: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_check_routes
    )
    events: tuple[str, ...] = attrs.field(
        default=DEFAULT_EVENTS, converter=_str_tuple, validator=_check_event_kinds
    )
    event_count: int = attrs.field(default=0, validator=_non_negative_int)
    events_per_poll: int = attrs.field(default=10, validator=_positive_int)
    hold: float = attrs.field(default=30.0, validator=_non_negative_number)
    token_lifetime: int = attrs.field(default=86400, validator=_positive_int)
    registration_lifetime: int = attrs.field(default=86400, validator=_positive_int)
    page_size: int = attrs.field(default=2, validator=_positive_int)
    device_interval: int = attrs.field(default=1, validator=_positive_int)
    device_slow_down: int = attrs.field(default=0, validator=_non_negative_int)
    device_pending: int = attrs.field(default=1, validator=_non_negative_int)
    device_outcome: str = attrs.field(
        default="approve", validator=_one_of("approve", "declined", "expired")
    )
    refresh_dead: bool = False
    refresh_refusal: str = attrs.field(
        default="invalid_grant", validator=_one_of("invalid_grant", "interaction_required")
    )
    authz_shape: str = attrs.field(default="personal", validator=_one_of("personal", "work"))
    chat_page_size: int = attrs.field(default=2, validator=_positive_int)
    chat_quota: int = attrs.field(default=0, validator=_non_negative_int)
    quota_code: int = attrs.field(default=429, validator=_one_of(429, 803))
    trouter_script: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_check_trouter_steps
    )
    trouter_foreign: str = attrs.field(default="", validator=_one_of("", "socketio", "surl"))
    trouter_gzip: bool = False

    def delays(self, route: str | None) -> float:
        """Seconds the server waits before answering a request on ``route``."""
        if self.delay <= 0:
            return 0.0
        if not self.delay_routes:
            return float(self.delay)
        if route is None:
            return 0.0
        wanted = {r for name in self.delay_routes for r in routes_named(name)}
        return float(self.delay) if route in wanted else 0.0

    def is_malformed(self, route: str) -> bool:
        return any(route in routes_named(name) for name in self.malformed)


_BOOL_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _parse_bool(key: str, text: str) -> bool:
    try:
        return _BOOL_WORDS[text.strip().lower()]
    except KeyError:
        raise LocalProtocolError(f"{key} takes true or false, not {text!r}") from None


def _parse_int(key: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise LocalProtocolError(f"{key} takes a whole number, not {text!r}") from None


def _parse_float(key: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise LocalProtocolError(f"{key} takes a number, not {text!r}") from None


def _parse_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_fault(text: str) -> Fault:
    """Read ``route:status[:times[:retry_after]]``, e.g. ``poll:729:2`` or ``register:429:1:5``."""
    parts = [p.strip() for p in text.split(":")]
    if not 2 <= len(parts) <= 4 or not parts[0]:
        raise LocalProtocolError(
            f"a fault is route:status[:times[:retry_after]], not {text!r} (e.g. poll:729:2)"
        )
    route, status = parts[0], _parse_int("fault status", parts[1])
    times = _parse_int("fault times", parts[2]) if len(parts) > 2 else 1
    retry_after = _parse_int("fault retry_after", parts[3]) if len(parts) > 3 else 2
    return Fault(route, status, times, retry_after)


_BOOL_KEYS = frozenset(
    {"host_redirect", "endless_redirect", "foreign_location", "wrong_password", "two_factor"}
    | {"consent", "foreign_sync_state", "refresh_dead", "trouter_gzip"}
)
_INT_KEYS = frozenset(
    {"event_count", "events_per_poll", "token_lifetime", "registration_lifetime", "page_size"}
    | {"device_interval", "device_slow_down", "device_pending", "chat_page_size", "chat_quota"}
    | {"quota_code"}
)
_WORD_KEYS = frozenset({"device_outcome", "authz_shape", "refresh_refusal", "trouter_foreign"})
_FLOAT_KEYS = frozenset({"delay", "hold"})
_NAME_KEYS = frozenset({"malformed", "delay_routes", "events", "trouter_script"})
_KNOWN_KEYS = sorted(
    _BOOL_KEYS | _INT_KEYS | _FLOAT_KEYS | _NAME_KEYS | _WORD_KEYS | {"fault", "faults"}
)


def parse_scenario(items: Iterable[str], base: Scenario | None = None) -> Scenario:
    """Build a :class:`Scenario` from ``key=value`` strings, starting from ``base``.

    Booleans take ``true/false`` (also ``1/0``, ``yes/no``, ``on/off``); ``malformed``,
    ``delay_routes`` and ``events`` take comma-separated names (``events=all`` is every kind,
    ``events=`` none); ``fault=route:status[:times[:retry_after]]`` may be repeated and adds
    one :class:`Fault` each time (``faults=`` clears them). Raises
    :class:`~skyproto.LocalProtocolError` naming the bad item.
    """
    if isinstance(items, str):
        raise LocalProtocolError("parse_scenario takes a sequence of key=value strings")
    changes: dict[str, Any] = {}
    faults = list((base or Scenario()).faults)
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise LocalProtocolError(f"scenario items are key=value, not {item!r}")
        if key in _BOOL_KEYS:
            changes[key] = _parse_bool(key, value)
        elif key in _INT_KEYS:
            changes[key] = _parse_int(key, value)
        elif key in _FLOAT_KEYS:
            changes[key] = _parse_float(key, value)
        elif key in _WORD_KEYS:
            changes[key] = value.strip()
        elif key == "events" and value.strip().lower() == "all":
            changes[key] = EVENT_KINDS
        elif key in _NAME_KEYS:
            changes[key] = _parse_names(value)
        elif key == "fault":
            faults.append(parse_fault(value))
        elif key == "faults":
            faults = [parse_fault(v) for v in _parse_names(value)]
        else:
            raise LocalProtocolError(
                f"unknown scenario key {key!r}; known keys: {', '.join(_KNOWN_KEYS)}"
            )
    changes["faults"] = tuple(faults)
    try:
        return attrs.evolve(base or Scenario(), **changes)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, LocalProtocolError):
            raise
        raise LocalProtocolError(f"invalid scenario: {exc}") from None
