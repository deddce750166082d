"""Where each service lives, and which hosts may receive a token.

Every URL the core builds starts from a real service URL (``https://login.live.com/RST.srf``) and is
passed through :meth:`Hosts.url`, which swaps the real scheme and host for the configured base. The
default :class:`Hosts` changes nothing and trusts the Skype and Microsoft domains over HTTPS. A
profile with overrides (the loopback emulator, a test server) trusts exactly its effective bases:
the configured ones plus the defaults of the hosts it leaves alone.

Trust is checked before any token-bearing request is built for a URL the *server* chose: a
registration ``Location``, an ``ackrequired`` link, a ``syncState`` link, a redirect during login.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Any

import attrs

from ._redact import redact_url
from .errors import LocalProtocolError, UntrustedHostError

__all__ = ["Hosts"]

#: The real service base URLs, by the name the core uses for them.
SERVICE_URLS: Mapping[str, str] = {
    "login": "https://login.skype.com/login",
    "msacc": "https://login.live.com",
    "edge": "https://edge.skype.com/rps/v1/rps/skypetoken",
    "api": "https://api.skype.com",
    "join": "https://join.skype.com",
    "join_api": "https://api.join.skype.com/v1",
    "messenger": "https://client-s.gateway.messenger.live.com/v1",
}

#: The real hosts of the Teams Free profile (docs/teams.md), by the name the core uses for them.
TEAMS_SERVICE_URLS: Mapping[str, str] = {
    "identity": "https://login.microsoftonline.com",
    "teams": "https://teams.live.com",
    "chat": "https://msgapi.teams.live.com",
    "trouter": "https://go.trouter.skype.com",
    "trouter_teams": "https://go.trouter.teams.microsoft.com",
    "edge": "https://edge.skype.com",
}
#: Domains under which the Teams Free profile trusts any HTTPS host (push-channel hosts are
#: allocated per session, e.g. ``trouter2-eu.trouter.teams.microsoft.com``).
TROUTER_DOMAINS = ("trouter.teams.microsoft.com", "trouter.skype.com")
#: The profiles a :class:`Hosts` can be built for: which real hosts it trusts by default.
PROFILES = ("skype", "teams")

#: The members a profile object (the form ``skyproto emulator`` prints) may hold beside ``hosts``.
PROFILE_MEMBERS = ("hosts", "ca_bundle", "account", "accounts")
#: The regional messaging hosts (``db3-client-s.gateway.messenger.live.com``) live under this.
MESSENGER_DOMAIN = "gateway.messenger.live.com"

#: Domains whose hosts (and sub-hosts) are trusted over HTTPS when no override is configured.
DEFAULT_TRUSTED_DOMAINS = (
    "skype.com",
    "live.com",
    "microsoft.com",
    "microsoftonline.com",
    "skype.net",
)


# A DNS name or an IPv4 address, the way an override key names a real host.
_HOST_NAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
# Characters that make URL parsers disagree about where the host ends (or that no host holds).
_AMBIGUOUS = re.compile(r"[\\\s\x00-\x1f\x7f]|[^\x00-\x7f]")
# What some server or URL parser takes for a path separator.
_SEPARATORS = re.compile(r"[/\\]|%2[fF]|%5[cC]")


def _has_dot_segments(path: str) -> bool:
    """Whether ``path`` has a ``.`` or ``..`` segment, however it is spelt or separated."""
    return any(urllib.parse.unquote(part) in (".", "..") for part in _SEPARATORS.split(path))


def _authority_is_ambiguous(url: str) -> bool:
    """Whether the scheme and authority of ``url`` hold characters parsers read differently."""
    start = url.find("://")
    if start < 0:
        return True
    end = start + 3
    while end < len(url) and url[end] not in "/?#":
        end += 1
    return bool(_AMBIGUOUS.search(url[:end])) or "@" in url[start + 3 : end]


def _normalise_base(base: str) -> str:
    if not isinstance(base, str):
        raise LocalProtocolError("a base URL must be a str")
    shown = redact_url(base)  # a password in user info is not echoed
    if _AMBIGUOUS.search(base):
        raise LocalProtocolError(f"a base URL takes no spaces, backslashes or non-ASCII: {shown!r}")
    try:
        parts = urllib.parse.urlsplit(base)
        parts.port  # noqa: B018 (parses and range-checks the port)
    except ValueError:
        raise LocalProtocolError(f"not a valid base URL: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LocalProtocolError(f"not an absolute http(s) base URL: {shown!r}")
    if "@" in parts.netloc:
        raise LocalProtocolError(f"a base URL takes no user info: {shown!r}")
    if parts.query or parts.fragment or base.endswith(("?", "#")):
        raise LocalProtocolError(f"a base URL takes no query or fragment: {shown!r}")
    if _has_dot_segments(parts.path):
        raise LocalProtocolError(f"a base URL takes no '.' or '..' segments: {shown!r}")
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", "")
    )


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an absolute http(s) URL that every parser reads alike."""
    if _authority_is_ambiguous(url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default_port


def _normalise_bases(bases: Iterable[str]) -> tuple[str, ...]:
    if isinstance(bases, str | bytes):
        raise LocalProtocolError("extra_trusted is a sequence of base URLs, not one string")
    return tuple(_normalise_base(b) for b in bases)


def _host_of(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


#: Every real host a profile may map: the services of both profiles by name.
KNOWN_HOSTS = frozenset(
    _host_of(url) for url in (*SERVICE_URLS.values(), *TEAMS_SERVICE_URLS.values())
)


def is_known_host(host: str) -> bool:
    """Whether ``host`` is a real service host a profile may map: one of :data:`KNOWN_HOSTS`, a
    regional messaging host under :data:`MESSENGER_DOMAIN`, or a push-channel host under
    :data:`TROUTER_DOMAINS`."""
    host = host.lower()
    return host in KNOWN_HOSTS or any(
        host == domain or host.endswith("." + domain)
        for domain in (MESSENGER_DOMAIN, *TROUTER_DOMAINS)
    )


def _check_profile(_instance: object, _attribute: object, value: str) -> None:
    if value not in PROFILES:
        raise LocalProtocolError(f"a hosts profile is one of {', '.join(PROFILES)}, not {value!r}")


def _normalise_overrides(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise LocalProtocolError("host overrides map host names to base URLs")
    out: dict[str, str] = {}
    for host, base in value.items():
        if not isinstance(host, str) or not isinstance(base, str) or not host:
            raise LocalProtocolError("host overrides map host names to base URLs (strings)")
        if not _HOST_NAME.fullmatch(host.lower()):
            raise LocalProtocolError(f"an override key is a bare host name, not {host!r}")
        out[host.lower()] = _normalise_base(base)
    return out


# Every token-bearing request asks whether its URL is trusted; the bases behind the answer are
# the same for a whole session, so they are worked out and parsed once (per distinct profile).
@functools.lru_cache(maxsize=32)
def _trusted_bases(
    overrides: tuple[tuple[str, str], ...], extra: tuple[str, ...], *, teams: bool
) -> tuple[str, ...]:
    bases = [base for _host, base in overrides] + list(extra)
    mapped = {host for host, _base in overrides}
    for real in (TEAMS_SERVICE_URLS if teams else SERVICE_URLS).values():
        host = (urllib.parse.urlsplit(real).hostname or "").lower()
        if host not in mapped:
            bases.append(_normalise_base(real))
    return tuple(dict.fromkeys(bases))


@functools.lru_cache(maxsize=32)
def _parsed_bases(bases: tuple[str, ...]) -> tuple[tuple[tuple[str, str, int] | None, str], ...]:
    return tuple((_origin(base), urllib.parse.urlsplit(base).path) for base in bases)


@attrs.frozen
class Hosts:
    """Service base URLs and the trust allow-list.

    ``overrides`` maps a real host name (``login.live.com``) to the base URL used instead
    (``http://127.0.0.1:8080/login.live.com``). ``extra_trusted`` adds bases that are trusted
    without being a mapped host.

    ``profile`` ``"teams"`` (:meth:`teams`) trusts the Teams Free hosts instead of the legacy
    ones: exactly the bases of :data:`TEAMS_SERVICE_URLS` (or their overrides), plus any HTTPS
    host under :data:`TROUTER_DOMAINS`.
    """

    overrides: Mapping[str, str] = attrs.field(factory=dict, converter=_normalise_overrides)
    extra_trusted: tuple[str, ...] = attrs.field(default=(), converter=_normalise_bases)
    profile: str = attrs.field(default="skype", validator=_check_profile, kw_only=True)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def teams(
        cls, overrides: Mapping[str, str] | None = None, extra_trusted: Iterable[str] = ()
    ) -> Hosts:
        """The Teams Free profile: the real consumer hosts, or ``overrides`` of them."""
        return cls(overrides=dict(overrides or {}), extra_trusted=extra_trusted, profile="teams")

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes, *, profile: str = "skype") -> Hosts:
        """Build from a host map, or from an object whose ``hosts`` member is one.

        The second form is what ``skyproto emulator`` prints on start-up; beside ``hosts`` it
        holds only :data:`PROFILE_MEMBERS`. The map is not empty, and each key is a real service
        host (:func:`is_known_host`): a typo is an error, never a silent fall-back to the real
        services. ``profile`` picks the
        default trust (see the class notes).
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError) as exc:
                raise LocalProtocolError("hosts profile is not valid JSON") from exc
        if not isinstance(data, Mapping):
            raise LocalProtocolError("hosts profile must be a JSON object")
        if "hosts" in data:
            unknown = sorted(str(key) for key in data if key not in PROFILE_MEMBERS)
            if unknown:
                raise LocalProtocolError(
                    f"hosts profile has unknown member(s) {', '.join(map(repr, unknown[:5]))}; "
                    f"it holds {', '.join(PROFILE_MEMBERS)}"
                )
        mapping = data.get("hosts", data)
        if not isinstance(mapping, Mapping):
            raise LocalProtocolError("the 'hosts' member must be a JSON object")
        if not mapping:
            # An empty map would quietly mean the real services.
            raise LocalProtocolError("hosts profile maps no host")
        hosts = cls(overrides=dict(mapping), profile=profile)
        unknown = sorted(host for host in hosts.overrides if not is_known_host(host))
        if unknown:
            raise LocalProtocolError(
                f"hosts profile maps unknown host(s) {', '.join(map(repr, unknown[:5]))}; "
                "a key is a real service host such as 'login.live.com'"
            )
        return hosts

    @classmethod
    def from_file(cls, path: str | PathLike[str], *, profile: str = "skype") -> Hosts:
        """Read a hosts profile (see :meth:`from_json`) from a file."""
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise LocalProtocolError(f"cannot read hosts file {str(path)!r}: {reason}") from exc
        return cls.from_json(raw, profile=profile)

    # -- mapping ------------------------------------------------------------------------------

    def url(self, real_url: str) -> str:
        """Map a real service URL onto the configured base for its host."""
        parts = urllib.parse.urlsplit(real_url)
        host = (parts.hostname or "").lower()
        base = self.overrides.get(host)
        if base is None:
            return real_url
        rest = parts.path
        if parts.query:
            rest += "?" + parts.query
        return base + rest

    def service(self, name: str) -> str:
        """The base URL of a service named in :data:`SERVICE_URLS`, after mapping."""
        try:
            return self.url(SERVICE_URLS[name])
        except KeyError:
            raise LocalProtocolError(f"unknown service {name!r}") from None

    @property
    def login(self) -> str:
        return self.service("login")

    @property
    def msacc(self) -> str:
        return self.service("msacc")

    @property
    def edge(self) -> str:
        return self.service("edge")

    @property
    def api(self) -> str:
        return self.service("api")

    @property
    def join(self) -> str:
        return self.service("join")

    @property
    def join_api(self) -> str:
        return self.service("join_api")

    @property
    def messenger(self) -> str:
        """The default messaging base ``H`` before registration moves it."""
        return self.service("messenger")

    # -- trust --------------------------------------------------------------------------------

    @property
    def trusted_bases(self) -> tuple[str, ...] | None:
        """The exact trusted bases, or ``None`` when the default domain rule applies."""
        teams = self.profile == "teams"
        if not self.overrides and not self.extra_trusted and not teams:
            return None
        return _trusted_bases(tuple(self.overrides.items()), self.extra_trusted, teams=teams)

    def is_trusted(self, url: str) -> bool:
        """Whether a token may be sent to ``url``.

        Refused outright: anything but absolute ``http``/``https`` URLs, URLs with user info, and
        URLs holding backslashes, whitespace, control or non-ASCII characters (parsers disagree
        about where such a host ends). By default any ``https`` host in
        :data:`DEFAULT_TRUSTED_DOMAINS` is trusted; with overrides, exactly the
        :attr:`trusted_bases` are, same scheme, host and port, under the base's path, and a
        path with ``.`` or ``..`` segments is refused.
        """
        origin = _origin(url)
        if origin is None:
            return False
        scheme, host, _port = origin
        bases = self.trusted_bases
        if bases is None:
            return scheme == "https" and any(
                host == d or host.endswith("." + d) for d in DEFAULT_TRUSTED_DOMAINS
            )
        path = urllib.parse.urlsplit(url).path
        if _has_dot_segments(path):
            return False
        if (
            self.profile == "teams"
            and scheme == "https"
            and any(host.endswith("." + d) for d in TROUTER_DOMAINS)
        ):
            return True
        for base_origin, base_path in _parsed_bases(bases):
            if base_origin != origin:
                continue
            if not base_path or path == base_path or path.startswith(base_path + "/"):
                return True
        return False

    def require_trusted(self, url: str, what: str) -> str:
        """Return ``url`` if trusted, else raise :class:`UntrustedHostError` naming ``what``."""
        if not self.is_trusted(url):
            origin = _origin(url)
            if origin is None:
                where = "(an unparsable or ambiguous URL)"
            else:
                host = f"[{origin[1]}]" if ":" in origin[1] else origin[1]
                where = f"{origin[0]}://{host}:{origin[2]}"
            raise UntrustedHostError(f"refusing to follow {what} to untrusted host {where}")
        return url
