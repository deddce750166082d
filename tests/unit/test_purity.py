"""The core does no I/O, checked three ways (docs/design.md, "Properties that must hold", 1).

1. A fresh interpreter imports every core module and no HTTP client, event loop or TLS module
   comes with them.
2. The source of every core module is read as an AST: no forbidden import, no clock read, no
   sleep, no file access (one documented exception: ``Hosts.from_file``).
3. Flows are driven with canned answers under an audit hook, in a subprocess because audit hooks
   cannot be removed: no socket, file, process or sleep event may fire.

The core is every module under ``skyproto/`` except the edge, which is allowed I/O by design and
is read from the layout (docs/design.md, "Layout"): everything in an edge package
(:data:`EDGE_PACKAGES`: the command line, and the drivers and transports of the top-level
``transports/`` folder), every ``__main__``, and the few named edge modules of
:data:`EDGE_MODULES` (the file store, the emulator's server with the emulator package's
``__init__`` that re-exports it, and the emulator's pytest plugin). The list of modules is computed
from the files, so a new module is checked without being named here, and a new module in an edge
package is edge without being named either. A fourth check reads every core module's imports: none
may name an edge module, so the import arrows point from the edge into the core only.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from skyproto import (
    Credentials,
    EventLoop,
    Flow,
    GuestCredentials,
    HttpRequest,
    HttpResponse,
    LoginMethod,
    Session,
)
from skyproto._http import describe
from skyproto.calls import external_call
from skyproto.emulator.core import Emulator
from skyproto.emulator.profile import DEFAULT_ACCOUNT, DEFAULT_MEETING_ID
from skyproto.emulator.scenario import Scenario as Knobs
from skyproto.emulator.testing import Peer
from skyproto.emulator.trouter import PeerDriver, TrouterPeer
from skyproto.events import decode_events
from skyproto.hosts import Hosts
from skyproto.trouter.client import TrouterClient

#: Packages that are I/O as a whole, every module in them included.
EDGE_PACKAGES = ("skyproto.cli", "skyproto.transports")
#: Edge modules outside those packages. ``skyproto.emulator`` is its package ``__init__``, which
#: imports the server; its pure modules (core, pages, scenario...) are checked like the rest.
EDGE_MODULES = frozenset(
    {
        "skyproto.store",
        "skyproto.emulator",
        "skyproto.emulator.server",
        "skyproto.emulator.pytest_plugin",
    }
)
#: The one file read the core may do, by module and function.
ALLOWED = frozenset({("skyproto.hosts", "Hosts.from_file", "open")})

_SPEC = importlib.util.find_spec("skyproto")
assert _SPEC is not None
assert _SPEC.submodule_search_locations
ROOT = Path(_SPEC.submodule_search_locations[0])


@attrs.frozen
class Module:
    name: str
    path: Path


def all_modules(path: Path = ROOT, prefix: str = "skyproto") -> Iterator[Module]:
    """Every module under ``path``, found from the files (nothing is imported)."""
    yield Module(prefix, path / "__init__.py")
    for info in pkgutil.iter_modules([str(path)]):
        name = f"{prefix}.{info.name}"
        if info.ispkg:
            yield from all_modules(path / info.name, name)
        else:
            yield Module(name, path / f"{info.name}.py")


def is_edge(name: str) -> bool:
    """Whether the module ``name`` may do I/O: it is in an edge package, a ``__main__``, or named."""
    return (
        _matches(name, EDGE_PACKAGES)
        or name.rpartition(".")[2] == "__main__"
        or name in EDGE_MODULES
    )


def core_modules() -> list[Module]:
    return [module for module in all_modules() if not is_edge(module.name)]


def edge_modules() -> list[Module]:
    return [module for module in all_modules() if is_edge(module.name)]


def _python_files(root: Path) -> Iterator[Path]:
    # skyproto/transports is a link to the top-level transports/ folder: follow it.
    for folder, _dirs, files in os.walk(root, followlinks=True):
        yield from (Path(folder, name) for name in files if name.endswith(".py"))


def test_the_module_list_is_complete_and_the_edge_list_is_current() -> None:
    names = {module.name for module in all_modules()}
    files = {
        ".".join(("skyproto", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in _python_files(ROOT)
    }
    assert names == files
    assert names >= EDGE_MODULES, "an edge module was renamed or removed; update EDGE_MODULES"
    assert names >= set(EDGE_PACKAGES), "an edge package was renamed; update EDGE_PACKAGES"
    edge = {module.name for module in edge_modules()}
    assert {
        "skyproto.__main__",
        "skyproto.cli._base",
        "skyproto.cli._main",
        "skyproto.store",
        "skyproto.transports._drive",
    } <= edge
    core = {module.name for module in core_modules()}
    assert {"skyproto._http", "skyproto._flow", "skyproto.calls", "skyproto.hosts"} <= core
    assert {"skyproto.session", "skyproto.emulator.core"} <= core


# -- 1. importing the core in a fresh interpreter -----------------------------------------------

#: Must not be loaded by importing the core: HTTP clients, the event loop, TLS, processes.
NOT_LOADED = (
    "requests",
    "httpx",
    "httpcore",
    "urllib3",
    "asyncio",
    "anyio",
    "http.client",
    "urllib.request",
    "ssl",
    "subprocess",
    "skyproto.transports",
)
# ``socket``, ``select`` and ``selectors`` are not listed: ``email.utils`` (used to read HTTP
# dates) imports ``socket``, which imports the other two. Importing them opens nothing; the
# audit-hook test below is what proves no socket is used. ``time`` is loaded by the interpreter
# itself, and ``threading`` comes with ``logging``.

_IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, sys, types
    names, emulator_dir = json.loads(sys.argv[1]), sys.argv[2]
    import skyproto
    # Stand in for the emulator package so its __init__ (which imports the server) is skipped.
    stub = types.ModuleType("skyproto.emulator")
    stub.__path__ = [emulator_dir]
    sys.modules["skyproto.emulator"] = stub
    for name in names:
        importlib.import_module(name)
    print(json.dumps(sorted(sys.modules)))
    """
)


