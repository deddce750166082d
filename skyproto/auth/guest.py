"""Guest login (docs/protocol.md §2.6): join a public conversation by its join link, with a name.

Steps: the join page (with a desktop browser's ``User-Agent``, or it answers "unsupported
device") sets the ``csrf_token`` and ``launcher_session_id`` cookies; the meetings lookup gives
the conversation's ``threadId``; posting the display name to the thread's members gives the Skype
token. Redirects and cookies follow ``skyproto/auth/_redirects.py`` (one jar for the whole flow,
so the join page's host-only cookies are not sent to ``api.join.skype.com``).

Decisions where the reference client validates nothing (§12.21):

* The meeting id is the last path segment of the join URL, ignoring a query, a fragment and
  trailing ``/`` (so ``https://join.skype.com/AbCd/`` gives ``AbCd``); a bare id works too. An
  empty id, ``.`` or ``..`` is a :class:`~skyproto.LocalProtocolError`. The id and the thread id
  are percent-encoded in the URL paths (``:`` and ``@`` stay literal in the thread id).
* A missing cookie, ``threadId`` or ``skypetoken`` is a :class:`~skyproto.RemoteProtocolError`
  rather than a request to ``…/threads/None/members`` or a null token.
* The join service gives no expiry; the token gets ``now +``
  :data:`~skyproto.tokens.GUEST_TOKEN_LIFETIME`.
"""

from __future__ import annotations

import urllib.parse

from .._flow import Flow, now
from ..calls import build_request
from ..errors import LocalProtocolError, RemoteProtocolError
from ..hosts import Hosts
from ..tokens import GUEST_TOKEN_LIFETIME, SkypeToken
from ._pages import json_object, require_text
from ._redirects import CookieJar, fetch_checked

__all__ = ["guest_login"]

#: The desktop-browser ``User-Agent`` the join page requires (docs/protocol.md §1.5).
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/33.0.1750.117 Safari/537.36"
)


def meeting_id(join: str) -> str:
    """The meeting id in a join URL (``https://join.skype.com/<id>``) or a bare id."""
    if not isinstance(join, str):
        raise LocalProtocolError("the join link must be a str")
    try:
        path = urllib.parse.urlsplit(join.strip()).path
    except ValueError:
        raise LocalProtocolError("the join link is not a valid URL") from None
    ident = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if ident in ("", ".", ".."):
        raise LocalProtocolError("the join link names no conversation id")
    return ident


def guest_login(join: str, name: str, *, hosts: Hosts) -> Flow[SkypeToken]:
    """Flow: join the conversation behind ``join`` as a guest called ``name``."""
    ident = urllib.parse.quote(meeting_id(join), safe="")
    if not isinstance(name, str) or not name.strip():
        raise LocalProtocolError("a guest needs a non-empty display name")
    jar = CookieJar()
    current = yield from now()

    page_url = f"{hosts.join}/{ident}"
    req = build_request("GET", page_url, kind="guest", user_agent=BROWSER_USER_AGENT)
    page = yield from fetch_checked(req, hosts=hosts, jar=jar, now=current)
    own = page.set_cookies()
    csrf, launcher = own.get("csrf_token"), own.get("launcher_session_id")
    if not csrf or not launcher:
        raise RemoteProtocolError(
            "the join page set no csrf_token or launcher_session_id cookie", page
        )

    meeting_url = f"{hosts.join_api}/meetings/{ident}"
    req = build_request("GET", meeting_url, kind="guest")
    answer = yield from fetch_checked(req, hosts=hosts, jar=jar, now=current)
    thread = require_text(
        json_object(answer, "meetings lookup").get("threadId"), "the meeting's threadId", answer
    )
    if thread in (".", ".."):
        raise RemoteProtocolError("the meeting's threadId is not a conversation id", answer)

    members_url = f"{hosts.join_api}/threads/{urllib.parse.quote(thread, safe=':@')}/members"
    headers = [("csrf_token", csrf), ("X-Skype-Request-Id", launcher)]
    req = build_request(
        "POST", members_url, kind="guest", headers=headers, json={"displayName": name}
    )
    answer = yield from fetch_checked(req, hosts=hosts, jar=jar, now=current)
    token = require_text(
        json_object(answer, "thread join").get("skypetoken"), "the guest skypetoken", answer
    )
    joined = yield from now()
    return SkypeToken(token, joined + GUEST_TOKEN_LIFETIME)
