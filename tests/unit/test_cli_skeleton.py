"""The command-line skeleton: options, the mac256 verb, exit codes, transports and tracing."""

from __future__ import annotations

import argparse
import http.server
import io
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from h11_server import ThrowawayCA

from skyproto import (
    Flow,
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    SkypeApiException,
    TransportError,
)
from skyproto._flow import request
from skyproto.calls import DEFAULT_ACCEPTED, check_status
from skyproto.cli import _base, _mac256, _main, main
from skyproto.cli._base import TRANSPORTS, CliContext, Verb
from skyproto.cli._main import build_parser

SECRET = "skypetoken-SECRET-do-not-print"
RESPONSE_1700000000 = "abe5fadd8fa2021a9041e263584ea4ab"


# -- a tiny local HTTP(S) server --------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 404 if self.path.startswith("/missing") else 200
        body = json.dumps({"path": self.path, "token": self.headers.get("X-SkypeToken")}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    yield from _serve(None)


@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_base(throwaway_ca: ThrowawayCA) -> Iterator[str]:
    yield from _serve(throwaway_ca.server_context())


def _fetch(url: str) -> Flow[dict[str, Any]]:
    req = HttpRequest.build("GET", url, headers=[("X-SkypeToken", SECRET)], timeout=10)
    response = yield from request(req)
    check_status(response, DEFAULT_ACCEPTED, method=req.method, url=req.url)
    body: dict[str, Any] = response.json()
    return body


def _context(**kwargs: Any) -> tuple[CliContext, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return CliContext(stdout=out, stderr=err, **kwargs), out, err


# -- the mac256 verb and exit codes ---------------------------------------------------------------


def test_mac256_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mac256", "1700000000"]) == 0
    captured = capsys.readouterr()
    assert captured.out == RESPONSE_1700000000 + "\n"
    assert captured.err == ""


def test_explicit_streams() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["mac256", "123456"], stdout=out, stderr=err) == 0
    assert out.getvalue() == "9853a9366c6d59908176a81baf7e68ec\n"
    assert err.getvalue() == ""


def test_global_options_before_the_verb(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--transport", "stdlib", "--verbose", "mac256", "1700000000"]
    assert main(argv) == 0
    assert capsys.readouterr().out == RESPONSE_1700000000 + "\n"


def test_skype_exception_exits_1_with_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mac256", "caf\u00e9"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: LocalProtocolError: a Mac256 challenge must be ASCII text\n"


def test_error_message_is_flattened_to_the_last_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(challenge: str) -> str:
        raise SkypeApiException("first line\nsecond line")

    monkeypatch.setattr(_mac256, "mac256", fail)
    assert main(["mac256", "1"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "error: SkypeApiException: first line second line"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["mac256"],
        ["mac256", "1", "2"],
        ["--transport", "curl", "mac256", "1"],
        ["mac256", "--transport", "curl", "1"],  # global options are checked after it too
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage: skyproto" in captured.err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "mac256" in out
    assert "--ca-bundle" in out
    assert "{requests,httpx,httpx-async,stdlib}" in out


def test_keyboard_interrupt_exits_0_in_every_verb(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(challenge: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(_mac256, "mac256", interrupted)
    assert main(["mac256", "1"]) == 0
    assert capsys.readouterr().err == "interrupted\n"


def test_a_closed_stdout_exits_0_without_a_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def gone(challenge: str) -> str:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_mac256, "mac256", gone)
    assert main(["mac256", "1"]) == 0
    assert capsys.readouterr() == ("", "")


def test_missing_hosts_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["--hosts", str(missing), "mac256", "1"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: LocalProtocolError: cannot read hosts file ")


def test_context_from_options(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts.json"
    hosts_file.write_text(json.dumps({"hosts": {"login.live.com": "http://127.0.0.1:9/live"}}))
    args = build_parser().parse_args(
        [
            "--hosts",
            str(hosts_file),
            "--ca-bundle",
            "/tmp/ca.pem",
            "--transport",
            "httpx-async",
            "--verbose",
            "mac256",
            "1",
        ]
    )
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext.from_args(args, stdout=out, stderr=err)
    assert ctx.hosts == Hosts(overrides={"login.live.com": "http://127.0.0.1:9/live"})
    assert ctx.hosts.msacc == "http://127.0.0.1:9/live"
    assert (ctx.transport, ctx.ca_bundle, ctx.verbose, ctx.is_async) == (
        "httpx-async",
        "/tmp/ca.pem",
        True,
        True,
    )
    assert ctx.stdout is out
    assert ctx.stderr is err


def test_defaults() -> None:
    args = build_parser().parse_args(["mac256", "1"])
    ctx = CliContext.from_args(args, stdout=io.StringIO(), stderr=io.StringIO())
    assert ctx.hosts == Hosts()
    assert (ctx.transport, ctx.ca_bundle, ctx.verbose) == ("stdlib", None, False)


# -- ctx.run over every transport -----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_run_drives_a_flow_with_each_transport(transport: str, http_base: str) -> None:
    ctx, _out, err = _context(transport=transport)
    body = ctx.run(_fetch(http_base + "/hello?x=1"))
    assert body == {"path": "/hello?x=1", "token": SECRET}
    assert err.getvalue() == ""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verbose_traces_redacted_traffic(transport: str, http_base: str) -> None:
    ctx, out, err = _context(transport=transport, verbose=True)
    body = ctx.run(_fetch(http_base + "/trace"))
    assert body["token"] == SECRET  # the server got it ...
    trace = err.getvalue()
    assert SECRET not in trace  # ... the trace did not show it
    lines = trace.splitlines()
    assert lines[0] == f"> GET {http_base}/trace"
    assert any(line.startswith("> ") and "X-SkypeToken" in line for line in lines)
    assert f"< HTTP 200 ({http_base}/trace)" in lines
    assert out.getvalue() == ""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ca_bundle_builds_tls_trust(
    transport: str, https_base: str, throwaway_ca: ThrowawayCA
) -> None:
    ctx, _out, _err = _context(transport=transport, ca_bundle=str(throwaway_ca.ca_path))
    assert ctx.run(_fetch(https_base + "/tls")) == {"path": "/tls", "token": SECRET}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_without_the_ca_bundle_the_certificate_is_refused(transport: str, https_base: str) -> None:
    ctx, _out, _err = _context(transport=transport)
    with pytest.raises(TransportError) as info:
        ctx.run(_fetch(https_base + "/tls"))
    assert SECRET not in str(info.value)


def test_unreadable_ca_bundle(tmp_path: Path) -> None:
    ctx, _out, _err = _context(ca_bundle=str(tmp_path / "missing.pem"))
    with pytest.raises(LocalProtocolError, match=r"^cannot load CA bundle "):
        ctx.make_transport()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    ctx, _out, _err = _context(ca_bundle=str(garbage))
    with pytest.raises(LocalProtocolError, match=r"^cannot load CA bundle "):
        ctx.make_transport()


def test_unknown_transport_name() -> None:
    ctx, _out, _err = _context(transport="curl")
    with pytest.raises(LocalProtocolError, match="unknown transport"):
        ctx.make_transport()


# -- a verb built on ctx.run, end to end through main() -------------------------------------------


def _fetch_verb(args: argparse.Namespace, ctx: CliContext) -> int:
    body = ctx.run(_fetch(args.url))
    ctx.out(body["path"])
    return 0


def _configure_fetch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url")


@pytest.fixture
def with_fetch_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _main, "VERBS", (*_main.VERBS, Verb("fetch", "GET a URL", _fetch_verb, _configure_fetch))
    )


@pytest.mark.usefixtures("with_fetch_verb")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verb_over_main(transport: str, http_base: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--transport", transport, "--verbose", "fetch", http_base + "/ok"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "/ok\n"
    assert captured.err.startswith(f"> GET {http_base}/ok\n")
    assert SECRET not in captured.err


@pytest.mark.usefixtures("with_fetch_verb")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_api_error_over_main(
    transport: str, http_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--transport", transport, "fetch", http_base + "/missing"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: SkypeApiException: 404 response from GET {http_base}/missing\n"
    )


@pytest.mark.usefixtures("with_fetch_verb")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_failed_certificate_check_names_ca_bundle(
    transport: str, https_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--transport", transport, "fetch", https_base + "/tls"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: TransportError: ")
    assert "pass --ca-bundle FILE" in last


@pytest.mark.usefixtures("with_fetch_verb")
def test_other_transport_errors_name_no_ca_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--transport", "stdlib", "fetch", "http://127.0.0.1:9/x"]) == 1
    assert "--ca-bundle" not in capsys.readouterr().err


@pytest.mark.usefixtures("with_fetch_verb")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_spoken_to_a_plain_server_names_no_ca_bundle(
    transport: str, http_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # An SSL error that is not a failed certificate check: another CA would not help.
    url = http_base.replace("http://", "https://", 1) + "/plain"
    assert main(["--transport", transport, "fetch", url]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: TransportError: ")
    assert "--ca-bundle" not in last


@pytest.mark.usefixtures("with_fetch_verb")
def test_transport_error_over_main(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) on loopback is closed in the test environment: the connection is refused.
    assert main(["--transport", "stdlib", "fetch", "http://127.0.0.1:9/x"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: TransportError: ")
    assert "Traceback" not in last


# -- the real entry points --------------------------------------------------------------------------


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_python_dash_m_skyproto() -> None:
    result = _python("-m", "skyproto", "mac256", "1700000000")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        RESPONSE_1700000000 + "\n",
        "",
    )


def test_importing_the_cli_loads_no_http_client_library() -> None:
    # The drivers (and asyncio) come with the CLI; a client library only with its transport.
    code = (
        "import sys, skyproto.cli, skyproto.__main__;"
        "print(sorted(m for m in ('requests', 'httpx', 'skyproto.transports') if m in sys.modules))"
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['skyproto.transports']\n"


def test_tracing_wrapper_passes_the_response_through() -> None:
    class Echo:
        def send(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse(204, (), b"", request.url)

    stream = io.StringIO()
    wrapped = _base.TracingTransport(Echo(), stream)
    response = wrapped.send(HttpRequest("GET", "http://h/x"))
    assert response == HttpResponse(204, (), b"", "http://h/x")
    assert stream.getvalue() == "> GET http://h/x\n< HTTP 204 (http://h/x)\n"
