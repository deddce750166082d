"""Token and state files: the one core module that touches the file system.

It still never reads the clock: the caller passes ``now``.

Every write goes through :func:`write_atomic`: the bytes go to a new temporary file (mode 0600) in
the target's directory, are flushed and fsynced, and the temporary file is renamed over the target;
then the directory is fsynced so the rename itself survives a crash. A reader therefore sees the
old file or the new one, never a mix, and the target ends with mode 0600 even if it existed with
wider permissions (the reference truncates in place and keeps the old mode; docs/protocol.md §12.13).

Two formats are handled:

* the versioned JSON snapshot of :mod:`skyproto.session` (:func:`save_state`, :func:`load_state`);
* SkPy's six-line token file (§8), for moving a session between SkPy and skyproto
  (:func:`read_skpy_token_file`, :func:`parse_skpy_token_file`, :func:`write_skpy_token_file`,
  :func:`format_skpy_token_file`).

Token-file differences from the reference (§12.12, §12.13): epochs are UTC Unix seconds, with no
local time zone or daylight-saving guess; every malformed file, including one with an absurd
expiry or bytes that are not UTF-8, is a :class:`~skyproto.SkypeTokenException` "Token file is
malformed: …" rather than a crash; a Skype token within the refresh leeway of its expiry counts as
expired; a kept registration must name a messaging host that :class:`~skyproto.Hosts` trusts. The
endpoint id is not part of the format, so a registration read from it has ``endpoint_id=None``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from pathlib import Path

from .errors import LocalProtocolError, SkypeTokenException
from .hosts import Hosts
from .registration import Registration
from .session import (
    GUEST_PREFIX,
    SessionState,
    _host_of,
    dump_snapshot,
    load_snapshot,
    usable_token,
)
from .tokens import RegistrationToken, SkypeToken

__all__ = [
    "FILE_MODE",
    "MAX_FILE_SIZE",
    "format_skpy_token_file",
    "load_state",
    "parse_skpy_token_file",
    "read_skpy_token_file",
    "save_state",
    "write_atomic",
    "write_skpy_token_file",
]

#: Permission bits of every file this module writes.
FILE_MODE = 0o600
#: Files larger than this are refused when read (a state file is a few kilobytes).
MAX_FILE_SIZE = 16 * 1024 * 1024

_TEMP_NAME_ATTEMPTS = 16
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_SECOND = dt.timedelta(seconds=1)

StrPath = str | os.PathLike[str]


# -- atomic writes ------------------------------------------------------------------------------


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_TEMP_NAME_ATTEMPTS):
        temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, flags, FILE_MODE), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {name!r}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError("write made no progress")
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: a directory cannot be opened or fsynced
    # Best effort: some file systems refuse, and the rename has happened either way.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: StrPath, data: bytes) -> None:
    """Replace the file at ``path`` with ``data`` atomically, leaving it with mode 0600.

    On any failure the temporary file is removed, the old file (if any) is left as it was, and
    the ``OSError`` propagates.
    """
    if not isinstance(data, bytes):
        raise LocalProtocolError("write_atomic writes bytes")
    target = Path(os.path.abspath(path))
    fd, temp = _create_temp(target.parent, target.name)
    try:
        try:
            # The umask may have cleared bits of FILE_MODE; set it explicitly.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, FILE_MODE)
            else:
                os.chmod(temp, FILE_MODE)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # never hide the original failure
            os.unlink(temp)
        raise
    _fsync_directory(target.parent)


def _read_file(path: StrPath, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_SIZE + 1)
    except OSError:
        raise SkypeTokenException(
            f"{what} {os.fspath(path)!r} does not exist or is not readable"
        ) from None
    if len(data) > MAX_FILE_SIZE:
        raise SkypeTokenException(f"{what} {os.fspath(path)!r} is too large")
    return data


# -- the JSON snapshot --------------------------------------------------------------------------


def save_state(path: StrPath, state: SessionState) -> None:
    """Write ``state`` to ``path`` as a versioned JSON snapshot (atomic, mode 0600)."""
    write_atomic(path, dump_snapshot(state))


def load_state(path: StrPath, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read a snapshot written by :func:`save_state` and check it can be used at ``now``.

    Every problem, from a missing file to an expired Skype token, is a
    :class:`~skyproto.SkypeTokenException` (see :func:`skyproto.session.load_snapshot`).
    """
    return load_snapshot(_read_file(path, "saved state file"), now=now, hosts=hosts)


