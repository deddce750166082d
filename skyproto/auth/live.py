"""The Live web-form login (docs/protocol.md §2.2): login.skype.com hands over to login.live.com.

Stages: (1) ``GET`` the sign-in page for the PPFT and the ``MSPRequ``/``MSPOK`` cookies;
(2) post the credentials, which answers with an ``opid``; (3) post the ``opid`` to confirm, which
answers with a page holding the ``t`` value; then trade ``t`` for the Skype token (t-exchange).
Every stage's final page goes through :func:`check_page` first, so a ``t`` value ends the flow
early at whichever stage it appears.

Live pages keep their state in a ``ServerData`` JavaScript object: the PPFT sits in a JavaScript
string (``sFTTag:'<input type="hidden" name="PPFT" … value="…"/>'``), which :func:`find_ppft`
reads from the raw text, and every page, successful ones included, carries an error text, empty
when there is no error (``sErrTxt:''``). The ``urlPost`` key names where the browser would post;
as §2.2 prescribes, stages 2 and 3 post to the fixed ``post.srf`` URL instead, so a page cannot
steer the password elsewhere, and ``urlPost`` matters only as the place the ``opid`` usually
appears in the answer to stage 2.

Every request goes through ``fetch`` (``skyproto/auth/_redirects.py``): redirects are followed by
the core (at most 10 per request, trusted hosts only) and cookies live in one jar per login, with
host-only cookies sent to their own host only. See that module for the exact rules.

Decisions where the reference client is inconsistent or crashes (§12.18, §12.19):

* An ``sErrTxt`` message is recognised with or without backslash escapes (the reference misses
  plain messages here but not in refresh) and raises :class:`~skyproto.SkypeAuthException`. An
  empty or whitespace-only message (after tags are removed) is no error.
* An element with ``id="t"`` but no (or an empty) ``value`` is a
  :class:`~skyproto.RemoteProtocolError`; the reference posts the t-exchange without ``t``.
* *Form rule.* A page asks for an account action when it has a ``<form>`` whose ``name`` or
  ``id`` is exactly ``fmHF``, the form Live uses for consent, terms and proof interrupts. Other
  forms, with or without a name, are ignored: ordinary sign-in pages carry unnamed and differently
  named forms, so treating them as interrupts would fail good logins (the reference crashes on
  the first form without a name). The message names the form's ``action`` up to the first
  ``?``; an ``fmHF`` form without an ``action`` submits to the page itself, so the page's URL
  is named instead.
"""

from __future__ import annotations

import datetime as dt
import re

from .._flow import Flow, now
from .._http import HttpResponse
from ..calls import build_request
from ..errors import RemoteProtocolError, SkypeAuthException
from ..hosts import Hosts
from ..tokens import Credentials, SkypeToken
from ._pages import (
    CLIENT_ID,
    OAUTH_PARTNER,
    REDIRECT_URI,
    SITE_NAME,
    login_query,
    t_exchange,
    t_value_or_error,
)
from ._redirects import CookieJar, fetch_checked

__all__ = ["live_login"]

#: The ``wreply`` query value of the post.srf stages (encoded once more on the wire).
WREPLY = (
    f"https://lw.skype.com/login/oauth/proxy?client_id={CLIENT_ID}&site_name={SITE_NAME}"
    "&redirect_uri=https%3A%2F%2Fweb.skype.com%2F"
)

_TWO_FACTOR = re.compile(r"\bV:\s*\[\s*\{")
_OPID = re.compile(r"opid=([A-Za-z0-9]+)", re.IGNORECASE | re.ASCII)
_CONSENT_FORM = "fmHF"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def check_page(response: HttpResponse) -> str | None:
    """The page check run on each stage's final page: the ``t`` value, or ``None`` to go on.

    Raises :class:`~skyproto.SkypeAuthException` for an error message, a two-factor prompt or
    an account-action form, and :class:`~skyproto.RemoteProtocolError` for a valueless ``t``.
    """
    scan, t_value = t_value_or_error(response, "login page")
    if t_value is not None:
        return t_value
    if _TWO_FACTOR.search(response.text):
        raise SkypeAuthException("Two-factor authentication unsupported", response)
    for form in scan.forms:
        if _CONSENT_FORM in (form.name, form.id):
            target = form.action or response.url or "the sign-in page"
            raise SkypeAuthException(
                f"Account action required ({target.split('?', 1)[0]}), "
                "login with a web browser first",
                response,
            )
    return None


