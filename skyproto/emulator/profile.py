"""The emulator's account, the hosts it serves and the profile it publishes.

The profile is the JSON object ``skyproto emulator`` prints on start-up::

    {"hosts": {"login.live.com": "http://127.0.0.1:PORT/login.live.com", ...},
     "ca_bundle": null,
     "account": {"user": "fred@example.com", "password": "..."}}

``hosts`` is what :meth:`skyproto.Hosts.from_json` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..hosts import Hosts
from .teams import TEAMS_HOSTS
from .trouter import SOCKET_HOST

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_MEETING_ID", "Account"]

DEFAULT_MESSENGER_HOST = "client-s.gateway.messenger.live.com"
#: Where the ``host_redirect`` knob sends registrations.
REDIRECT_MESSENGER_HOST = "db3-client-s.gateway.messenger.live.com"
MESSENGER_HOSTS = (DEFAULT_MESSENGER_HOST, REDIRECT_MESSENGER_HOST)
#: Every real host the emulator answers for, in profile order.
SERVED_HOSTS: tuple[str, ...] = (
    "login.live.com",
    "login.skype.com",
    "edge.skype.com",
    "api.skype.com",
    "join.skype.com",
    "api.join.skype.com",
    *MESSENGER_HOSTS,
    *TEAMS_HOSTS,
    "go.trouter.skype.com",
    "go.trouter.teams.microsoft.com",
    SOCKET_HOST,
)
#: The messaging base of the foreign host the ``foreign_*`` knobs point at (never mapped, never
#: trusted).
FOREIGN_BASE = "https://evil.example/v1"
#: The ``Location`` the ``foreign_location`` knob answers with.
FOREIGN_LOCATION = f"{FOREIGN_BASE}/users/ME/endpoints"
#: The public conversation guests can join: ``https://join.skype.com/<id>``.
DEFAULT_MEETING_ID = "KJzQ8aJ3gN2f"


@attrs.frozen
class Account:
    """The one Microsoft account the emulator knows.

    ``user`` (an e-mail address, so the reference client picks the SOAP login) and
    ``skype_name`` (no ``@``, so it picks the Live login) are both accepted as the login name.
    ``skype_name`` is the user id the profile reports.
    """

    user: str = "fred@example.com"
    password: str = attrs.field(default="skype-emulator-pass", repr=False)
    skype_name: str = "live:fred"
    display_name: str = "Fred Bloggs"

    @property
    def login_names(self) -> tuple[str, ...]:
        """The names a login may give for this account."""
        return (self.user, self.skype_name)

    def knows(self, login: str) -> bool:
        """Whether ``login`` names this account (e-mail case-insensitively)."""
        return login == self.skype_name or login.lower() == self.user.lower()

    def masked_email(self) -> str:
        """The account's e-mail as a two-factor page shows it (``fr*****@example.com``)."""
        local, _, domain = self.user.partition("@")
        return f"{local[:2]}*****@{domain}" if domain else f"{local[:2]}*****"


#: The account an emulator serves unless it is given another (``account=``).
DEFAULT_ACCOUNT = Account()


def hosts_for(bases: Mapping[str, str]) -> Hosts:
    """The :class:`~skyproto.Hosts` profile mapping each served host to its base."""
    return Hosts(overrides=dict(bases))


def profile(hosts: Hosts, ca_bundle: str | None, account: Account) -> dict[str, Any]:
    """The profile object: ``hosts`` (served host -> base), ``ca_bundle`` and ``account``."""
    return {
        "hosts": {host: hosts.url(f"https://{host}") for host in SERVED_HOSTS},
        "ca_bundle": ca_bundle,
        "account": {"user": account.user, "password": account.password},
    }
