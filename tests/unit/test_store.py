"""The token store: atomic 0600 writes, the state file and SkPy's six-line token file (§8)."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from skyproto import Hosts, LocalProtocolError, SkypeTokenException, store
from skyproto.paging import PagingState
from skyproto.registration import Registration
from skyproto.session import SessionState
from skyproto.store import (
    FILE_MODE,
    format_skpy_token_file,
    load_state,
    parse_skpy_token_file,
    read_skpy_token_file,
    save_state,
    write_atomic,
    write_skpy_token_file,
)
from skyproto.tokens import RegistrationToken, SkypeToken

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
HOSTS = Hosts()
DEFAULT_H = "https://client-s.gateway.messenger.live.com/v1"
DB3_H = "https://db3-client-s.gateway.messenger.live.com/v1"
VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "token_file.json").read_text(encoding="utf-8")
)
READ_CASES = {case["name"]: case for case in VECTORS["read_cases"]}

# Our message for every failing vector. Each starts with the reference's message; the reference
# crashes on "expiry-overflow" and we give "malformed" there too.
FAILURES = {
    "extra-blank-line": "Token file is malformed: expected 6 lines, found 7",
    "five-lines": "Token file is malformed: expected 6 lines, found 5",
    "seven-lines": "Token file is malformed: expected 6 lines, found 7",
    "non-integer-expiry": "Token file is malformed: line 3 is not an integer",
    "float-expiry": "Token file is malformed: line 3 is not an integer",
    "skype-expired": "Token file has expired",
    "expiry-out-of-range": "Token file is malformed: line 3 is out of range",
    "expiry-overflow": "Token file is malformed: line 3 is out of range",
    "negative-expiry": "Token file has expired",
    "empty": "Token file is malformed: expected 6 lines, found 0",
}
SECRETS = ("SKYPETOKEN", "U2lnbmF0dXJlOjI=")


def at(epoch: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=epoch)


def example_state() -> SessionState:
    values = VECTORS["write_example"]["state"]
    return SessionState(
        user_id=values["userId"],
        skype_token=SkypeToken(values["skypeToken"], at(values["skypeExpiry"])),
        registration=Registration(
            RegistrationToken(values["regToken"], at(values["regExpiry"])), values["msgsHost"]
        ),
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set the process umask for one test; the old one comes back afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Change the local time zone (``TZ``) for one test."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


# -- the recorded vectors -----------------------------------------------------------------------


def test_every_vector_has_an_expectation_here() -> None:
    failing = {n for n, c in READ_CASES.items() if c["expected"]["outcome"] != "ok"}
    assert failing == set(FAILURES)
    assert len(READ_CASES) == 16


@pytest.mark.parametrize("name", sorted(READ_CASES))
def test_read_vector(name: str, tmp_path: Path) -> None:
    case = READ_CASES[name]
    expected = case["expected"]
    path = tmp_path / "tokens"
    path.write_bytes(case["content"].encode("utf-8"))
    if expected["outcome"] != "ok":
        reads: list[Callable[[], SessionState]] = [
            lambda: parse_skpy_token_file(case["content"], now=NOW, hosts=HOSTS),
            lambda: read_skpy_token_file(path, now=NOW, hosts=HOSTS),
        ]
        for read in reads:
            with pytest.raises(SkypeTokenException) as caught:
                read()
            assert str(caught.value) == FAILURES[name]
            if not expected["outcome"].startswith("crash:"):
                assert str(caught.value).startswith(expected["message"])
            assert not any(secret in repr(caught.value) for secret in SECRETS)
        return
    registration = None
    if not expected["new_registration_needed"]:
        registration = Registration(
            RegistrationToken(expected["regToken"], at(expected["regExpiry"])),
            expected["msgsHost"],
            endpoint_id=None,
        )
    wanted = SessionState(
        user_id=expected["userId"],
        skype_token=SkypeToken(expected["skypeToken"], at(expected["skypeExpiry"])),
        registration=registration,
        endpoints=(),
        paging=PagingState(),
        guest=False,
    )
    assert parse_skpy_token_file(case["content"], now=NOW, hosts=HOSTS) == wanted
    assert read_skpy_token_file(path, now=NOW, hosts=HOSTS) == wanted
    if registration is None:
        assert expected["msgsHost"] == DEFAULT_H  # re-registration starts from the default host


def test_write_example_is_byte_identical(tmp_path: Path) -> None:
    content = VECTORS["write_example"]["file_content"].encode("utf-8")
    assert format_skpy_token_file(example_state()) == content
    path = tmp_path / "tokens"
    write_skpy_token_file(path, example_state())
    assert path.read_bytes() == content
    assert mode_of(path) == 0o600


def test_formatted_bytes_parse_back_without_decoding() -> None:
    content = format_skpy_token_file(example_state())
    assert parse_skpy_token_file(content, now=NOW, hosts=HOSTS) == parse_skpy_token_file(
        content.decode("utf-8"), now=NOW, hosts=HOSTS
    )
    with pytest.raises(SkypeTokenException, match="malformed: not UTF-8"):
        parse_skpy_token_file(b"\xff" + content, now=NOW, hosts=HOSTS)


def test_written_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    write_skpy_token_file(path, example_state())
    assert read_skpy_token_file(path, now=NOW, hosts=HOSTS) == example_state()


def test_write_drops_fractions_and_the_endpoint_state() -> None:
    state = SessionState(
        user_id="live:fred",
        skype_token=SkypeToken("S", at(4102444800) + dt.timedelta(seconds=0.75)),
        registration=Registration(
            RegistrationToken("registrationToken=R", at(4102441200)), DB3_H, "{e}"
        ),
        endpoints=("{e}", "{f}"),
        paging=PagingState({f"GET {DB3_H}/users/ME/conversations": f"{DB3_H}/x?syncState=1"}),
    )
    assert format_skpy_token_file(state) == (
        f"live:fred\nS\n4102444800\nregistrationToken=R\n4102441200\n{DB3_H}\n".encode()
    )


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("user_id", "user id"),
        ("skype", "Skype token"),
        ("reg", "registration token"),
        ("host", "messaging host"),
    ],
)
@pytest.mark.parametrize("line_break", ["\n", "\r", "\r\n", "\u2028", "\x0c", "\x85"])
def test_write_refuses_values_with_line_breaks(field: str, name: str, line_break: str) -> None:
    values = {"user_id": "live:fred", "skype": "S", "reg": "registrationToken=R", "host": DB3_H}
    values[field] = "ab" + line_break + "cd"
    state = SessionState(
        user_id=values["user_id"],
        skype_token=SkypeToken(values["skype"], at(4102444800)),
        registration=Registration(RegistrationToken(values["reg"], at(4102441200)), values["host"]),
    )
    with pytest.raises(LocalProtocolError) as caught:
        format_skpy_token_file(state)
    assert str(caught.value) == f"the {name} contains a line break; it cannot be written"


def test_write_refuses_text_that_is_not_unicode() -> None:
    state = attrs.evolve(example_state(), user_id="live:\udc80")
    with pytest.raises(LocalProtocolError) as caught:
        format_skpy_token_file(state)
    assert str(caught.value) == "the user id is not valid Unicode text"


@pytest.mark.parametrize("missing", ["user_id", "skype_token", "registration"])
def test_write_needs_a_complete_session(missing: str, tmp_path: Path) -> None:
    overrides: dict[str, Any] = {missing: None}
    incomplete = attrs.evolve(example_state(), **overrides)
    with pytest.raises(
        LocalProtocolError, match="needs a user id, a Skype token and a registration"
    ):
        write_skpy_token_file(tmp_path / "tokens", incomplete)
    assert list(tmp_path.iterdir()) == []


# -- token-file reading beyond the vectors ------------------------------------------------------

GOOD = VECTORS["write_example"]["file_content"]


def test_missing_token_file(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(SkypeTokenException) as caught:
        read_skpy_token_file(path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == f"Token file {str(path)!r} does not exist or is not readable"


def test_token_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SkypeTokenException) as caught:
        read_skpy_token_file(tmp_path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == f"Token file {str(tmp_path)!r} is not a regular file"


def test_token_file_with_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_bytes(GOOD.encode().replace(b"live:fred", b"live:\xff\xfe"))
    with pytest.raises(SkypeTokenException) as caught:
        read_skpy_token_file(path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == "Token file is malformed: not UTF-8"


def test_token_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens"
    path.write_text(GOOD)
    monkeypatch.setattr(store, "MAX_FILE_SIZE", 20)
    with pytest.raises(SkypeTokenException) as caught:
        read_skpy_token_file(path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == f"Token file {str(path)!r} is too large"


def replace_line(number: int, value: str) -> str:
    lines = GOOD.splitlines()
    lines[number - 1] = value
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("number", "value", "message"),
    [
        (2, "", "Token file is malformed: line 2 is not a usable Skype token"),
        (2, "SKYPE\x00TOKEN", "Token file is malformed: line 2 is not a usable Skype token"),
        (4, "", "Token file is malformed: line 4 is not a usable registration token"),
        (4, "reg\x01", "Token file is malformed: line 4 is not a usable registration token"),
        (5, "", "Token file is malformed: line 5 is not an integer"),
        (5, "1e9", "Token file is malformed: line 5 is not an integer"),
        (5, "9" * 5000, "Token file is malformed: line 5 is not an integer"),
        (5, "-99999999999999", "Token file is malformed: line 5 is out of range"),
        (3, "0x10", "Token file is malformed: line 3 is not an integer"),
        (
            6,
            "https://evil.example/v1",
            "Token file names messaging host 'evil.example', which is not trusted",
        ),
        (
            6,
            "http://db3-client-s.gateway.messenger.live.com/v1",
            "Token file names messaging host 'db3-client-s.gateway.messenger.live.com', "
            "which is not trusted",
        ),
    ],
)
def test_bad_lines(number: int, value: str, message: str) -> None:
    with pytest.raises(SkypeTokenException) as caught:
        parse_skpy_token_file(replace_line(number, value), now=NOW, hosts=HOSTS)
    assert str(caught.value) == message
    assert not any(secret in repr(caught.value) for secret in SECRETS)


def test_expired_registration_is_dropped_even_on_an_untrusted_host() -> None:
    text = replace_line(5, "1000000000").replace(DB3_H, "https://evil.example/v1")
    state = parse_skpy_token_file(text, now=NOW, hosts=HOSTS)
    assert state.registration is None
    assert state.skype_token == SkypeToken("SKYPETOKEN", at(4102444800))


def test_sign_and_separators_are_accepted_like_the_reference() -> None:
    state = parse_skpy_token_file(replace_line(5, " +4_102_441_200\t"), now=NOW, hosts=HOSTS)
    assert state.registration is not None
    assert state.registration.token.expiry == at(4102441200)


def test_lines_are_not_trimmed() -> None:
    text = replace_line(1, " live:fred ").replace("SKYPETOKEN", " SKYPETOKEN ")
    state = parse_skpy_token_file(text, now=NOW, hosts=HOSTS)
    assert state.user_id == " live:fred "
    assert state.skype_token is not None
    assert state.skype_token.token == " SKYPETOKEN "


@pytest.mark.parametrize("separator", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_every_python_line_boundary_splits(separator: str) -> None:
    text = GOOD.replace("\n", separator)
    assert parse_skpy_token_file(text, now=NOW, hosts=HOSTS) == example_state()


def test_expiry_is_compared_with_the_refresh_leeway() -> None:
    skype_expiry = int((NOW - EPOCH).total_seconds()) + 60  # one minute left: inside the leeway
    with pytest.raises(SkypeTokenException, match=r"^Token file has expired$"):
        parse_skpy_token_file(replace_line(3, str(skype_expiry)), now=NOW, hosts=HOSTS)
    reg_expiry = skype_expiry
    state = parse_skpy_token_file(replace_line(5, str(reg_expiry)), now=NOW, hosts=HOSTS)
    assert state.registration is None


def test_earliest_representable_expiry_is_expired_not_a_crash() -> None:
    earliest = int((dt.datetime(1, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())
    with pytest.raises(SkypeTokenException, match=r"^Token file has expired$"):
        parse_skpy_token_file(replace_line(3, str(earliest)), now=NOW, hosts=HOSTS)
    state = parse_skpy_token_file(replace_line(5, str(earliest)), now=NOW, hosts=HOSTS)
    assert state.registration is None


def test_guest_user_is_flagged() -> None:
    state = parse_skpy_token_file(replace_line(1, "guest:fred_ab12cd34"), now=NOW, hosts=HOSTS)
    assert state.guest is True
    assert parse_skpy_token_file(GOOD, now=NOW, hosts=HOSTS).guest is False


def test_loopback_profile_trusts_its_own_messenger() -> None:
    base = "http://127.0.0.1:8080/client-s.gateway.messenger.live.com"
    hosts = Hosts({"client-s.gateway.messenger.live.com": base})
    text = GOOD.replace(DB3_H, base + "/v1")
    state = parse_skpy_token_file(text, now=NOW, hosts=hosts)
    assert state.registration is not None
    assert state.registration.messenger == base + "/v1"
    with pytest.raises(SkypeTokenException, match="not trusted"):
        parse_skpy_token_file(GOOD, now=NOW, hosts=hosts)


@pytest.mark.parametrize("zone_name", ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata"])
def test_epochs_are_utc_whatever_the_local_zone(zone: Any, zone_name: str) -> None:
    # 1729989000 is in the hour repeated when Europe/London leaves summer time; the reference
    # writes it back one hour later (§8.1).
    zone(zone_name)
    text = replace_line(5, "1729989000")
    state = parse_skpy_token_file(text, now=at(1729980000), hosts=HOSTS)
    assert state.registration is not None
    assert state.registration.token.expiry == dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC)
    assert format_skpy_token_file(state) == text.encode()


@pytest.mark.skpy
def test_reference_reads_what_we_write_and_writes_what_we_read(zone: Any) -> None:
    from skpy.conn import SkypeConnection

    zone("UTC")  # the reference works in naive local time
    ours = format_skpy_token_file(example_state()).decode()
    reference = SkypeConnection()
    reference.readTokenFromStr(ours)
    assert reference.userId == "live:fred"
    assert reference.tokens == {"skype": "SKYPETOKEN", "reg": "registrationToken=U2lnbmF0dXJlOjI="}
    assert reference.tokenExpiry == {
        "skype": dt.datetime(2100, 1, 1),
        "reg": dt.datetime(2099, 12, 31, 23),
    }
    assert reference.msgsHost == DB3_H
    assert reference.writeTokenToStr() == ours


# -- write_atomic ------------------------------------------------------------------------------


def test_write_atomic_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, b"hello")
    assert path.read_bytes() == b"hello"
    assert mode_of(path) == FILE_MODE == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_atomic_accepts_str_paths_and_empty_data(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_atomic(str(path), b"")
    assert path.read_bytes() == b""


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
@pytest.mark.parametrize("old_mode", [None, 0o644, 0o666, 0o400])
def test_mode_is_0600_whatever_the_umask_and_old_mode(
    tmp_path: Path, umask: Any, mask: int, old_mode: int | None
) -> None:
    path = tmp_path / "state.json"
    if old_mode is not None:
        path.write_bytes(b"old")
        path.chmod(old_mode)
    umask(mask)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert mode_of(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_atomic_refuses_text(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError, match="writes bytes"):
        write_atomic(tmp_path / "x", "text")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def failing(name: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, f"simulated failure in {name}")

    return fail


@pytest.mark.parametrize("step", ["replace", "fsync", "write", "fchmod"])
def test_failure_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old content")
    path.chmod(0o644)
    monkeypatch.setattr(os, step, failing(step))
    with pytest.raises(OSError, match=f"simulated failure in {step}"):
        write_atomic(path, b"new content")
    monkeypatch.undo()
    assert path.read_bytes() == b"old content"
    assert mode_of(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failure_without_an_old_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "replace", failing("replace"))
    with pytest.raises(OSError, match="simulated failure"):
        write_atomic(tmp_path / "state.json", b"new")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_mid_write_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    real_write = os.write

    def write_then_interrupt(fd: int, data: Any) -> int:
        real_write(fd, bytes(data)[:3])
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, b"new content")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls: list[int] = []

    def one_byte_at_a_time(fd: int, data: Any) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data)[:1])

    monkeypatch.setattr(os, "write", one_byte_at_a_time)
    path = tmp_path / "state.json"
    write_atomic(path, b"abcde")
    assert path.read_bytes() == b"abcde"
    assert calls == [5, 4, 3, 2, 1]


def test_a_write_that_makes_no_progress_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(OSError, match="write made no progress"):
        write_atomic(tmp_path / "state.json", b"abc")
    assert list(tmp_path.iterdir()) == []


def test_file_then_directory_are_fsynced_around_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(tmp_path / "state.json", b"data")
    assert events == ["fsync file", "replace", "fsync dir"]


def test_a_directory_fsync_failure_is_tolerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "state.json"
    write_atomic(path, b"data")
    assert path.read_bytes() == b"data"


def test_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "state.json", b"data")
    assert list(tmp_path.iterdir()) == []


def test_target_that_is_a_directory_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    with pytest.raises(OSError):
        write_atomic(tmp_path / "state.json", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert (tmp_path / "state.json").is_dir()


def test_temp_name_collisions_are_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = iter(["aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr("secrets.token_hex", lambda n: next(names))
    (tmp_path / ".state.json.aaaaaaaaaaaa.tmp").write_bytes(b"someone else's")
    write_atomic(tmp_path / "state.json", b"data")
    assert (tmp_path / "state.json").read_bytes() == b"data"
    assert (tmp_path / ".state.json.aaaaaaaaaaaa.tmp").read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".state.json.aaaaaaaaaaaa.tmp",
        "state.json",
    ]


# -- save_state / load_state -------------------------------------------------------------------


def full_state() -> SessionState:
    return SessionState(
        user_id="live:fred",
        skype_token=SkypeToken("SKYPETOKEN", at(4102444800)),
        registration=Registration(
            RegistrationToken("registrationToken=U2lnbmF0dXJlOjI=", at(4102441200)),
            DB3_H,
            "{2ca2fe7c-1b9d-4f1a-9c2e-0123456789ab}",
        ),
        endpoints=("{2ca2fe7c-1b9d-4f1a-9c2e-0123456789ab}",),
        paging=PagingState({f"GET {DB3_H}/users/ME/conversations": f"{DB3_H}/c?syncState=1"}),
    )


def test_state_round_trip(tmp_path: Path, umask: Any) -> None:
    umask(0)
    path = tmp_path / "state.json"
    save_state(path, full_state())
    assert mode_of(path) == 0o600
    assert load_state(path, now=NOW, hosts=HOSTS) == full_state()


def test_saving_again_replaces_the_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, SessionState(user_id="live:old"))
    save_state(path, full_state())
    assert load_state(path, now=NOW, hosts=HOSTS) == full_state()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


def test_missing_state_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(SkypeTokenException) as caught:
        load_state(path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == (
        f"saved state file {str(path)!r} does not exist or is not readable"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_state_file_with_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"version": 1, "user_id": "\xff"}')
    with pytest.raises(SkypeTokenException, match=r"^saved state is not valid UTF-8$"):
        load_state(path, now=NOW, hosts=HOSTS)


def test_state_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    save_state(path, full_state())
    monkeypatch.setattr(store, "MAX_FILE_SIZE", 64)
    with pytest.raises(SkypeTokenException) as caught:
        load_state(path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == f"saved state file {str(path)!r} is too large"


def test_truncated_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, full_state())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SkypeTokenException) as caught:
        load_state(path, now=NOW, hosts=HOSTS)
    assert str(caught.value) == "saved state is not valid JSON (truncated?)"


def test_unreadable_state_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "state.json"
    save_state(path, full_state())
    path.chmod(0)
    with pytest.raises(SkypeTokenException, match="does not exist or is not readable"):
        load_state(path, now=NOW, hosts=HOSTS)


# -- what is read: regular files only, without blocking, bounded -------------------------------

READERS: dict[str, Callable[[Path], SessionState]] = {
    "state": lambda path: load_state(path, now=NOW, hosts=HOSTS),
    "token file": lambda path: read_skpy_token_file(path, now=NOW, hosts=HOSTS),
}
WHAT = {"state": "saved state file", "token file": "Token file"}


def finishes(call: Callable[[], Any], *, unblock: Callable[[], None]) -> Any:
    """``call()``'s outcome (its result or exception), failing if it is still blocked after 10 s;
    ``unblock`` then releases it so no thread is left hanging."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        unblock()
        thread.join(10)
        pytest.fail("the call blocked")
    return outcome[0]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "state.json"
    os.mkfifo(path)

    def unblock() -> None:  # a writer opening the FIFO releases a blocked reader
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    outcome = finishes(lambda: READERS[reader](path), unblock=unblock)
    assert isinstance(outcome, SkypeTokenException)
    assert str(outcome) == f"{WHAT[reader]} {str(path)!r} is not a regular file"


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_directory_or_a_device_is_refused(tmp_path: Path, reader: str) -> None:
    for path in (tmp_path, Path("/dev/null")):
        with pytest.raises(SkypeTokenException) as caught:
            READERS[reader](path)
        assert str(caught.value) == f"{WHAT[reader]} {str(path)!r} is not a regular file"


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_huge_file_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    path = tmp_path / "state.json"
    with path.open("wb") as file:
        file.truncate(8 * 1024**3)  # sparse: eight gigabytes that take no room
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        reads.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(SkypeTokenException) as caught:
        READERS[reader](path)
    assert str(caught.value) == f"{WHAT[reader]} {str(path)!r} is too large"
    assert sum(reads) <= store.MAX_FILE_SIZE + 1


