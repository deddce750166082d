"""Credentials and the saved session, shared by the verbs that log in or resume.

The saved session
-----------------
``login`` writes the session to a state file (``--state``, default :data:`DEFAULT_STATE_FILE` in
the current directory) with :func:`skyproto.store.save_state`: atomically, mode 0600, replacing any
file that was there. No password is ever part of it. The other verbs resume from that file without
logging in or registering while its tokens are valid, and write it back when the session changed
(a token refreshed, a new registration, another endpoint list).

``login`` also notes beside the state which ``--hosts`` profile made it (``.NAME.hosts``, see
:func:`hosts_note_path`), so that resuming without ``--hosts`` when the saved hosts are not
trusted says which profile to pass. A state without that note (older ones) still loads.

One process at a time uses a state file: each verb holds its lock from start to end, ``events``
included (:func:`skyproto.store.lock_state`; a ``.NAME.lock`` file beside the state, so its
directory must be writable). ``login`` refuses at once when another process holds it, before
asking for a password or sending anything; the verbs that resume a session wait up to
:data:`STATE_LOCK_WAIT` seconds first. ``login`` also proves that the file can be written (the
directory takes a new file; the target is not a link, a directory or a FIFO) before its first
request, so a failing save never wastes a login and a registered endpoint.

Passwords
---------
The password comes from the environment variable :data:`PASSWORD_ENV`, or from an interactive
prompt when standard input is a terminal; with neither, the verb fails before sending anything.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys

from .. import store
from .._flow import now
from ..auth import LoginMethod
from ..errors import SkypeAuthException, SkypeTokenException
from ..session import GuestCredentials, Session, SessionState
from ..tokens import Credentials
from ._base import EXIT_OK, CliContext, FlowRunner, RunVerb, UsageError

__all__ = ["DEFAULT_STATE_FILE", "PASSWORD_ENV", "STATE_LOCK_WAIT", "add_json_option"]

#: Where the session is saved when ``--state`` is not given (relative to the current directory).
DEFAULT_STATE_FILE = "skyproto-state.json"
#: The environment variable holding the account password.
PASSWORD_ENV = "SKYPROTO_PASSWORD"
#: Seconds a verb resuming a saved session waits for another process to release the state file.
STATE_LOCK_WAIT = 3.0


# -- options shared by several verbs ----------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def add_state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        metavar="FILE",
        default=DEFAULT_STATE_FILE,
        help=f"the saved session (default: ./{DEFAULT_STATE_FILE}; written atomically, mode 0600; "
        "used by one process at a time)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON document, for scripts",
    )


def add_login_options(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group()
    who.add_argument(
        "--user",
        metavar="USER",
        help=f"e-mail address or Skype name; the password is read from ${PASSWORD_ENV}, "
        "or asked for when standard input is a terminal",
    )
    who.add_argument(
        "--guest",
        metavar="JOIN_URL",
        help="join a public conversation as a guest (https://join.skype.com/<id>); needs --name",
    )
    parser.add_argument("--name", metavar="NAME", help="the guest's display name")
    parser.add_argument(
        "--method",
        choices=[method.value for method in LoginMethod],
        default=LoginMethod.AUTO.value,
        help="password login to use; auto: SOAP for an e-mail address, Live for a Skype name",
    )


# -- credentials and the saved session ----------------------------------------------------------


def _password(user: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise SkypeAuthException(
            f"no password for {user}: set {PASSWORD_ENV}, or run in a terminal to be asked"
        )
    password = getpass.getpass(f"Password for {user}: ")
    if not password:
        raise SkypeAuthException(f"no password given for {user}")
    return password


def _guest(args: argparse.Namespace) -> GuestCredentials | None:
    join = getattr(args, "guest", None)
    if join is None:
        return None
    name = getattr(args, "name", None)
    if not name or not name.strip():
        raise UsageError("--guest needs --name NAME, the guest's display name")
    return GuestCredentials(join, name)


def _method(args: argparse.Namespace) -> LoginMethod:
    return LoginMethod(getattr(args, "method", LoginMethod.AUTO.value))


def _credentials(args: argparse.Namespace) -> Credentials | GuestCredentials | None:
    """The credentials the options name (asking for the password now); ``None`` without any."""
    guest = _guest(args)
    if guest is not None:
        return guest
    user = getattr(args, "user", None)
    return Credentials(user, _password(user)) if user else None


def new_session(args: argparse.Namespace, ctx: CliContext) -> Session:
    credentials = _credentials(args)
    if credentials is None:
        raise UsageError("logging in needs --user USER, or --guest JOIN_URL --name NAME")
    return Session(ctx.hosts, credentials=credentials, method=_method(args))


def resume(args: argparse.Namespace, ctx: CliContext, runner: FlowRunner) -> Session | None:
    """The session saved at ``--state``, checked at the driver's time; ``None`` if no file.

    The credentials are asked for only if the session must log in again."""
    if not os.path.lexists(args.state):
        return None
    current = runner.run(now())
    try:
        state = store.load_state(args.state, now=current, hosts=ctx.hosts)
    except SkypeTokenException as exc:
        if ctx.hosts_file is None and "not trusted" in exc.message:
            raise SkypeTokenException(f"{exc.message}; {_hosts_hint(args.state)}") from None
        raise
    return Session(
        ctx.hosts, credentials=lambda: _credentials(args), method=_method(args), state=state
    )


def hosts_note_path(path: str) -> str:
    """The file beside the state at ``path`` that names the ``--hosts`` profile it was made
    with: ``.NAME.hosts`` in the same directory (JSON ``{"hosts": "/abs/profile.json"}``)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.hosts")


