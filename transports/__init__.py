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
send; :class:`WireHeads` remembers them, in the client's own form, for heads sent again), :func:`transport_error` (a redacted :class:`~skyproto.TransportError` for a failure),
:class:`BoundedBody` (the exchange's deadline, and the body collected under a size limit),
:func:`check_limits` (to check the ``default_timeout`` and ``max_body_size`` given to its
constructor; :func:`check_seconds` and :func:`check_body_size` check one each), and
:class:`SocketStream`, :class:`AsyncioStream` and :func:`ssl_context_for_verify` for the byte
streams that ``open_stream`` returns (docs/trouter.md). The built-in transports import nothing else from
skyproto but the public names of ``skyproto`` and of this package (:func:`check_connections`
and :func:`pool_timeout_error` serve a transport of your own the same way).

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

from skyproto.calls import check_seconds

from ._budget import (
    DEFAULT_CONNECTIONS,
    DEFAULT_POLL_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    Budgets,
    check_connections,
    pool_timeout_error,
)
from ._drive import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_TIMEOUT,
    AsyncTransport,
    BoundedBody,
    SyncTransport,
    WireHeads,
    aiterate_pages,
    check_body_size,
    check_limits,
    iterate_pages,
    run_async,
    run_sync,
    transport_error,
    wire_head,
    wire_headers,
)
from ._streams import AsyncioStream, SocketStream, ssl_context_for_verify

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_POLL_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "AsyncioStream",
    "BoundedBody",
    "Budgets",
    "SocketStream",
    "SyncTransport",
    "WireHeads",
    "aiterate_pages",
    "check_body_size",
    "check_connections",
    "check_limits",
    "check_seconds",
    "iterate_pages",
    "pool_timeout_error",
    "run_async",
    "run_sync",
    "ssl_context_for_verify",
    "transport_error",
    "wire_head",
    "wire_headers",
]
