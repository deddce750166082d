"""syncState paging (docs/protocol.md §6).

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
* a :class:`Listing` (and :func:`exhaust`, which is one run to its end) stops at an empty page
  (as the reference does), at a page that brings no new link (asking again would repeat the same
  request), or after ``max_pages`` pages, in which case it logs a warning and ends with what it
  has: the state holds the link, so a later call goes on;
* a listing of a :class:`~skyproto.Session` keeps its link in the session's state, writes back
  only its own link (other flows may have changed the state meanwhile), and forgets a link the
  server answers with one of :data:`STALE_LINK_STATUSES`, so that the listing starts over.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import attrs

from ._flow import Flow, request
from ._http import HeaderInput
from .calls import AuthKind, build_request
from .endpoint import check_endpoint_status
from .errors import LocalProtocolError, RemoteProtocolError, SkypeApiException
from .hosts import Hosts
from .registration import Registration

__all__ = ["Listing", "PagingState", "conversations", "exhaust", "page"]

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

#: Answers to a syncState link after which the link is forgotten and its listing starts over.
STALE_LINK_STATUSES = frozenset({400, 404, 410})

T = TypeVar("T")

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
        kind="paging",
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

    This is a :class:`Listing` of ``url`` run to its end, under ``reg`` as it is (no
    re-authentication) and with a paging state of its own, starting from ``state``: it ends at
    a page without items or without a new link; after ``max_pages`` pages a warning is logged
    and the items so far are returned. On an error nothing is returned: ``state`` is a value.
    """
    owner = _FixedOwner(state, reg, hosts)
    listing = _UrlListing(
        owner,
        url,
        items_key=items_key,
        method=method,
        params=params,
        headers=headers,
        max_pages=max_pages,
    )
    collected: list[Any] = []
    while (items := (yield from listing.next_page())) is not None:
        collected.extend(items)
    return owner.paging, collected


def conversations(
    reg: Registration, state: PagingState, hosts: Hosts
) -> Flow[tuple[PagingState, list[Any]]]:
    """One page of recent conversations (§6): the new state and the page's ``conversations``."""
    url = f"{reg.messenger}/users/ME/conversations"
    state, body = yield from page(
        state, "GET", url, reg=reg, hosts=hosts, params=CONVERSATION_PARAMS
    )
    return state, page_items(body, "conversations")


class ListingOwner(Protocol):
    """What a :class:`Listing` pages under: the links, the registration and the call policy.

    A :class:`~skyproto.Session` is one (its calls run under its re-authentication policy, its
    links are part of its saved state); :func:`exhaust` uses a fixed registration instead.
    """

    hosts: Hosts
    #: Every listing's latest link; a listing reads it, and writes back only its own link.
    paging: PagingState

    @property
    def registration(self) -> Registration | None:
        """The registration whose messaging base the listings are under, if any."""

    def call(self, operation: Callable[[Registration], Flow[T]]) -> Flow[T]:
        """Flow: ``operation(registration)`` under the owner's policy."""


class _FixedOwner:
    """One registration as it is, and a paging state of its own: :func:`exhaust`'s owner."""

    def __init__(self, paging: PagingState, reg: Registration, hosts: Hosts) -> None:
        self.paging = paging
        self.hosts = hosts
        self._reg = reg

    @property
    def registration(self) -> Registration | None:
        return self._reg

    def call(self, operation: Callable[[Registration], Flow[T]]) -> Flow[T]:
        return operation(self._reg)


@attrs.frozen
class _Fetched:
    """One listing page as fetched: the listing URL, its link before and after, the body."""

    url: str
    before: str | None
    after: str | None
    body: dict[str, Any]


