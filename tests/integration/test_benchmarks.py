"""The benchmark runner: its smoke mode runs every module, its contract and its exit status.

No timing is asserted anywhere: smoke mode runs tiny sizes only to show that each benchmark works.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(path.stem for path in (ROOT / "benchmarks").glob("*_bench.py"))


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.__main__ as runner

    return runner


@pytest.mark.integration
def test_smoke_mode_runs_every_module_and_writes_the_results(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = run_benchmarks("--smoke", "--output", str(output))
    assert done.returncode == 0, done.stderr
    results = json.loads(output.read_text())
    assert results["smoke"] is True
    assert {"cpu_count", "python", "platform"} <= set(results["machine"])
    assert results["date"]
    names = [row["name"] for row in results["rows"]]
    assert len(names) == len(set(names))
    for key in ("name", "skyproto", "reference", "ratio", "goal", "met"):
        assert all(key in row for row in results["rows"]), key
    # Every module contributed, and the table printed what was written.
    assert {"events", "mac256", "connect cycle", "dedup memory"} <= set(names)
    assert {f"transport {name}" for name in ("requests", "httpx", "httpx async", "stdlib")} <= set(
        names
    )
    for module in MODULES:
        assert f"benchmarks.{module}" in done.stderr
    for name in names:
        assert f"| {name} |" in done.stdout


def test_help_prints_usage_and_runs_nothing() -> None:
    done = run_benchmarks("--help")
    assert done.returncode == 0
    assert "usage: python -m benchmarks" in done.stdout
    assert "--smoke" in done.stdout
    assert "running" not in done.stderr


def fake_module(monkeypatch: pytest.MonkeyPatch, runner: Any, rows: object) -> None:
    module = types.ModuleType("benchmarks.fake_bench")
    module.main = lambda smoke=False: rows  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "benchmarks.fake_bench", module)
    monkeypatch.setattr(runner, "bench_modules", lambda: ["benchmarks.fake_bench"])


def a_row(runner: Any, ratio: float) -> dict[str, Any]:
    from benchmarks._common import row

    return row(
        "fake",
        skyproto=1.0,
        reference=2.0,
        ratio=ratio,
        goal=">= 3",
        unit="x",
        reference_name="nothing",
        statistic="none",
        ratio_is="made up",
    )


def test_a_missed_goal_fails_the_run_but_not_the_smoke_run(
    monkeypatch: pytest.MonkeyPatch, runner: Any, tmp_path: Path
) -> None:
    output = tmp_path / "results.json"
    fake_module(monkeypatch, runner, [a_row(runner, 2.0)])
    assert runner.main(["--output", str(output)]) == 1
    assert json.loads(output.read_text())["rows"][0]["met"] is False
    assert runner.main(["--smoke"]) == 0
    fake_module(monkeypatch, runner, [a_row(runner, 3.0)])
    assert runner.main(["--output", str(output)]) == 0
    assert json.loads(output.read_text())["rows"][0]["met"] is True


@pytest.mark.parametrize("rows", [7, [], [{"name": "no other key"}], None])
def test_a_module_breaking_the_contract_fails_even_the_smoke_run(
    monkeypatch: pytest.MonkeyPatch, runner: Any, rows: object
) -> None:
    fake_module(monkeypatch, runner, rows)
    assert runner.main(["--smoke"]) == 1


def test_smoke_mode_leaves_the_recorded_results_alone(
    monkeypatch: pytest.MonkeyPatch, runner: Any, tmp_path: Path
) -> None:
    recorded = tmp_path / "results.json"
    monkeypatch.setattr(runner, "RESULTS", recorded)
    fake_module(monkeypatch, runner, [a_row(runner, 3.0)])
    assert runner.main(["--smoke"]) == 0
    assert not recorded.exists()
    assert runner.main([]) == 0
    assert json.loads(recorded.read_text())["smoke"] is False


def test_the_readme_section_is_replaced_in_place(
    monkeypatch: pytest.MonkeyPatch, runner: Any, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{runner.README_START}\nold\n{runner.README_END}\n\ntail\n")
    results = {
        "date": "2026-01-02T03:04:05+00:00",
        "machine": runner.machine(),
        "rows": [a_row(runner, 3.0)],
    }
    runner.update_readme(results, readme)
    text = readme.read_text()
    assert text.startswith("# title\n\n")
    assert text.endswith("\n\ntail\n")
    assert "old" not in text
    assert "Measured 2026-01-02" in text
    assert "| fake | 1 | 2 (nothing) |" in text


@pytest.mark.integration
def test_the_phase_profile_runs_and_names_every_phase_of_both_sides() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.phases", "--requests", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    bare, ours = done.stdout.strip().splitlines()
    assert bare.startswith("bare h11")
    assert ours.startswith("skyproto")
    for phase in ("connect", "build", "send", "wait", "read", "close"):
        assert f"{phase} " in bare
        assert f"{phase} " in ours
    assert "flow " in ours
