"""The saved state of a session: the snapshot, its JSON form and SkPy's token file.

This module is pure: it turns bytes into a checked :class:`SessionState` and back;
:mod:`skyproto.store` does the file I/O.

Saved state
-----------
:class:`SessionState` is everything a session needs to resume without sending a request: the
user id, the Skype token, the registration (registration token, messaging base ``H`` and endpoint
id), the user's endpoint ids, the syncState links and whether the session is a guest's.

:func:`dump_snapshot` writes it as a versioned JSON object::

    {"version": 1, "user_id": "live:fred",
     "skype_token": {"token": "...", "expiry": "2100-01-01T00:00:00+00:00"},
     "registration": {"token": {"token": "registrationToken=...", "expiry": "..."},
                      "messenger": "https://db3-client-s.gateway.messenger.live.com/v1",
                      "endpoint_id": "{...}"},
     "endpoints": ["{...}"], "paging": {...}, "guest": false}

Expiries are ISO 8601 date-times with a UTC offset; a date-time without one is refused rather than
guessed (the reference keeps naive local times; docs/protocol.md §12.12). A password is never part of
the state, so it is never written.

:func:`load_snapshot` is strict, because the file may be damaged or tampered with. Every problem
is a :class:`~skyproto.SkypeTokenException` that names it and the field it is in, and never quotes
a value: not valid UTF-8 or JSON, a version other than :data:`SNAPSHOT_VERSION`, a missing,
unexpected or wrongly typed field (no coercion: ``1`` is not a string, ``"false"`` not a boolean), an
unusable token, or an expired Skype token. A registration whose messaging host ``hosts`` does not
trust is refused, since loading it would send the registration token there. An expired
registration is dropped (``registration=None``) so that the session registers again. So is the
expired Skype token of a Teams Free state that holds a refresh token (docs/teams.md §4): the
session mints another from it.

Expiry uses :meth:`SkypeToken.expired <skyproto.tokens.SkypeToken.expired>` with its default
leeway, so a token about to expire counts as expired already.

SkPy's token file
-----------------
:func:`parse_skpy_token_file` and :func:`format_skpy_token_file` read and make SkPy's six-line
token file (§8); :mod:`skyproto.store` reads and writes the file itself. Differences from the
reference (§12.12, §12.13): epochs are UTC Unix seconds, with no
local time zone or daylight-saving guess; every malformed file, including one with an absurd
expiry or bytes that are not UTF-8, is a :class:`~skyproto.SkypeTokenException` "Token file is
malformed: …" rather than a crash; a Skype token within the refresh leeway of its expiry counts as
expired; a kept registration must name a messaging host that :class:`~skyproto.Hosts` trusts. The
endpoint id is not part of the format, so a registration read from it has ``endpoint_id=None``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, get_args

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_sequence,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.preconf.json import make_converter

from ._http import dump_json
from .auth.teams import Region
from .errors import LocalProtocolError, SkypeTokenException
from .hosts import Hosts
from .paging import PagingState
from .registration import Registration
from .tokens import RegistrationToken, SkypeToken, utc

__all__ = [
    "GUEST_PREFIX",
    "SNAPSHOT_VERSION",
    "SessionState",
    "TeamsState",
    "dump_snapshot",
    "format_skpy_token_file",
    "load_snapshot",
    "parse_skpy_token_file",
    "snapshot_converter",
    "usable_token",
]


#: The snapshot format :func:`dump_snapshot` writes and :func:`load_snapshot` reads.
SNAPSHOT_VERSION = 1


def _endpoint_ids(value: Any) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class TeamsState:
    """What a Teams Free session keeps besides its Skype token (docs/teams.md): the newest
    refresh token (they rotate; ``None`` once refused), the service bases authz named, and the
    Trouter endpoint id (docs/trouter.md), kept so that reconnections and later runs reuse it.
    A device code is never kept: it is spent by the time a login returns. Snapshots written
    before the endpoint id was kept still load (without one)."""

    refresh_token: str | None = attrs.field(default=None, repr=False)
    region: Region = attrs.field(factory=Region)
    trouter_endpoint: str | None = None


@attrs.frozen
class SessionState:
    """What a session needs to resume without traffic. Secrets are hidden from ``repr``.

    ``teams`` is set for a Teams Free session; ``user_id`` is then its Skype id. Snapshots
    without it (every legacy one) still load.
    """

    user_id: str | None = None
    skype_token: SkypeToken | None = None
    registration: Registration | None = None
    endpoints: tuple[str, ...] = attrs.field(default=(), converter=_endpoint_ids)
    paging: PagingState = attrs.field(factory=PagingState)
    guest: bool = False
    teams: TeamsState | None = None

    @property
    def endpoint_id(self) -> str:
        """The endpoint the session's calls address: the registered one, else ``SELF``."""
        if self.registration is not None and self.registration.endpoint_id is not None:
            return self.registration.endpoint_id
        return "SELF"


