"""The Teams Free login chain (docs/teams.md §A): device code, refresh token, authz skypetoken.

Consumer Skype accounts now sign in through the Microsoft identity platform with the consumer
Teams client id, and trade the resulting access token for a Skype token at the ``authz`` service.
Every step is a pure flow:

1. :func:`request_device_code` asks the identity host for a device code; :func:`poll_device_code`
   polls its token endpoint at the ``interval`` it gave (``slow_down`` adds 5 s), bounded by the
   code's ``expires_in``, measured with :class:`~skyproto.Now`. :func:`device_code_login` does
   both and hands the user code and URL to the caller as a :class:`DevicePrompt` through a
   :class:`~skyproto.Deliver` effect.
2. :func:`refresh_access_token` trades a refresh token for an access token for the skypetoken
   scope (:data:`SKYPETOKEN_SCOPE`). Refresh tokens rotate: the answer's one replaces the old one.
   ``invalid_grant`` or ``interaction_required`` raises :class:`DeviceLoginRequired`, telling the
   caller to forget the refresh token and sign in with a new device code.
3. :func:`authz` trades that access token for the Skype token, its expiry, the Skype id and the
   region's service bases (:class:`TeamsAuth`). Both answer shapes are read: the personal one
   (``skypeToken`` an object) and the work one (``tokens.skypeToken`` a string, the Skype id then
   taken from the token's ``skypeid`` claim).

:func:`teams_login` composes them the way a client resumes: refresh when a refresh token is
known, else (or when it is refused and a prompt handler is given) a device-code login.

Tokens go only where the chain names them: the refresh token and device code to the identity
host, the access token to the authz URL. Region bases the authz answer names are kept only when
:class:`~skyproto.Hosts` trusts them (:class:`~skyproto.UntrustedHostError` otherwise), since the
Skype token will be sent there.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import attrs

from .._flow import Flow, deliver, now, request, sleep
from .._http import HttpResponse
from ..calls import DEFAULT_ACCEPTED, build_request, check_status
from ..errors import LocalProtocolError, RemoteProtocolError, SkypeAuthException
from ..hosts import Hosts
from ..tokens import SkypeToken, utc
from ._pages import _seconds, expiry_from, json_object, require_text, shorten

__all__ = [
    "DeviceCodeLogin",
    "DeviceLoginRequired",
    "DevicePrompt",
    "OAuthVersion",
    "Region",
    "TeamsAuth",
    "teams_login",
]

#: The consumer Teams client id (docs/teams.md §A.1).
TEAMS_CLIENT_ID = "8ec6bc83-69c8-4392-8f08-b3c986009232"
#: The Microsoft-account ("consumers") tenant, as a GUID.
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
#: The v1 resource the device-code request names.
V1_RESOURCE = "https://api.spaces.skype.com"
#: The scope whose access token the authz service accepts (with the usual OpenID scopes).
SKYPETOKEN_SCOPE = "service::api.fl.spaces.skype.com::MBI_SSL openid profile offline_access"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: The identity host.
IDENTITY_URL = "https://login.microsoftonline.com"
#: Where an access token becomes a Skype token (personal accounts).
AUTHZ_URL = "https://teams.live.com/api/auth/v1.0/authz/consumer"
#: Seconds ``slow_down`` adds to the polling interval (RFC 8628 §3.5).
SLOW_DOWN_STEP = 5
#: The polling interval when the device-code answer gives none (RFC 8628 §3.2).
DEFAULT_INTERVAL = 5
#: Bounds on what a device-code answer may ask for.
_MAX_INTERVAL = 300
_MAX_DEVICE_LIFETIME = 3 * 3600
_AUTHZ_ACCEPT = "application/json; ver=1.0"

# What the user is told to do for each terminal polling error.
_POLL_ADVICE: Mapping[str, str] = {
    "expired_token": "the device code expired before sign-in finished; start the login again",
    "code_expired": "the device code expired before sign-in finished; start the login again",
    "authorization_declined": "sign-in was declined in the browser; start the login again and "
    "approve it",
    "access_denied": "sign-in was declined in the browser; start the login again and approve it",
    "invalid_grant": "the identity service refused the device code; start the login again",
    "bad_verification_code": "the identity service does not know this device code; start the "
    "login again",
    "interaction_required": "the account needs a step in the browser; start the login again",
}
# Refresh errors after which only a new device-code login helps.
_REFRESH_DEAD = frozenset({"invalid_grant", "interaction_required"})


class OAuthVersion(enum.Enum):
    """Which device-code endpoints to use (docs/teams.md §A.2).

    ``V1`` (``common/oauth2/devicecode`` with a ``resource``) is what most personal clients send;
    its token is for another resource, so the chain refreshes it for the skypetoken scope before
    ``authz``. ``V2`` (``consumers/oauth2/v2.0/devicecode`` with a ``scope``) yields a token for
    the skypetoken scope directly; it rests on a single source (docs/teams.md §8).
    """

    V1 = "v1"
    V2 = "v2"


class DeviceLoginRequired(SkypeAuthException):
    """The refresh token was refused for good: forget it and sign in with a new device code."""


@attrs.frozen
class DevicePrompt:
    """What the user must do: open ``verification_url`` and enter ``user_code`` before
    ``expires_at``. ``message`` is the identity service's own wording, when it sent one."""

    verification_url: str
    user_code: str
    expires_at: dt.datetime
    message: str | None = None

    def __str__(self) -> str:
        return f"To sign in, open {self.verification_url} and enter the code {self.user_code}"


