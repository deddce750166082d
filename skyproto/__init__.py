"""skyproto: the Skype HTTP client protocol, sans-I/O.

The core builds :class:`HttpRequest` values, reads :class:`HttpResponse` values and decides what
happens next; it opens no socket, reads no clock and never sleeps. Flows are generators that yield
requests (and :class:`Sleep`/:class:`Now` effects); ``skyproto.transports`` runs them.
"""

from ._flow import Effect, Flow, Now, Sleep, Stepper
from ._http import HttpRequest, HttpResponse
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
from .hosts import Hosts

__version__ = "0.1.0"

__all__ = [
    "AuthKind",
    "Effect",
    "Flow",
    "Hosts",
    "HttpRequest",
    "HttpResponse",
    "LocalProtocolError",
    "Now",
    "ProtocolError",
    "RemoteProtocolError",
    "SkypeApiException",
    "SkypeAuthException",
    "SkypeException",
    "SkypeRateLimitException",
    "SkypeTokenException",
    "Sleep",
    "Stepper",
    "TransportError",
    "TransportTimeout",
    "UntrustedHostError",
    "__version__",
    "external_call",
]
