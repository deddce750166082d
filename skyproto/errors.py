"""The exception hierarchy.

SkPy's names are kept so that code migrating from it catches the same classes::

    SkypeException
    ├── SkypeApiException            the server answered, but not as hoped (carries the response)
    │   ├── SkypeRateLimitException  429, with ``retry_after`` seconds when the server said
    │   └── RemoteProtocolError      the server sent something malformed or unexpected
    │       └── UntrustedHostError   the server pointed us at a host we will not send tokens to
    ├── SkypeAuthException           credentials refused, or a step a browser must do
    │   └── SkypeTokenException      no usable token (expired, missing, corrupt saved state)
    ├── LocalProtocolError           the caller misused the API (also a ``ValueError``)
    └── TransportError               the transport could not complete the exchange

``ProtocolError`` is the common base of the two protocol errors, as in h11.

No message or ``repr`` of these exceptions contains a secret: messages are built from fixed text,
status codes, methods and URLs, and the attached response is shown only by status.

No message is ever empty: an exception built with an empty or blank message gets its class's
:attr:`~SkypeException.default_message` instead, a sentence that still says what went wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._http import HttpResponse

__all__ = [
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "SkypeApiException",
    "SkypeAuthException",
    "SkypeException",
    "SkypeRateLimitException",
    "SkypeTokenException",
    "TransportError",
    "TransportTimeout",
    "UntrustedHostError",
]


class SkypeException(Exception):
    """Base of every exception skyproto raises on purpose."""

    #: The message used when the one given is empty or only whitespace.
    default_message = "skyproto failed without a more specific reason"

    def __init__(self, message: str) -> None:
        message = str(message)
        if not message.strip():
            message = self.default_message
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class _WithResponse(SkypeException):
    def __init__(self, message: str, response: HttpResponse | None = None) -> None:
        super().__init__(message)
        self.response = response
        if response is not None:
            # As in SkPy, ``args[1]`` is the response (its repr is redacted).
            self.args = (self.message, response)

    @property
    def status(self) -> int | None:
        """The HTTP status of the attached response, if any."""
        return self.response.status if self.response is not None else None

    def __repr__(self) -> str:
        status = f", status={self.status}" if self.response is not None else ""
        return f"{type(self).__name__}({self.message!r}{status})"


class SkypeApiException(_WithResponse):
    """The server answered with an unexpected status or body."""

    default_message = "the server answered with an unexpected status or body"


class SkypeRateLimitException(SkypeApiException):
    """HTTP 429. ``retry_after`` is the server's ``Retry-After`` in seconds, or ``None``."""

    default_message = "the server is rate-limiting requests (HTTP 429)"

    def __init__(
        self,
        message: str,
        response: HttpResponse | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, response)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        base = super().__repr__()
        if self.retry_after is None:
            return base
        return f"{base[:-1]}, retry_after={self.retry_after!r})"


class SkypeAuthException(_WithResponse):
    """The credentials were refused, or the account needs a step only a browser can do."""

    default_message = "the login was refused without a reason given"


class SkypeTokenException(SkypeAuthException):
    """No usable token: missing, expired, or saved state that cannot be read."""

    default_message = "no usable token (missing, expired or unreadable)"


class ProtocolError(SkypeException):
    """Base of the two protocol-error kinds."""

    default_message = "the protocol was not followed"


class RemoteProtocolError(ProtocolError, SkypeApiException):
    """The peer sent something malformed or unexpected."""

    default_message = "the server sent something malformed or unexpected"


class UntrustedHostError(RemoteProtocolError):
    """The server named a host outside the trust allow-list; nothing was sent there."""

    default_message = "the server named an untrusted host; nothing was sent there"


class LocalProtocolError(ProtocolError, ValueError):
    """The caller misused the API (bad argument, wrong state)."""

    default_message = "the API was called with a bad argument or in the wrong state"


class TransportError(SkypeException):
    """The transport could not complete an exchange (refused, reset, TLS failure, timeout)."""

    default_message = "the HTTP exchange could not be completed"


class TransportTimeout(TransportError):
    """The exchange did not finish within its timeout."""

    default_message = "the HTTP exchange did not finish within its timeout"
