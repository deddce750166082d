"""The ``emulator`` verb: the loopback Skype emulator, served until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib

from ._base import CliContext, Verb

__all__ = ["EMULATOR"]


def _configure_emulator(parser: argparse.ArgumentParser) -> None:
    # The emulator parses its own options, and its --help names the default account, so this
    # sub-parser recognises no option at all: every argument after the verb is passed on as is.
    parser.prefix_chars = "\0"
    parser.add_argument(
        "emulator_args",
        nargs="*",
        metavar="ARG",
        help="[--host 127.0.0.1] [--port N] [--scenario KEY=VALUE ...] [--tls] [--seed N] [--accounts N] [-v]",
    )


def _run_emulator(args: argparse.Namespace, ctx: CliContext) -> int:
    from ..emulator.server import serve  # sockets, threads and TLS only for this verb

    argv = list(args.emulator_args)
    if ctx.verbose:  # the global --verbose: log each request the emulator receives
        argv.insert(0, "--verbose")
    with contextlib.redirect_stdout(ctx.stdout), contextlib.redirect_stderr(ctx.stderr):
        return serve(argv)


EMULATOR = Verb(
    "emulator",
    "run the loopback Skype emulator until Ctrl-C (see: skyproto emulator --help)",
    _run_emulator,
    _configure_emulator,
    passes_arguments_on=True,
)