@attrs.frozen
class DeviceCode:
    """A device-code answer. The ``device_code`` is a credential and never shown."""

    device_code: str = attrs.field(repr=False)
    user_code: str
    verification_url: str
    expires_in: int
    interval: int
    version: OAuthVersion = OAuthVersion.V1
    message: str | None = None

    def prompt(self, issued: dt.datetime) -> DevicePrompt:
        """The prompt for this code, issued at ``issued``."""
        return DevicePrompt(
            self.verification_url,
            self.user_code,
            utc(issued) + dt.timedelta(seconds=self.expires_in),
            self.message,
        )


@attrs.frozen
class OAuthTokens:
    """An access token, its expiry, and the (rotated) refresh token. Secrets hidden."""

    access_token: str = attrs.field(repr=False)
    expiry: dt.datetime = attrs.field(converter=utc)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    scope: str | None = None


@attrs.frozen
class Region:
    """The service bases an authz answer names (``regionGtms``); ``None`` when absent."""

    chat_service: str | None = None
    chat_service_afd: str | None = None
    middle_tier: str | None = None


@attrs.frozen
class TeamsAuth:
    """What authz answers: the Skype token (with expiry), the Skype id and the region."""

    skype_token: SkypeToken
    skype_id: str
    region: Region = attrs.field(factory=Region)


@attrs.frozen
class DeviceCodeLogin:
    """How to run a device-code login: ``on_prompt`` receives the :class:`DevicePrompt` (through
    a :class:`~skyproto.Deliver` effect, so it may be async) before polling starts."""

    on_prompt: Callable[[DevicePrompt], object] = attrs.field(repr=False)
    version: OAuthVersion = OAuthVersion.V1


# -- parsers -----------------------------------------------------------------------------------


def _whole_seconds(
    data: Mapping[str, Any], key: str, response: HttpResponse, *, default: int, limit: int
) -> int:
    """Member ``key`` as whole seconds (a number or a digit string, as clients see both)."""
    if key not in data or data[key] is None or data[key] == "":
        return default
    seconds = _seconds(data[key])
    if seconds is None:
        raise RemoteProtocolError(f"{key} is not a whole number of seconds", response)
    if not 0 <= seconds <= limit:
        raise RemoteProtocolError(f"{key} is out of range", response)
    return seconds


def parse_device_code(response: HttpResponse, version: OAuthVersion) -> DeviceCode:
    """Read a device-code answer (v1 ``verification_url`` or v2 ``verification_uri``)."""
    data = json_object(response, "device-code")
    device_code = require_text(data.get("device_code"), "the device code", response)
    user_code = require_text(data.get("user_code"), "the user code", response)
    url = data.get("verification_url") or data.get("verification_uri")
    url = require_text(url, "the verification URL", response)
    expires_in = _whole_seconds(
        data, "expires_in", response, default=900, limit=_MAX_DEVICE_LIFETIME
    )
    if expires_in == 0:
        raise RemoteProtocolError("the device code expires at once", response)
    interval = _whole_seconds(
        data, "interval", response, default=DEFAULT_INTERVAL, limit=_MAX_INTERVAL
    )
    message = data.get("message")
    return DeviceCode(
        device_code,
        user_code,
        url,
        expires_in,
        max(1, interval),
        version,
        shorten(message) if isinstance(message, str) and message else None,
    )


