"""Login-flow tests: each flow is driven by hand with canned responses.

The helpers here are shared by the test modules of this package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.client
import types
from collections.abc import Iterable, Sequence
from typing import Any

from skyproto import HttpRequest, HttpResponse
from skyproto.calls import USER_AGENT
from skyproto.emulator.testing import drive as drive_peer

#: 1700000000.9 seconds after the epoch: floor(now) and now differ.
NOW = dt.datetime.fromtimestamp(1700000000.9, dt.UTC)
UA = USER_AGENT


#: Runs a flow on canned answers that it must use up, ``Now`` answered with NOW (or ``times``).
drive = functools.partial(drive_peer, start=NOW)


def page(
    text: str, status: int = 200, headers: Iterable[tuple[str, str]] = (), url: str = ""
) -> HttpResponse:
    """An HTML answer."""
    return HttpResponse.build(
        status, headers=list(headers), content=text, content_type="text/html", url=url
    )


def redirect(location: str, status: int = 302, *, cookies: Iterable[str] = ()) -> HttpResponse:
    """A redirect to ``location``, setting ``cookies`` (raw ``Set-Cookie`` values)."""
    headers = [("Location", location)] + [("Set-Cookie", c) for c in cookies]
    return HttpResponse.build(status, headers=headers)


def assert_clean(exc: BaseException, *secrets: str) -> None:
    """Neither the message nor the repr of ``exc`` contains any of ``secrets``."""
    shown = f"{exc}\n{exc!r}\n{exc.args!r}"
    for secret in secrets:
        assert secret not in shown, f"secret leaked into {type(exc).__name__}: {shown}"


# -- SkPy 0.11 as an oracle ----------------------------------------------------------------------


class _Stop(Exception):
    """Raised into SkPy once its scripted answers run out (it goes on to later steps)."""


def skpy_requests(
    call: Any, responses: Sequence[HttpResponse], *, now_epoch: float = 1700000000.9
) -> list[HttpRequest]:
    """The requests SkPy 0.11 sends for ``call(connection)`` given ``responses``.

    HTTP is answered below ``requests.Session`` (so its own redirect, header and cookie handling
    runs) and the clock is frozen at ``now_epoch``. Library-only headers (Accept, Accept-Encoding, Connection, Content-Length) are left
    out of the result.
    """
    import time
    from unittest import mock

    import requests
    import skpy
    from requests.adapters import HTTPAdapter
    from requests.cookies import extract_cookies_to_jar
    from requests.structures import CaseInsensitiveDict

    answers = list(responses)
    seen: list[HttpRequest] = []

    def send(adapter: Any, prepared: Any, **_: Any) -> Any:
        body = prepared.body or b""
        headers = [
            (k, v)
            for k, v in prepared.headers.items()
            if k.lower() not in ("accept", "accept-encoding", "connection", "content-length")
        ]
        seen.append(
            HttpRequest(
                prepared.method,
                prepared.url,
                tuple(headers),
                body.encode("utf-8") if isinstance(body, str) else body,
            )
        )
        if not answers:
            raise _Stop
        answer = answers.pop(0)
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = prepared.url
        response.request = prepared
        response.encoding = "utf-8"
        response._content_consumed = True
        # What urllib3 would hand over, so requests' own cookie handling runs as on the wire.
        message = http.client.HTTPMessage()
        for name, value in answer.headers:
            message[name] = value
        response.raw = types.SimpleNamespace(
            _original_response=types.SimpleNamespace(msg=message), release_conn=lambda: None
        )
        extract_cookies_to_jar(response.cookies, prepared, response.raw)  # type: ignore[no-untyped-call]
        return response

    # SkPy goes on to later steps (and, with the frozen clock, sometimes to a re-login) and
    # fails there; only the requests sent so far matter.
    with (
        mock.patch.object(HTTPAdapter, "send", send),
        mock.patch.object(time, "time", return_value=now_epoch),
        contextlib.suppress(Exception),
    ):
        call(skpy.SkypeConnection())
    return seen


def assert_same_wire(ours: Sequence[HttpRequest], reference: Sequence[HttpRequest]) -> None:
    """Our requests match SkPy's: method, URL, body and headers in order.

    Two differences are expected and normalised: the ``User-Agent`` product name (``SkPy`` is
    ours to replace), and the order of cookies within one ``Cookie`` header.
    """
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference, strict=True):
        assert (mine.method, mine.url, mine.body) == (theirs.method, theirs.url, theirs.body)
        assert mine.cookies() == theirs.cookies()

        def shape(req: HttpRequest) -> list[tuple[str, str]]:
            return [
                (k.lower(), "<ua>" if v in (UA, "SkPy") else v)
                for k, v in req.headers
                if k.lower() != "cookie"
            ]

        assert shape(mine) == shape(theirs)
