"""The Skype-API login (docs/protocol.md §2.3): user name and password hash, straight to api.skype.com.

SkPy never picks this flow by itself; callers ask for it with ``LoginMethod.API``. The password
is sent only as ``passwordHash`` (:func:`skyproto.ids.password_hash`). An answer without
``expiresIn`` gets the default lifetime (see :mod:`skyproto.auth._pages`); one that is not a JSON
object, or whose ``skypetoken`` or ``expiresIn`` is malformed, is a
:class:`~skyproto.RemoteProtocolError`. An answer without ``skypetoken`` is a refusal,
:class:`~skyproto.SkypeAuthException`, and names the server's ``status`` code and text if any.
"""

from __future__ import annotations

from .._flow import Flow, now, request
from ..calls import DEFAULT_ACCEPTED, build_request, check_status
from ..errors import SkypeAuthException
from ..hosts import Hosts
from ..ids import password_hash
from ..tokens import Credentials, SkypeToken
from ._pages import expiry_from, json_object, require_text, shorten

__all__ = ["api_login"]


def api_login(credentials: Credentials, *, hosts: Hosts) -> Flow[SkypeToken]:
    """Flow: log in with the Skype API's ``login/skypetoken`` call."""
    url = hosts.require_trusted(hosts.api + "/login/skypetoken", "the Skype-API login")
    body = {
        "username": credentials.user,
        "passwordHash": password_hash(credentials.user, credentials.password),
        "scopes": "client",
    }
    response = yield from request(build_request("POST", url, kind="token exchange", json=body))
    current = yield from now()
    check_status(response, DEFAULT_ACCEPTED, method="POST", url=url, now=current)
    data = json_object(response, "Skype-API login")
    if "skypetoken" not in data:
        message = "Couldn't retrieve Skype token from response"
        status = data.get("status")
        if isinstance(status, dict):
            message += shorten(f" ({status.get('code')} - {status.get('text')})")
        raise SkypeAuthException(message, response)
    token = require_text(data["skypetoken"], "the login response's skypetoken", response)
    return SkypeToken(token, expiry_from(data, "expiresIn", current, response))