def run_python(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_core_loads_no_http_client_event_loop_or_tls() -> None:
    names = [module.name for module in core_modules() if module.name != "skyproto"]
    loaded = set(json.loads(run_python(_IMPORT_ALL, json.dumps(names), str(ROOT / "emulator"))))
    assert set(names) <= loaded
    offenders = sorted(
        name for name in loaded for bad in NOT_LOADED if name == bad or name.startswith(bad + ".")
    )
    assert offenders == []


def test_why_socket_is_not_on_the_list() -> None:
    loaded = json.loads(
        run_python("import email.utils, json, sys; print(json.dumps(list(sys.modules)))")
    )
    assert "socket" in loaded


# -- 2. the architecture, statically ------------------------------------------------------------

#: No core module imports these (or anything under them).
FORBIDDEN_IMPORTS = (
    "requests",
    "httpx",
    "urllib3",
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "urllib.request",
    "http.client",
    "time",
    "subprocess",
)
#: No core module refers to these names (resolved through its imports).
FORBIDDEN_NAMES = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "open",
        "io.open",
        "os.open",
        "os.fdopen",
        "print",
        "input",
        "breakpoint",
        "sys.stdin",
        "sys.stdout",
        "sys.stderr",
    }
)
#: Nor any attribute under these, whatever it is called on.
FORBIDDEN_PREFIXES = ("time", "socket", "ssl", "asyncio", "subprocess", "shutil", "tempfile")
#: Nor these methods on anything (``pathlib`` file access).
FORBIDDEN_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes"})
#: The only ``os`` names a core module may use.
ALLOWED_OS = frozenset({"PathLike", "fspath"})
BUILTINS = frozenset({"open", "print", "input", "breakpoint"})


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


