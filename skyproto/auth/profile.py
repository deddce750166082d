"""The user id behind a Skype token (docs/protocol.md §2.7).

A profile answer that is not a JSON object, or whose ``username`` is missing or empty, is a
:class:`~skyproto.RemoteProtocolError` (the reference stores ``None`` and carries on).

Internal: :func:`~skyproto.auth.fetch_user_id` is public as ``skyproto.auth.fetch_user_id``.
"""

from __future__ import annotations

from .._flow import Flow, now, request
from ..calls import DEFAULT_ACCEPTED, AuthKind, build_request, check_status
from ..hosts import Hosts
from ..tokens import SkypeToken
from ._pages import json_object, require_text

__all__: list[str] = []


def fetch_user_id(token: SkypeToken, *, hosts: Hosts) -> Flow[str]:
    """Flow: the user id (``fred.2``, ``live:fred_1``, ``guest:…``) that ``token`` belongs to."""
    url = hosts.require_trusted(hosts.api + "/users/self/profile", "the profile request")
    req = build_request("GET", url, kind="profile", auth=(AuthKind.SKYPE_TOKEN, token.token))
    response = yield from request(req)
    current = yield from now()
    check_status(response, DEFAULT_ACCEPTED, method="GET", url=url, now=current)
    data = json_object(response, "profile")
    return require_text(data.get("username"), "the profile's username", response)
