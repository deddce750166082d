"""Choosing a login flow (docs/protocol.md §2.0) and the package's public interface.

Covered: '@' in the user name -> SOAP, anything else -> Live (SkPy's rule); the API flow only on
request; login() runs the chosen flow (first request of each); a bad user name type or method ->
LocalProtocolError; the names skyproto.auth exports.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from skyproto import Hosts, HttpRequest, LocalProtocolError, Now, Stepper, auth
from skyproto.auth import LoginMethod, choose_method, login
from skyproto.tokens import Credentials

from . import NOW


@pytest.mark.parametrize(
    ("user", "method"),
    [
        ("fred@example.com", LoginMethod.SOAP),
        ("@", LoginMethod.SOAP),
        ("live:fred@x", LoginMethod.SOAP),
        ("fred.2", LoginMethod.LIVE),
        ("live:fred_1", LoginMethod.LIVE),
        ("+441234567890", LoginMethod.LIVE),
        ("", LoginMethod.LIVE),
        ("fred\uff20example.com", LoginMethod.LIVE),  # a full-width at sign is not '@'
    ],
)
def test_choose_method(user: str, method: LoginMethod) -> None:
    assert choose_method(user) is method


@pytest.mark.parametrize("user", [None, b"fred@example.com", 5])
def test_choose_method_needs_text(user: Any) -> None:
    with pytest.raises(LocalProtocolError):
        choose_method(user)


def first_request(user: str, method: LoginMethod = LoginMethod.AUTO) -> HttpRequest:
    step = Stepper(login(Credentials(user, "pw"), hosts=Hosts(), method=method))
    while isinstance(step.pending, Now):
        step.send(NOW)
    pending = step.pending
    assert isinstance(pending, HttpRequest)
    step.close()
    return pending


@pytest.mark.parametrize(
    ("user", "method", "start"),
    [
        ("fred@example.com", LoginMethod.AUTO, "POST https://login.live.com/RST.srf"),
        ("fred.2", LoginMethod.AUTO, "GET https://login.skype.com/login/oauth/microsoft"),
        ("fred.2", LoginMethod.SOAP, "POST https://login.live.com/RST.srf"),
        ("fred@example.com", LoginMethod.LIVE, "GET https://login.skype.com/login/oauth/microsoft"),
        ("fred@example.com", LoginMethod.API, "POST https://api.skype.com/login/skypetoken"),
        ("fred.2", LoginMethod.API, "POST https://api.skype.com/login/skypetoken"),
    ],
)
def test_login_runs_the_chosen_flow(user: str, method: LoginMethod, start: str) -> None:
    req = first_request(user, method)
    assert f"{req.method} {req.url.split('?')[0]}" == start


def test_login_refuses_an_unknown_method() -> None:
    with pytest.raises(LocalProtocolError):
        Stepper(login(Credentials("a", "b"), hosts=Hosts(), method="soap"))  # type: ignore[arg-type]


def test_method_values() -> None:
    assert [m.value for m in LoginMethod] == ["auto", "soap", "live", "api"]
    assert LoginMethod("live") is LoginMethod.LIVE


def test_public_interface() -> None:
    assert sorted(auth.__all__) == [
        "DeviceCodeLogin",
        "DeviceLoginRequired",
        "DevicePrompt",
        "LoginMethod",
        "api_login",
        "choose_method",
        "fetch_user_id",
        "guest_login",
        "live_login",
        "login",
        "refresh_login",
        "soap_login",
        "teams_login",
    ]
    for name in ("soap_login", "live_login", "api_login", "refresh_login", "fetch_user_id"):
        params = inspect.signature(getattr(auth, name)).parameters
        assert list(params) == [next(iter(params)), "hosts"]
        assert params["hosts"].kind is inspect.Parameter.KEYWORD_ONLY
    guest = inspect.signature(auth.guest_login).parameters
    assert list(guest) == ["join", "name", "hosts"]
    assert guest["hosts"].kind is inspect.Parameter.KEYWORD_ONLY
    login_params = inspect.signature(auth.login).parameters
    assert list(login_params) == ["credentials", "hosts", "method"]
    assert login_params["method"].default is LoginMethod.AUTO