# -- symbolic links ----------------------------------------------------------------------------


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reading_through_a_link_is_refused(tmp_path: Path, reader: str) -> None:
    real = tmp_path / "real"
    if reader == "state":
        save_state(real, full_state())
    else:
        write_skpy_token_file(real, example_state())
    link = tmp_path / "state.json"
    link.symlink_to(real)
    with pytest.raises(SkypeTokenException) as caught:
        READERS[reader](link)
    assert str(caught.value) == (
        f"{WHAT[reader]} {str(link)!r} is a symbolic link; skyproto does not read through links "
        "(give the real path)"
    )


@pytest.mark.parametrize("what", ["state file", "token file"])
def test_saving_onto_a_link_changes_neither_the_link_nor_its_target(
    tmp_path: Path, what: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's file")
    link = tmp_path / "state.json"
    link.symlink_to(victim)
    save: Callable[[], None] = (
        (lambda: save_state(link, full_state()))
        if what == "state file"
        else (lambda: write_skpy_token_file(link, example_state()))
    )
    with pytest.raises(LocalProtocolError) as caught:
        save()
    assert str(caught.value) == (
        f"the {what} {str(link)!r} is a symbolic link; skyproto does not write through links "
        "(give the real path)"
    )
    assert link.is_symlink()
    assert os.readlink(link) == str(victim)
    assert victim.read_bytes() == b"someone else's file"
    assert not any(secret in str(caught.value) for secret in SECRETS)


def test_a_linked_lock_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    victim.chmod(0o644)
    store.lock_path(tmp_path / "state.json").symlink_to(victim)
    with pytest.raises(LocalProtocolError, match=r"^cannot lock the state file .*state\.json'"):
        save_state(tmp_path / "state.json", full_state())
    assert mode_of(victim) == 0o644
    assert victim.read_bytes() == b"keep me"
    assert not (tmp_path / "state.json").exists()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_saving_onto_a_special_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "state.json"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    with pytest.raises(LocalProtocolError) as caught:
        save_state(path, full_state())
    assert str(caught.value) == f"the state file {str(path)!r} is not a regular file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


# -- failures reach the caller as skyproto errors, leaving the old file -------------------------


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_a_full_disk_keeps_the_old_state_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = tmp_path / "state.json"
    save_state(path, SessionState(user_id="live:old"))
    old = path.read_bytes()

    def no_space(*args: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, step, no_space)
    with pytest.raises(LocalProtocolError) as caught:
        save_state(path, full_state())
    monkeypatch.undo()
    assert str(caught.value) == (
        f"cannot write the state file {str(path)!r}: No space left on device"
    )
    assert caught.value.__cause__ is None
    assert not any(secret in repr(caught.value) for secret in SECRETS)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


def test_a_missing_directory_is_a_skyproto_error(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "state.json"
    with pytest.raises(LocalProtocolError) as caught:
        save_state(path, full_state())
    assert str(caught.value).startswith(
        f"cannot lock the state file {str(path)!r}: No such file or directory"
    )


# -- the lock ----------------------------------------------------------------------------------


def hold_in_thread(path: Path, release: threading.Event) -> threading.Thread:
    """A thread holding the lock on ``path`` until ``release`` is set; started and holding."""
    holding = threading.Event()

    def hold() -> None:
        with store.lock_state(path):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert holding.wait(10)
    return thread


def test_a_held_lock_refuses_another_holder_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    release = threading.Event()
    thread = hold_in_thread(path, release)
    try:
        with pytest.raises(LocalProtocolError) as caught, store.lock_state(path):
            pass
        assert str(caught.value) == (
            f"the state file {str(path)!r} is in use by another skyproto process; "
            "try again when it has finished"
        )
        with pytest.raises(LocalProtocolError, match="is in use by another skyproto process"):
            save_state(path, full_state(), wait=0.1)
        assert not path.exists()
    finally:
        release.set()
        thread.join(10)
    save_state(path, full_state(), wait=0)
    assert load_state(path, now=NOW, hosts=HOSTS) == full_state()


def test_a_waiting_save_proceeds_when_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    release = threading.Event()
    thread = hold_in_thread(path, release)
    threading.Timer(0.2, release.set).start()
    save_state(path, full_state(), wait=30)
    thread.join(10)
    assert load_state(path, now=NOW, hosts=HOSTS) == full_state()


def test_the_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with store.lock_state(path), store.lock_state(path):
        save_state(path, full_state(), wait=0)
        write_skpy_token_file(tmp_path / "tokens", example_state(), wait=0)
    # Released: another thread takes it at once.
    release = threading.Event()
    release.set()
    hold_in_thread(path, release).join(10)


@pytest.mark.parametrize("wait", [-1.0, float("nan"), float("inf")])
def test_the_lock_wait_must_be_finite(tmp_path: Path, wait: float) -> None:
    with (
        pytest.raises(LocalProtocolError, match="lock wait"),
        store.lock_state(tmp_path, wait=wait),
    ):
        pass


def test_the_root_directory_is_not_a_state_file() -> None:
    with pytest.raises(LocalProtocolError, match=r"^'/' names no file to lock$"):
        save_state("/", full_state())


LOCK_HOLDER = """
import sys
from skyproto import store
with store.lock_state(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_a_lock_held_by_another_process_and_freed_when_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(LocalProtocolError, match="is in use by another skyproto process"):
            save_state(path, full_state(), wait=0)
        holder.kill()  # the kernel frees the flock with the process
        holder.wait(10)
        save_state(path, full_state(), wait=10)
    finally:
        holder.kill()
        holder.wait(10)
    assert load_state(path, now=NOW, hosts=HOSTS) == full_state()


@pytest.mark.parametrize("mask", [0o000, 0o077, 0o277])
def test_the_lock_file_is_0600_whatever_the_umask(tmp_path: Path, umask: Any, mask: int) -> None:
    umask(mask)
    path = tmp_path / "state.json"
    save_state(path, full_state())
    assert mode_of(path) == 0o600
    assert mode_of(store.lock_path(path)) == 0o600
    assert store.lock_path(path).read_bytes() == b""


def test_an_existing_lock_file_is_made_private(tmp_path: Path) -> None:
    lock = store.lock_path(tmp_path / "state.json")
    lock.write_bytes(b"")
    lock.chmod(0o666)
    with store.lock_state(tmp_path / "state.json"):
        assert mode_of(lock) == 0o600


# -- left-overs of killed writers --------------------------------------------------------------

STALE = ".state.json.0123456789ab.tmp"
NOT_OURS = (
    ".state.json.backup",
    ".state.json.0123456789ab.tmp.keep",
    ".other.json.0123456789ab.tmp",
)


def leave_litter(directory: Path) -> None:
    (directory / STALE).write_bytes(b'{"skype_token": "SKYPETOKEN"')
    for name in NOT_OURS:
        (directory / name).write_bytes(b"not ours")


def test_a_save_removes_what_killed_writers_left(tmp_path: Path) -> None:
    leave_litter(tmp_path)
    path = tmp_path / "state.json"
    save_state(path, full_state())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*NOT_OURS, ".state.json.lock", "state.json"]
    )


def test_only_the_targets_own_temporary_files_are_removed(tmp_path: Path) -> None:
    ours = tmp_path / ".me@x.json.0123456789ab.tmp"
    theirs = tmp_path / ".me@x.json.0123456789ab@tmp"
    for path in (ours, theirs, tmp_path / ".me@x.json.0123456789AB.tmp"):
        path.write_bytes(b"")
    save_state(tmp_path / "me@x.json", full_state())
    assert not ours.exists()
    assert theirs.exists()
    assert (tmp_path / ".me@x.json.0123456789AB.tmp").exists()


def test_taking_the_lock_removes_what_killed_writers_left(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, full_state())
    leave_litter(tmp_path)
    with store.lock_state(path):
        assert not (tmp_path / STALE).exists()
        assert load_state(path, now=NOW, hosts=HOSTS) == full_state()
    assert all((tmp_path / name).exists() for name in NOT_OURS)


KILLED_WRITER = """
import os, signal, sys
from skyproto import store
from skyproto.session import SessionState
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # dies between write and rename
store.save_state(sys.argv[1], SessionState(user_id="live:new"))
"""


def test_a_writer_killed_before_its_rename_leaves_the_old_file_and_no_lasting_temp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    save_state(path, full_state())
    old = path.read_bytes()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path)], timeout=60, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    assert path.read_bytes() == old
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1  # what a killed writer leaves: the complete new content
    assert b"live:new" in left[0].read_bytes()
    assert mode_of(left[0]) == 0o600
    save_state(path, SessionState(user_id="live:next"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


CONCURRENT_WRITER = """
import sys
from skyproto import store
from skyproto.session import SessionState
for _ in range(int(sys.argv[3])):
    store.save_state(sys.argv[1], SessionState(user_id=sys.argv[2] * 2000))
"""


def test_two_processes_saving_at_once_leave_a_complete_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, SessionState(user_id="a" * 2000))
    writers = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(path), name, "40"])
        for name in ("b", "c")
    ]
    seen: set[str] = set()
    try:
        while any(writer.poll() is None for writer in writers):
            state = load_state(path, now=NOW, hosts=HOSTS)  # never partial, never missing
            assert state.user_id is not None
            seen.add(state.user_id[0])
            assert state.user_id == state.user_id[0] * 2000
    finally:
        for writer in writers:
            writer.wait(60)
    assert [writer.returncode for writer in writers] == [0, 0]
    assert seen <= {"a", "b", "c"}
    assert load_state(path, now=NOW, hosts=HOSTS).user_id in ("b" * 2000, "c" * 2000)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


# -- the check before a login -------------------------------------------------------------------


def test_check_writable_accepts_a_missing_or_regular_file_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    store.check_writable(path)
    assert list(tmp_path.iterdir()) == []
    save_state(path, full_state())
    store.check_writable(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


def test_check_writable_refuses_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    path = tmp_path / "file" / "state.json"
    with pytest.raises(LocalProtocolError) as caught:
        store.check_writable(path)
    assert str(caught.value) == f"cannot write the state file {str(path)!r}: Not a directory"


def test_check_writable_refuses_a_read_only_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into directories whatever their mode")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(LocalProtocolError, match="Permission denied"):
            store.check_writable(tmp_path / "state.json")
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize("kind", ["link", "directory", "fifo"])
def test_check_writable_refuses_what_a_save_refuses(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "state.json"
    if kind == "link":
        path.symlink_to(tmp_path / "elsewhere")
    elif kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    with pytest.raises(LocalProtocolError, match=r"is a symbolic link|is not a regular file"):
        store.check_writable(path)
