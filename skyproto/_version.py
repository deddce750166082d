"""The one place the package's version is written.

``pyproject.toml`` reads it (``version`` is dynamic), ``skyproto.__version__`` re-exports it and
the ``User-Agent`` the core sends (:data:`skyproto.calls.USER_AGENT`) is built from it.
"""

__version__ = "0.1.0"