# -- the converter ------------------------------------------------------------------------------


class _InvalidValue(ValueError):
    """A saved value of the wrong JSON type or form; the message never quotes the value."""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expect(value: Any, kinds: type | tuple[type, ...], wanted: str) -> None:
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise _InvalidValue(f"expected {wanted}, got {_json_kind(value)}")


def _structure_str(value: Any, _type: Any) -> str:
    _expect(value, str, "a string")
    return str(value)


def _structure_bool(value: Any, _type: Any) -> bool:
    _expect(value, bool, "a boolean")
    return bool(value)


def _structure_int(value: Any, _type: Any) -> int:
    _expect(value, int, "an integer")
    return int(value)


def _structure_float(value: Any, _type: Any) -> float:
    _expect(value, (int, float), "a number")
    return float(value)


def _structure_datetime(value: Any, _type: Any) -> dt.datetime:
    _expect(value, str, "an ISO 8601 date-time string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _InvalidValue("not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _InvalidValue("date-time has no UTC offset")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise _InvalidValue("date-time out of range") from None


def _unstructure_datetime(value: dt.datetime) -> str:
    return utc(value).isoformat()


def _array_hook_factory(type_: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], Any]:
    is_tuple = getattr(type_, "__origin__", type_) is tuple
    factory = homogenous_tuple_structure_factory if is_tuple else list_structure_factory
    inner = factory(type_, converter)

    def structure_array(value: Any, target: Any) -> Any:
        _expect(value, list, "an array")
        return inner(value, target)

    return structure_array


def _fixed_tuple_hook_factory(
    type_: Any, converter: cattrs.BaseConverter
) -> Callable[[Any, Any], Any]:
    item_types = get_args(type_)

    def structure_fixed_tuple(value: Any, _target: Any) -> tuple[Any, ...]:
        _expect(value, list, "an array")
        if len(value) != len(item_types):
            raise _InvalidValue(f"expected an array of {len(item_types)} items")
        return tuple(converter.structure(v, t) for v, t in zip(value, item_types, strict=True))

    return structure_fixed_tuple


def _is_fixed_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return getattr(type_, "__origin__", None) is tuple and bool(args) and args[-1] is not ...


def _object_hook_factory(type_: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], Any]:
    inner = mapping_structure_factory(type_, converter)

    def structure_object(value: Any, target: Any) -> Any:
        _expect(value, dict, "an object")
        return inner(value, target)

    return structure_object


def _record_hook_factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = converter.gen_structure_attrs_fromdict(type_)

    def structure_record(value: Any, target: Any) -> Any:
        _expect(value, dict, "an object")
        return inner(value, target)

    return structure_record


def _make_converter() -> cattrs.Converter:
    converter = make_converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(dt.datetime, _structure_datetime)
    converter.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    converter.register_structure_hook_factory(is_sequence, _array_hook_factory)
    converter.register_structure_hook_factory(_is_fixed_tuple, _fixed_tuple_hook_factory)
    converter.register_structure_hook_factory(is_mapping, _object_hook_factory)
    converter.register_structure_hook_factory(attrs.has, _record_hook_factory)
    return converter


#: The converter for saved state: strict JSON types, aware date-times, no extra keys.
snapshot_converter = _make_converter()


# -- error messages -----------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_MAX_REPORTED = 3


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _InvalidValue):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        names = sorted(exc.extra_fields)
        if all(_FIELD_NAME.fullmatch(n) for n in names):
            return "unexpected field(s) " + ", ".join(repr(n) for n in names)
        return f"{len(names)} unexpected field(s)"
    if isinstance(exc, OverflowError):
        return "value out of range"
    return f"invalid value ({type(exc).__name__})"


def _field_errors(exc: BaseException, path: str) -> list[tuple[str, str]]:
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        found: list[tuple[str, str]] = []
        for sub, attribute_note in with_notes:
            name = attribute_note.name
            found += _field_errors(sub, f"{path}.{name}" if path else name)
        return found + [(path, _describe(sub)) for sub in without]
    if isinstance(exc, cattrs.IterableValidationError):
        iterable_with_notes, iterable_without = exc.group_exceptions()
        found = []
        for sub, index_note in iterable_with_notes:
            # Mapping keys are not quoted: a damaged file could hold anything there.
            index = index_note.index
            found += _field_errors(sub, f"{path}[{index if isinstance(index, int) else '…'}]")
        return found + [(path, _describe(sub)) for sub in iterable_without]
    return [(path, _describe(exc))]