def remember_hosts(path: str, ctx: CliContext) -> None:
    """Note beside the state at ``path`` which ``--hosts`` profile made it (none: no note)."""
    note = hosts_note_path(path)
    try:
        if ctx.hosts_file is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(note)
        else:
            store.write_atomic(note, json.dumps({"hosts": ctx.hosts_file}).encode())
    except OSError as exc:  # the session itself is saved: say so, and go on
        ctx.err(f"warning: cannot note the hosts profile beside the state: {exc.strerror or exc}")


def _hosts_hint(path: str) -> str:
    """What to pass to resume the session at ``path``, from the note beside it."""
    generic = "pass the --hosts profile the session was made with"
    try:  # like the state: no link followed, no FIFO waited on, the size bounded
        document = json.loads(store.read_file(hosts_note_path(path), "hosts note"))
    except (SkypeTokenException, ValueError, RecursionError):
        return generic
    profile = document.get("hosts") if isinstance(document, dict) else None
    if not isinstance(profile, str) or not profile:
        return generic
    return f"it was made with --hosts {profile}: pass that again"


def require_saved(args: argparse.Namespace, ctx: CliContext, runner: FlowRunner) -> Session:
    session = resume(args, ctx, runner)
    if session is None:
        raise SkypeTokenException(f"no saved session at {args.state!r}; run 'skyproto login' first")
    return session


def save(path: str, state: SessionState) -> None:
    store.save_state(path, state)  # under the verb's lock (re-entrant); errors name the file


def save_if_changed(path: str, session: Session, before: SessionState | None) -> None:
    state = session.state
    if state.skype_token is not None and state != before:
        save(path, state)


def check_login_usage(args: argparse.Namespace, *, login: bool) -> None:
    """Raise :class:`UsageError` for login options that do not fit together, before the verb
    takes a lock or sends anything. ``login``: the verb always logs in, so it needs someone to."""
    user, guest = getattr(args, "user", None), getattr(args, "guest", None)
    if getattr(args, "teams", False):
        if user or guest:
            raise UsageError("--teams signs in with a device code; drop --user/--guest")
        return
    _guest(args)
    if login and not user and not guest:
        raise UsageError("logging in needs --user USER, or --guest JOIN_URL --name NAME")


def holding_state(run: RunVerb, *, login: bool = False, needs_saved: bool = False) -> RunVerb:
    """``run`` holding the lock on ``--state`` from start to end (see the module docstring).

    ``login``: refuse at once if the lock is held, and prove the file can be saved before
    running; otherwise wait up to :data:`STATE_LOCK_WAIT` seconds. ``needs_saved``: the verb only
    refuses without a saved session, so a missing file takes no lock (and leaves no lock file)."""

    def locked(args: argparse.Namespace, ctx: CliContext) -> int:
        check_login_usage(args, login=login)
        if needs_saved and not os.path.lexists(args.state):
            return run(args, ctx)
        with store.lock_state(args.state, wait=0.0 if login else STATE_LOCK_WAIT):
            if login:
                store.check_writable(args.state)
            code = run(args, ctx)
            if login and code == EXIT_OK:
                remember_hosts(args.state, ctx)
            return code

    return locked
