"""Endpoint operations (docs/protocol.md §5): configure, ping, subscribe, presence, poll, ack, listing.

Every flow here takes the :class:`~skyproto.registration.Registration` that names the messaging
base ``H`` and carries the registration token (sent as the ``RegistrationToken`` header). Flows
that follow a URL the *server* chose (:func:`ack`) take a :class:`~skyproto.Hosts` and check it
first.

Endpoint ids go into paths with their braces percent-encoded (``{…}`` becomes ``%7B…%7D``); ids
that are already encoded, and the alias ``SELF``, are used as they are.

An endpoint the server has forgotten (docs/protocol.md §11: ``errorCode`` 729, at the top level or
nested under ``standardizedError``, normally on a 404) raises :class:`EndpointGoneError`, a
:class:`~skyproto.SkypeApiException`, so the session layer can register again. A plain 404
without that code stays a :class:`~skyproto.SkypeApiException` with ``status == 404``.

Flows return as soon as their request is answered: they do not track whether an endpoint is
subscribed. :func:`subscribe_presence` and :func:`poll` expect :func:`subscribe` to have run on
the endpoint first, which is the session layer's job.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ._flow import Flow, request
from ._http import HttpResponse
from .calls import (
    DEFAULT_ACCEPTED,
    TIMEOUTS,
    AuthKind,
    CallKind,
    build_request,
    call_timeout,
    check_status,
    display_url,
)
from .errors import LocalProtocolError, RemoteProtocolError, SkypeApiException
from .hosts import Hosts
from .ids import Status
from .registration import Registration, normalise_endpoint_id

__all__ = [
    "EndpointGoneError",
    "ack",
    "configure_endpoint",
    "list_endpoints",
    "mark_consumed",
    "ping",
    "poll",
    "set_presence",
    "subscribe",
    "subscribe_presence",
]

logger = logging.getLogger("skyproto")

#: The ``errorCode`` of "You must create an endpoint before performing this operation."
ENDPOINT_GONE_CODE = 729
#: Seconds added to the server's hold time to make the poll request's timeout (the ``"poll"``
#: entry of :data:`skyproto.calls.TIMEOUTS`).
POLL_TIMEOUT_MARGIN = TIMEOUTS["poll"]
#: The resources every subscription asks for (§5.4).
SUBSCRIBED_RESOURCES = (
    "/v1/users/ME/conversations/ALL/properties",
    "/v1/users/ME/conversations/ALL/messages",
    "/v1/threads/ALL",
)
_FORBIDDEN_IN_SEGMENT = frozenset("/?#\\ \t\r\n")


class EndpointGoneError(SkypeApiException):
    """The server no longer knows the endpoint (``errorCode`` 729): register again."""


def _endpoint_gone(response: HttpResponse) -> bool:
    try:
        body = response.json()
    except RemoteProtocolError:
        return False
    if not isinstance(body, dict):
        return False
    codes = [body.get("errorCode")]
    nested = body.get("standardizedError")
    if isinstance(nested, dict):
        codes.append(nested.get("errorCode"))
    return any(
        not isinstance(code, bool) and code in (ENDPOINT_GONE_CODE, str(ENDPOINT_GONE_CODE))
        for code in codes
    )


def check_endpoint_status(
    response: HttpResponse,
    *,
    method: str,
    url: str,
    accepted: Collection[int] = DEFAULT_ACCEPTED,
    now: dt.datetime | None = None,
) -> HttpResponse:
    """Like :func:`~skyproto.calls.check_status`, but ``errorCode`` 729 raises
    :class:`EndpointGoneError`."""
    if response.status not in accepted and response.status != 429 and _endpoint_gone(response):
        raise EndpointGoneError(
            f"{response.status} response from {method.upper()} {display_url(url)}: "
            f"endpoint is gone (errorCode {ENDPOINT_GONE_CODE})",
            response,
        )
    return check_status(response, accepted, method=method, url=url, now=now)


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise LocalProtocolError(f"{what} must be a non-empty string")
    if not _FORBIDDEN_IN_SEGMENT.isdisjoint(value):
        raise LocalProtocolError(f"{what} {value!r} cannot go into a URL path")
    return value


def endpoint_path(endpoint_id: str) -> str:
    """``endpoint_id`` as a path segment: braces encoded, ``SELF`` and encoded ids unchanged."""
    return _segment(endpoint_id, "endpoint id").replace("{", "%7B").replace("}", "%7D")


def _endpoint_url(reg: Registration, endpoint_id: str, suffix: str = "") -> str:
    return f"{reg.messenger}/users/ME/endpoints/{endpoint_path(endpoint_id)}{suffix}"


def _call(
    reg: Registration,
    method: str,
    url: str,
    *,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    kind: CallKind = "endpoint",
    timeout: float | None = None,
) -> Flow[HttpResponse]:
    req = build_request(
        method,
        url,
        kind=kind,
        auth=(AuthKind.REG_TOKEN, reg.token.token),
        params=params,
        json=json,
        timeout=timeout,
    )
    response = yield from request(req)
    return check_endpoint_status(response, method=method, url=url)


def configure_endpoint(
    reg: Registration, endpoint_id: str, *, name: str = "skype"
) -> Flow[HttpResponse]:
    """Publish the endpoint's presence document (§5.2); ``name`` is its display name."""
    body = {
        "id": "messagingService",
        "type": "EndpointPresenceDoc",
        "selfLink": "uri",
        "privateInfo": {"epname": name},
        "publicInfo": {
            "capabilities": "",
            "type": 1,
            "skypeNameVersion": "skype.com",
            "nodeInfo": "xx",
            "version": "908/1.30.0.128",
        },
    }
    url = _endpoint_url(reg, endpoint_id, "/presenceDocs/messagingService")
    return (yield from _call(reg, "PUT", url, json=body))


