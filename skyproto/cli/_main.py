"""The parser and the entry point: every verb, in ``--help`` order, and :func:`main`.

This module imports the verbs' modules, which import only :mod:`skyproto.cli._base` (and their
shared helpers); nothing imports this module back but the package's ``__init__``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .._version import __version__
from ..errors import SkypeException, TransportError
from ._base import (
    DEFAULT_TRANSPORT,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    TRANSPORTS,
    CliContext,
    RunVerb,
    UsageError,
    Verb,
)
from ._demo import DEMO
from ._emulator import EMULATOR
from ._events import EVENTS
from ._mac256 import MAC256
from ._session_verbs import CONVERSATIONS, ENDPOINTS, LOGIN, PING
from ._teams import MESSAGES, SEND

__all__ = ["VERBS", "build_parser", "main"]

#: Every verb, in the order ``--help`` lists them. To add a verb, write its ``configure`` and
#: ``run`` functions in a module of this package, make a :class:`Verb` of them and list it here.
VERBS: tuple[Verb, ...] = (
    MAC256,
    EMULATOR,
    LOGIN,
    EVENTS,
    ENDPOINTS,
    PING,
    CONVERSATIONS,
    DEMO,
    MESSAGES,
    SEND,
)


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The global options, on the main parser (``defaults``) and on every verb's sub-parser.

    On a sub-parser their defaults are ``argparse.SUPPRESS``: an option given after the verb
    overrides the same option given before it, and one not given there leaves it alone.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--hosts",
        metavar="FILE",
        default=default(None),
        help="JSON hosts profile mapping service hosts to base URLs (what 'skyproto emulator' "
        "prints; its ca_bundle is trusted too)",
    )
    parser.add_argument(
        "--ca-bundle",
        metavar="FILE",
        default=default(None),
        help="PEM file of CA certificates to trust for HTTPS",
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=default(DEFAULT_TRANSPORT),
        help=f"HTTP stack to use (default: {DEFAULT_TRANSPORT}, which needs no extra; requests "
        "needs 'pip install skyproto[requests]', httpx and httpx-async 'skyproto[httpx]')",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default(False),
        help="write the HTTP traffic, with secrets redacted, to stderr",
    )


def build_parser(verbs: Sequence[Verb] | None = None) -> argparse.ArgumentParser:
    """The argument parser: global options, then one sub-parser per verb (default :data:`VERBS`).

    The global options are accepted before the verb and after it (the later one wins)."""
    parser = argparse.ArgumentParser(
        prog="skyproto", description="Speak the Skype HTTP client protocol."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, defaults=True)
    shared = argparse.ArgumentParser(add_help=False)
    _add_global_options(shared, defaults=False)
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS if verbs is None else verbs:
        # The emulator passes every argument after its name on to its own parser.
        parents = [] if verb.passes_arguments_on else [shared]
        sub = subparsers.add_parser(
            verb.name, help=verb.help, description=verb.help, parents=parents
        )
        verb.configure(sub)
        sub.set_defaults(verb_run=verb.run)
    return parser


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at the null device, so that writing and the final flush
    at exit raise no second ``BrokenPipeError`` once the reader has gone."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _one_line(text: str) -> str:
    # Never empty: skyproto's exceptions replace a blank message with their class's sentence.
    return " ".join(text.split())


def _usage_error(parser: argparse.ArgumentParser, verb: str, message: str) -> None:
    """Print the verb's usage line and ``message`` as argparse does (it raises SystemExit(2))."""
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    with contextlib.suppress(SystemExit):
        subparsers.choices[verb].error(message)


#: Words of the transports' messages for a certificate that failed verification.
_CERTIFICATE_WORDS = ("certificate", "CERTIFICATE_VERIFY_FAILED", "CertVerification")


def _with_hint(exc: SkypeException) -> str:
    """``exc``'s message, with what to do about it when the command line knows better."""
    message = exc.message
    if isinstance(exc, TransportError) and any(word in message for word in _CERTIFICATE_WORDS):
        return (
            f"{message} (to trust another CA, pass --ca-bundle FILE, or a --hosts profile with "
            "a ca_bundle)"
        )
    return message


def main(
    argv: list[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line and return its exit code (streams default to ``sys``'s)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    # The core's warnings (a skipped ack, a failed poll) go where the verb's diagnostics go.
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("skyproto")
    logger.addHandler(handler)
    if args.verbose:
        logger.setLevel(logging.INFO)
    try:
        ctx = CliContext.from_args(args, stdout=out, stderr=err)
        run: RunVerb = args.verb_run
        return run(args, ctx)
    except UsageError as exc:
        with contextlib.redirect_stderr(err):
            _usage_error(parser, args.verb, str(exc))
        return EXIT_USAGE
    except SkypeException as exc:
        err.write(f"error: {type(exc).__name__}: {_one_line(_with_hint(exc))}\n")
        err.flush()
        return EXIT_ERROR
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            err.write("interrupted\n")
            err.flush()
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout's reader went away (``| head``): nothing more to say
        _silence(out)
        return EXIT_OK
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
