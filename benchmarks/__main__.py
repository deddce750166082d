"""Run every benchmark module (``*_bench.py``) in this package, in name order."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

BENCH_SUFFIX = "_bench"


def bench_modules() -> list[str]:
    """The dotted names of the benchmark modules, sorted."""
    here = Path(__file__).parent
    return sorted(
        f"{__package__ or 'benchmarks'}.{info.name}"
        for info in pkgutil.iter_modules([str(here)])
        if info.name.endswith(BENCH_SUFFIX)
    )


def main() -> int:
    status = 0
    for name in bench_modules():
        module = importlib.import_module(name)
        result = module.main()
        if isinstance(result, int) and result != 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
