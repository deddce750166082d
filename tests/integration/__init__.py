"""Integration tests; the helpers several of them share."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """For ``preexec_fn``: give the child the default SIGINT handling.

    A suite run as a background job starts with SIGINT ignored, the child inherits that, and
    Python then installs no KeyboardInterrupt handler, so a test's SIGINT would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
