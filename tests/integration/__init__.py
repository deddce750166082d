"""Integration tests; the helpers several of them share are in ``conftest.py``,
``matrix_support.py`` and ``cli_support.py``."""
