"""The chat service of the Teams Free profile as pure flows (docs/teams.md §B).

The consumer chat service speaks the same ``/v1/users/ME/...`` routes under two bases:
``https://teams.live.com/api/chatsvc/consumer`` (the front-door base the most active personal
client uses, :data:`AFD_BASE`) and ``https://msgapi.teams.live.com`` (:data:`MSGAPI_BASE`).
Calls carry ``Authentication: skypetoken=...`` (no registration token) and the product headers
of :func:`chat_headers`.

Listings answer items plus ``_metadata``: ``backwardLink`` leads to the next (older) page,
``syncState`` to what changes later. :func:`listing` follows ``backwardLink`` until a page is
empty, brings no new link, or ``max_pages`` pages were read; every link must be trusted by
:class:`~skyproto.Hosts` *and* lie under the base the listing started on (the Skype token goes
with it), else :class:`~skyproto.UntrustedHostError` before anything is sent.

Quota answers (HTTP 429, or a body whose ``errorCode`` is 429 or 803) are
:class:`~skyproto.SkypeRateLimitException` with ``retry_after`` from ``Retry-After``.
:class:`ChatListing` runs a listing under a :class:`~skyproto.Session` of this profile.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import secrets
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._flow import Flow, now, request
from ._http import HttpResponse
from .calls import DEFAULT_ACCEPTED, AuthKind, build_request, check_status, parse_retry_after
from .errors import (
    LocalProtocolError,
    RemoteProtocolError,
    SkypeRateLimitException,
    UntrustedHostError,
)
from .hosts import Hosts
from .paging import DEFAULT_MAX_PAGES, Listing, Params, page_items
from .tokens import SkypeToken

if TYPE_CHECKING:
    from .registration import Registration
    from .session import Session

__all__ = [
    "ChatListing",
    "ChatPage",
    "SentMessage",
    "conversations_listing",
    "messages_listing",
    "send",
    "summarise_message",
]

logger = logging.getLogger("skyproto")

#: The front-door base of the consumer chat service.
AFD_BASE = "https://teams.live.com/api/chatsvc/consumer"
#: The other consumer chat-service base (same routes at the root).
MSGAPI_BASE = "https://msgapi.teams.live.com"
#: The client version personal clients advertise (a stale one may be refused).
CLIENT_VERSION = "1415/26010401241"
#: ``errorCode`` values that mean "quota exceeded" whatever the HTTP status (a single source,
#: docs/teams.md §8).
QUOTA_ERROR_CODES = frozenset({429, 803})
_TARGET_TYPES = "Passport|Skype|Lync|Thread|PSTN|Agent"
#: Query of the conversation listing, in order.
CONVERSATION_PARAMS: tuple[tuple[str, str], ...] = (
    ("startTime", "0"),
    ("pageSize", "100"),
    ("view", "msnp24Equivalent"),
    ("targetType", _TARGET_TYPES),
)
_MAX_PAGE_SIZE = 200


def chat_headers(token: SkypeToken) -> list[tuple[str, str]]:
    """The headers of every chat-service call: the Skype token and the personal-product ones."""
    # Only ``Authentication`` is confirmed by several clients; the rest rest on a single source
    # (docs/teams.md §8), sent because one client reports 404s for old groups without them.
    return [
        ("Authentication", f"skypetoken={token.token}"),
        ("Accept", "application/json; ver=1.0"),
        ("ms-ic3-product", "tfl"),
        ("ms-ic3-additional-product", "Sfl"),
        ("X-MS-Client-Consumer-Type", "teams4life"),
        ("BehaviorOverride", "redirectAs404"),
        (
            "clientinfo",
            "os=linux; osVer=undefined; proc=x86; lcid=en-us; deviceType=1; country=us; "
            f"clientName=skypeteams; clientVer={CLIENT_VERSION}",
        ),
    ]


def _quoted(conversation: str) -> str:
    if not isinstance(conversation, str) or not conversation:
        raise LocalProtocolError("a conversation id is a non-empty str")
    return urllib.parse.quote(conversation, safe="")


def conversations_url(base: str) -> str:
    """The conversation listing under ``base``."""
    return f"{base.rstrip('/')}/v1/users/ME/conversations"


def messages_url(base: str, conversation: str) -> str:
    """A conversation's messages under ``base`` (the id percent-encoded as one segment)."""
    return f"{conversations_url(base)}/{_quoted(conversation)}/messages"