def ping(reg: Registration, endpoint_id: str = "SELF", timeout: int = 12) -> Flow[HttpResponse]:
    """Keep the endpoint alive for ``timeout`` seconds (§5.3)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise LocalProtocolError("ping timeout must be a positive whole number of seconds")
    url = _endpoint_url(reg, endpoint_id, "/active")
    return (yield from _call(reg, "POST", url, json={"timeout": timeout}))


def subscribe(reg: Registration, endpoint_id: str = "SELF") -> Flow[HttpResponse]:
    """Subscribe the endpoint to conversation and thread events by long poll (§5.4)."""
    body = {
        "interestedResources": list(SUBSCRIBED_RESOURCES),
        "channelType": "HttpLongPoll",
        "conversationType": 2047,
    }
    url = _endpoint_url(reg, endpoint_id, "/subscriptions")
    return (yield from _call(reg, "POST", url, json=body))


def _contact_name(contact_id: str) -> str:
    name = contact_id.removeprefix("8:") if isinstance(contact_id, str) else contact_id
    return _segment(name, "contact id")


def subscribe_presence(
    reg: Registration, contact_ids: Iterable[str], endpoint_id: str = "SELF"
) -> Flow[HttpResponse]:
    """Ask for presence events of ``contact_ids`` (§5.5).

    Ids are taken with or without their ``8:`` prefix, de-duplicated and sent sorted by name.
    """
    if isinstance(contact_ids, str):
        raise LocalProtocolError("contact_ids must be a collection of ids, not one string")
    names = sorted({_contact_name(cid) for cid in contact_ids})
    resources = [*SUBSCRIBED_RESOURCES, *(f"/v1/users/ME/contacts/8:{n}" for n in names)]
    url = _endpoint_url(reg, endpoint_id, "/subscriptions/0")
    return (
        yield from _call(
            reg,
            "PUT",
            url,
            params={"name": "interestedResources"},
            json={"interestedResources": resources},
        )
    )


def set_presence(reg: Registration, status: Status = Status.Online) -> Flow[HttpResponse]:
    """Set this account's presence (§5.9)."""
    if not isinstance(status, Status):
        raise LocalProtocolError(f"status must be a Status, not {type(status).__name__}")
    url = f"{reg.messenger}/users/ME/presenceDocs/messagingService"
    return (yield from _call(reg, "PUT", url, json={"status": status.value}))


