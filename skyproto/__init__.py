"""skyproto: the Skype HTTP client protocol, sans-I/O.

The core builds :class:`HttpRequest` values, reads :class:`HttpResponse` values and decides what
happens next; it opens no socket, reads no clock and never sleeps. Flows are generators that yield
requests (and :class:`Sleep`, :class:`Now`, :class:`Shared` and :class:`Deliver` effects);
``skyproto.transports`` runs them. The sub-flows :func:`request`, :func:`now`, :func:`sleep`,
:func:`shared` and :func:`deliver` yield one effect each, for writing flows of your own.
:class:`Session` holds the tokens and the re-authentication policy (a Teams Free one signs in with
:class:`DeviceCodeLogin`; its chat flows are in ``skyproto.chat``), and :class:`EventLoop` turns a
session into a stream of typed events.

``Effect`` is the union of the five effect types and ``Flow[T]`` the type of a flow returning
``T``; ``__version__`` is the package's version. The public face is what this package and its
public modules list in ``__all__`` (see docs/design.md, "Public face"); everything else is
private, however many modules use it.
"""

from ._flow import (
    Deliver,
    Effect,
    Flow,
    Now,
    Shared,
    Sleep,
    Stepper,
    deliver,
    now,
    request,
    shared,
    sleep,
)
from ._http import HttpRequest, HttpResponse
from ._version import __version__
from .auth import DeviceCodeLogin, DevicePrompt, LoginMethod
from .calls import AuthKind, external_call
from .errors import (
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    SkypeApiException,
    SkypeAuthException,
    SkypeException,
    SkypeRateLimitException,
    SkypeTokenException,
    TransportError,
    TransportTimeout,
    UntrustedHostError,
)
from .events import (
    CallEvent,
    ConversationUpdateEvent,
    EditMessageEvent,
    EndpointPresenceEvent,
    Event,
    Message,
    MessageEvent,
    MessageKind,
    NewMessageEvent,
    PresenceEvent,
    ThreadUpdateEvent,
    TypedEvent,
    TypingEvent,
    UnknownEvent,
    decode_events,
)
from .hosts import Hosts
from .ids import Status, chat_from_url, no_prefix, user_from_url
from .loop import EventLoop, LoopPolicy, LoopStats
from .mac256 import lock_and_key
from .paging import PagingState
from .registration import Registration
from .session import GuestCredentials, Listing, Session, SessionState
from .tokens import Credentials, RegistrationToken, SkypeToken

__all__ = [
    "AuthKind",
    "CallEvent",
    "ConversationUpdateEvent",
    "Credentials",
    "Deliver",
    "DeviceCodeLogin",
    "DevicePrompt",
    "EditMessageEvent",
    "Effect",
    "EndpointPresenceEvent",
    "Event",
    "EventLoop",
    "Flow",
    "GuestCredentials",
    "Hosts",
    "HttpRequest",
    "HttpResponse",
    "Listing",
    "LocalProtocolError",
    "LoginMethod",
    "LoopPolicy",
    "LoopStats",
    "Message",
    "MessageEvent",
    "MessageKind",
    "NewMessageEvent",
    "Now",
    "PagingState",
    "PresenceEvent",
    "ProtocolError",
    "Registration",
    "RegistrationToken",
    "RemoteProtocolError",
    "Session",
    "SessionState",
    "Shared",
    "SkypeApiException",
    "SkypeAuthException",
    "SkypeException",
    "SkypeRateLimitException",
    "SkypeToken",
    "SkypeTokenException",
    "Sleep",
    "Status",
    "Stepper",
    "ThreadUpdateEvent",
    "TransportError",
    "TransportTimeout",
    "TypedEvent",
    "TypingEvent",
    "UnknownEvent",
    "UntrustedHostError",
    "__version__",
    "chat_from_url",
    "decode_events",
    "deliver",
    "external_call",
    "lock_and_key",
    "no_prefix",
    "now",
    "request",
    "shared",
    "sleep",
    "user_from_url",
]
