"""Adapters that run skyproto's flows over real HTTP clients.

``skyproto.transports.requests`` (sync), ``skyproto.transports.httpx`` (sync and async) and
``skyproto.transports.stdlib`` (sockets, ``ssl`` and h11; sync) each implement one ``send``
method. :func:`run_sync` and :func:`run_async` drive a flow through any object with that method.
"""

from ._drive import AsyncTransport, SyncTransport, run_async, run_sync

__all__ = ["AsyncTransport", "SyncTransport", "run_async", "run_sync"]
