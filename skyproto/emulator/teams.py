"""The Teams Free services of the emulator (docs/teams.md): identity provider, authz, chat.

Built from the same protocol facts as the client, as an independent peer, and rough the way the
real services are: numbers as strings, extra keys, empty error fields.

* **Identity** (``login.microsoftonline.com``): v1 ``common/oauth2/devicecode`` (with a
  ``resource``) and v2 ``consumers/oauth2/v2.0/devicecode`` (with a ``scope``); the token
  endpoints ``common/oauth2/token`` (v1 parameter ``code``) and ``{tenant}/oauth2/v2.0/token``
  (``device_code``; ``consumers``, ``common`` or the consumer tenant GUID) for the device-code
  and refresh-token grants. ``interval`` and ``expires_in`` are strings. The user "approves" a
  code after ``Scenario.device_pending`` polls (or declines it, or lets it expire, per
  ``device_outcome``); ``device_slow_down`` polls answer ``slow_down`` first, and so does a poll
  sooner than the interval. Refresh tokens rotate: a used one is dead (``invalid_grant``, or
  ``interaction_required`` under ``refresh_refusal``), as is every one under ``refresh_dead``.
  Access tokens are opaque and remember their scope. The scope
  ``https://api.spaces.skype.com/.default`` is refused (AADSTS70011).
* **authz** (``teams.live.com/api/auth/v1.0/authz/consumer``): needs a bearer token for the
  skypetoken scope; ``v2.0`` answers 401. The answer has the personal shape (or the work one
  under ``authz_shape="work"``); Skype tokens are JWT-shaped with a ``skypeid`` claim.
* **Chat** (``msgapi.teams.live.com`` and ``teams.live.com/api/chatsvc/consumer``, same routes):
  conversations and messages with ``backwardLink`` paging (at most ``chat_page_size`` items a
  page), sending (201 with ``OriginalArrivalTime``), ``Authentication: skypetoken=`` or
  ``X-Skypetoken``. ``@thread.skype`` conversations need ``ms-ic3-product`` (404 otherwise).
  ``chat_quota`` calls a minute per user, then 429 ``API calls quota exceeded!`` (or, with
  ``quota_code=803``, 403 ``Login Rate limit exceeded``) with ``Retry-After``.

Internal to the emulator (switch it on with :class:`~skyproto.emulator.Scenario`); nothing
here is public API.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._http import HttpRequest, HttpResponse, encode_query
from ..errors import RemoteProtocolError
from .event_stream import epoch_millis

if TYPE_CHECKING:
    from .core import Emulator, _Routed

__all__: list[str] = []

IDENTITY_HOST = "login.microsoftonline.com"
TEAMS_HOST = "teams.live.com"
MSGAPI_HOST = "msgapi.teams.live.com"
#: Every real host of this profile the emulator answers for.
TEAMS_HOSTS = (IDENTITY_HOST, TEAMS_HOST, MSGAPI_HOST)
AFD_PREFIX = ("api", "chatsvc", "consumer")
TEAMS_CLIENT_ID = "8ec6bc83-69c8-4392-8f08-b3c986009232"
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
V1_RESOURCE = "https://api.spaces.skype.com"
SKYPETOKEN_SCOPE = "service::api.fl.spaces.skype.com::MBI_SSL"
_REFUSED_SCOPE = "https://api.spaces.skype.com/.default"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_TENANTS = ("consumers", "common", CONSUMER_TENANT)
_DEVICE_LIFETIME = 900
_ACCESS_LIFETIME = 3600
_SLOW_DOWN_STEP = 5
_QUOTA_WINDOW = 60.0
_TABLE_LIMIT = 10_000
_JWT_HEADER = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEwNiIsInR5cCI6IkpXVCJ9"

#: Every route of this profile, by its short name, with the request it answers.
TEAMS_ROUTES: Mapping[str, str] = {
    "teams_devicecode": "POST login.microsoftonline.com/{common|consumers}/oauth2/.../devicecode",
    "teams_token": "POST login.microsoftonline.com/.../token (device-code and refresh grants)",
    "teams_authz": "POST teams.live.com/api/auth/v1.0/authz/consumer (Skype token for a bearer)",
    "chat_conversations": "GET {chat}/v1/users/ME/conversations (backwardLink pages)",
    "chat_messages": "GET {chat}/v1/users/ME/conversations/{id}/messages (backwardLink pages)",
    "chat_send": "POST {chat}/v1/users/ME/conversations/{id}/messages (send; 201)",
}


def _chat_rows(
    method: str, tail: tuple[str, ...], route: str
) -> tuple[tuple[str, str, tuple[str, ...], str], ...]:
    return ((MSGAPI_HOST, method, tail, route), (TEAMS_HOST, method, AFD_PREFIX + tail, route))


_CONVERSATIONS = ("v1", "users", "ME", "conversations")
#: Rows of the emulator's route table for this profile (host, method, path pattern, route).
TEAMS_ROUTE_TABLE: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (IDENTITY_HOST, "POST", ("common", "oauth2", "devicecode"), "teams_devicecode"),
    (IDENTITY_HOST, "POST", ("consumers", "oauth2", "v2.0", "devicecode"), "teams_devicecode"),
    (IDENTITY_HOST, "POST", ("common", "oauth2", "token"), "teams_token"),
    (IDENTITY_HOST, "POST", ("*", "oauth2", "v2.0", "token"), "teams_token"),
    (TEAMS_HOST, "POST", ("api", "auth", "*", "authz", "consumer"), "teams_authz"),
    *_chat_rows("GET", _CONVERSATIONS, "chat_conversations"),
    *_chat_rows("GET", (*_CONVERSATIONS, "*", "messages"), "chat_messages"),
    *_chat_rows("POST", (*_CONVERSATIONS, "*", "messages"), "chat_send"),
)

_ALICE = "8:live:.cid.a11ce"
_BOB = "8:live:.cid.b0b"
_SEED: tuple[tuple[str, str | None, tuple[tuple[str, str, str, str], ...]], ...] = (
    (
        "19:uni01_4f2a9c@thread.v2",
        "Weekend plans",
        (
            (
                _ALICE,
                "RichText/Html",
                "<p>Hiking on <b>Saturday</b>?</p>",
                "2026-03-05T14:23:02.123Z",
            ),
            ("ME", "RichText/Html", "<p>Count me in</p>", "2026-03-05T14:23:40.000Z"),
            (_BOB, "Text", "Same here", "2026-03-05T14:25:00.500Z"),
        ),
    ),
    (
        _ALICE,
        None,
        (
            (_ALICE, "Text", "Did you get the photos?", "2026-03-04T09:00:00.000Z"),
            ("ME", "RichText/Html", "Yes, thanks!", "2026-03-04T09:05:00.000Z"),
        ),
    ),
    (
        "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype",
        "Old Skype group",
        ((_BOB, "Text", "Still here after the move?", "2026-02-20T19:00:00.000Z"),),
    ),
    (
        "48:notifications",
        None,
        (("48:notifications", "Text", "Welcome to Teams (free)", "2026-01-01T00:00:00.000Z"),),
    ),
)


@attrs.define
class _DeviceCode:
    user_id: str
    version: str
    user_code: str
    expiry: dt.datetime
    interval: int
    polls: int = 0
    last_poll: dt.datetime | None = None


@attrs.frozen
class _Access:
    user_id: str
    scope: str
    expiry: dt.datetime


@attrs.frozen
class _SkypeGrant:
    user_id: str
    expiry: dt.datetime


@attrs.define
class _Message:
    id: str
    sender: str
    kind: str
    content: str
    stamp: str
    clientmessageid: str


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse.build(status, headers=headers, json=body)


def _oauth_error(code: str, description: str = "", status: int = 400) -> HttpResponse:
    # As rough as the real thing: codes as strings, an empty description by default.
    return _json(
        status,
        {
            "error": code,
            "error_description": description,
            "error_codes": ["70000"] if code == "invalid_grant" else [],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "",
        },
    )


def _chat_error(status: int, code: int, message: str) -> HttpResponse:
    return _json(status, {"errorCode": code, "message": message})


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    table[key] = value
    while len(table) > _TABLE_LIMIT:
        del table[next(iter(table))]


def _form(request: HttpRequest) -> dict[str, str] | HttpResponse:
    try:
        pairs = request.form()
    except RemoteProtocolError:
        return _oauth_error("invalid_request", "AADSTS900144: The request body must be a form.")
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _stamp(millis: int) -> str:
    moment = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


class TeamsService:
    """The Teams Free services of one :class:`~skyproto.emulator.Emulator` (its account, random
    generator, hosts and scenario)."""

    def __init__(self, owner: Emulator) -> None:
        self._owner = owner
        self._devices: dict[str, _DeviceCode] = {}
        self._refresh: dict[str, str] = {}
        self._access: dict[str, _Access] = {}
        self._skype: dict[str, _SkypeGrant] = {}
        self._pages: dict[str, tuple[str, int]] = {}
        self._calls: dict[str, deque[dt.datetime]] = {}
        self._chats: dict[str, tuple[str | None, list[_Message]]] = {}
        for chat, topic, messages in _SEED:
            items = [
                _Message(
                    str(epoch_millis(dt.datetime.fromisoformat(stamp))),
                    sender,
                    kind,
                    content,
                    stamp,
                    str(epoch_millis(dt.datetime.fromisoformat(stamp)) * 3),
                )
                for sender, kind, content, stamp in messages
            ]
            self._chats[chat] = (topic, items)

    # -- public state --------------------------------------------------------------------------

    @property
    def skype_id(self) -> str:
        """The account's Skype id (``live:.cid.<hex>``)."""
        return "live:.cid." + self._owner.account.skype_name.encode().hex()[:16]

    def sent(self, conversation: str) -> list[dict[str, str]]:
        """The messages of ``conversation``, oldest first."""
        found = self._chats.get(conversation)
        return [attrs.asdict(m) for m in found[1]] if found else []

    def add_message(
        self, chat: str, sender: str, content: str, now: dt.datetime, *, kind: str = "Text"
    ) -> dict[str, Any]:
        """A message from ``sender`` arrives in ``chat`` (created if new), as the chat service
        lists it under the ``msgapi`` base; its id is the arrival time in milliseconds."""
        _topic, messages = self._chats.setdefault(chat, (None, []))
        millis = max(epoch_millis(now), int(messages[-1].id) + 1 if messages else 0)
        message = _Message(str(millis), sender, kind, content, _stamp(millis), str(millis * 3))
        messages.append(message)
        del messages[:-_TABLE_LIMIT]
        base = self._owner.hosts.url(f"https://{MSGAPI_HOST}")
        return self._render(base, chat, message)

    def live_refresh_tokens(self) -> int:
        """How many refresh tokens are still valid."""
        return len(self._refresh)

    def handler(self, route: str) -> Callable[[HttpRequest, _Routed, dt.datetime], HttpResponse]:
        handler: Callable[[HttpRequest, _Routed, dt.datetime], HttpResponse]
        handler = getattr(self, f"_on_{route}")
        return handler

    # -- generated values ----------------------------------------------------------------------

    def _opaque(self, prefix: str, size: int) -> str:
        raw = self._owner._rng.randbytes(size)
        return prefix + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def _issue_tokens(self, user_id: str, scope: str, now: dt.datetime) -> dict[str, Any]:
        access = self._opaque("EwA", 48)
        refresh = self._opaque("M.C5", 48)
        _remember(
            self._access,
            access,
            _Access(user_id, scope, now + dt.timedelta(seconds=_ACCESS_LIFETIME)),
        )
        _remember(self._refresh, refresh, user_id)
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": str(_ACCESS_LIFETIME),
            "ext_expires_in": _ACCESS_LIFETIME,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": self._opaque("eyJ0", 24),
            "client_info": "",
        }

    def _skype_token(self, user_id: str, now: dt.datetime) -> tuple[str, int]:
        lifetime = self._owner.scenario.token_lifetime
        claims = {"skypeid": user_id, "scp": 780, "iat": int(now.timestamp())}
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        token = f"{_JWT_HEADER}.{payload}.{self._opaque('', 32)}"
        _remember(self._skype, token, _SkypeGrant(user_id, now + dt.timedelta(seconds=lifetime)))
        return token, lifetime

    # -- identity ------------------------------------------------------------------------------

    def _on_teams_devicecode(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        form = _form(request)
        if isinstance(form, HttpResponse):
            return form
        if form.get("client_id") != TEAMS_CLIENT_ID:
            return _oauth_error("unauthorized_client", "AADSTS700016: Application not found.")
        version = "v2" if "v2.0" in urllib.parse.urlsplit(request.url).path else "v1"
        if version == "v1" and form.get("resource") != V1_RESOURCE:
            return _oauth_error("invalid_resource", "AADSTS500011: The resource was not found.")
        if version == "v2":
            scope = form.get("scope", "")
            if _REFUSED_SCOPE in scope.split():
                return _oauth_error("invalid_scope", "AADSTS70011: The provided scope is invalid.")
            if SKYPETOKEN_SCOPE not in scope.split():
                return _oauth_error("invalid_scope", "AADSTS70011: The scope is not supported.")
        device_code = self._opaque("DAQABAAEAAA", 64)
        user_code = "".join(self._owner._rng.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(8))
        interval = self._owner.scenario.device_interval
        _remember(
            self._devices,
            device_code,
            _DeviceCode(
                self.skype_id,
                version,
                user_code,
                now + dt.timedelta(seconds=_DEVICE_LIFETIME),
                interval,
            ),
        )
        url_key = "verification_url" if version == "v1" else "verification_uri"
        url = "https://microsoft.com/devicelogin"
        return _json(
            200,
            {
                "user_code": user_code,
                "device_code": device_code,
                url_key: url,
                "expires_in": str(_DEVICE_LIFETIME),
                "interval": str(interval),
                "message": f"To sign in, use a web browser to open the page {url} and enter "
                f"the code {user_code} to authenticate.",
            },
        )

    def _on_teams_token(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        form = _form(request)
        if isinstance(form, HttpResponse):
            return form
        v2 = "v2.0" in urllib.parse.urlsplit(request.url).path
        if v2 and routed.params and routed.params[0] not in _TENANTS:
            return _oauth_error("invalid_request", "AADSTS90002: Tenant not found.")
        if form.get("client_id") != TEAMS_CLIENT_ID:
            return _oauth_error("unauthorized_client", "AADSTS700016: Application not found.")
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            return self._device_poll(form.get("device_code" if v2 else "code"), v2, now)
        if grant == "refresh_token":
            return self._refresh_grant(form, v2, now)
        return _oauth_error("unsupported_grant_type")

    def _device_poll(self, code: str | None, v2: bool, now: dt.datetime) -> HttpResponse:
        if not code:
            return _oauth_error("invalid_request", "AADSTS900144: The device code is missing.")
        device = self._devices.get(code)
        if device is None or device.version != ("v2" if v2 else "v1"):
            return _oauth_error("invalid_grant", "AADSTS70000: The device code is not valid.")
        scenario = self._owner.scenario
        if now >= device.expiry or (
            scenario.device_outcome == "expired" and device.polls >= scenario.device_pending
        ):
            del self._devices[code]
            return _oauth_error("expired_token", "AADSTS70020: The device code expired.")
        too_soon = (
            device.last_poll is not None
            and (now - device.last_poll).total_seconds() < device.interval - 0.5
        )
        device.last_poll = now
        device.polls += 1
        if too_soon or device.polls <= scenario.device_slow_down:
            device.interval += _SLOW_DOWN_STEP
            return _oauth_error("slow_down")
        if device.polls <= scenario.device_slow_down + scenario.device_pending:
            return _oauth_error("authorization_pending", "AADSTS70016: Pending end-user approval.")
        del self._devices[code]
        if scenario.device_outcome == "declined":
            return _oauth_error("authorization_declined", "AADSTS70019: The user declined.")
        scope = SKYPETOKEN_SCOPE if v2 else V1_RESOURCE
        return _json(200, self._issue_tokens(device.user_id, scope, now))

    def _refresh_grant(self, form: Mapping[str, str], v2: bool, now: dt.datetime) -> HttpResponse:
        token = form.get("refresh_token")
        user = self._refresh.pop(token, None) if token else None  # rotation: one use only
        if user is None or self._owner.scenario.refresh_dead:
            if self._owner.scenario.refresh_refusal == "interaction_required":
                return _oauth_error(
                    "interaction_required",
                    "AADSTS50076: Due to a configuration change, you must sign in again.",
                )
            return _oauth_error(
                "invalid_grant", "AADSTS70000: The provided grant has expired or was revoked."
            )
        scope_words = form.get("scope", "").split() if v2 else [V1_RESOURCE]
        if _REFUSED_SCOPE in scope_words:
            return _oauth_error("invalid_scope", "AADSTS70011: The provided scope is invalid.")
        scope = SKYPETOKEN_SCOPE if SKYPETOKEN_SCOPE in scope_words else " ".join(scope_words)
        return _json(200, self._issue_tokens(user, scope, now))

    # -- authz ---------------------------------------------------------------------------------

    def _on_teams_authz(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        refused = {"status": {"code": 40120, "text": "Authentication failed. Bad token."}}
        if routed.params[0] != "v1.0":
            return _json(401, refused)
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        access = self._access.get(token) if scheme.lower() == "bearer" else None
        if access is None or now >= access.expiry or access.scope != SKYPETOKEN_SCOPE:
            return _json(401, refused)
        skype_token, lifetime = self._skype_token(access.user_id, now)
        hosts = self._owner.hosts
        regions = {
            "chatService": hosts.url(f"https://{MSGAPI_HOST}"),
            "chatServiceAfd": hosts.url(f"https://{TEAMS_HOST}/api/chatsvc/consumer"),
            "middleTier": hosts.url(f"https://{TEAMS_HOST}/api/mt"),
            "ams": "https://us-api.asm.skype.com",
            "unifiedPresence": "https://presence.teams.live.com",
        }
        if self._owner.scenario.authz_shape == "work":
            body: dict[str, Any] = {
                "tokens": {"skypeToken": skype_token, "expiresIn": str(lifetime)},
                "region": "amer",
                "partition": "amer01",
                "regionGtms": regions,
            }
        else:
            body = {
                "skypeToken": {
                    "skypetoken": skype_token,
                    "expiresIn": lifetime,
                    "skypeid": access.user_id,
                    "signinname": self._owner.account.user,
                    "isBusinessTenant": False,
                },
                "regionGtms": regions,
                "region": "",
                "licenseDetails": {"isFreemium": True, "isTrial": "false"},
            }
        return _json(200, body)

    # -- chat ----------------------------------------------------------------------------------

    def _chat_user(self, request: HttpRequest, now: dt.datetime) -> str | HttpResponse:
        header = request.header("authentication") or ""
        token = header[len("skypetoken=") :] if header.startswith("skypetoken=") else None
        token = token or request.header("x-skypetoken")
        grant = self._skype.get(token) if token else None
        if grant is None or now >= grant.expiry:
            return _chat_error(401, 401, "Authentication failed.")
        return grant.user_id

    def _quota(self, user: str, now: dt.datetime) -> HttpResponse | None:
        scenario = self._owner.scenario
        if scenario.chat_quota <= 0:
            return None
        calls = self._calls.setdefault(user, deque())
        while calls and (now - calls[0]).total_seconds() >= _QUOTA_WINDOW:
            calls.popleft()
        if len(calls) < scenario.chat_quota:
            calls.append(now)
            return None
        wait = max(1, int(_QUOTA_WINDOW - (now - calls[0]).total_seconds() + 0.999))
        headers = [("Retry-After", str(wait))]
        if scenario.quota_code == 803:
            return _json(403, {"errorCode": 803, "message": "Login Rate limit exceeded"}, headers)
        body = {
            "errorCode": 429,
            "message": "API calls quota exceeded!",
            "standardizedError": {
                "errorCode": 429,
                "errorSubCode": 1,
                "errorDescription": "API calls quota exceeded!",
            },
        }
        return _json(429, body, headers)

    def _chat_base(self, routed: _Routed) -> str:
        if routed.host == TEAMS_HOST:
            return self._owner.hosts.url(f"https://{TEAMS_HOST}/api/chatsvc/consumer")
        return self._owner.hosts.url(f"https://{MSGAPI_HOST}")

    def _admit(self, request: HttpRequest, now: dt.datetime) -> str | HttpResponse:
        user = self._chat_user(request, now)
        if isinstance(user, HttpResponse):
            return user
        limited = self._quota(user, now)
        return limited if limited is not None else user

    def _conversation(
        self, request: HttpRequest, chat: str
    ) -> tuple[str | None, list[_Message]] | HttpResponse:
        found = self._chats.get(chat)
        needs_product = chat.endswith("@thread.skype") and not request.header("ms-ic3-product")
        if found is None or needs_product:
            return _chat_error(404, 404, "Conversation not found.")
        return found

    def _render(self, base: str, chat: str, message: _Message) -> dict[str, Any]:
        sender = f"8:{self.skype_id}" if message.sender == "ME" else message.sender
        return {
            "id": message.id,
            "sequenceId": int(message.id) % 100000,
            "clientmessageid": message.clientmessageid,
            "version": message.id,
            "conversationid": chat,
            "conversationLink": f"{base}/v1/users/ME/conversations/{chat}",
            "type": "Message",
            "messagetype": message.kind,
            "contenttype": "text",
            "content": message.content,
            "amsreferences": [],
            "from": f"{base}/v1/users/ME/contacts/{sender}",
            "imdisplayname": "",
            "composetime": message.stamp,
            "originalarrivaltime": message.stamp,
            "properties": {},
        }

    def _page(
        self,
        request: HttpRequest,
        *,
        key: str,
        listing: str,
        base: str,
        path: str,
        items: list[dict[str, Any]],
    ) -> HttpResponse:
        query = dict(request.query())
        size_text = query.get("pageSize") or "20"
        decimal = size_text.isascii() and size_text.isdigit() and len(size_text) <= 3
        if not decimal or not 0 < int(size_text) <= 200:
            return _chat_error(400, 400, "pageSize must be between 1 and 200.")
        size = min(int(size_text), self._owner.scenario.chat_page_size)
        offset = 0
        state = query.get("syncState")
        if state is not None:
            found = self._pages.get(state)
            if found is None or found[0] != listing:
                return _chat_error(400, 400, "Invalid syncState.")
            offset = found[1]
        page = items[offset : offset + size]
        metadata: dict[str, Any] = {"totalCount": str(len(items)), "lastCompleteSegmentEndTime": 0}
        following = offset + len(page)

        def link(position: int) -> str:
            token = self._opaque("", 18)
            _remember(self._pages, token, (listing, position))
            params = [("startTime", "0"), ("syncState", token), ("pageSize", str(size))]
            params.append(("view", "msnp24Equivalent"))
            target = "https://evil.example" if self._owner.scenario.foreign_sync_state else base
            return f"{target}{path}?{encode_query(params)}"

        metadata["backwardLink"] = link(following) if page else ""
        metadata["syncState"] = link(len(items))
        return _json(200, {key: page, "_metadata": metadata})

    def _on_chat_conversations(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        user = self._admit(request, now)
        if isinstance(user, HttpResponse):
            return user
        base = self._chat_base(routed)
        items = []
        ordered = sorted(self._chats.items(), key=lambda kv: -int(kv[1][1][-1].id))
        for chat, (topic, messages) in ordered:
            item: dict[str, Any] = {
                "id": chat,
                "type": "Conversation",
                "version": messages[-1].id,
                "targetLink": f"{base}/v1/users/ME/contacts/{chat}",
                "properties": {
                    "consumptionhorizon": f"{messages[-1].id};0;0",
                    "isemptyconversation": "False",
                },
                "lastMessage": self._render(base, chat, messages[-1]),
                "messages": f"{base}/v1/users/ME/conversations/{chat}/messages",
            }
            if topic is not None:
                item["threadProperties"] = {
                    "topic": topic,
                    "threadType": "chat",
                    "membercount": "3",
                    "productThreadType": "Chat",
                }
            else:
                item["isOneOnOne"] = True
            items.append(item)
        return self._page(
            request,
            key="conversations",
            listing="conversations",
            base=base,
            path="/v1/users/ME/conversations",
            items=items,
        )

    def _on_chat_messages(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        user = self._admit(request, now)
        if isinstance(user, HttpResponse):
            return user
        chat = routed.params[0]
        found = self._conversation(request, chat)
        if isinstance(found, HttpResponse):
            return found
        base = self._chat_base(routed)
        items = [self._render(base, chat, m) for m in reversed(found[1])]
        quoted = urllib.parse.quote(chat, safe="")
        return self._page(
            request,
            key="messages",
            listing=f"messages:{chat}",
            base=base,
            path=f"/v1/users/ME/conversations/{quoted}/messages",
            items=items,
        )

    def _on_chat_send(
        self, request: HttpRequest, routed: _Routed, now: dt.datetime
    ) -> HttpResponse:
        user = self._admit(request, now)
        if isinstance(user, HttpResponse):
            return user
        found = self._conversation(request, routed.params[0])
        if isinstance(found, HttpResponse):
            return found
        try:
            body = request.json()
        except RemoteProtocolError:
            return _chat_error(400, 400, "Malformed JSON body.")
        if not isinstance(body, dict):
            return _chat_error(400, 400, "Malformed JSON body.")
        content, kind = body.get("content"), body.get("messagetype")
        client_id = body.get("clientmessageid")
        if not isinstance(content, str) or kind not in ("Text", "RichText/Html", "RichText"):
            return _chat_error(400, 400, "content and messagetype are required.")
        if not isinstance(client_id, str) or not (client_id.isascii() and client_id.isdigit()):
            return _chat_error(400, 400, "clientmessageid must be a numeric string.")
        messages = found[1]
        for message in messages:  # a repeated send is recognised, not posted twice
            if message.clientmessageid == client_id:
                return _json(201, {"OriginalArrivalTime": int(message.id)})
        millis = max(epoch_millis(now), int(messages[-1].id) + 1 if messages else 0)
        messages.append(_Message(str(millis), "ME", kind, content, _stamp(millis), client_id))
        del messages[:-_TABLE_LIMIT]  # the oldest go first; a conversation stays bounded
        return _json(201, {"OriginalArrivalTime": millis})
