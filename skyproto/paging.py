"""syncState paging (PROTOCOL.md §6).

A listing answers with its items and, in ``_metadata.syncState``, a full URL that continues it.
:class:`PagingState` remembers the latest such link per ``(method, original URL)``; :func:`page`
sends the original URL and parameters the first time and the remembered link afterwards (without
the parameters: the link carries its own query). The state is a value: every flow returns the new
state and the caller keeps it (it is part of the saved session).

Differences from the reference (§12.24):

* only the latest link per listing is kept, and at most :data:`MAX_LISTINGS` listings (the least
  recently updated is forgotten first), so the state stays small;
* a link whose host :class:`~skyproto.Hosts` does not trust raises
  :class:`~skyproto.UntrustedHostError`, both when it arrives and before it would be sent;
* a body that is not a JSON object raises :class:`~skyproto.RemoteProtocolError`;
* :func:`exhaust` stops at an empty page (as the reference does), at a page that brings no new
  link (asking again would repeat the same request), or after ``max_pages`` pages, in which case
  it logs a warning and returns what it has: the state holds the link, so a later call goes on.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._flow import Flow, request
from ._http import HeaderInput
from .calls import AuthKind, build_request
from .endpoint import check_endpoint_status
from .errors import RemoteProtocolError
from .hosts import Hosts
from .registration import Registration

__all__ = [
    "CONVERSATION_PARAMS",
    "DEFAULT_MAX_PAGES",
    "MAX_LISTINGS",
    "PagingState",
    "conversations",
    "exhaust",
    "page",
    "page_items",
]

logger = logging.getLogger("skyproto")

#: Listings whose link a :class:`PagingState` remembers at most.
MAX_LISTINGS = 256
#: Pages :func:`exhaust` fetches at most in one call.
DEFAULT_MAX_PAGES = 100
#: Query parameters of the recent-conversations listing (§6), in order.
CONVERSATION_PARAMS: tuple[tuple[str, str], ...] = (
    ("startTime", "0"),
    ("view", "supportsExtendedHistory|msnp24Equivalent"),
    (
        "targetType",
        "Passport|Skype|Lync|Thread|Agent|ShortCircuit|PSTN|Flxt|NotificationStream|"
        "ModernBots|secureThreads|InviteFree",
    ),
)

Params = Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None


def _key(method: str, url: str) -> str:
    return f"{method.upper()} {url}"


def _links(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


@attrs.frozen
class PagingState:
    """The latest ``syncState`` link per listing; part of the saved session.

    ``links`` maps ``"METHOD original-url"`` to the link, oldest update first; it unstructures
    to a plain JSON object.
    """

    links: dict[str, str] = attrs.field(factory=dict, converter=_links)

    def link(self, method: str, url: str) -> str | None:
        """The link that continues the listing ``(method, url)``, if one was seen."""
        return self.links.get(_key(method, url))

    def with_link(
        self, method: str, url: str, link: str, *, max_listings: int = MAX_LISTINGS
    ) -> PagingState:
        """A copy remembering ``link`` for ``(method, url)``, forgetting the stalest listing
        when more than ``max_listings`` would be kept."""
        links = dict(self.links)
        key = _key(method, url)
        links.pop(key, None)
        links[key] = link
        while len(links) > max(1, max_listings):
            del links[next(iter(links))]
        return PagingState(links)

    def rebased(self, base: str) -> PagingState:
        """A copy without the listings under ``base`` (a messaging base the session left)."""
        prefix = base.rstrip("/") + "/"
        return PagingState(
            {k: v for k, v in self.links.items() if not k.partition(" ")[2].startswith(prefix)}
        )

    def without(self, method: str, url: str) -> PagingState:
        """A copy that starts the listing ``(method, url)`` over."""
        key = _key(method, url)
        return PagingState({k: v for k, v in self.links.items() if k != key})


def _sync_link(body: dict[str, Any], request_url: str, hosts: Hosts) -> str | None:
    metadata = body.get("_metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise RemoteProtocolError("listing _metadata is not an object")
    link = metadata.get("syncState")
    if link is None or link == "":
        return None
    if not isinstance(link, str):
        raise RemoteProtocolError("listing syncState is not a string")
    try:
        absolute = urllib.parse.urljoin(request_url, link)
    except ValueError:  # an unbalanced "[" in the host, for one
        raise RemoteProtocolError("listing syncState is not a valid URL") from None
    return hosts.require_trusted(absolute, "a syncState link")


def page(
    state: PagingState,
    method: str,
    url: str,
    *,
    reg: Registration,
    hosts: Hosts,
    params: Params = None,
    headers: HeaderInput = None,
) -> Flow[tuple[PagingState, dict[str, Any]]]:
    """Fetch the next page of the listing ``(method, url)``; return the new state and the body.

    The first call sends ``url`` with ``params``; later calls send the latest link instead.
    ``headers`` go on every call.
    """
    link = state.link(method, url)
    target = link if link is not None else url
    hosts.require_trusted(target, "a syncState link" if link is not None else "a listing")
    req = build_request(
        method,
        target,
        auth=(AuthKind.REG_TOKEN, reg.token.token),
        params=params if link is None else None,
        headers=headers,
    )
    response = yield from request(req)
    check_endpoint_status(response, method=method, url=target)
    body = response.json()
    if not isinstance(body, dict):
        raise RemoteProtocolError("listing page is not a JSON object", response)
    new_link = _sync_link(body, req.url, hosts)
    if new_link is not None:
        state = state.with_link(method, url, new_link)
    return state, body


def page_items(body: dict[str, Any], items_key: str) -> list[Any]:
    """The list under ``items_key`` of a page (empty when absent)."""
    items = body.get(items_key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise RemoteProtocolError(f"listing member {items_key!r} is not a list")
    return items


def exhaust(
    state: PagingState,
    method: str,
    url: str,
    *,
    reg: Registration,
    hosts: Hosts,
    items_key: str,
    params: Params = None,
    headers: HeaderInput = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Flow[tuple[PagingState, list[Any]]]:
    """Fetch pages until the listing ends; return the new state and every item, in order.

    The listing ends at a page without items or without a new link; after ``max_pages`` pages
    a warning is logged and the items so far are returned.
    """
    collected: list[Any] = []
    for _ in range(max_pages):
        before = state.link(method, url)
        state, body = yield from page(
            state, method, url, reg=reg, hosts=hosts, params=params, headers=headers
        )
        items = page_items(body, items_key)
        if not items:
            return state, collected
        collected.extend(items)
        if state.link(method, url) == before:
            return state, collected
    logger.warning("listing %s %s did not end within %d pages", method.upper(), url, max_pages)
    return state, collected


def conversations(
    reg: Registration, state: PagingState, hosts: Hosts
) -> Flow[tuple[PagingState, list[Any]]]:
    """One page of recent conversations (§6): the new state and the page's ``conversations``."""
    url = f"{reg.messenger}/users/ME/conversations"
    state, body = yield from page(
        state, "GET", url, reg=reg, hosts=hosts, params=CONVERSATION_PARAMS
    )
    return state, page_items(body, "conversations")
