"""The ``mac256`` verb: the lock-and-key response to a challenge."""

from __future__ import annotations

import argparse

from ..mac256 import mac256
from ._base import EXIT_OK, CliContext, Verb

__all__ = ["MAC256"]


def _configure_mac256(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("challenge", help="the challenge, usually a decimal Unix time")


def _run_mac256(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.out(mac256(args.challenge))
    return EXIT_OK


MAC256 = Verb(
    "mac256",
    "print the lock-and-key response to a challenge",
    _run_mac256,
    _configure_mac256,
)
