"""Adapters that run skyproto's flows over real HTTP clients.

``skyproto.transports.requests`` (sync), ``skyproto.transports.httpx`` (sync and async) and
``skyproto.transports.stdlib`` (sockets, ``ssl`` and h11; sync) each implement one ``send``
method. :func:`run_sync` and :func:`run_async` (and the page iterators :func:`iterate_pages` and
:func:`aiterate_pages`) drive a flow through any object with that method::

    with RequestsTransport() as transport:
        response = run_sync(external_call("GET", url, timeout=10), transport)

Every transport sends exactly the core's header lines plus ``Host`` and ``Content-Length``,
follows no redirect, keeps no cookie, returns the body as it came (no ``Content-Encoding``
decoding) and turns every client failure into :class:`~skyproto.TransportError`
(:class:`~skyproto.TransportTimeout` for timeouts), whose message never holds a header or a
body. The drivers throw that error into the flow, which may retry; they always close the flow.
Importing a transport whose client library is missing raises an ``ImportError`` naming the extra.
A transport of your own can reuse :func:`wire_head` and :func:`wire_headers` (the exact lines to
send), :func:`transport_error` (a redacted :class:`~skyproto.TransportError` for a failure) and
:class:`BoundedBody` (the exchange's deadline, and the body collected under a size limit).

Every transport bounds every exchange: a request's ``timeout`` (or the transport's
``default_timeout``, :data:`DEFAULT_TIMEOUT` unless given, when it is ``None``) covers the
connect and every read, as far as each client allows (each module says what its client cannot
bound), and a response body over ``max_body_size`` bytes (:data:`DEFAULT_MAX_BODY_SIZE` unless
given) is a :class:`~skyproto.TransportError` raised while it is read, never held in memory.

Every transport keeps two connection budgets: long polls
(:attr:`HttpRequest.long_poll <skyproto.HttpRequest.long_poll>`) and everything else each have
their own bounded set of connections (``poll_connections``, :data:`DEFAULT_POLL_CONNECTIONS`;
``connections``, :data:`DEFAULT_CONNECTIONS`) and a bounded wait for one (``pool_timeout``,
:data:`DEFAULT_POOL_TIMEOUT`), so that held polls never delay a short call (:class:`Budgets`).
"""

from ._budget import (
    DEFAULT_CONNECTIONS,
    DEFAULT_POLL_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    Budgets,
)
from ._drive import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_TIMEOUT,
    AsyncTransport,
    BoundedBody,
    SyncTransport,
    aiterate_pages,
    iterate_pages,
    run_async,
    run_sync,
    transport_error,
    utc_now,
    wire_head,
    wire_headers,
)

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_POLL_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "BoundedBody",
    "Budgets",
    "SyncTransport",
    "aiterate_pages",
    "iterate_pages",
    "run_async",
    "run_sync",
    "transport_error",
    "utc_now",
    "wire_head",
    "wire_headers",
]
