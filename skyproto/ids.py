"""Identifier helpers, the Skype-API password hash and the presence :class:`Status`.

People and conversations are named by a numeric type prefix and a colon (``8:fred.2``,
``19:…@thread.skype``, ``28:concierge``); see docs/protocol.md §10.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = ["Status", "chat_from_url", "no_prefix", "user_from_url"]

_TYPE_PREFIX = re.compile(r"[0-9]+:")
# Unanchored on purpose: these pick the id out of any API URL that contains one.
_USER_IN_URL = re.compile(r"users(?:/ME/contacts)?/[0-9]+:([^/]+)")
_CHAT_IN_URL = re.compile(r"conversations/([0-9]+:[^/]+)")
_PASSWORD_HASH_SALT = "\nskyper\n"


def _require_text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str or None, not {type(value).__name__}")


def no_prefix(identifier: str | None) -> str | None:
    """``identifier`` without its leading type prefix (``8:alice`` -> ``alice``).

    Exactly one prefix (digits then ``:``) is removed; text without one is returned unchanged.
    """
    if identifier is None:
        return None
    _require_text(identifier, "an identifier")
    match = _TYPE_PREFIX.match(identifier)
    return identifier[match.end() :] if match else identifier


def user_from_url(url: str | None) -> str | None:
    """The user name (no prefix) in a ``…/users/8:name`` or ``…/users/ME/contacts/8:name`` URL."""
    if url is None:
        return None
    _require_text(url, "a URL")
    match = _USER_IN_URL.search(url)
    return match.group(1) if match else None


def chat_from_url(url: str | None) -> str | None:
    """The conversation id, prefix included, in a ``…/conversations/19:id`` URL."""
    if url is None:
        return None
    _require_text(url, "a URL")
    match = _CHAT_IN_URL.search(url)
    return match.group(1) if match else None


def password_hash(user: str, password: str) -> str:
    """The ``passwordHash`` of the Skype-API login: base64 of MD5 over ``user\\nskyper\\npassword``."""
    if not isinstance(user, str) or not isinstance(password, str):
        raise LocalProtocolError("user and password must both be str")
    try:
        clear = (user + _PASSWORD_HASH_SALT + password).encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError("user or password is not encodable as UTF-8") from None
    digest = hashlib.md5(clear, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


class Status(enum.Enum):
    """A presence status; the value is the wire label (case-sensitive)."""

    Offline = "Offline"
    #: Invisible: others see the user as offline.
    Hidden = "Hidden"
    Busy = "Busy"
    Away = "Away"
    Idle = "Idle"
    Online = "Online"

    @classmethod
    def parse(cls, label: object) -> Status:
        """The status for a wire label; anything else is a :class:`RemoteProtocolError`."""
        if isinstance(label, str):
            try:
                return cls(label)
            except ValueError:
                pass
        shown = repr(label)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        raise RemoteProtocolError(f"unknown presence status {shown}")