def parse_oauth_tokens(response: HttpResponse, current: dt.datetime) -> OAuthTokens:
    """Read a token-endpoint success answer: ``access_token``, ``expires_in``, ``refresh_token``."""
    data = json_object(response, "token")
    access = require_text(data.get("access_token"), "the access token", response)
    refresh = data.get("refresh_token")
    if refresh is not None and refresh != "" and not isinstance(refresh, str):
        raise RemoteProtocolError("the refresh token is not a string", response)
    scope = data.get("scope")
    return OAuthTokens(
        access,
        expiry_from(data, "expires_in", current, response),
        refresh or None,
        scope if isinstance(scope, str) and scope else None,
    )


def _oauth_error(response: HttpResponse) -> str | None:
    """The ``error`` code of a token-endpoint refusal, or ``None`` when it names none."""
    try:
        data = response.json()
    except RemoteProtocolError:
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("error")
    return code if isinstance(code, str) and code else None


def _fail(response: HttpResponse, *, method: str, url: str, current: dt.datetime) -> NoReturn:
    """Raise what a non-OAuth failure calls for (429 with ``Retry-After``, or the status)."""
    check_status(response, DEFAULT_ACCEPTED, method=method, url=url, now=current)
    raise RemoteProtocolError("token answer has neither a token nor an error", response)


def _jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 64 * 1024:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def skype_id_from_token(token: str) -> str | None:
    """The ``skypeid`` claim of a Skype token (a JWT), or ``None`` when it has none."""
    claims = _jwt_claims(token)
    if claims is None:
        return None
    value = claims.get("skypeid")
    return value if isinstance(value, str) and value else None


def _region(data: Mapping[str, Any], hosts: Hosts, response: HttpResponse) -> Region:
    gtms = data.get("regionGtms")
    if gtms is None:
        return Region()
    if not isinstance(gtms, dict):
        raise RemoteProtocolError("regionGtms in the authz answer is not an object", response)
    found: dict[str, str | None] = {}
    # Which keys a personal answer carries rests on a single source (docs/teams.md §8).
    for key, field in (
        ("chatService", "chat_service"),
        ("chatServiceAfd", "chat_service_afd"),
        ("middleTier", "middle_tier"),
    ):
        value = gtms.get(key)
        if value is None or value == "":
            found[field] = None
            continue
        if not isinstance(value, str):
            raise RemoteProtocolError(f"regionGtms.{key} is not a string", response)
        found[field] = hosts.require_trusted(value.rstrip("/"), f"the region's {key}")
    return Region(**found)


def _authz_refusal(data: Mapping[str, Any]) -> str | None:
    # Both refusal shapes rest on a single source (docs/teams.md §8).
    status = data.get("status")
    if isinstance(status, dict) and (status.get("code") or status.get("text")):
        return shorten(f"{status.get('code')} - {status.get('text')}")
    code = data.get("errorCode")
    if code is not None and code != "":
        message = data.get("message")
        return shorten(f"{code} - {message}" if message else str(code))
    return None


def parse_authz(response: HttpResponse, current: dt.datetime, *, hosts: Hosts) -> TeamsAuth:
    """Read an authz answer, personal or work shape (see the module notes)."""
    data = json_object(response, "authz")
    nested = data.get("skypeToken")
    if isinstance(nested, dict):
        token = require_text(nested.get("skypetoken"), "the authz skypetoken", response)
        fields: Mapping[str, Any] = nested
        skype_id = nested.get("skypeid")
    elif isinstance(data.get("tokens"), dict):
        fields = data["tokens"]
        token = require_text(fields.get("skypeToken"), "the authz skypeToken", response)
        skype_id = None
    else:
        refusal = _authz_refusal(data)
        if refusal is not None:
            raise SkypeAuthException(f"authz refused the access token ({refusal})", response)
        raise RemoteProtocolError("the authz answer holds no Skype token", response)
    if skype_id is None or skype_id == "":
        skype_id = skype_id_from_token(token)
    skype_id = require_text(skype_id, "the Skype id", response)
    expiry = expiry_from(fields, "expiresIn", current, response)
    return TeamsAuth(SkypeToken(token, expiry), skype_id, _region(data, hosts, response))


