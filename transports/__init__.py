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
send) and :func:`transport_error` (a redacted :class:`~skyproto.TransportError` for a failure).
"""

from ._drive import (
    AsyncTransport,
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
    "AsyncTransport",
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
