"""The registration-token handshake (docs/protocol.md §3).

Theory of operation
-------------------
The client POSTs ``{H}/users/ME/endpoints`` with its Skype token. The server answers 200, 201 or
404 (``BehaviorOverride: redirectAs404`` turns "go elsewhere" into a 404 with a ``Location``), and
each answer is read in this order:

1. A ``Location`` whose base (scheme, host, port and the path before ``/users/ME/endpoints``)
   differs from the one just posted to is a *redirect*: everything else in that answer is thrown
   away, including a token and an endpoint id (the reference keeps the id; §12.6), and the next
   POST goes to the new base. The new base must be trusted by :class:`~skyproto.Hosts` before
   the Skype token is sent there, and at most ``max_redirects`` redirects are followed. Bases are
   compared after normalisation (scheme and host case, default port, trailing slash), so
   ``https://Client-S…:443/v1`` is the same base as ``https://client-s…/v1``.
2. Otherwise ``Set-RegistrationToken`` gives the token, its expiry and perhaps the endpoint id;
   an endpoint id in a same-base ``Location`` is used when the header names none.
3. A 200 whose answer still names no endpoint may carry the endpoint list as its JSON body; the
   first element's ``id`` is used. This fallback is best-effort: when the body has any other shape
   the endpoint id is left unknown (a warning is logged) instead of failing a registration that
   did produce a token.
4. An answer with no token and no redirect is retried once after a short pause; a second one is a
   :class:`~skyproto.RemoteProtocolError` (the reference loops forever; §12.1).

Decisions about ``Set-RegistrationToken`` (§3.4, §12.7)
-------------------------------------------------------
* The header is read as ``;``-separated ``name=value`` parameters in any order, spaces optional.
  Parameter names are matched case-insensitively, so ``Expires=`` is accepted (the reference
  crashes on it). The first usable occurrence of each name wins.
* The token kept is the whole ``registrationToken=<value>`` fragment in the header's own spelling
  of the name, because that fragment is what later requests send back. The value is cut at the
  first character outside the base64 alphabet ``A-Z a-z 0-9 + / =``, exactly as the reference
  does: the server has only ever been seen to accept what the reference echoes.
* ``expires`` must be decimal Unix seconds, optionally with a fraction (ignored). A missing,
  malformed or out-of-range value is a :class:`~skyproto.RemoteProtocolError`; ``expires=0`` is
  accepted and gives an already-expired token.
* Endpoint ids are normalised to ``{lower-case id}``: upper-case hex and a bare UUID without
  braces are accepted (the reference ignores them). A value that is neither is ignored, since the
  endpoint id is optional.

No message raised here contains the Skype token, the registration token or the raw header.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from typing import Any

import attrs

from ._flow import Flow, now, request, sleep
from ._http import HttpRequest, HttpResponse
from .calls import REGISTRATION_ACCEPTED, build_request, check_status
from .errors import LocalProtocolError, RemoteProtocolError
from .hosts import Hosts
from .mac256 import lock_and_key
from .tokens import RegistrationToken, SkypeToken

__all__ = ["Registration", "register"]

logger = logging.getLogger("skyproto")

#: Host redirects followed by one handshake before giving up.
DEFAULT_MAX_REDIRECTS = 3
#: Answers without a token (and without a redirect) tolerated before giving up.
NO_TOKEN_ATTEMPTS = 2
#: Pause, in seconds, before posting again after an answer without a token.
NO_TOKEN_RETRY_DELAY = 1.0
#: The registration request body (§3.1).
REGISTRATION_BODY = {"endpointFeatures": "Agent"}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]+")
_EXPIRES = re.compile(r"([0-9]+)(?:\.[0-9]*)?")
_MAX_EXPIRES_DIGITS = 20
_BRACED_ID = re.compile(r"\{([A-Za-z0-9-]+)\}")
_BARE_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
_ENDPOINTS_PATH = ("users", "me", "endpoints")


@attrs.frozen
class Registration:
    """What the handshake yields: the token, the messaging base ``H`` and the endpoint id."""

    token: RegistrationToken
    messenger: str
    endpoint_id: str | None = None


@attrs.frozen
class ParsedRegistrationToken:
    """The parts of a ``Set-RegistrationToken`` header.

    ``token`` is the whole ``registrationToken=<value>`` fragment, as it is sent back.
    """

    token: str = attrs.field(repr=False)
    expiry: dt.datetime
    endpoint_id: str | None = None

    def registration_token(self) -> RegistrationToken:
        """The token and expiry as a :class:`~skyproto.tokens.RegistrationToken`."""
        return RegistrationToken(self.token, self.expiry)


def normalise_endpoint_id(text: str) -> str | None:
    """``{lower-case id}`` from a braced id or a bare UUID, or ``None`` when ``text`` is neither.

    Percent-encoded braces are not decoded here; callers that read ids from URLs unquote first.
    """
    text = text.strip()
    braced = _BRACED_ID.fullmatch(text)
    if braced is not None:
        return "{" + braced.group(1).lower() + "}"
    if _BARE_UUID.fullmatch(text):
        return "{" + text.lower() + "}"
    return None


def _params(header: str) -> list[tuple[str, str, str]]:
    """``(lower-case name, name as written, value)`` for each ``name=value`` parameter."""
    out = []
    for piece in header.split(";"):
        name, sep, value = piece.strip().partition("=")
        name = name.strip()
        if sep and name:
            out.append((name.lower(), name, value.strip()))
    return out


def _expiry(value: str) -> dt.datetime | None:
    """The expiry from an ``expires`` value; ``None`` when malformed. Raises when out of range."""
    match = _EXPIRES.fullmatch(value)
    if match is None:
        return None
    digits = match.group(1)
    out_of_range = RemoteProtocolError(
        "Set-RegistrationToken header has an out-of-range expires value"
    )
    if len(digits) > _MAX_EXPIRES_DIGITS:
        raise out_of_range
    try:
        return _EPOCH + dt.timedelta(seconds=int(digits))
    except OverflowError:
        raise out_of_range from None


def parse_registration_token(header: str) -> ParsedRegistrationToken:
    """Read a ``Set-RegistrationToken`` header (see the module notes for the exact rules).

    Raises :class:`~skyproto.RemoteProtocolError` when the token or a usable ``expires`` is
    missing; the message never contains the header or the token.
    """
    if not isinstance(header, str):
        raise RemoteProtocolError("Set-RegistrationToken header is not text")
    token: str | None = None
    expiry: dt.datetime | None = None
    endpoint_id: str | None = None
    saw_expires = False
    for key, name, value in _params(header):
        if key == "registrationtoken" and token is None:
            run = _BASE64_RUN.match(value)
            if run is not None:
                token = f"{name}={run.group(0)}"
        elif key == "expires" and expiry is None:
            saw_expires = True
            expiry = _expiry(value)
        elif key == "endpointid" and endpoint_id is None:
            endpoint_id = normalise_endpoint_id(value)
    if token is None:
        raise RemoteProtocolError("Set-RegistrationToken header carries no registrationToken value")
    if expiry is None:
        what = "a malformed" if saw_expires else "no"
        raise RemoteProtocolError(f"Set-RegistrationToken header has {what} expires value")
    return ParsedRegistrationToken(token, expiry, endpoint_id)


def _split_url(url: str, what: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise RemoteProtocolError(f"{what} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RemoteProtocolError(f"{what} is not an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise RemoteProtocolError(f"{what} carries user information")
    return parts


def _origin(parts: urllib.parse.SplitResult) -> str:
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def normalise_base(url: str) -> str:
    """A messaging base in canonical form: lower-case scheme and host, no default port, no
    trailing slash. Raises :class:`~skyproto.RemoteProtocolError` when ``url`` is not an
    absolute http(s) URL without query."""
    parts = _split_url(url, "messaging base")
    if parts.query or parts.fragment:
        raise RemoteProtocolError("a messaging base takes no query or fragment")
    return _origin(parts) + parts.path.rstrip("/")


def endpoints_url(base: str) -> str:
    """``{base}/users/ME/endpoints``, the URL the handshake posts to."""
    return f"{base}/users/ME/endpoints"


def parse_location(location: str) -> tuple[str, str | None]:
    """Split a registration ``Location`` into ``(base, endpoint id or None)``.

    ``base`` is the normalised scheme, host and port plus the path before
    ``/users/ME/endpoints``, so path-prefixed bases such as
    ``http://127.0.0.1:8080/client-s.gateway.messenger.live.com/v1`` work. The path may end
    with an endpoint id (``%7B…%7D`` in either case, or literal braces) and a trailing slash;
    a query or fragment is ignored. Anything else raises :class:`~skyproto.RemoteProtocolError`.
    """
    if not isinstance(location, str):
        raise RemoteProtocolError("registration Location is not text")
    parts = _split_url(location, "registration Location")
    segments = parts.path.split("/")
    while len(segments) > 1 and segments[-1] == "":
        segments.pop()
    for start in range(len(segments) - 3, 0, -1):
        if tuple(s.lower() for s in segments[start : start + 3]) != _ENDPOINTS_PATH:
            continue
        rest = segments[start + 3 :]
        if len(rest) > 1:
            break
        endpoint_id: str | None = None
        if rest:
            endpoint_id = normalise_endpoint_id(urllib.parse.unquote(rest[0]))
            if endpoint_id is None:
                raise RemoteProtocolError("registration Location names a malformed endpoint id")
        prefix = "/".join(segments[:start]).rstrip("/")
        return _origin(parts) + prefix, endpoint_id
    raise RemoteProtocolError("registration Location does not point at /users/ME/endpoints")


def registration_request(skype_token: SkypeToken, base: str, when: dt.datetime) -> HttpRequest:
    """One handshake POST to ``{base}/users/ME/endpoints`` with the §3.1 headers at ``when``."""
    return build_request(
        "POST",
        endpoints_url(base),
        kind="registration",
        headers=[
            ("LockAndKey", lock_and_key(when)),
            ("Authentication", f"skypetoken={skype_token.token}"),
            ("BehaviorOverride", "redirectAs404"),
        ],
        json=REGISTRATION_BODY,
    )


@attrs.frozen
class _Answer:
    """One handshake answer, read: either a redirect or a (possibly empty) result."""

    redirect: str | None = None
    token: ParsedRegistrationToken | None = None
    endpoint_id: str | None = None


def _endpoint_from_body(response: HttpResponse) -> str | None:
    try:
        body: Any = response.json()
    except RemoteProtocolError:
        body = None
    if isinstance(body, list) and not body:
        return None
    if isinstance(body, list) and isinstance(body[0], dict):
        value = body[0].get("id")
        if isinstance(value, str):
            endpoint_id = normalise_endpoint_id(value)
            if endpoint_id is not None:
                return endpoint_id
    logger.warning("registration: 200 answer body is not an endpoint list; endpoint id unknown")
    return None


def _read_answer(response: HttpResponse, base: str) -> _Answer:
    location_id: str | None = None
    location = (response.header("location") or "").strip()
    if location:
        location_base, location_id = parse_location(location)
        if location_base != base:
            return _Answer(redirect=location_base)
    header = (response.header("set-registrationtoken") or "").strip()
    if not header:
        return _Answer()
    parsed = parse_registration_token(header)
    endpoint_id = parsed.endpoint_id or location_id
    if endpoint_id is None and response.status == 200:
        endpoint_id = _endpoint_from_body(response)
    return _Answer(token=parsed, endpoint_id=endpoint_id)


def register(
    skype_token: SkypeToken,
    *,
    hosts: Hosts,
    messenger: str | None = None,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
) -> Flow[Registration]:
    """Run the handshake and return the :class:`Registration`.

    Starts from ``messenger`` (the base learnt by an earlier registration) when given, else from
    ``hosts.messenger``. The caller checks the Skype token's expiry first.

    Raises :class:`~skyproto.UntrustedHostError` before sending to a base ``hosts`` does not
    trust, :class:`~skyproto.RemoteProtocolError` for a malformed answer, more than
    ``max_redirects`` redirects or repeated answers without a token,
    :class:`~skyproto.SkypeRateLimitException` on 429 and :class:`~skyproto.SkypeApiException`
    on any other status but 200, 201 and 404.
    """
    if max_redirects < 0:
        raise LocalProtocolError("max_redirects must not be negative")
    start = messenger if messenger is not None else hosts.messenger
    try:
        base = normalise_base(start)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"invalid messaging base: {exc.message}") from None
    hosts.require_trusted(endpoints_url(base), "the registration request")
    redirects = 0
    answers_without_token = 0
    for _ in range(max_redirects + NO_TOKEN_ATTEMPTS):
        when = yield from now()
        req = registration_request(skype_token, base, when)
        response = yield from request(req)
        check_status(response, REGISTRATION_ACCEPTED, method=req.method, url=req.url, now=when)
        answer = _read_answer(response, base)
        if answer.redirect is not None:
            hosts.require_trusted(endpoints_url(answer.redirect), "a registration redirect")
            redirects += 1
            if redirects > max_redirects:
                raise RemoteProtocolError(
                    f"registration redirected more than {max_redirects} times", response
                )
            base = answer.redirect
            logger.info("registration: server moved us to %s", base)
            continue
        if answer.token is not None:
            return Registration(answer.token.registration_token(), base, answer.endpoint_id)
        answers_without_token += 1
        if answers_without_token >= NO_TOKEN_ATTEMPTS:
            raise RemoteProtocolError(
                f"registration answered {answers_without_token} times with neither a "
                "registration token nor a redirect",
                response,
            )
        yield from sleep(NO_TOKEN_RETRY_DELAY)
    raise RemoteProtocolError("registration did not finish within its bounds")  # unreachable
