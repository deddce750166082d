"""Token refresh (docs/protocol.md §2.4): a new Skype token for a current one, without the password.

The current token goes to login.skype.com as the cookie ``refresh-token``; the page answered
holds a ``t`` value, which the t-exchange of the Live login trades for a new token. The
redirect and cookie rules are those of ``skyproto/auth/_redirects.py``; the ``refresh-token``
cookie is sent only to the origin of the first request, never to a host a redirect names.

The page is read in this order: an element with ``id="t"`` (without a value:
:class:`~skyproto.RemoteProtocolError`), else an ``sErrTxt`` message, else "Couldn't retrieve t
field from login response"; both of the latter are :class:`~skyproto.SkypeAuthException`, so a
caller can tell "log in with the password again" from a broken answer.
"""

from __future__ import annotations

from .._flow import Flow, now
from .._http import HttpResponse
from ..calls import build_request
from ..errors import SkypeAuthException
from ..hosts import Hosts
from ..tokens import SkypeToken
from ._pages import login_query, t_exchange, t_value_or_error
from ._redirects import CookieJar, fetch_checked

__all__ = ["refresh_login"]


def read_refresh_page(response: HttpResponse) -> str:
    """The ``t`` value of a refresh answer, or the exception its page calls for."""
    _, t_value = t_value_or_error(response, "refresh page")
    if t_value is not None:
        return t_value
    raise SkypeAuthException("Couldn't retrieve t field from login response", response)


def refresh_login(token: SkypeToken, *, hosts: Hosts) -> Flow[SkypeToken]:
    """Flow: trade ``token`` for a fresh Skype token and expiry."""
    jar = CookieJar()
    url = hosts.login + "/login"
    current = yield from now()
    req = build_request("GET", url, kind="login page", params=login_query())
    response = yield from fetch_checked(
        req, hosts=hosts, jar=jar, now=current, cookies={"refresh-token": token.token}
    )
    t = read_refresh_page(response)
    return (yield from t_exchange(t, hosts=hosts, jar=jar))
