"""Byte streams for the stream effects (:class:`~skyproto._flow.OpenStream` and its kin).

:class:`SocketStream` is the blocking one (``socket`` and ``ssl``), :class:`AsyncioStream` the
one for the event loop (``asyncio.open_connection``). A transport offers streams with an
``open_stream(url, timeout)`` method (``async`` on an async transport) built on these, with the
TLS settings it uses for its own requests. Every failure becomes a
:class:`~skyproto.TransportError` naming only the origin (scheme, host and port), never a path or
a query, which may hold a session id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import urllib.parse
from typing import Any

from skyproto._flow import TIMED_OUT, TimedOut
from skyproto.errors import LocalProtocolError, TransportError, TransportTimeout

__all__ = ["AsyncioStream", "SocketStream", "origin", "ssl_context_for_verify"]


def origin(url: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of an ``http``/``https`` URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise LocalProtocolError("a stream URL must be a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LocalProtocolError("a stream URL is an absolute http or https URL")
    tls = parts.scheme == "https"
    return parts.hostname, port or (443 if tls else 80), tls


def _where(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def _error(exc: BaseException, where: str, *, timed_out: bool = False) -> TransportError:
    kind = TransportTimeout if timed_out else TransportError
    return kind(f"{type(exc).__name__} on the stream to {where}")


def ssl_context_for_verify(verify: Any) -> ssl.SSLContext:
    """The context for a ``requests``-style ``verify``: ``True``, ``False``, a CA file or
    directory, or a context."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()


class SocketStream:
    """A blocking byte stream over a socket, with TLS for ``https``."""

    def __init__(self, sock: socket.socket, where: str) -> None:
        self._sock: socket.socket | None = sock
        self._where = where

    def __repr__(self) -> str:
        state = "open" if self._sock is not None else "closed"
        return f"SocketStream({self._where}, {state})"

    @classmethod
    def open(cls, url: str, timeout: float, ssl_context: ssl.SSLContext | None) -> SocketStream:
        host, port, tls = origin(url)
        where = _where(host, port, tls)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            try:
                if tls:
                    context = (
                        ssl_context if ssl_context is not None else ssl.create_default_context()
                    )
                    sock = context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        except TimeoutError as exc:
            raise _error(exc, where, timed_out=True) from exc
        except (OSError, ValueError) as exc:
            raise _error(exc, where) from exc
        return cls(sock, where)

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise TransportError(f"the stream to {self._where} is closed")
        return self._sock

    def send(self, data: bytes, timeout: float) -> None:
        sock = self._socket()
        try:
            sock.settimeout(timeout)
            sock.sendall(data)
        except TimeoutError as exc:
            raise _error(exc, self._where, timed_out=True) from exc
        except OSError as exc:
            raise _error(exc, self._where) from exc

    def receive(self, max_bytes: int, timeout: float) -> bytes | TimedOut:
        sock = self._socket()
        try:
            sock.settimeout(timeout)
            return sock.recv(max_bytes)
        except TimeoutError:
            return TIMED_OUT
        except OSError as exc:
            raise _error(exc, self._where) from exc

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class AsyncioStream:
    """A byte stream on the running event loop, with TLS for ``https``."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str
    ) -> None:
        self._reader = reader
        self._writer: asyncio.StreamWriter | None = writer
        self._where = where

    def __repr__(self) -> str:
        state = "open" if self._writer is not None else "closed"
        return f"AsyncioStream({self._where}, {state})"

    @classmethod
    async def open(
        cls, url: str, timeout: float, ssl_context: ssl.SSLContext | None
    ) -> AsyncioStream:
        host, port, tls = origin(url)
        where = _where(host, port, tls)
        context = None
        if tls:
            context = ssl_context if ssl_context is not None else ssl.create_default_context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host if tls else None
                ),
                timeout,
            )
        except TimeoutError as exc:
            raise _error(exc, where, timed_out=True) from exc
        except (OSError, ValueError) as exc:
            raise _error(exc, where) from exc
        return cls(reader, writer, where)

    def _writer_or_fail(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise TransportError(f"the stream to {self._where} is closed")
        return self._writer

    async def send(self, data: bytes, timeout: float) -> None:
        writer = self._writer_or_fail()
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), timeout)
        except TimeoutError as exc:
            raise _error(exc, self._where, timed_out=True) from exc
        except OSError as exc:
            raise _error(exc, self._where) from exc

    async def receive(self, max_bytes: int, timeout: float) -> bytes | TimedOut:
        self._writer_or_fail()
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except TimeoutError:
            return TIMED_OUT
        except OSError as exc:
            raise _error(exc, self._where) from exc

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)
