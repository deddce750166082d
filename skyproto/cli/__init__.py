"""The ``skyproto`` command line.

Usage: ``skyproto [--version] [--hosts FILE] [--ca-bundle FILE] [--transport NAME] [--verbose]
VERB ...``; the global options may also follow the verb (given on both sides, the later wins).
The default transport is ``stdlib``, which needs no extra; a ``--hosts`` profile's ``ca_bundle``
is trusted as ``--ca-bundle`` would be.

Each verb is a :class:`Verb`: a name, a help line, a function that adds its arguments to its own
sub-parser, and a function ``run(args, ctx) -> int`` that does the work with a :class:`CliContext`.
``ctx.run(flow)`` builds the chosen transport and drives a flow with it, so a verb is usually a few
lines around one flow. A verb that runs several flows opens ``with ctx.runner() as runner:`` and
calls ``runner.run(flow)`` (and ``runner.pages(listing)``) inside it: one transport for all of them,
closed at the end (for ``httpx-async``, one event loop too).

This package is the edge of the program: it reads files, talks to the network through a transport
and runs an event loop. Its modules, by topic: ``_base`` (:class:`Verb`, :class:`CliContext`, the
runners, tracing and exit codes), ``_saved`` (credentials, the state file and its lock), one
module per group of verbs (``_mac256``, ``_emulator``, ``_session_verbs`` for ``login``,
``endpoints``, ``ping`` and ``conversations``, ``_events``, ``_demo``), and ``_main`` (the table
:data:`VERBS`, :func:`build_parser` and :func:`main`). Imports point one way: the verbs import
``_base``, ``_main`` imports the verbs, nothing imports back. To add a verb, write its two
functions in a module here, make a :class:`Verb` of them and list it in :data:`VERBS`. The core
never imports this package. An HTTP client library is imported only when a command builds its
transport.

:func:`main` runs the command; :func:`build_parser` gives its ``argparse`` parser (the
documentation's command-line reference is generated from it).

Exit codes: 0 success, 1 a :class:`~skyproto.SkypeException` (the last stderr line reads
``error: <ExceptionClass>: <message>``), 2 a usage error (argparse's usage line and message; a
verb raises :class:`UsageError` for options that do not fit together). ``login``, ``endpoints``
and ``conversations`` take ``--json`` for one JSON document on stdout. While logging in or
polling, a status line turns on stderr if it is a terminal. Ctrl-C (SIGINT) ends every verb the
same way: one ``interrupted`` line on stderr, no traceback, exit 0 (stopping ``events`` with
Ctrl-C is how it is meant to end, and tools downstream rely on that). Output into a pipe that
closed early (``skyproto events | head -2``) ends the command quietly with exit 0.
"""

from __future__ import annotations

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
