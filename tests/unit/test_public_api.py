"""The public face: what ``skyproto`` and its subpackages export, and nothing more.

The rule (docs/design.md, "Public face"): a name is public when it is listed in the ``__all__`` of
a module whose dotted path has no underscore part. Everything else is private, however many
modules use it. These tests pin the exported lists, so a name becomes public only by editing them
on purpose.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import skyproto.transports

import skyproto

TOP_LEVEL = [
    "AuthKind",
    "CallEvent",
    "ConversationUpdateEvent",
    "Credentials",
    "Deliver",
    "DeviceCodeLogin",
    "DevicePrompt",
    "EditMessageEvent",
    "Effect",
    "EndpointPresenceEvent",
    "Event",
    "EventLoop",
    "Flow",
    "GuestCredentials",
    "Hosts",
    "HttpRequest",
    "HttpResponse",
    "Listing",
    "LocalProtocolError",
    "LoginMethod",
    "LoopPolicy",
    "LoopStats",
    "Message",
    "MessageEvent",
    "MessageKind",
    "NewMessageEvent",
    "Now",
    "PagingState",
    "PresenceEvent",
    "ProtocolError",
    "Registration",
    "RegistrationToken",
    "RemoteProtocolError",
    "Session",
    "SessionState",
    "Shared",
    "SkypeApiException",
    "SkypeAuthException",
    "SkypeException",
    "SkypeRateLimitException",
    "SkypeToken",
    "SkypeTokenException",
    "Sleep",
    "Status",
    "Stepper",
    "ThreadUpdateEvent",
    "TransportError",
    "TransportTimeout",
    "TypedEvent",
    "TypingEvent",
    "UnknownEvent",
    "UntrustedHostError",
    "__version__",
    "chat_from_url",
    "decode_events",
    "deliver",
    "external_call",
    "lock_and_key",
    "no_prefix",
    "now",
    "request",
    "shared",
    "sleep",
    "user_from_url",
]

SUBPACKAGES = {
    "skyproto.auth": [
        "LoginMethod",
        "api_login",
        "DeviceCodeLogin",
        "DeviceLoginRequired",
        "DevicePrompt",
        "choose_method",
        "fetch_user_id",
        "guest_login",
        "live_login",
        "login",
        "refresh_login",
        "soap_login",
        "teams_login",
    ],
    "skyproto.auth.teams": [
        "DeviceCodeLogin",
        "DeviceLoginRequired",
        "DevicePrompt",
        "OAuthVersion",
        "Region",
        "TeamsAuth",
        "teams_login",
    ],
    "skyproto.chat": [
        "ChatListing",
        "ChatPage",
        "SentMessage",
        "conversations_listing",
        "messages_listing",
        "send",
        "summarise_message",
    ],
    "skyproto.cli": ["build_parser", "main"],
    "skyproto.emulator": [
        "Account",
        "DEFAULT_ACCOUNT",
        "DEFAULT_MEETING_ID",
        "Emulator",
        "EmulatorServer",
        "Fault",
        "LoggedRequest",
        "Scenario",
        "numbered_accounts",
        "serve",
    ],
    "skyproto.emulator.testing": [
        "Answer",
        "Clock",
        "PASS",
        "Pass",
        "Peer",
        "T0",
        "Took",
        "drive",
    ],
    "skyproto.transports": [
        "AsyncTransport",
        "AsyncioStream",
        "BoundedBody",
        "Budgets",
        "DEFAULT_CONNECTIONS",
        "DEFAULT_MAX_BODY_SIZE",
        "DEFAULT_POLL_CONNECTIONS",
        "DEFAULT_POOL_TIMEOUT",
        "DEFAULT_TIMEOUT",
        "SocketStream",
        "SyncTransport",
        "WireHeads",
        "aiterate_pages",
        "check_body_size",
        "check_connections",
        "check_limits",
        "check_seconds",
        "iterate_pages",
        "pool_timeout_error",
        "run_async",
        "run_sync",
        "ssl_context_for_verify",
        "transport_error",
        "wire_head",
        "wire_headers",
    ],
    "skyproto.trouter": [
        "Frame",
        "FrameType",
        "TrouterClient",
        "TrouterPolicy",
        "TrouterSession",
        "TrouterStats",
        "decode_body",
        "events_from_messages",
        "parse_frame",
    ],
}

#: Names defined in an underscore module that are public on purpose, by that module.
DELIBERATE = {
    "skyproto._flow": {
        "Deliver",
        "Effect",
        "Flow",
        "Now",
        "Shared",
        "Sleep",
        "Stepper",
        "deliver",
        "now",
        "request",
        "shared",
        "sleep",
    },
    "skyproto._http": {"HttpRequest", "HttpResponse"},
    "skyproto._version": {"__version__"},
    "skyproto._snapshot": {
        "SessionState",
        "TeamsState",
        "dump_snapshot",
        "format_skpy_token_file",
        "load_snapshot",
        "parse_skpy_token_file",
    },
    "skyproto.cli._main": {"build_parser", "main"},
    "skyproto.transports._drive": set(SUBPACKAGES["skyproto.transports"])
    - {
        "check_seconds",
        "AsyncioStream",
        "SocketStream",
        "ssl_context_for_verify",
        "Budgets",
        "DEFAULT_CONNECTIONS",
        "DEFAULT_POLL_CONNECTIONS",
        "DEFAULT_POOL_TIMEOUT",
        "check_connections",
        "pool_timeout_error",
    },
    "skyproto.transports._budget": {
        "Budgets",
        "DEFAULT_CONNECTIONS",
        "DEFAULT_POLL_CONNECTIONS",
        "DEFAULT_POOL_TIMEOUT",
        "check_connections",
        "pool_timeout_error",
    },
    "skyproto.transports._streams": {"AsyncioStream", "SocketStream", "ssl_context_for_verify"},
    "skyproto.trouter._frames": {"Frame", "FrameType", "decode_body", "parse_frame"},
}

#: Modules without ``__all__``: the ``python -m skyproto`` entry and the pytest plugin.
WITHOUT_ALL = {"skyproto.__main__", "skyproto.emulator.pytest_plugin"}

ROOT = Path(skyproto.__file__).resolve().parent


def _module_names() -> list[str]:
    names = {"skyproto"}
    for package in (skyproto, skyproto.transports):
        prefix = package.__name__ + "."
        names |= {info.name for info in pkgutil.walk_packages(package.__path__, prefix)}
    return sorted(names)


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


PUBLIC_MODULES = [
    name for name in _module_names() if not _is_private(name) and name not in WITHOUT_ALL
]


def _source(module: str) -> Path:
    file = importlib.import_module(module).__file__
    assert file is not None
    return Path(file)


def _tree(module: str) -> ast.Module:
    return ast.parse(_source(module).read_text(encoding="utf-8"))


def _walk_top(tree: ast.Module) -> list[ast.stmt]:
    """Top-level statements, including those under ``if TYPE_CHECKING:`` and ``try:``."""
    statements: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try):
            statements += [*node.body, *getattr(node, "orelse", [])]
        statements.append(node)
    return statements


def _home(module: str, name: str) -> tuple[str, ast.stmt | None]:
    """The module whose source defines ``name`` as ``module`` exports it, following imports."""
    for node in _walk_top(_tree(module)):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    base = importlib.util.resolve_name(
                        "." * node.level + (node.module or ""), _package(module)
                    )
                    return _home(base, alias.name)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == name:
                return module, node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return module, node
    raise AssertionError(f"{module}.{name} is defined nowhere")


def _package(module: str) -> str:
    loaded = importlib.import_module(module)
    return module if hasattr(loaded, "__path__") else module.rpartition(".")[0]


def _exports() -> list[tuple[str, str]]:
    return [
        (module, name)
        for module in PUBLIC_MODULES
        for name in importlib.import_module(module).__all__
    ]


def test_top_level_exports_are_pinned() -> None:
    assert sorted(skyproto.__all__) == TOP_LEVEL


@pytest.mark.parametrize("module", sorted(SUBPACKAGES))
def test_subpackage_exports_are_pinned(module: str) -> None:
    assert sorted(importlib.import_module(module).__all__) == sorted(SUBPACKAGES[module])


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_module_says_what_it_exports(module: str) -> None:
    loaded = importlib.import_module(module)
    exported = loaded.__all__
    assert len(set(exported)) == len(exported), f"{module}.__all__ repeats a name"
    if not exported:
        assert "internal" in (loaded.__doc__ or "").lower(), (
            f"{module} exports nothing, so its docstring must say it is internal"
        )


@pytest.mark.parametrize(("module", "name"), _exports())
def test_every_exported_name_exists_and_is_documented(module: str, name: str) -> None:
    value = getattr(importlib.import_module(module), name)
    home, node = _home(module, name)
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismodule(value):
        doc = inspect.getdoc(value) or ""
        assert doc.strip(), f"{module}.{name} has no docstring"
        assert not doc.startswith(f"{name}("), f"{module}.{name} has only a generated docstring"
        return
    # Data: documented by a ``#:`` comment above it, or in its module's docstring.
    lines = _source(home).read_text(encoding="utf-8").splitlines()
    assert node is not None
    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
    mentioned = name in (importlib.import_module(home).__doc__ or "") or name in (
        importlib.import_module(module).__doc__ or ""
    )
    assert above.startswith("#:") or mentioned, f"{module}.{name} is not documented"


@pytest.mark.parametrize(("module", "name"), _exports())
def test_no_private_definition_is_public_by_accident(module: str, name: str) -> None:
    home, _ = _home(module, name)
    if _is_private(home):
        assert name in DELIBERATE.get(home, set()), (
            f"{module}.{name} comes from the private module {home}; export it deliberately "
            "(DELIBERATE in this test) or keep it out of __all__"
        )


def test_deliberate_reexports_are_all_exported_somewhere() -> None:
    exported = {(_home(module, name)[0], name) for module, name in _exports()}
    for home, names in DELIBERATE.items():
        for name in names:
            assert (home, name) in exported, f"{home}.{name} is listed as public but is not"


def test_import_skyproto_mac256_gives_the_module() -> None:
    code = (
        "import types, skyproto.mac256 as m, skyproto; "
        "assert isinstance(m, types.ModuleType), m; "
        "assert isinstance(skyproto.mac256, types.ModuleType); "
        "assert callable(m.mac256) and skyproto.lock_and_key is m.lock_and_key"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "mac256" not in skyproto.__all__


@pytest.mark.parametrize("transport", ["httpx", "requests", "stdlib"])
def test_transports_import_only_public_names(transport: str) -> None:
    module = f"skyproto.transports.{transport}"
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom):
            source = importlib.util.resolve_name(
                "." * node.level + (node.module or ""), "skyproto.transports"
            )
            if not source.startswith("skyproto"):
                continue
            assert not _is_private(source), f"{module} imports from {source}"
            public = importlib.import_module(source).__all__
            for alias in node.names:
                assert alias.name in public, f"{module} imports {source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("skyproto") or not _is_private(alias.name)
