"""A bounded redirect follower with an explicit, per-flow cookie jar.

Transports never follow redirects or keep cookies (docs/design.md property 3), so the login flows that
need both (the Live web form, token refresh, guest join) send their requests through
:func:`fetch`, which does it here, where every byte sent is decided and tested.

Policies
--------
Redirects
    At most :data:`MAX_REDIRECTS` (10) redirects are followed per request; one more is a
    :class:`~skyproto.RemoteProtocolError`. A 301, 302 or 303 turns the request into a body-less
    ``GET``; 307 and 308 keep the method and body. A relative ``Location`` is resolved against the
    URL that was requested, in terms of the *real* service URL, and a ``Location`` naming a real
    service host is then mapped through :meth:`Hosts.url`, so redirects stay inside a loopback
    profile. Every URL, the first one included, must be trusted by :class:`~skyproto.Hosts`;
    anything else raises :class:`~skyproto.UntrustedHostError` before a byte is sent there. When a
    hop changes origin (scheme, host or port), credential headers (:data:`SECRET_HEADERS`) are
    dropped, and so are the cookies the caller passed for the first request only. A 3xx without a
    ``Location`` is returned as it is; :func:`fetch_checked`, which the login flows use, rejects
    it with every other status outside :data:`~skyproto.calls.DEFAULT_ACCEPTED`.
Cookies
    Every ``Set-Cookie`` of every response, intermediate hops included, goes into the jar. A
    cookie without ``Domain=`` is *host-only*: it is sent back to exactly the host that set it,
    never to its subdomains (the reference client's library sends it to subdomains too). A
    cookie with ``Domain=d`` is sent to ``d`` and its subdomains, and is only accepted from a host
    inside ``d`` (a dot-less ``d`` such as ``com`` is only accepted from the host ``com``).
    ``Path=`` and ``Secure`` are honoured as RFC 6265 describes. ``Max-Age<=0``, or an
    ``Expires`` not after the flow's current time, deletes the cookie; other lifetimes are not
    tracked, because a login flow lasts seconds. When the caller passes cookies explicitly, they
    come first in the ``Cookie`` header and a jar cookie of the same name is left out, so a name
    never appears twice.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping

import attrs

from .._flow import Flow, request
from .._http import HttpRequest, HttpResponse, cookie_header
from .._redact import SECRET_HEADERS
from ..calls import DEFAULT_ACCEPTED, check_status, display_url
from ..errors import RemoteProtocolError
from ..hosts import Hosts

__all__ = [
    "MAX_REDIRECTS",
    "REDIRECT_STATUSES",
    "CookieJar",
    "fetch",
    "fetch_checked",
    "resolve_location",
]

#: Redirects followed for one request before giving up.
MAX_REDIRECTS = 10
#: Statuses whose ``Location`` is followed.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TO_GET = frozenset({301, 302, 303})
_MAX_AGE = re.compile(r"-?[0-9]+")
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


@attrs.frozen
class _Cookie:
    name: str
    value: str = attrs.field(repr=False)
    domain: str
    host_only: bool
    path: str
    secure: bool


def _origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _default_path(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rindex("/")]


def _path_matches(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or (host.endswith("." + domain) and not _is_ip(host))


def _expires_passed(value: str, now: dt.datetime) -> bool:
    # Cookie dates are often written "01-Jan-1970"; email.utils wants spaces.
    try:
        when = email.utils.parsedate_to_datetime(value.replace("-", " "))
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # an unreadable date is ignored, as RFC 6265 says
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when <= now


@attrs.define
class CookieJar:
    """The cookies one login flow has received, scoped as described in the module notes."""

    _cookies: dict[tuple[str, str, str], _Cookie] = attrs.field(factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self._cookies)

    def store(self, url: str, response: HttpResponse, now: dt.datetime) -> None:
        """Take in every ``Set-Cookie`` of ``response``, the answer to a request for ``url``."""
        for header in response.header_all("set-cookie"):
            self._store_one(url, header, now)

    def _store_one(self, url: str, header: str, now: dt.datetime) -> None:
        try:
            host = (urllib.parse.urlsplit(url).hostname or "").lower()
        except ValueError:
            return  # no host to keep the cookie for
        pair, *attributes = header.split(";")
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not host:
            return
        domain, path, secure, delete = host, _default_path(url), False, False
        host_only = True
        for attribute in attributes:
            key, _, argument = attribute.partition("=")
            key, argument = key.strip().lower(), argument.strip()
            if key == "domain" and argument.strip("."):
                domain, host_only = argument.strip(".").lower(), False
            elif key == "path" and argument.startswith("/"):
                path = argument
            elif key == "secure":
                secure = True
            elif key == "max-age" and _MAX_AGE.fullmatch(argument):
                delete = argument.startswith("-") or not argument.strip("0")
            elif key == "expires" and not delete:
                delete = _expires_passed(argument, now)
        if not host_only and not _domain_matches(host, domain):
            return  # a host may not set cookies for a domain it is not inside
        if not host_only and "." not in domain and domain != host:
            return
        key3 = (domain, path, name)
        if delete:
            self._cookies.pop(key3, None)
        else:
            self._cookies[key3] = _Cookie(name, value, domain, host_only, path, secure)

    def cookies_for(self, url: str) -> dict[str, str]:
        """The cookies to send with a request for ``url``, by name (first stored wins); none for
        a URL that does not parse (``https://[``)."""
        try:
            parts = urllib.parse.urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return {}
        path = parts.path or "/"
        out: dict[str, str] = {}
        for cookie in self._cookies.values():
            if cookie.secure and parts.scheme.lower() != "https":
                continue
            if cookie.host_only:
                if host != cookie.domain:
                    continue
            elif not _domain_matches(host, cookie.domain):
                continue
            if not _path_matches(path, cookie.path):
                continue
            out.setdefault(cookie.name, cookie.value)
        return out


def _real_url(url: str, hosts: Hosts) -> str:
    """``url`` written with the real service host when it lies under a configured base."""
    for host, base in hosts.overrides.items():
        if url == base or url.startswith(base + "/") or url.startswith(base + "?"):
            return f"https://{host}{url[len(base) :]}"
    return url


def resolve_location(location: str, current_url: str, hosts: Hosts) -> str:
    """The URL a ``Location`` header sends a client to from ``current_url``, after mapping.

    Relative references are resolved in terms of real service URLs, then mapped through
    :meth:`Hosts.url`; the fragment is dropped (it never goes on the wire).
    """
    try:
        resolved = urllib.parse.urljoin(_real_url(current_url, hosts), location.strip())
        return hosts.url(urllib.parse.urldefrag(resolved).url)
    except ValueError:
        raise RemoteProtocolError("redirect Location is not a valid URL") from None


def _with_cookies(
    req: HttpRequest, jar: CookieJar, explicit: Mapping[str, str] | None
) -> HttpRequest:
    sent: dict[str, str] = dict(explicit or {})
    for name, value in jar.cookies_for(req.url).items():
        sent.setdefault(name, value)
    header = cookie_header(sent)
    return req if header is None else req.with_headers([("Cookie", header)])


def _next_hop(current: HttpRequest, status: int, url: str) -> HttpRequest:
    drop = {"cookie"}
    method, body = current.method, current.body
    if status in _TO_GET and method != "HEAD":
        method, body = "GET", b""
        drop |= _BODY_HEADERS
    if _origin(url) != _origin(current.url):
        drop |= SECRET_HEADERS
    headers = tuple((k, v) for k, v in current.headers if k.lower() not in drop)
    return HttpRequest(method, url, headers, body, current.timeout)


def fetch(
    req: HttpRequest,
    *,
    hosts: Hosts,
    jar: CookieJar,
    now: dt.datetime,
    cookies: Mapping[str, str] | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> Flow[HttpResponse]:
    """Sub-flow: send ``req`` (built without a ``Cookie`` header), following redirects.

    ``cookies`` are sent with the first request, and with later hops to the same origin, ahead
    of the jar's. Returns the final response, whose ``url`` is the URL that produced it. Raises
    :class:`~skyproto.UntrustedHostError` for a URL :class:`Hosts` does not trust and
    :class:`~skyproto.RemoteProtocolError` after ``max_redirects`` redirects.
    """
    first_origin = _origin(req.url)
    current = req
    for hop in range(max_redirects + 1):
        hosts.require_trusted(current.url, "a login request" if hop == 0 else "a login redirect")
        explicit = cookies if _origin(current.url) == first_origin else None
        response = yield from request(_with_cookies(current, jar, explicit))
        jar.store(current.url, response, now)
        location = response.header("location")
        if response.status not in REDIRECT_STATUSES or location is None or not location.strip():
            return attrs.evolve(response, url=current.url)
        if hop == max_redirects:
            break
        current = _next_hop(
            current, response.status, resolve_location(location, current.url, hosts)
        )
    raise RemoteProtocolError(
        f"too many redirects (more than {max_redirects}) from {req.method} {display_url(req.url)}"
    )


def fetch_checked(
    req: HttpRequest,
    *,
    hosts: Hosts,
    jar: CookieJar,
    now: dt.datetime,
    cookies: Mapping[str, str] | None = None,
) -> Flow[HttpResponse]:
    """Sub-flow: :func:`fetch`, then :func:`~skyproto.calls.check_status` on the final answer
    (naming ``req``'s method and URL, as the reference client does)."""
    response = yield from fetch(req, hosts=hosts, jar=jar, now=now, cookies=cookies)
    return check_status(response, DEFAULT_ACCEPTED, method=req.method, url=req.url, now=now)