def _endpoint_from_link(link: Any) -> str | None:
    if not isinstance(link, str):
        return None
    try:
        path = urllib.parse.urlsplit(link).path
    except ValueError:
        return None
    segments = path.split("/")
    for index in range(len(segments) - 4, -1, -1):
        if segments[index] == "users" and segments[index + 2] == "endpoints":
            raw = segments[index + 3]
            if raw == "SELF":
                return raw
            return normalise_endpoint_id(urllib.parse.unquote(raw))
    return None


def list_endpoints(reg: Registration) -> Flow[list[str]]:
    """The ids of this account's endpoints (§5.8), as ``{lower-case id}`` (or ``SELF``).

    Elements whose ``link`` is missing or names no endpoint are skipped with a warning; a body
    that is not an object with an ``endpointPresenceDocs`` list raises
    :class:`~skyproto.RemoteProtocolError`.
    """
    url = f"{reg.messenger}/users/ME/presenceDocs/messagingService"
    response = yield from _call(reg, "GET", url, params={"view": "expanded"})
    body = response.json()
    if not isinstance(body, dict):
        raise RemoteProtocolError("endpoint listing is not a JSON object", response)
    docs = body.get("endpointPresenceDocs", [])
    if not isinstance(docs, list):
        raise RemoteProtocolError("endpointPresenceDocs is not a list", response)
    ids: list[str] = []
    skipped = 0
    for doc in docs:
        endpoint_id = _endpoint_from_link(doc.get("link") if isinstance(doc, dict) else None)
        if endpoint_id is None:
            skipped += 1
        else:
            ids.append(endpoint_id)
    if skipped:
        logger.warning("endpoint listing: skipped %d element(s) without a usable link", skipped)
    return ids


def poll(
    reg: Registration,
    endpoint_id: str = "SELF",
    *,
    hold: float = 30.0,
    timeout: float | None = None,
) -> Flow[HttpResponse]:
    """Wait for events (§5.6) and return the raw answer for the events decoder.

    The server holds the request for up to ``hold`` seconds; the request's timeout hint is
    ``hold + POLL_TIMEOUT_MARGIN`` so that an idle poll is not mistaken for a dead connection.
    A shorter ``timeout`` gives up earlier (an event loop with a deadline uses it).
    """
    if hold <= 0:
        raise LocalProtocolError("hold must be positive")
    if timeout is not None and not timeout > 0:
        raise LocalProtocolError("timeout must be positive")
    limit = call_timeout("poll", hold=hold) if timeout is None else timeout
    url = _endpoint_url(reg, endpoint_id, "/subscriptions/0/poll")
    return (yield from _call(reg, "POST", url, kind="poll", timeout=limit))


def _host_of(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).hostname or "<no host>"
    except ValueError:
        return "<unparsable URL>"


def ack(reg: Registration, url: str, *, hosts: Hosts) -> Flow[bool]:
    """Acknowledge an event at its ``ackrequired`` URL (§5.7).

    Returns ``False``, sends nothing and logs a warning naming only the host when ``hosts``
    does not trust the URL; ``True`` once the acknowledgement was accepted.
    """
    if not isinstance(url, str) or not hosts.is_trusted(url):
        shown = _host_of(url) if isinstance(url, str) else "<not a string>"
        logger.warning("not acknowledging an event at untrusted host %s", shown)
        return False
    yield from _call(reg, "POST", url, kind="ack")
    return True


def mark_consumed(reg: Registration, chat_id: str, horizon: str) -> Flow[HttpResponse]:
    """Set a conversation's consumption horizon (§5.10)."""
    if not isinstance(horizon, str):
        raise LocalProtocolError("horizon must be a string")
    url = f"{reg.messenger}/users/ME/conversations/{_segment(chat_id, 'chat id')}/properties"
    return (
        yield from _call(
            reg,
            "PUT",
            url,
            params={"name": "consumptionhorizon"},
            json={"consumptionhorizon": horizon},
        )
    )
