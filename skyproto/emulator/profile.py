"""The emulator's accounts, the hosts it serves and the profile it publishes.

The profile is the JSON object ``skyproto emulator`` prints on start-up::

    {"hosts": {"login.live.com": "http://127.0.0.1:PORT/login.live.com", ...},
     "ca_bundle": null,
     "account": {"user": "fred@example.com", "password": "..."},
     "accounts": 0}

``hosts`` is what :meth:`skyproto.Hosts.from_json` reads. ``account`` is the main account;
``accounts`` is N when the emulator also serves :func:`numbered_accounts` ``(N)``, whose
credentials a client rebuilds from N alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import LocalProtocolError
from ..hosts import Hosts
from .teams import TEAMS_HOSTS
from .trouter import SOCKET_HOST

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_MEETING_ID",
    "MAX_NUMBERED_ACCOUNTS",
    "Account",
    "check_accounts",
    "numbered_account",
    "numbered_accounts",
]

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
    """A Microsoft account the emulator knows (its main one, or one of its other accounts).

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


#: The most accounts :func:`numbered_accounts` makes (and ``skyproto emulator --accounts`` takes).
MAX_NUMBERED_ACCOUNTS = 100_000


def numbered_account(index: int) -> Account:
    """Account number ``index`` (from 0): ``user{index}@example.com``, Skype name
    ``live:user{index}``, password ``user{index}-emulator-pass``.

    The same index always gives the same account, so a client in another process rebuilds the
    credentials of an emulator started with ``--accounts N`` from N alone.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise LocalProtocolError(f"an account number is a whole number >= 0, not {index!r}")
    return Account(
        user=f"user{index}@example.com",
        password=f"user{index}-emulator-pass",
        skype_name=f"live:user{index}",
        display_name=f"User {index}",
    )


def numbered_accounts(count: int) -> tuple[Account, ...]:
    """Accounts number 0 to ``count - 1`` (:func:`numbered_account`); at most
    :data:`MAX_NUMBERED_ACCOUNTS`."""
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or not 0 <= count <= MAX_NUMBERED_ACCOUNTS
    ):
        raise LocalProtocolError(
            f"the number of accounts is a whole number from 0 to {MAX_NUMBERED_ACCOUNTS}, "
            f"not {count!r}"
        )
    return tuple(numbered_account(i) for i in range(count))


def numbered_count(accounts: Iterable[Account]) -> int:
    """How many of ``accounts``, from the first, are :func:`numbered_accounts` in order: the N
    the profile publishes as ``accounts``."""
    count = 0
    for account in accounts:
        if account != numbered_account(count):
            break
        count += 1
    return count


def check_accounts(main: Account, others: Sequence[Account]) -> tuple[Account, ...]:
    """``(main, *others)``, once no login name of one account names another.

    E-mail addresses compare case-insensitively and Skype names exactly, as logins do
    (:meth:`Account.knows`); a clash raises :class:`~skyproto.errors.LocalProtocolError`.
    """
    everyone = (main, *others)
    owners: dict[str, int] = {}
    for number, account in enumerate(everyone):
        if not isinstance(account, Account):
            raise LocalProtocolError(f"expected an Account, not {type(account).__name__}")
        for name in {account.user.lower(), account.skype_name}:
            if owners.setdefault(name, number) != number:
                raise LocalProtocolError(
                    f"two accounts share the login name {name!r}: "
                    "each account needs its own user and skype_name"
                )
    return everyone


def hosts_for(bases: Mapping[str, str]) -> Hosts:
    """The :class:`~skyproto.Hosts` profile mapping each served host to its base."""
    return Hosts(overrides=dict(bases))


def profile(
    hosts: Hosts, ca_bundle: str | None, account: Account, accounts: Iterable[Account] = ()
) -> dict[str, Any]:
    """The profile object: ``hosts`` (served host -> base), ``ca_bundle``, ``account`` (the
    main one) and ``accounts`` (how many :func:`numbered_accounts` the other ``accounts`` are)."""
    return {
        "hosts": {host: hosts.url(f"https://{host}") for host in SERVED_HOSTS},
        "ca_bundle": ca_bundle,
        "account": {"user": account.user, "password": account.password},
        "accounts": numbered_count(accounts),
    }
