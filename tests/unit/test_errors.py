"""The exception hierarchy (skyproto.errors): shape, attributes, messages and reprs."""

from __future__ import annotations

import inspect

import pytest

import skyproto
from skyproto import HttpResponse, errors
from skyproto.errors import (
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

ALL_CLASSES = [
    SkypeException,
    SkypeApiException,
    SkypeRateLimitException,
    SkypeAuthException,
    SkypeTokenException,
    ProtocolError,
    RemoteProtocolError,
    UntrustedHostError,
    LocalProtocolError,
    TransportError,
    TransportTimeout,
]
WITH_RESPONSE = [
    SkypeApiException,
    SkypeRateLimitException,
    SkypeAuthException,
    SkypeTokenException,
    RemoteProtocolError,
    UntrustedHostError,
]


def test_all_lists_every_exception_class_and_nothing_else() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
        and not name.startswith("_")
    }
    assert set(errors.__all__) == defined == {cls.__name__ for cls in ALL_CLASSES}
    for cls in ALL_CLASSES:
        assert getattr(skyproto, cls.__name__) is cls


@pytest.mark.parametrize(
    ("child", "parents"),
    [
        (SkypeApiException, [SkypeException]),
        (SkypeRateLimitException, [SkypeApiException, SkypeException]),
        (SkypeAuthException, [SkypeException]),
        (SkypeTokenException, [SkypeAuthException, SkypeException]),
        (ProtocolError, [SkypeException]),
        (RemoteProtocolError, [ProtocolError, SkypeApiException, SkypeException]),
        (UntrustedHostError, [RemoteProtocolError, ProtocolError, SkypeApiException]),
        (LocalProtocolError, [ProtocolError, ValueError, SkypeException]),
        (TransportError, [SkypeException]),
        (TransportTimeout, [TransportError, SkypeException]),
    ],
)
def test_hierarchy(child: type[Exception], parents: list[type[Exception]]) -> None:
    for parent in parents:
        assert issubclass(child, parent)


@pytest.mark.parametrize(
    ("child", "not_parent"),
    [
        (LocalProtocolError, SkypeApiException),
        (RemoteProtocolError, ValueError),
        (SkypeAuthException, SkypeApiException),
        (SkypeApiException, SkypeAuthException),
        (TransportError, SkypeApiException),
        (SkypeRateLimitException, ProtocolError),
    ],
)
def test_hierarchy_does_not_overlap(child: type[Exception], not_parent: type[Exception]) -> None:
    assert not issubclass(child, not_parent)


def test_skpy_names_keep_skpys_shape() -> None:
    skpy_core = pytest.importorskip("skpy.core")
    for cls in (
        SkypeException,
        SkypeApiException,
        SkypeRateLimitException,
        SkypeAuthException,
        SkypeTokenException,
    ):
        reference = getattr(skpy_core, cls.__name__)
        ours = [c.__name__ for c in cls.__mro__ if c.__name__.startswith("Skype")]
        theirs = [c.__name__ for c in reference.__mro__ if c.__name__.startswith("Skype")]
        assert ours == theirs


def test_catching_by_the_builtin_and_protocol_bases() -> None:
    with pytest.raises(ValueError, match="bad argument"):
        raise LocalProtocolError("bad argument")
    with pytest.raises(SkypeApiException):
        raise UntrustedHostError("refused")
    with pytest.raises(ProtocolError):
        raise RemoteProtocolError("garbage")


@pytest.mark.parametrize("cls", WITH_RESPONSE)
def test_response_and_status(cls: type[SkypeApiException]) -> None:
    response = HttpResponse(503, (), b"", "https://api.skype.com/x")
    with_response = cls("went wrong", response)
    assert with_response.response is response
    assert with_response.status == 503
    assert with_response.message == "went wrong"
    assert with_response.args == ("went wrong", response)  # SkPy code reads args[1]
    without = cls("went wrong")
    assert without.response is None
    assert without.status is None
    assert without.args == ("went wrong",)


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_str_is_the_message_and_args_hold_it(cls: type[SkypeException]) -> None:
    error = cls("the message")
    assert str(error) == "the message"
    assert error.args == ("the message",)
    assert repr(error) == f"{cls.__name__}('the message')"


def test_message_is_always_text() -> None:
    error = SkypeException(404)  # type: ignore[arg-type]
    assert error.message == "404"
    assert str(error) == "404"


def test_repr_with_a_response_names_only_the_status() -> None:
    response = HttpResponse(500, (("X-SkypeToken", "tok"),), b"body", "https://x/?t=tok")
    error = SkypeApiException("500 response from GET https://x/", response)
    assert repr(error) == "SkypeApiException('500 response from GET https://x/', status=500)"
    assert repr(SkypeTokenException("expired")) == "SkypeTokenException('expired')"


def test_rate_limit_retry_after() -> None:
    response = HttpResponse(429)
    limited = SkypeRateLimitException("Rate limit exceeded", response, 30.0)
    assert limited.retry_after == 30.0
    assert limited.status == 429
    assert repr(limited) == (
        "SkypeRateLimitException('Rate limit exceeded', status=429, retry_after=30.0)"
    )
    plain = SkypeRateLimitException("Rate limit exceeded", response)
    assert plain.retry_after is None
    assert repr(plain) == "SkypeRateLimitException('Rate limit exceeded', status=429)"
    assert repr(SkypeRateLimitException("x", None, 1.5)) == (
        "SkypeRateLimitException('x', retry_after=1.5)"
    )


@pytest.mark.parametrize("cls", ALL_CLASSES)
@pytest.mark.parametrize("blank", ["", " ", "\n\t "])
def test_a_blank_message_becomes_the_class_sentence(cls: type[SkypeException], blank: str) -> None:
    error = cls(blank)
    assert str(error).strip()
    assert str(error) == error.message == cls.default_message == error.args[0]
    assert len(error.message.split()) >= 4  # a sentence, not a placeholder
    assert "no message" not in error.message


def test_each_class_has_its_own_sentence() -> None:
    sentences = [cls.default_message for cls in ALL_CLASSES]
    assert len(set(sentences)) == len(ALL_CLASSES)


def test_a_blank_message_keeps_the_response() -> None:
    response = HttpResponse(200, (), b"", "https://login.live.com/")
    error = SkypeAuthException("", response)
    assert error.args == (SkypeAuthException.default_message, response)
    assert repr(error) == f"SkypeAuthException({SkypeAuthException.default_message!r}, status=200)"