def message_params(count: int = 50) -> list[tuple[str, str]]:
    """Query of a message listing: the newest ``count`` messages per page (1 to 200)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _MAX_PAGE_SIZE:
        raise LocalProtocolError(f"a page holds 1 to {_MAX_PAGE_SIZE} messages")
    return [
        ("startTime", "0"),
        ("pageSize", str(count)),
        ("view", "msnp24Equivalent"),
        ("targetType", _TARGET_TYPES),
    ]


def _decimal(text: str, limit: int) -> bool:
    """Whether ``text`` is 1 to ``limit`` ASCII digits (``str.isdigit`` alone also holds for
    superscripts and other digits ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= limit


def _error_code(response: HttpResponse) -> int | None:
    try:
        data = response.json()
    except RemoteProtocolError:
        return None
    code = data.get("errorCode") if isinstance(data, dict) else None
    if isinstance(code, str) and _decimal(code.strip(), 6):
        code = int(code.strip())
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def check_chat_status(
    response: HttpResponse, *, method: str, url: str, now: dt.datetime
) -> HttpResponse:
    """:func:`~skyproto.calls.check_status`, plus quota ``errorCode`` values as rate limits."""
    if response.status not in DEFAULT_ACCEPTED and response.status != 429:
        code = _error_code(response)
        if code in QUOTA_ERROR_CODES:
            retry_after = parse_retry_after(response.header("retry-after"), now=now)
            hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            raise SkypeRateLimitException(
                f"Rate limit exceeded (errorCode {code}){hint}", response, retry_after
            )
    return check_status(response, DEFAULT_ACCEPTED, method=method, url=url, now=now)


def _under(url: str, base: str) -> bool:
    path = urllib.parse.urlsplit(url).path
    base_parts = urllib.parse.urlsplit(base)
    parts = urllib.parse.urlsplit(url)
    if (parts.scheme, parts.netloc.lower()) != (base_parts.scheme, base_parts.netloc.lower()):
        return False
    prefix = base_parts.path.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _require_chat_url(url: str, base: str, hosts: Hosts, what: str) -> str:
    hosts.require_trusted(url, what)
    if not _under(url, base):
        # The host may be trusted, but the Skype token would leave the chat service.
        raise UntrustedHostError(f"refusing to follow {what} outside the chat service base")
    return url


@attrs.frozen
class ChatPage:
    """One listing page: its items, the link to the next (older) page and the syncState link."""

    items: list[Any]
    backward: str | None = None
    sync_state: str | None = None


def _link(metadata: Mapping[str, Any], key: str, request_url: str) -> str | None:
    value = metadata.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RemoteProtocolError(f"listing {key} is not a string")
    try:
        return urllib.parse.urljoin(request_url, value)
    except ValueError:  # such as an unclosed IPv6 bracket
        raise RemoteProtocolError(f"listing {key} is not a URL") from None


def parse_chat_page(
    response: HttpResponse, items_key: str, *, request_url: str, base: str, hosts: Hosts
) -> ChatPage:
    """Read a listing page: ``items_key`` items and the checked ``_metadata`` links."""
    try:
        body = response.json()
    except RemoteProtocolError:
        raise RemoteProtocolError("listing page is not JSON", response) from None
    if not isinstance(body, dict):
        raise RemoteProtocolError("listing page is not a JSON object", response)
    items = page_items(body, items_key)
    metadata = body.get("_metadata")
    if metadata is None:
        return ChatPage(items)
    if not isinstance(metadata, dict):
        raise RemoteProtocolError("listing _metadata is not an object", response)
    # backwardLink paging, and following links only under the chat base, rest on a single
    # source (docs/teams.md §8).
    backward = _link(metadata, "backwardLink", request_url)
    sync = _link(metadata, "syncState", request_url)
    if backward is not None:
        _require_chat_url(backward, base, hosts, "a backwardLink")
    if sync is not None:
        _require_chat_url(sync, base, hosts, "a syncState link")
    return ChatPage(items, backward, sync)


def chat_page(
    token: SkypeToken,
    url: str,
    *,
    base: str,
    hosts: Hosts,
    items_key: str,
    params: Params = None,
) -> Flow[ChatPage]:
    """Flow: one listing page of ``url`` (``params`` only on a first page; links carry theirs)."""
    _require_chat_url(url, base, hosts, "a listing")
    req = build_request("GET", url, params=params, headers=chat_headers(token))
    response = yield from request(req)
    current = yield from now()
    check_chat_status(response, method="GET", url=url, now=current)
    return parse_chat_page(response, items_key, request_url=req.url, base=base, hosts=hosts)


def _follow(page: ChatPage, target: str, fetched: set[str]) -> str | None:
    """After ``page``, fetched from ``target`` (added to ``fetched``): the next page along
    ``backwardLink``, or ``None`` where the listing ends (an empty page, a page without a link,
    or a link back to a page already fetched)."""
    fetched.add(target)
    if not page.items or page.backward is None or page.backward in fetched:
        return None
    return page.backward


def listing(
    token: SkypeToken,
    url: str,
    *,
    base: str,
    hosts: Hosts,
    items_key: str,
    params: Params = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Flow[tuple[list[Any], str | None]]:
    """Flow: every item of a listing, following ``backwardLink``; and its last syncState link.

    Ends at an empty page, a page without a new link, or after ``max_pages`` pages (logged).
    """
    if max_pages < 1:
        raise LocalProtocolError("max_pages must be at least 1")
    collected: list[Any] = []
    fetched: set[str] = set()
    target, sync = url, None
    for _ in range(max_pages):
        page = yield from chat_page(
            token,
            target,
            base=base,
            hosts=hosts,
            items_key=items_key,
            params=params if not fetched else None,
        )
        sync = page.sync_state or sync
        collected.extend(page.items)
        following = _follow(page, target, fetched)
        if following is None:
            return collected, sync
        target = following
    logger.warning("listing %s did not end within %d pages", url, max_pages)
    return collected, sync


# -- sending -----------------------------------------------------------------------------------


@attrs.frozen
class SentMessage:
    """What the service answered to a send: the message id and its arrival time.

    ``original_arrival_time`` is the answer's ``OriginalArrivalTime`` exactly as it was given
    (a JSON number or string); ``id`` is its digits and ``arrival`` the same instant, parsed.
    """

    clientmessageid: str
    id: str
    arrival: dt.datetime | None
    original_arrival_time: int | float | str


def _millis(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _decimal(value.strip(), 16):
        value = int(value.strip())
    return value if isinstance(value, int) and 0 <= value < 10**16 else None


def parse_sent(response: HttpResponse, clientmessageid: str) -> SentMessage:
    """Read a send answer: ``OriginalArrivalTime`` (a number or digits) is the message id
    (a single source, docs/teams.md §8)."""
    try:
        body = response.json() if response.body.strip() else {}
    except RemoteProtocolError:
        raise RemoteProtocolError("send answer is not JSON", response) from None
    if not isinstance(body, dict):
        raise RemoteProtocolError("send answer is not a JSON object", response)
    raw = body.get("OriginalArrivalTime")
    millis = _millis(raw)
    if millis is None or not isinstance(raw, int | float | str):
        raise RemoteProtocolError("send answer has no usable OriginalArrivalTime", response)
    arrival = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
    return SentMessage(clientmessageid, str(millis), arrival, raw)


def new_clientmessageid(current: dt.datetime) -> str:
    """A numeric client message id: epoch milliseconds and four random digits."""
    millis = int(current.timestamp() * 1000)
    return f"{millis}{secrets.randbelow(10_000):04d}"


def _message_body(text: str, clientmessageid: str, display_name: str | None) -> dict[str, Any]:
    if not isinstance(text, str):
        raise LocalProtocolError("a message text is a str")
    if not clientmessageid.isdigit():
        raise LocalProtocolError("a clientmessageid is a string of digits")
    body: dict[str, Any] = {
        "content": html.escape(text, quote=False),
        "messagetype": "RichText/Html",
        "contenttype": "text",
        "clientmessageid": clientmessageid,
        "amsreferences": [],
    }
    if display_name:
        body["imdisplayname"] = display_name
    return body


def send_message(
    token: SkypeToken,
    conversation: str,
    text: str,
    *,
    base: str,
    hosts: Hosts,
    clientmessageid: str | None = None,
    display_name: str | None = None,
) -> Flow[SentMessage]:
    """Flow: post ``text`` (as escaped HTML, as personal clients send it) to ``conversation``."""
    url = _require_chat_url(messages_url(base, conversation), base, hosts, "a message send")
    if clientmessageid is None:
        clientmessageid = new_clientmessageid((yield from now()))
    body = _message_body(text, clientmessageid, display_name)
    req = build_request("POST", url, headers=chat_headers(token), json=body)
    response = yield from request(req)
    current = yield from now()
    check_chat_status(response, method="POST", url=url, now=current)
    return parse_sent(response, clientmessageid)


def send_legacy_message(
    reg: Registration,
    conversation: str,
    text: str,
    *,
    clientmessageid: str | None = None,
    display_name: str | None = None,
) -> Flow[SentMessage]:
    """Flow: post ``text`` to ``conversation`` through the legacy chat service on the
    registration's messaging host (``RegistrationToken`` header; docs/protocol.md §5), with the
    same body as :func:`send_message`; the answer is read the same way."""
    url = f"{reg.messenger}/users/ME/conversations/{_quoted(conversation)}/messages"
    if clientmessageid is None:
        clientmessageid = new_clientmessageid((yield from now()))
    body = _message_body(text, clientmessageid, display_name)
    req = build_request(
        "POST", url, kind="endpoint", auth=(AuthKind.REG_TOKEN, reg.token.token), json=body
    )
    response = yield from request(req)
    current = yield from now()
    check_chat_status(response, method="POST", url=url, now=current)
    return parse_sent(response, clientmessageid)


def summarise_message(message: Any) -> dict[str, Any]:
    """The fields a user reads of a listed message: ``id``, ``from`` (the sender's id, prefix
    included, from the last segment of its URL), ``content``, ``messagetype``, ``composetime``."""
    if not isinstance(message, dict):
        raise RemoteProtocolError("a listed message is not a JSON object")
    sender = message.get("from")
    if isinstance(sender, str) and "/" in sender:
        sender = sender.rstrip("/").rpartition("/")[2]
    out = {}
    for key in ("id", "content", "messagetype", "composetime"):
        value = message.get(key)
        out[key] = value if isinstance(value, str | int) and not isinstance(value, bool) else None
    out["from"] = sender if isinstance(sender, str) else None
    return {k: out[k] for k in ("id", "from", "content", "messagetype", "composetime")}


# -- under a session ---------------------------------------------------------------------------


class ChatListing(Listing):
    """A chat-service listing of a Teams Free :class:`~skyproto.Session`, one page per
    :meth:`next_page` flow (driven like any :class:`~skyproto.Listing`).

    ``path`` is under the session's chat base (``/v1/users/ME/conversations``). Pages follow
    ``backwardLink``; the latest ``syncState`` link is kept in the session's paging state.
    """

    def __init__(
        self,
        session: Session,
        path: str,
        *,
        items_key: str,
        params: Params = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(session, path, items_key=items_key, params=params, max_pages=max_pages)
        self._chat_session = session  # the Teams session itself, not only a listing owner
        self._next: str | None = None
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"ChatListing({self.path}, pages={self.pages}, finished={self.finished})"

    def restart(self) -> None:
        """Start over from the newest page."""
        super().restart()

    def _forget(self) -> None:
        self._next = None
        self._seen = set()

    def _describe(self) -> str:
        return self.path

    def _fetch_page(self) -> Flow[tuple[list[Any], bool]]:
        session = self._chat_session
        base = session.chat_base()
        url = base + self.path
        target = self._next if self._next is not None else url
        params = self.params if self._next is None else None
        page: ChatPage = yield from session.call_with_token(
            lambda token: chat_page(
                token,
                target,
                base=base,
                hosts=session.hosts,
                items_key=self.items_key,
                params=params,
            )
        )
        self.pages += 1
        if page.sync_state is not None:
            state = session.state
            paging = state.paging.with_link("GET", url, page.sync_state)
            session.state = attrs.evolve(state, paging=paging)
        self._next = _follow(page, target, self._seen)
        return page.items, self._next is None


def conversations_listing(session: Session, *, max_pages: int = DEFAULT_MAX_PAGES) -> ChatListing:
    """The conversation listing of a Teams Free ``session``."""
    return ChatListing(
        session,
        "/v1/users/ME/conversations",
        items_key="conversations",
        params=CONVERSATION_PARAMS,
        max_pages=max_pages,
    )


def messages_listing(
    session: Session, conversation: str, *, count: int = 50, max_pages: int = DEFAULT_MAX_PAGES
) -> Listing:
    """A conversation's messages, newest first, ``count`` per page.

    On a legacy session it is the same route under the messaging host, a syncState
    :class:`~skyproto.Listing` (whose link lives in the session: :meth:`~skyproto.Listing.restart`
    it, once registered, to begin at the newest message again)."""
    path = f"/users/ME/conversations/{_quoted(conversation)}/messages"
    if not session.teams:
        return session.listing(
            path, items_key="messages", params=message_params(count), max_pages=max_pages
        )
    return ChatListing(
        session,
        "/v1" + path,
        items_key="messages",
        params=message_params(count),
        max_pages=max_pages,
    )


def send(session: Session, conversation: str, text: str) -> Flow[SentMessage]:
    """Flow: :func:`send_message` under the session's policy (a 401 re-mints the Skype token
    once); on a legacy session, :func:`send_legacy_message` under its registration policy (a
    401 logs in and registers again). The client message id is fixed before the first attempt,
    so a retry cannot post a second copy the service would not recognise."""
    clientmessageid = new_clientmessageid((yield from now()))
    if not session.teams:
        return (
            yield from session.call(
                lambda reg: send_legacy_message(
                    reg, conversation, text, clientmessageid=clientmessageid
                ),
                reregister_on_404=False,
            )
        )
    base = session.chat_base()
    return (
        yield from session.call_with_token(
            lambda token: send_message(
                token,
                conversation,
                text,
                base=base,
                hosts=session.hosts,
                clientmessageid=clientmessageid,
            )
        )
    )
