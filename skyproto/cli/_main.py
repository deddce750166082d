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

from ..errors import SkypeException
from ._base import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    TRANSPORTS,
    CliContext,
    RunVerb,
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


def build_parser(verbs: Sequence[Verb] | None = None) -> argparse.ArgumentParser:
    """The argument parser: global options, then one sub-parser per verb (default :data:`VERBS`)."""
    parser = argparse.ArgumentParser(
        prog="skyproto", description="Speak the Skype HTTP client protocol."
    )
    parser.add_argument(
        "--hosts", metavar="FILE", help="JSON hosts profile mapping service hosts to base URLs"
    )
    parser.add_argument(
        "--ca-bundle", metavar="FILE", help="PEM file of CA certificates to trust for HTTPS"
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=TRANSPORTS[0],
        help=f"HTTP stack to use (default: {TRANSPORTS[0]})",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="write the HTTP traffic, with secrets redacted, to stderr",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS if verbs is None else verbs:
        sub = subparsers.add_parser(verb.name, help=verb.help, description=verb.help)
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
    except SkypeException as exc:
        err.write(f"error: {type(exc).__name__}: {_one_line(exc.message)}\n")
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
