"""Identifier helpers, the password hash and Status (docs/protocol.md §2.3, §10; vectors/helpers.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from skyproto import LocalProtocolError, RemoteProtocolError
from skyproto.ids import Status, chat_from_url, no_prefix, password_hash, user_from_url

HELPERS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "helpers.json").read_text(encoding="utf-8")
)


def test_vector_file_counts() -> None:
    assert len(HELPERS["password_hash"]) == 5
    assert len(HELPERS["noPrefix"]) == 11
    assert len(HELPERS["userToId"]) == 10
    assert len(HELPERS["chatToId"]) == 7


@pytest.mark.parametrize("case", HELPERS["password_hash"])
def test_password_hash_vectors(case: dict[str, str]) -> None:
    assert password_hash(case["user"], case["password"]) == case["passwordHash"]


@pytest.mark.parametrize("case", HELPERS["noPrefix"], ids=lambda case: repr(case["input"]))
def test_no_prefix_vectors(case: dict[str, str | None]) -> None:
    assert no_prefix(case["input"]) == case["output"]


@pytest.mark.parametrize("case", HELPERS["userToId"], ids=lambda case: repr(case["input"])[-30:])
def test_user_from_url_vectors(case: dict[str, str | None]) -> None:
    assert user_from_url(case["input"]) == case["output"]


@pytest.mark.parametrize("case", HELPERS["chatToId"], ids=lambda case: repr(case["input"])[-30:])
def test_chat_from_url_vectors(case: dict[str, str | None]) -> None:
    assert chat_from_url(case["input"]) == case["output"]


def test_protocol_examples() -> None:
    assert password_hash("fred.2", "password") == "fI9SFNp7ho6Vv8JxAG0www=="
    assert password_hash("fred.2", "p\u00e4ssword") == "QjcgUqyixCqdmAGHXndFWg=="
    assert password_hash("", "") == "Ieb+QQYPbEQToYVCrdXrzA=="
    assert no_prefix("1:2:3") == "2:3"
    assert user_from_url(None) is None
    assert chat_from_url(None) is None
    assert chat_from_url("https://x/v1/users/ME/conversations/ALL") is None


def test_only_ascii_digits_make_a_prefix() -> None:
    assert no_prefix("\u0668:alice") == "\u0668:alice"
    assert user_from_url("/users/\u0668:alice") is None
    assert chat_from_url("/conversations/\u0668:alice") is None


@pytest.mark.parametrize("function", [no_prefix, user_from_url, chat_from_url])
@pytest.mark.parametrize("value", [b"8:alice", 8, ["8:alice"]])
def test_helpers_refuse_non_text(function: Any, value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="must be a str or None"):
        function(value)


def test_password_hash_refuses_bad_input_without_echoing_it() -> None:
    with pytest.raises(LocalProtocolError) as info:
        password_hash("fred.2", "hunter2\udcff")
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)
    with pytest.raises(LocalProtocolError, match="must both be str"):
        password_hash("fred.2", None)  # type: ignore[arg-type]


# -- Status ---------------------------------------------------------------------------------------

LABELS = ["Offline", "Hidden", "Busy", "Away", "Idle", "Online"]


def test_status_members_in_order() -> None:
    assert [status.name for status in Status] == LABELS
    assert [status.value for status in Status] == LABELS
    assert Status.Online.value == "Online"


@pytest.mark.parametrize("label", LABELS)
def test_status_parse(label: str) -> None:
    assert Status.parse(label) is Status[label]


@pytest.mark.parametrize(
    "label", ["online", "ONLINE", "Invisible", "", " Online", None, 5, Status.Away]
)
def test_status_parse_refuses_anything_else(label: Any) -> None:
    with pytest.raises(RemoteProtocolError, match=r"^unknown presence status "):
        Status.parse(label)


def test_status_parse_message_is_bounded() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Status.parse("x" * 1000)
    assert len(str(info.value)) < 80


@pytest.mark.skpy
def test_status_labels_match_skpy() -> None:
    util = pytest.importorskip("skpy.util")
    assert [status.label for status in util.SkypeUtils.Status] == [s.value for s in Status]