# -- SkPy's six-line token file -----------------------------------------------------------------

_MALFORMED = "Token file is malformed"
_LINES = 6


def _malformed(detail: str) -> SkypeTokenException:
    return SkypeTokenException(f"{_MALFORMED}: {detail}")


def _epoch_to_datetime(line: str, number: int) -> dt.datetime:
    try:
        seconds = int(line)
    except ValueError:
        raise _malformed(f"line {number} is not an integer") from None
    try:
        return _EPOCH + dt.timedelta(seconds=seconds)
    except OverflowError:
        raise _malformed(f"line {number} is out of range") from None


def _datetime_to_epoch(value: dt.datetime) -> int:
    return (value - _EPOCH) // _ONE_SECOND


def parse_skpy_token_file(text: str | bytes, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read the content of a SkPy token file (§8.3) as it stands at ``now``; ``bytes`` must be
    UTF-8 (what :func:`format_skpy_token_file` returns).

    Raises :class:`~skyproto.SkypeTokenException`: "Token file is malformed: …" for any bad shape,
    "Token file has expired" when the Skype token has. An expired registration is dropped.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not UTF-8") from None
    lines = text.splitlines()
    if len(lines) != _LINES:
        raise _malformed(f"expected {_LINES} lines, found {len(lines)}")
    user_id, skype_token, skype_epoch, reg_token, reg_epoch, messenger = lines
    skype = SkypeToken(skype_token, _epoch_to_datetime(skype_epoch, 3))
    registration_token = RegistrationToken(reg_token, _epoch_to_datetime(reg_epoch, 5))
    if not usable_token(skype_token):
        raise _malformed("line 2 is not a usable Skype token")
    if skype.expired(now):
        raise SkypeTokenException("Token file has expired")
    registration: Registration | None = None
    if not registration_token.expired(now):
        if not usable_token(reg_token):
            raise _malformed("line 4 is not a usable registration token")
        if not hosts.is_trusted(messenger):
            raise SkypeTokenException(
                f"Token file names messaging host {_host_of(messenger)!r}, which is not trusted"
            )
        registration = Registration(registration_token, messenger, endpoint_id=None)
    return SessionState(
        user_id=user_id,
        skype_token=skype,
        registration=registration,
        guest=user_id.startswith(GUEST_PREFIX),
    )


def read_skpy_token_file(path: StrPath, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read a SkPy token file from ``path``; see :func:`parse_skpy_token_file`."""
    return parse_skpy_token_file(_read_file(path, "Token file"), now=now, hosts=hosts)


def format_skpy_token_file(state: SessionState) -> bytes:
    """The six-line token file (§8.1) for ``state``, UTF-8 with ``\\n`` line ends.

    ``state`` needs a user id, a Skype token and a registration; none of the six values may
    contain a line break, or the file could not be read back.
    """
    if state.user_id is None or state.skype_token is None or state.registration is None:
        raise LocalProtocolError("a token file needs a user id, a Skype token and a registration")
    registration = state.registration
    named_values = [
        ("user id", state.user_id),
        ("Skype token", state.skype_token.token),
        ("Skype token expiry", str(_datetime_to_epoch(state.skype_token.expiry))),
        ("registration token", registration.token.token),
        ("registration expiry", str(_datetime_to_epoch(registration.token.expiry))),
        ("messaging host", registration.messenger),
    ]
    lines = []
    for name, value in named_values:
        if value and value.splitlines() != [value]:
            raise LocalProtocolError(f"the {name} contains a line break; it cannot be written")
        try:
            lines.append(value.encode("utf-8") + b"\n")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"the {name} is not valid Unicode text") from None
    return b"".join(lines)


def write_skpy_token_file(path: StrPath, state: SessionState) -> None:
    """Write ``state`` as a SkPy token file at ``path`` (atomic, mode 0600)."""
    write_atomic(path, format_skpy_token_file(state))
