"""``python -m benchmarks``: run every ``*_bench.py`` module here and print one table.

Each module's ``main(smoke)`` returns its rows (the contract is in ``benchmarks/_common.py``).
The table, the machine and the date go to ``benchmarks/results.json`` (written atomically); the
exit status is 1 when a goal is missed or a module breaks its contract, except in smoke mode,
where only a broken module fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import ROW_KEYS, check_row

BENCH_SUFFIX = "_bench"
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
README = HERE.parent / "README.md"
README_START = "<!-- benchmarks:start -->"
README_END = "<!-- benchmarks:end -->"


def bench_modules() -> list[str]:
    """The dotted names of the benchmark modules, sorted."""
    return sorted(
        f"{__package__ or 'benchmarks'}.{info.name}"
        for info in pkgutil.iter_modules([str(HERE)])
        if info.name.endswith(BENCH_SUFFIX)
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "load_average": None if load is None else [round(value, 2) for value in load],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Measure skyproto against its references (SkPy 0.11, the bare HTTP clients) in one "
            "run, print the table, write it to benchmarks/results.json, and exit 1 when a goal "
            "is missed."
        ),
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, to check that every benchmark runs; timings mean nothing, goals are "
        "not enforced, and nothing is written unless --output is given",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="MODULE",
        help="run only this module (e.g. events_bench); repeatable",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help=f"where to write the results (default {RESULTS})"
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="also put the table, its date and machine into README.md's benchmark section",
    )
    return parser


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| benchmark | skyproto | reference | unit | ratio | goal | met | statistic |",
        "|---|---:|---:|---|---:|---|---|---|",
    ]
    for entry in rows:
        lines.append(
            "| {name} | {ours} | {ref} ({ref_name}) | {unit} | {ratio} | {goal} | {met} | "
            "{stat} |".format(
                name=entry["name"],
                ours=_figure(entry["skyproto"]),
                ref=_figure(entry["reference"]),
                ref_name=entry["reference_name"],
                unit=entry["unit"],
                ratio=_figure(entry["ratio"]),
                goal=entry["goal"],
                met=_figure(entry["met"]),
                stat=entry["statistic"],
            )
        )
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader sees the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def readme_section(results: dict[str, Any]) -> str:
    box = results["machine"]
    load = box["load_average"]
    return (
        f"{README_START}\n"
        f"Measured {results['date'][:10]} on {box['cpu_count']} CPUs, Python {box['python']}, "
        f"{box['platform']} (load average {load[0] if load else 'unknown'} at the start, "
        f"from other jobs):\n\n{table(results['rows'])}\n{README_END}"
    )


def update_readme(results: dict[str, Any], readme: Path = README) -> None:
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no {README_START} ... {README_END} section")
    write_atomically(readme, pattern.sub(lambda _: readme_section(results), text, count=1))


def run(names: list[str], smoke: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Every module's rows, and what went wrong (a module breaking the contract)."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for name in names:
        started = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(name)
        result = module.main(smoke=smoke)
        if not isinstance(result, list) or not result:
            problems.append(f"{name}: main() returned {type(result).__name__}, not a list of rows")
            continue
        for entry in result:
            wrong = check_row(entry)
            if wrong:
                problems.append(f"{name}: {'; '.join(wrong)}")
            else:
                rows.append(entry)
        print(f"  {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    names_seen = [entry["name"] for entry in rows]
    problems += [
        f"row name {n!r} appears twice" for n in set(names_seen) if names_seen.count(n) > 1
    ]
    return rows, problems


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = bench_modules()
    if args.only:
        wanted = {f"{__package__ or 'benchmarks'}.{name.removesuffix('.py')}" for name in args.only}
        unknown = wanted - set(names)
        if unknown:
            print(f"no such benchmark module: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        names = [name for name in names if name in wanted]
    box = machine()
    date = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    rows, problems = run(names, args.smoke)
    results = {"date": date, "smoke": args.smoke, "machine": box, "rows": rows}
    results["machine"]["load_average_after"] = machine()["load_average"]
    print(
        f"{date}  {box['cpu_count']} CPUs, Python {box['python']}, {box['platform']}, "
        f"load {box['load_average']} -> {box['load_average_after']}"
        + ("  (smoke: timings mean nothing)" if args.smoke else "")
    )
    print(table(rows))
    output = args.output if args.output is not None else (None if args.smoke else RESULTS)
    if output is not None:
        write_atomically(output, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.readme and not args.smoke:
        update_readme(results)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    missed = [entry["name"] for entry in rows if entry["met"] is False]
    if missed and not args.smoke:
        print(f"goal missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if problems or (missed and not args.smoke) else 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["ROW_KEYS", "main"]