def find_ppft(text: str) -> str | None:
    """The PPFT of a sign-in page: the ``value`` of the ``name="PPFT"`` input, on one line.

    This is the first match of ``<input.*?name="PPFT".*?value="([^"]*)"`` (``.`` not matching a
    newline), found in linear time: the earliest ``<input`` of a line is the only start worth
    trying, and from it the earliest ``name="PPFT"`` and then the earliest ``value="``.
    """
    position = 0
    while (start := text.find("<input", position)) >= 0:
        line_end = text.find("\n", start)
        if line_end < 0:
            line_end = len(text)
        name = text.find('name="PPFT"', start + len("<input"), line_end)
        value = -1 if name < 0 else text.find('value="', name + len('name="PPFT"'), line_end)
        if value >= 0:
            begin = value + len('value="')
            close = text.find('"', begin)
            return (text[begin:close] or None) if close >= 0 else None
        position = line_end + 1
    return None


def find_opid(text: str) -> str | None:
    """The first ``opid=`` value (ASCII letters and digits) anywhere in ``text``."""
    match = _OPID.search(text)
    return match.group(1) if match else None


def _cookie_test(current: dt.datetime) -> str:
    return f"G{(current - _EPOCH) // dt.timedelta(milliseconds=1)}"


def _post_srf(
    form: list[tuple[str, str | None]],
    session: dict[str, str],
    *,
    hosts: Hosts,
    jar: CookieJar,
) -> Flow[HttpResponse]:
    url = hosts.msacc + "/ppsecure/post.srf"
    params: list[tuple[str, str | None]] = [
        ("wa", "wsignin1.0"),
        ("wp", "MBI_SSL"),
        ("wreply", WREPLY),
    ]
    current = yield from now()
    cookies = {**session, "CkTst": _cookie_test(current)}
    req = build_request("POST", url, kind="login form", params=params, form=form)
    return (yield from fetch_checked(req, hosts=hosts, jar=jar, now=current, cookies=cookies))


def _sign_in(page: HttpResponse) -> tuple[str, dict[str, str]]:
    """Stage 1's page, once checked: the PPFT and the ``MSPRequ``/``MSPOK`` session cookies."""
    ppft = find_ppft(page.text)
    if ppft is None:
        raise RemoteProtocolError("Couldn't retrieve PPFT from login form", page)
    own = page.set_cookies()
    if not own.get("MSPRequ") or not own.get("MSPOK"):
        raise RemoteProtocolError("Couldn't retrieve MSPRequ/MSPOK cookies", page)
    return ppft, {"MSPRequ": own["MSPRequ"], "MSPOK": own["MSPOK"]}


def live_login(credentials: Credentials, *, hosts: Hosts) -> Flow[SkypeToken]:
    """Flow: log in through the Live web form; returns the Skype token and its expiry."""
    jar = CookieJar()
    t = yield from _live_t(credentials, hosts=hosts, jar=jar)
    return (yield from t_exchange(t, hosts=hosts, jar=jar))


def _live_t(credentials: Credentials, *, hosts: Hosts, jar: CookieJar) -> Flow[str]:
    """Stages 1 to 3: the ``t`` value, from whichever stage's page first carries one."""
    # Stage 1: the sign-in page.
    current = yield from now()
    req = build_request(
        "GET", hosts.login + "/oauth/microsoft", kind="login page", params=login_query()
    )
    page = yield from fetch_checked(req, hosts=hosts, jar=jar, now=current)
    if (t := check_page(page)) is not None:
        return t
    ppft, session = _sign_in(page)

    # Stage 2: the credentials.
    credentials_form: list[tuple[str, str | None]] = [
        ("login", credentials.user),
        ("passwd", credentials.password),
        ("PPFT", ppft),
        ("loginoptions", "3"),
    ]
    page = yield from _post_srf(credentials_form, session, hosts=hosts, jar=jar)
    if (t := check_page(page)) is not None:
        return t
    opid = find_opid(page.text)
    if opid is None:
        raise RemoteProtocolError("Couldn't retrieve opid field from login response", page)

    # Stage 3: the confirmation.
    confirm_form: list[tuple[str, str | None]] = [
        ("opid", opid),
        ("PPFT", ppft),
        ("site_name", SITE_NAME),
        ("oauthPartner", OAUTH_PARTNER),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("type", "28"),
    ]
    page = yield from _post_srf(confirm_form, session, hosts=hosts, jar=jar)
    if (t := check_page(page)) is not None:
        return t
    raise RemoteProtocolError("Couldn't retrieve t field from login response", page)
