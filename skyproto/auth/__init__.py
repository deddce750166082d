"""Every login flow, one module per flow (docs/protocol.md §2).

Each flow does the login only and returns a :class:`~skyproto.tokens.SkypeToken`; fetching the
user id (:func:`fetch_user_id`) and registering are composed by the session. :func:`login` picks
a flow with SkPy's rule (:func:`choose_method`) unless told which.

Policies shared by the flows, documented where they live:

* expiry: ``floor(now) + expiresIn``; no expiry in the answer means ``now +``
  :data:`~skyproto.tokens.DEFAULT_TOKEN_LIFETIME`, and guests get
  :data:`~skyproto.tokens.GUEST_TOKEN_LIFETIME` (``skyproto/auth/_pages.py``);
* redirects and cookies: at most 10 redirects per request, to trusted hosts only, with a per-flow
  cookie jar scoped per host (``skyproto/auth/_redirects.py``);
* the Live page check and its form rule (:mod:`skyproto.auth.live`);
* SOAP parsing, faults and DOCTYPE refusal (:mod:`skyproto.auth.soap`).

The Teams Free chain (device code, refresh token, authz; docs/teams.md) lives in
:mod:`skyproto.auth.teams`; what a program needs of it is here too: :class:`DeviceCodeLogin`
(the credentials of a Teams Free :class:`~skyproto.Session`), the :class:`DevicePrompt` it shows,
:class:`DeviceLoginRequired` (a refresh token refused for good) and :func:`teams_login`.
"""

from __future__ import annotations

import enum

from .._flow import Flow
from ..errors import LocalProtocolError
from ..hosts import Hosts
from ..tokens import Credentials, SkypeToken
from .api import api_login
from .guest import guest_login
from .live import live_login
from .profile import fetch_user_id
from .refresh import refresh_login
from .soap import soap_login
from .teams import DeviceCodeLogin, DeviceLoginRequired, DevicePrompt, teams_login

__all__ = [
    "DeviceCodeLogin",
    "DeviceLoginRequired",
    "DevicePrompt",
    "LoginMethod",
    "api_login",
    "choose_method",
    "fetch_user_id",
    "guest_login",
    "live_login",
    "login",
    "refresh_login",
    "soap_login",
    "teams_login",
]


class LoginMethod(enum.Enum):
    """Which password login to run; ``AUTO`` applies :func:`choose_method`."""

    AUTO = "auto"
    SOAP = "soap"
    LIVE = "live"
    API = "api"


def choose_method(user: str) -> LoginMethod:
    """SkPy's rule: a user name containing ``@`` logs in with SOAP, any other with Live."""
    if not isinstance(user, str):
        raise LocalProtocolError("the user name must be a str")
    return LoginMethod.SOAP if "@" in user else LoginMethod.LIVE


def login(
    credentials: Credentials, *, hosts: Hosts, method: LoginMethod = LoginMethod.AUTO
) -> Flow[SkypeToken]:
    """Flow: log in with ``credentials`` by ``method``; returns the Skype token and expiry."""
    if method is LoginMethod.AUTO:
        method = choose_method(credentials.user)
    if method is LoginMethod.SOAP:
        return (yield from soap_login(credentials, hosts=hosts))
    if method is LoginMethod.LIVE:
        return (yield from live_login(credentials, hosts=hosts))
    if method is LoginMethod.API:
        return (yield from api_login(credentials, hosts=hosts))
    raise LocalProtocolError(f"unknown login method {method!r}")
