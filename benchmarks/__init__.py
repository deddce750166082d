"""Benchmarks: ``python -m benchmarks`` runs every ``*_bench.py`` module here.

Each module has a ``main()`` that prints its figures next to a reference measured in the same run.
"""
