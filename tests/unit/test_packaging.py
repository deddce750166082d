"""The installed package is one that static tools understand (docs/design.md, "Layout").

``transports/`` is a top-level folder of the repository, installed as ``skyproto.transports``
through the ``skyproto/transports`` link. Whether installed from a wheel or editable (a plain path
entry, not an import hook), a user's script in a directory of its own type-checks against it with
``mypy --strict``: the names resolve, and a wrong type is reported as one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import skyproto
from skyproto import transports

REPOSITORY = Path(__file__).resolve().parents[2]

GOOD = """\
from skyproto import Session
from skyproto.transports import run_sync
from skyproto.transports.httpx import HttpxTransport


def connected_user(session: Session) -> str | None:
    with HttpxTransport() as transport:
        run_sync(session.connect(), transport)
    return session.user_id
"""

BAD = """\
from skyproto import Session
from skyproto.transports.httpx import HttpxTransport


def connected_user(session: Session, transport: HttpxTransport) -> int:
    return session.user_id
"""


def test_the_transports_are_a_subpackage_of_the_installed_package() -> None:
    package = Path(skyproto.__file__).parent
    assert Path(transports.__file__).parent == package / "transports"
    assert (package / "py.typed").is_file()
    assert (package / "transports" / "py.typed").is_file()


def test_mypy_strict_checks_scripts_outside_the_repository(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(REPOSITORY)
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MYPYPATH")}
    # -I: neither the current directory nor PYTHONPATH is on the path, only what is installed.
    # One run for both scripts (the cost is in reading skyproto); good.py must get no error.
    command = [sys.executable, "-I", "-m", "mypy", "--strict", "--cache-dir", ".mypy_cache"]
    done = subprocess.run(
        [*command, "good.py", "bad.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines() == [
        'bad.py:6: error: Incompatible return value type (got "str | None", expected "int")  '
        "[return-value]",
        "Found 1 error in 1 file (checked 2 source files)",
    ]