def _shape_error(errors: list[tuple[str, str]]) -> SkypeTokenException:
    parts = [
        f"saved state field {path!r}: {problem}" if path else f"saved state: {problem}"
        for path, problem in errors[:_MAX_REPORTED]
    ]
    if len(errors) > _MAX_REPORTED:
        parts.append(f"and {len(errors) - _MAX_REPORTED} more problem(s)")
    return SkypeTokenException("; ".join(parts))


# -- dump and load ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: A Trouter endpoint id as it goes into a query and a registration: a short URL-safe token.
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9{}-]{1,64}")


def usable_token(token: str) -> bool:
    """Whether ``token`` can go into a header: not empty, no control characters."""
    return bool(token) and _CONTROL.search(token) is None


def dump_snapshot(state: SessionState) -> bytes:
    """The versioned JSON snapshot of ``state``."""
    body = snapshot_converter.unstructure(state, SessionState)
    if body.get("teams") is None:
        body.pop("teams", None)  # a legacy snapshot stays as it always was
    elif body["teams"].get("trouter_endpoint") is None:
        body["teams"].pop("trouter_endpoint", None)  # as written before it was kept
    return dump_json({"version": SNAPSHOT_VERSION, **body})


def _parse_json(data: bytes | str) -> dict[str, Any]:
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise SkypeTokenException("saved state is not valid UTF-8") from None
    else:
        text = data
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise SkypeTokenException("saved state is not valid JSON (truncated?)") from None
    if not isinstance(document, dict):
        raise SkypeTokenException(f"saved state is {_json_kind(document)}, not a JSON object")
    return document


def _check_version(document: dict[str, Any]) -> None:
    if "version" not in document:
        raise SkypeTokenException("saved state has no version")
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise SkypeTokenException(f"saved state version is {_json_kind(version)}, not an integer")
    if version != SNAPSHOT_VERSION:
        shown = str(version) if abs(version) < 10**9 else "(out of range)"
        raise SkypeTokenException(
            f"saved state version {shown} is not supported (expected {SNAPSHOT_VERSION})"
        )


def _structure(document: dict[str, Any]) -> SessionState:
    body = {k: v for k, v in document.items() if k != "version"}
    missing = [
        a.name for a in attrs.fields(SessionState) if a.name not in body and a.name != "teams"
    ]
    if missing:
        raise _shape_error([(name, "required field missing") for name in missing])
    try:
        return snapshot_converter.structure(body, SessionState)
    except cattrs.BaseValidationError as exc:
        raise _shape_error(_field_errors(exc, "")) from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        raise _shape_error([("", _describe(exc))]) from None


def _host_of(url: str) -> str:
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        host = None
    return host or url[:100]


def _can_remint(state: SessionState) -> bool:
    return state.teams is not None and state.teams.refresh_token is not None


def load_snapshot(data: bytes | str, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read a snapshot written by :func:`dump_snapshot` and check it can be used at ``now``.

    Raises :class:`~skyproto.SkypeTokenException` naming the problem; see the module docstring.
    """
    document = _parse_json(data)
    _check_version(document)
    state = _structure(document)
    if state.skype_token is not None and _can_remint(state) and state.skype_token.expired(now):
        # A Teams Free session mints a new one from its refresh token.
        state = attrs.evolve(state, skype_token=None)
    if state.skype_token is not None:
        if not usable_token(state.skype_token.token):
            raise _shape_error([("skype_token.token", "not a usable token")])
        if state.skype_token.expired(now):
            raise SkypeTokenException(
                f"saved Skype token expired at {state.skype_token.expiry.isoformat()}; log in again"
            )
    registration = state.registration
    if registration is not None:
        if not usable_token(registration.token.token):
            raise _shape_error([("registration.token.token", "not a usable token")])
        if registration.token.expired(now):
            return attrs.evolve(state, registration=None)
        if not hosts.is_trusted(registration.messenger):
            raise SkypeTokenException(
                f"saved state names messaging host {_host_of(registration.messenger)!r}, "
                "which is not trusted"
            )
    if state.teams is not None:
        refresh = state.teams.refresh_token
        if refresh is not None and not usable_token(refresh):
            raise _shape_error([("teams.refresh_token", "not a usable token")])
        endpoint = state.teams.trouter_endpoint
        if endpoint is not None and not _ENDPOINT_ID.fullmatch(endpoint):
            raise _shape_error([("teams.trouter_endpoint", "not an endpoint id")])
        for base in attrs.astuple(state.teams.region):
            if base is not None and not hosts.is_trusted(base):
                raise SkypeTokenException(
                    f"saved state names service host {_host_of(base)!r}, which is not trusted"
                )
    return state


#: The user-id prefix of a guest account.
GUEST_PREFIX = "guest:"


# -- SkPy's six-line token file -----------------------------------------------------------------

_MALFORMED = "Token file is malformed"
_LINES = 6
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_SECOND = dt.timedelta(seconds=1)


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