class ArchitectureChecker(ast.NodeVisitor):
    """Collects the I/O a module's source asks for: imports, clock reads, file access."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.aliases: dict[str, str] = {}
        self.scope: list[str] = []
        self.found: list[tuple[int, str, str]] = []  # line, qualified scope, what
        self.imports: list[tuple[int, str]] = []  # line, every name imported, fully qualified

    def report(self, node: ast.AST, what: str) -> None:
        scope = ".".join(self.scope)
        if (self.module, scope, what) not in ALLOWED:
            self.found.append((getattr(node, "lineno", 0), scope, what))

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = self.package.split(".")
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, *([node.module] if node.module else [])])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import(node, alias.name)
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = self._absolute(node)
        for alias in node.names:
            full = f"{source}.{alias.name}"
            self._check_import(node, full)
            if source == "os" and alias.name not in ALLOWED_OS:
                self.report(node, f"import os.{alias.name}")
            self.aliases[alias.asname or alias.name] = full

    def _check_import(self, node: ast.AST, name: str) -> None:
        self.imports.append((getattr(node, "lineno", 0), name))
        if _matches(name, FORBIDDEN_IMPORTS):
            self.report(node, f"import {name}")

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def _resolve(self, node: ast.expr) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.aliases:
            base = self.aliases[node.id]
        elif node.id in BUILTINS:
            base = node.id
        else:
            return None
        return ".".join([base, *reversed(parts)])

    def _check_name(self, node: ast.expr) -> None:
        name = self._resolve(node)
        if name is None:
            return
        forbidden_os = name.startswith("os.") and name.split(".")[1] not in ALLOWED_OS
        if name in FORBIDDEN_NAMES or _matches(name, FORBIDDEN_PREFIXES) or forbidden_os:
            self.report(node, name)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in FORBIDDEN_METHODS:
            self.report(node, f".{node.attr}")
        self._check_name(node)
        # The inner parts of a chain are part of this name; do not report them again.
        inner = node.value
        while isinstance(inner, ast.Attribute):
            inner = inner.value
        if not isinstance(inner, ast.Name):
            self.visit(node.value)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._check_name(node)


def violations(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str, str]]:
    checker = ArchitectureChecker(module, is_package)
    checker.visit(ast.parse(source))
    return checker.found


@pytest.mark.parametrize("module", core_modules(), ids=lambda module: module.name)
def test_core_module_source_asks_for_no_io(module: Module) -> None:
    source = module.path.read_text(encoding="utf-8")
    found = violations(source, module.name, is_package=module.path.name == "__init__.py")
    assert found == [], "\n".join(
        f"{module.name}:{line} in {scope or '<module>'}: {what}" for line, scope, what in found
    )


def test_the_checker_finds_each_kind_of_io() -> None:
    source = textwrap.dedent(
        """
        import time
        import datetime as dt
        from datetime import datetime, date
        import os, io, sys
        from os import environ
        from urllib import request
        from http.client import HTTPConnection
        import requests.adapters
        from .. import store
        from ..transports import run_sync

        def clock():
            return dt.datetime.now(dt.UTC)

        class Bad:
            def method(self, path):
                stamp = datetime.utcnow()
                today = date.today()
                time.sleep(1)
                with open(path) as fh:
                    return fh.read()

            def more(self, p):
                print("hi", file=sys.stderr)
                os.remove(p)
                io.open(p)
                return p.read_text()

        def from_file(path):
            return open(path)
        """
    )
    found = violations(source, "skyproto.auth.fake")
    assert [(line, what) for line, _, what in found] == [
        (2, "import time"),
        (6, "import os.environ"),
        (7, "import urllib.request"),
        (8, "import http.client.HTTPConnection"),
        (9, "import requests.adapters"),
        (14, "datetime.datetime.now"),
        (18, "datetime.datetime.utcnow"),
        (19, "datetime.date.today"),
        (20, "time.sleep"),
        (21, "open"),
        (25, "print"),
        (25, "sys.stderr"),
        (26, "os.remove"),
        (27, "io.open"),
        (28, ".read_text"),
        (31, "open"),
    ]
    assert [scope for line, scope, _ in found if line in (18, 26, 31)] == [
        "Bad.method",
        "Bad.more",
        "from_file",
    ]


# -- 4. the import arrows point from the edge into the core ---------------------------------------


def edge_imports(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """The edge modules ``module``'s source imports (each import's longest known module prefix,
    so ``from skyproto.emulator import X`` is the emulator's ``__init__`` and
    ``from skyproto.emulator.core import X`` is the pure core), with their lines."""
    known = {each.name for each in all_modules()}
    checker = ArchitectureChecker(module, is_package)
    checker.visit(ast.parse(source))
    found = []
    for line, name in checker.imports:
        parts = name.split(".")
        prefixes = (".".join(parts[:end]) for end in range(len(parts), 0, -1))
        target = next((prefix for prefix in prefixes if prefix in known), None)
        if target is not None and is_edge(target):
            found.append((line, target))
    return found


@pytest.mark.parametrize("module", core_modules(), ids=lambda module: module.name)
def test_core_module_imports_no_edge_module(module: Module) -> None:
    source = module.path.read_text(encoding="utf-8")
    found = edge_imports(source, module.name, is_package=module.path.name == "__init__.py")
    assert found == [], "\n".join(f"{module.name}:{line} imports {what}" for line, what in found)


def test_the_edge_import_check_finds_each_way_of_naming_an_edge_module() -> None:
    session = (ROOT / "session.py").read_text(encoding="utf-8")
    assert edge_imports(session, "skyproto.session") == []
    lines = (
        "from . import store",
        "from .store import save_state",
        "import skyproto.store",
        "from .transports import run_sync",
        "from skyproto.cli._base import CliContext",
        "from .cli import main",
        "from .emulator import EmulatorServer",
        "from .emulator.server import serve",
        "from . import __main__",
    )
    found = edge_imports(session + "\n".join(lines), "skyproto.session")
    start = len(session.splitlines())
    assert found == [
        (start + 1, "skyproto.store"),
        (start + 2, "skyproto.store"),
        (start + 3, "skyproto.store"),
        (start + 4, "skyproto.transports"),
        (start + 5, "skyproto.cli._base"),
        (start + 6, "skyproto.cli"),
        (start + 7, "skyproto.emulator"),
        (start + 8, "skyproto.emulator.server"),
        (start + 9, "skyproto.__main__"),
    ]
    # The emulator's pure modules are the core, though their package's __init__ is not.
    assert edge_imports("from skyproto.emulator.core import Emulator", "skyproto.loop") == []
    assert edge_imports("from . import core, scenario", "skyproto.emulator.pages") == []


def test_the_one_allowed_file_read_is_hosts_from_file() -> None:
    source = (ROOT / "hosts.py").read_text(encoding="utf-8")
    checker = ArchitectureChecker("skyproto.hosts", False)
    checker.visit(ast.parse(source))
    assert checker.found == []
    unlisted = ArchitectureChecker("skyproto.other", False)
    unlisted.visit(ast.parse(source))
    assert [(scope, what) for _, scope, what in unlisted.found] == [("Hosts.from_file", "open")]


# -- 3. flows under an audit hook ---------------------------------------------------------------

NOW = dt.datetime(2015, 10, 21, 7, 0, tzinfo=dt.UTC)
CONFIG_URL = "https://a.config.skype.com/config/v1/Skype/908_1.30.0.128/SkypePersonalization"


DEFAULT_KNOBS = Knobs()


@attrs.frozen
class Scenario:
    """A flow to drive with canned answers, and the outcome it must reach."""

    name: str
    start: Callable[[], Flow[Any]]
    #: Canned answers in order, or ``None`` to answer with a fresh pure emulator.
    answers: tuple[HttpResponse, ...] | None
    outcome: str
    knobs: Knobs = DEFAULT_KNOBS


def session_round(
    credentials: Credentials | GuestCredentials, method: LoginMethod = LoginMethod.AUTO
) -> Flow[str]:
    """Connect, run one event-loop cycle and fetch one page of conversations."""
    session = Session(credentials=credentials, method=method)
    yield from session.connect()
    delivered: list[object] = []
    stats = yield from EventLoop(session, delivered.append).run(max_polls=1)
    items = yield from session.conversations().next_page()
    return (
        f"{session.user_id} delivered={stats.delivered} acks={stats.acks} "
        f"conversations={len(items or [])}"
    )


ACCOUNT = Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)


def trouter_round() -> Flow[str]:
    """Trouter against the pure peer, which carries the streams on a virtual clock: connect,
    a push, a drop, a reconnection with a catch-up, a push, a loss report. The whole drive runs
    when this flow starts, so it runs under the audit hook."""
    peer = TrouterPeer()

    def catch_up() -> Flow[list[Any]]:
        response = yield HttpRequest("GET", "https://go.trouter.skype.com/backlog")
        return list(decode_events(response.body))

    delivered: list[object] = []
    client = TrouterClient("token", "epid", delivered.append, hosts=Hosts(), catch_up=catch_up)
    driver = PeerDriver(client.run(), peer, NOW)
    driver.settle()
    peer.push("one", now=driver.now)
    driver.advance(40)
    peer.drop(driver.now)
    peer.push("two", now=driver.now)
    driver.advance(5)
    peer.report_loss(driver.now)
    driver.advance(40)
    stats = client.stats
    return (
        f"delivered={stats.delivered} connections={stats.connections} "
        f"catch_ups={stats.catch_ups} pings={stats.pings}"
    )
    yield  # a flow that yields nothing: the peer's driver carried out its effects


def outcome_of(value: object) -> str:
    if isinstance(value, HttpResponse):
        return f"returned {value.status} {value.json()!r}"
    return f"returned {value!r}"


#: Add a scenario here for each new flow; the audit test drives them all.
SCENARIOS = (
    Scenario(
        "SOAP login, registration, event loop, listing",
        lambda: session_round(ACCOUNT),
        None,
        "returned 'live:fred delivered=4 acks=2 conversations=2'",
    ),
    Scenario(
        "Live login after a registration redirect",
        lambda: session_round(ACCOUNT, LoginMethod.LIVE),
        None,
        "returned 'live:fred delivered=4 acks=2 conversations=2'",
        Knobs(host_redirect=True),
    ),
    Scenario(
        "Skype-API login",
        lambda: session_round(ACCOUNT, LoginMethod.API),
        None,
        "returned 'live:fred delivered=4 acks=2 conversations=2'",
    ),
    Scenario(
        "guest login",
        lambda: session_round(
            GuestCredentials(f"https://join.skype.com/{DEFAULT_MEETING_ID}", "Grace")
        ),
        None,
        "returned 'guest:grace_656c90bd delivered=4 acks=2 conversations=2'",
    ),
    Scenario(
        "Trouter push channel",
        trouter_round,
        (),
        "returned 'delivered=2 connections=2 catch_ups=2 pings=2'",
    ),
    Scenario(
        "external call, 200",
        lambda: external_call("GET", CONFIG_URL, params={"apikey": "x|y"}),
        (HttpResponse.build(200, json={"features": ["a"]}, url=CONFIG_URL),),
        "returned 200 {'features': ['a']}",
    ),
    Scenario(
        "external call, 202",
        lambda: external_call("POST", CONFIG_URL, json={"a": 1}),
        (HttpResponse(202),),
        f"raised SkypeApiException: 202 response from POST {CONFIG_URL}",
    ),
    Scenario(
        "external call, 429 with an HTTP date",
        lambda: external_call("GET", CONFIG_URL),
        (HttpResponse(429, (("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),)),),
        "raised SkypeRateLimitException: Rate limit exceeded; retry after 1680 s",
    ),
)


def drive(
    flow: Flow[Any], answers: tuple[HttpResponse, ...] | None, knobs: Knobs = DEFAULT_KNOBS
) -> str:
    """Run ``flow`` on the test peer against ``answers`` (or a pure emulator), its clock
    starting at NOW; describe how it ended. The traffic log is part of the drive."""
    peer = Peer(Emulator(scenario=knobs, seed=5), answers=answers or (), start=NOW)
    try:
        return outcome_of(peer.run(flow, limit=1000))
    except Exception as exc:  # the outcome is the exception
        return f"raised {type(exc).__name__}: {exc}"
    finally:
        for request, response in zip(peer.sent, peer.answers, strict=True):
            describe(request)
            if response is not None:
                describe(response)


WATCHED_EVENTS = ("socket.", "open", "os.", "subprocess.", "shutil.", "time.sleep", "ctypes.")


def run_scenarios_under_audit() -> dict[str, Any]:
    """Install the audit hook (for good), drive every scenario, then prove the hook works."""
    seen: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(WATCHED_EVENTS):
            seen.append(event)

    sys.addaudithook(hook)
    outcomes: dict[str, str] = {}
    events: dict[str, list[str]] = {}
    for scenario in SCENARIOS:
        seen.clear()
        outcomes[scenario.name] = drive(scenario.start(), scenario.answers, scenario.knobs)
        events[scenario.name] = list(seen)
    seen.clear()
    with open(os.devnull, "rb"):
        pass
    import socket

    socket.socket().close()
    return {"outcomes": outcomes, "events": events, "canary": list(seen)}


_AUDIT = textwrap.dedent(
    """
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("purity_scenarios", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    print(json.dumps(module.run_scenarios_under_audit()))
    """
)


def test_flows_do_no_io_under_an_audit_hook() -> None:
    report = json.loads(run_python(_AUDIT, __file__).splitlines()[-1])
    assert report["outcomes"] == {scenario.name: scenario.outcome for scenario in SCENARIOS}
    assert report["events"] == {scenario.name: [] for scenario in SCENARIOS}
    assert "open" in report["canary"]
    assert "socket.__new__" in report["canary"]


def test_the_scenarios_reach_their_outcomes_in_process() -> None:
    for scenario in SCENARIOS:
        assert drive(scenario.start(), scenario.answers, scenario.knobs) == scenario.outcome