# -- flows -------------------------------------------------------------------------------------


def _identity(hosts: Hosts, path: str, what: str) -> str:
    return hosts.require_trusted(hosts.url(IDENTITY_URL + path), what)


def request_device_code(
    hosts: Hosts, *, version: OAuthVersion = OAuthVersion.V1
) -> Flow[DeviceCode]:
    """Flow: ask the identity host for a device code."""
    if version is OAuthVersion.V1:
        url = _identity(hosts, "/common/oauth2/devicecode", "the device-code request")
        form = [("client_id", TEAMS_CLIENT_ID), ("resource", V1_RESOURCE)]
    else:
        url = _identity(hosts, "/consumers/oauth2/v2.0/devicecode", "the device-code request")
        form = [("client_id", TEAMS_CLIENT_ID), ("scope", SKYPETOKEN_SCOPE)]
    response = yield from request(build_request("POST", url, form=form))
    current = yield from now()
    if response.status != 200:
        code = _oauth_error(response)
        if code is not None:
            raise SkypeAuthException(
                f"the identity service refused a device code ({shorten(code, 60)})", response
            )
        check_status(response, {200}, method="POST", url=url, now=current)
    return parse_device_code(response, version)


def poll_device_code(code: DeviceCode, hosts: Hosts, *, issued: dt.datetime) -> Flow[OAuthTokens]:
    """Flow: poll the token endpoint until the user signs in, at the code's interval.

    Ends with the tokens, or :class:`~skyproto.SkypeAuthException` saying what to do: the code
    expired (also when ``issued + expires_in`` passes while waiting), sign-in was declined, or
    the grant was refused. Polls at most once per second of the code's lifetime, so a driver
    whose clock stands still cannot make it spin.
    """
    if code.version is OAuthVersion.V1:
        url = _identity(hosts, "/common/oauth2/token", "the device-code poll")
        form = [("client_id", TEAMS_CLIENT_ID), ("grant_type", DEVICE_CODE_GRANT)]
        form.append(("code", code.device_code))
    else:
        url = _identity(hosts, "/consumers/oauth2/v2.0/token", "the device-code poll")
        form = [("client_id", TEAMS_CLIENT_ID), ("grant_type", DEVICE_CODE_GRANT)]
        form.append(("device_code", code.device_code))
    deadline = utc(issued) + dt.timedelta(seconds=code.expires_in)
    interval = code.interval
    for _ in range(code.expires_in + 1):
        yield from sleep(interval)
        current = yield from now()
        if current >= deadline:
            break
        response = yield from request(build_request("POST", url, form=form))
        current = yield from now()
        if response.status == 200:
            return parse_oauth_tokens(response, current)
        error = _oauth_error(response)
        if error is None:
            _fail(response, method="POST", url=url, current=current)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = min(interval + SLOW_DOWN_STEP, _MAX_INTERVAL)
            continue
        advice = _POLL_ADVICE.get(error, "start the login again")
        raise SkypeAuthException(f"device-code sign-in failed ({shorten(error, 60)}): {advice}")
    raise SkypeAuthException(
        f"the device code expired after {code.expires_in} s before sign-in finished; "
        "start the login again"
    )


def device_code_login(hosts: Hosts, login: DeviceCodeLogin) -> Flow[OAuthTokens]:
    """Flow: request a device code, hand its :class:`DevicePrompt` to ``login.on_prompt``, poll.

    The tokens returned are for the skypetoken scope: after a v1 code, the refresh token is
    traded for one first (docs/teams.md §A.3).
    """
    code = yield from request_device_code(hosts, version=login.version)
    issued = yield from now()
    yield from deliver(code.prompt(issued), login.on_prompt)
    tokens = yield from poll_device_code(code, hosts, issued=issued)
    if code.version is OAuthVersion.V2:
        return tokens
    if tokens.refresh_token is None:
        raise RemoteProtocolError("the device-code sign-in gave no refresh token")
    return (yield from refresh_access_token(tokens.refresh_token, hosts))


