"""Benchmarks: ``python -m benchmarks`` runs every ``*_bench.py`` module here and prints one table.

Each module's ``main(smoke=False)`` returns rows comparing skyproto with a reference measured in
the same run; ``_common.py`` states the contract.
"""