class Listing:
    """A syncState listing, one page per :meth:`next_page` flow; its links live in its owner
    (the session; see :class:`ListingOwner`).

    Drive it with ``skyproto.transports.iterate_pages`` (sync) or ``aiterate_pages`` (async), or
    run :meth:`next_page` until it returns ``None``. It ends at an empty page, at a page that
    brings no new link, or after ``max_pages`` pages.
    """

    def __init__(
        self,
        session: ListingOwner,
        path: str,
        *,
        items_key: str,
        method: str = "GET",
        params: Params = None,
        headers: HeaderInput = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        if not path.startswith("/"):
            raise LocalProtocolError("a listing path starts with '/'")
        if max_pages < 1:
            raise LocalProtocolError("max_pages must be at least 1")
        self.session = session
        self.path = path
        self.items_key = items_key
        self.method = method.upper()
        self.params = params
        self.headers = headers
        self.max_pages = max_pages
        self.pages = 0
        self.finished = False

    def __repr__(self) -> str:
        return f"Listing({self.method} {self.path}, pages={self.pages}, finished={self.finished})"

    def _url(self, reg: Registration) -> str:
        """The listing's URL under ``reg``."""
        return reg.messenger + self.path

    def restart(self) -> None:
        """Start over: forget the stored link of this listing under the current registration's
        messaging base, and the pages counted so far."""
        self._forget()
        self.pages = 0
        self.finished = False

    def _forget(self) -> None:
        """Hook of :meth:`restart`: forget where the listing stands."""
        session = self.session
        reg = session.registration
        if reg is not None:
            session.paging = session.paging.without(self.method, self._url(reg))

    def _describe(self) -> str:
        """The listing as the page bound's warning names it."""
        return f"{self.method} {self.path}"

    def next_page(self) -> Flow[list[Any] | None]:
        """Flow: the next page's items, or ``None`` once the listing has ended."""
        if self.finished:
            return None
        if self.pages >= self.max_pages:
            logger.warning(
                "listing %s did not end within %d pages", self._describe(), self.max_pages
            )
            self.finished = True
            return None
        items, last = yield from self._fetch_page()
        if not items or last:
            self.finished = True
        return items if items else None

    def _fetch_page(self) -> Flow[tuple[list[Any], bool]]:
        """Hook of :meth:`next_page`, called within the page bound: fetch the next page, count
        it in :attr:`pages` and keep its link; its items, and whether it is the last page."""
        session = self.session

        def fetch(reg: Registration) -> Flow[_Fetched]:
            url = self._url(reg)
            before = session.paging.link(self.method, url)
            try:
                paging, body = yield from page(
                    session.paging,
                    self.method,
                    url,
                    reg=reg,
                    hosts=session.hosts,
                    params=self.params,
                    headers=self.headers,
                )
            except SkypeApiException as exc:
                if before is not None and exc.status in STALE_LINK_STATUSES:
                    # The server no longer knows the link: forget it, so the listing (and the
                    # session's retry after a 404) starts over instead of failing for ever.
                    current = session.paging
                    if current.link(self.method, url) == before:
                        session.paging = current.without(self.method, url)
                raise
            return _Fetched(url, before, paging.link(self.method, url), body)

        fetched = yield from session.call(fetch)
        self.pages += 1
        # Only this listing's link is written back, into the state as it is now: other flows
        # may have changed the state while the page was in flight (another listing's link, a
        # registration that moved to another messaging base and dropped the links under the old
        # one). A link from a base the session has left is not kept.
        reg = session.registration
        if (
            fetched.after is not None
            and fetched.after != fetched.before
            and reg is not None
            and self._url(reg) == fetched.url
        ):
            session.paging = session.paging.with_link(self.method, fetched.url, fetched.after)
        return page_items(fetched.body, self.items_key), fetched.after == fetched.before


class _UrlListing(Listing):
    """A listing of an absolute URL, whatever the messaging base: what :func:`exhaust` runs.

    Its bound may be 0 (then it fetches nothing and ends with the bound's warning).
    """

    def __init__(self, owner: ListingOwner, url: str, *, max_pages: int, **options: Any) -> None:
        super().__init__(owner, "/", max_pages=max(1, max_pages), **options)
        self.path = url
        self.max_pages = max_pages

    def _url(self, reg: Registration) -> str:
        return self.path