def refresh_access_token(refresh_token: str, hosts: Hosts) -> Flow[OAuthTokens]:
    """Flow: trade ``refresh_token`` for an access token for :data:`SKYPETOKEN_SCOPE`.

    The answer's refresh token replaces the old one; an answer without one keeps the old one.
    ``invalid_grant`` or ``interaction_required``: :class:`DeviceLoginRequired`.
    """
    if not isinstance(refresh_token, str) or not refresh_token:
        raise LocalProtocolError("a refresh token is a non-empty str")
    # Sources disagree on the tenant segment (docs/teams.md §8): sent as the most active
    # personal client sends it, the GUID; others send ``consumers``.
    url = _identity(hosts, f"/{CONSUMER_TENANT}/oauth2/v2.0/token", "the token refresh")
    form = [
        ("client_id", TEAMS_CLIENT_ID),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("scope", SKYPETOKEN_SCOPE),
    ]
    response = yield from request(build_request("POST", url, form=form))
    current = yield from now()
    if response.status == 200:
        tokens = parse_oauth_tokens(response, current)
        # Rotation (keep the newest) rests on a single source (docs/teams.md §8).
        if tokens.refresh_token is None:
            tokens = attrs.evolve(tokens, refresh_token=refresh_token)
        return tokens
    error = _oauth_error(response)
    if error in _REFRESH_DEAD:
        raise DeviceLoginRequired(
            f"the refresh token was refused ({error}); a new device-code login is needed",
            response,
        )
    if error is not None:
        raise SkypeAuthException(f"the token refresh failed ({shorten(error, 60)})", response)
    _fail(response, method="POST", url=url, current=current)


def authz(access_token: str, hosts: Hosts) -> Flow[TeamsAuth]:
    """Flow: trade an access token for the skypetoken scope for a :class:`TeamsAuth`."""
    if not isinstance(access_token, str) or not access_token:
        raise LocalProtocolError("an access token is a non-empty str")
    url = hosts.require_trusted(hosts.url(AUTHZ_URL), "the authz request")
    headers = [
        ("Authorization", f"Bearer {access_token}"),
        ("Accept", _AUTHZ_ACCEPT),
        ("ms-ic3-product", "tfl"),
        ("X-MS-Client-Consumer-Type", "teams4life"),
    ]
    response = yield from request(build_request("POST", url, headers=headers, content=b""))
    current = yield from now()
    if response.status in (400, 401, 403):
        try:
            data = response.json()
        except RemoteProtocolError:
            data = None
        refusal = _authz_refusal(data) if isinstance(data, dict) else None
        raise SkypeAuthException(
            f"authz refused the access token ({refusal or response.status})", response
        )
    check_status(response, DEFAULT_ACCEPTED, method="POST", url=url, now=current)
    return parse_authz(response, current, hosts=hosts)


def teams_tokens(
    hosts: Hosts,
    *,
    refresh_token: str | None = None,
    device: DeviceCodeLogin | None = None,
) -> Flow[tuple[OAuthTokens, bool]]:
    """Flow: tokens for the skypetoken scope from ``refresh_token`` (when given), else by a
    device-code login; and whether they came from ``refresh_token``.

    A refresh token refused for good falls back to ``device`` when given, else the
    :class:`DeviceLoginRequired` propagates. After a refresh the old refresh token is spent:
    keep the answer's one before anything else can fail.
    """
    if refresh_token is not None:
        try:
            return (yield from refresh_access_token(refresh_token, hosts)), True
        except DeviceLoginRequired:
            if device is None:
                raise
    if device is None:
        raise DeviceLoginRequired("no refresh token; a device-code login is needed")
    return (yield from device_code_login(hosts, device)), False


def teams_login(
    hosts: Hosts,
    *,
    refresh_token: str | None = None,
    device: DeviceCodeLogin | None = None,
) -> Flow[tuple[TeamsAuth, str | None]]:
    """Flow: :func:`teams_tokens`, then :func:`authz`.

    Returns the :class:`TeamsAuth` and the newest refresh token (keep it: they rotate). A
    caller that must keep the rotated refresh token even when ``authz`` fails runs the two
    steps itself, as :class:`~skyproto.Session` does.
    """
    tokens, _ = yield from teams_tokens(hosts, refresh_token=refresh_token, device=device)
    auth = yield from authz(tokens.access_token, hosts)
    return auth, tokens.refresh_token
