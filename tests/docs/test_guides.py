"""Every example on every page of the site runs, against the loopback emulator.

Python blocks run as scripts (a block that imports pytest runs under pytest, which loads the
emulator's fixtures). A block whose first line is ``# name.py`` is a module that later blocks of
its page import. Shell blocks run too: the two-shell emulator workflow is run as written; any
other shell block must say why it is not run, in an HTML comment on the line before it. Every
example runs with name lookups limited to loopback, so none can reach the retired service.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(path.name for path in DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL = re.compile(
    r"^(<!-- not run: [^>]+-->\n)?```(?:sh|bash|console|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL
)
#: A block whose first line is ``# name.py`` is a module the later blocks import.
MODULE = re.compile(r"# (\w+\.py)\n")


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def shell_blocks(page: str) -> list[tuple[str, str]]:
    return SHELL.findall((DOCS / page).read_text(encoding="utf-8"))


PYTHON_PAGES = [page for page in PAGES if python_blocks(page)]


def test_the_pages_with_examples_are_found() -> None:
    assert {"quickstart.md", "transports.md", "migrating.md", "events.md"} <= set(PYTHON_PAGES)


@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_every_block_compiles(page: str) -> None:
    for index, code in enumerate(python_blocks(page)):
        compile(code, f"{page} block {index}", "exec")


#: Loaded by every example's interpreter: name lookups of anything but loopback fail, so an example
#: can reach the emulator and nothing else (never the retired service).
LOOPBACK_ONLY = """
import socket

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_getaddrinfo = socket.getaddrinfo


def _loopback_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOOPBACK:
        raise OSError(f"the documentation examples may only reach loopback, not {name!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only
"""


def run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` with the loopback-only guard loaded (``sitecustomize``)."""
    guard = cwd / "_guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(LOOPBACK_ONLY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(guard), str(cwd)])}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_examples_cannot_reach_the_real_hosts(tmp_path: Path) -> None:
    script = tmp_path / "reach.py"
    script.write_text(
        "import socket\n"
        "socket.getaddrinfo('127.0.0.1', 80)\n"
        "socket.getaddrinfo('login.skype.com', 443)\n"
    )
    done = run([sys.executable, script.name], tmp_path)
    assert done.returncode == 1
    assert "may only reach loopback, not 'login.skype.com'" in done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_every_python_example_runs(page: str, tmp_path: Path) -> None:
    blocks = python_blocks(page)
    for code in blocks:  # the modules first: later blocks import them
        if module := MODULE.match(code):
            (tmp_path / module.group(1)).write_text(code)
    for index, code in enumerate(blocks):
        if MODULE.match(code):
            continue
        is_test = "import pytest" in code
        script = tmp_path / (f"test_block_{index}.py" if is_test else f"block_{index}.py")
        script.write_text(code)
        command = (
            ["-m", "pytest", "-q", "-p", "no:cacheprovider", script.name]
            if is_test
            else [script.name]
        )
        done = run([sys.executable, *command], tmp_path)
        assert done.returncode == 0, f"{page} block {index}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES)
def test_every_shell_block_is_run_or_says_why_not(page: str) -> None:
    for reason, code in shell_blocks(page):
        assert reason or code.startswith(("# shell 1\n", "# shell 2\n")), f"{page}: {code!r}"


def two_shells() -> tuple[str, str]:
    runnable = [code for reason, code in shell_blocks("emulator.md") if not reason]
    first = [code for code in runnable if code.startswith("# shell 1\n")]
    second = [code for code in runnable if code.startswith("# shell 2\n")]
    assert len(first) == len(second) == 1
    return first[0], second[0]


@pytest.mark.integration
def test_the_two_shell_workflow_runs_as_written(tmp_path: Path) -> None:
    emulator_script, client_script = two_shells()
    bin_dir = str(Path(sys.executable).parent)  # where the skyproto script is installed
    guard = tmp_path / "_guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(LOOPBACK_ONLY)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(guard),
    }
    server = subprocess.Popen(
        ["bash", "-c", emulator_script], cwd=tmp_path, env=env, start_new_session=True
    )
    try:
        profile = tmp_path / "profile.json"
        for _ in range(300):
            if profile.exists() and profile.read_text().endswith("\n"):
                break
            time.sleep(0.1)
        assert profile.read_text().startswith('{"hosts"')
        done = subprocess.run(
            ["bash", "-e", "-c", client_script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert "user_id: live:fred" in done.stdout
    assert '"type": "NewMessageEvent"' in done.stdout
    assert "8:alice.smith" in done.stdout
