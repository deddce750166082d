"""``skyproto emulator``: the verb run as a real process, and the profile it prints as ``--hosts``."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from skyproto import Hosts
from skyproto.cli import main
from skyproto.cli._base import CliContext
from skyproto.cli._main import build_parser
from skyproto.emulator import DEFAULT_ACCOUNT, EmulatorServer, numbered_accounts
from skyproto.emulator.profile import SERVED_HOSTS
from skyproto.ids import password_hash
from skyproto.mac256 import mac256

pytestmark = pytest.mark.integration

UNAUTHORISED = {
    "status": {"code": 40100, "text": "Authentication failed. Invalid or expired token."}
}


def _get_profile(url: str, ca_bundle: str | None) -> tuple[int, Any]:
    """One real exchange: ``GET`` the user profile without a token."""
    return _exchange("GET", url, ca_bundle)


def _exchange(
    method: str,
    url: str,
    ca_bundle: str | None,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One real exchange (``body``, if any, sent as JSON): the status and the JSON answer."""
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_bundle)
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=10, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        conn.request(method, parts.path, body=data, headers=sent)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _account() -> dict[str, str]:
    return {"user": DEFAULT_ACCOUNT.user, "password": DEFAULT_ACCOUNT.password}


# -- the verb as a process ------------------------------------------------------------------------


def test_plain_emulator_prints_its_profile_serves_and_exits_0_on_sigterm(launch: Any) -> None:
    running = launch("--port", "0", global_args=("--verbose",))
    profile = running.profile

    assert list(profile) == ["hosts", "ca_bundle", "account", "accounts"]
    assert list(profile["hosts"]) == list(SERVED_HOSTS)
    origin = urllib.parse.urlsplit(profile["hosts"]["api.skype.com"])
    assert origin.port is not None
    assert origin.port > 0
    assert profile["hosts"] == {
        host: f"http://127.0.0.1:{origin.port}/{host}" for host in SERVED_HOSTS
    }
    assert profile["ca_bundle"] is None
    assert (profile["account"], profile["accounts"]) == (_account(), 0)

    hosts = Hosts.from_json(profile)
    url = hosts.url("https://api.skype.com/users/self/profile")
    assert url == f"http://127.0.0.1:{origin.port}/api.skype.com/users/self/profile"
    assert _get_profile(url, None) == (401, UNAUTHORISED)

    code, out, err = running.stop()
    assert (code, out) == (0, "")  # exactly one line on stdout
    # The global --verbose reaches the emulator: one line per request.
    assert err == f"profile: GET {url}\n"


def test_tls_emulator_gives_each_host_a_port_and_a_ca_bundle(launch: Any) -> None:
    running = launch("--port", "0", "--tls", "--scenario", "hold=1")
    profile = running.profile

    assert list(profile) == ["hosts", "ca_bundle", "account", "accounts"]
    assert list(profile["hosts"]) == list(SERVED_HOSTS)
    ports = set()
    for base in profile["hosts"].values():
        found = re.fullmatch(r"https://127\.0\.0\.1:([0-9]+)", base)
        assert found is not None, base
        ports.add(int(found.group(1)))
    assert len(ports) == len(SERVED_HOSTS)
    ca_bundle = profile["ca_bundle"]
    assert isinstance(ca_bundle, str)
    assert Path(ca_bundle).read_text(encoding="ascii").startswith("-----BEGIN CERTIFICATE-----")
    assert (profile["account"], profile["accounts"]) == (_account(), 0)

    url = f"{profile['hosts']['api.skype.com']}/users/self/profile"
    assert _get_profile(url, ca_bundle) == (401, UNAUTHORISED)

    assert running.stop() == (0, "", "")
    assert not os.path.exists(ca_bundle)  # the certificates go with the server


def test_accounts_option_serves_numbered_accounts_a_client_rebuilds_from_the_profile(
    launch: Any,
) -> None:
    running = launch("--accounts", "3")
    profile = running.profile
    assert (profile["account"], profile["accounts"]) == (_account(), 3)
    hosts = Hosts.from_json(profile)
    last = numbered_accounts(profile["accounts"])[-1]
    login = {
        "username": last.skype_name,
        "passwordHash": password_hash(last.skype_name, last.password),
        "scopes": "client",
    }
    status, answer = _exchange(
        "POST", hosts.url("https://api.skype.com/login/skypetoken"), None, body=login
    )
    assert status == 200
    url = hosts.url("https://api.skype.com/users/self/profile")
    token = {"X-SkypeToken": answer["skypetoken"]}
    status, me = _exchange("GET", url, None, headers=token)
    assert (status, me["username"], me["emails"]) == (200, "live:user2", ["user2@example.com"])
    assert running.stop() == (0, "", "")


def test_several_emulators_run_at_once_and_ctrl_c_stops_one(launch: Any) -> None:
    first, second = launch("--port", "0"), launch("--port", "0")
    first_api, second_api = (
        first.profile["hosts"]["api.skype.com"],
        second.profile["hosts"]["api.skype.com"],
    )
    assert urllib.parse.urlsplit(first_api).port != urllib.parse.urlsplit(second_api).port

    assert first.stop(signal.SIGINT) == (0, "", "")
    # The other one is unaffected.
    assert _get_profile(f"{second_api}/users/self/profile", None) == (401, UNAUTHORISED)
    assert second.stop() == (0, "", "")


def test_help_names_the_default_account() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "skyproto", "emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: skyproto emulator ")
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert f"Default account: user {DEFAULT_ACCOUNT.user}" in text
    assert DEFAULT_ACCOUNT.password in text
    assert "user{i}@example.com" in text
    for option in ("--host", "--port", "--scenario", "--tls", "--accounts"):
        assert option in text
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--port", "eighty"], "argument --port: invalid int value: 'eighty'"),
        (["--scenario", "nope=1"], "unknown scenario key 'nope'"),
        (["--host", "192.0.2.1"], "loopback addresses only"),
        (["--accounts", "-1"], "the number of accounts is a whole number from 0 to 100000"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "skyproto", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr


# -- the verb in-process ---------------------------------------------------------------------------


def test_main_passes_the_verb_streams_to_the_emulator() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["emulator", "--help"], stdout=out, stderr=err) == 0
    assert DEFAULT_ACCOUNT.user in out.getvalue()
    assert err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert main(["emulator", "--bogus"], stdout=out, stderr=err) == 2
    assert out.getvalue() == ""
    assert err.getvalue().endswith("error: unrecognized arguments: --bogus\n")


def test_every_argument_after_the_verb_is_the_emulators() -> None:
    args = build_parser().parse_args(
        ["--hosts", "h.json", "emulator", "--hosts", "x", "-h", "--port", "7", "-1"]
    )
    assert args.hosts == "h.json"
    assert args.emulator_args == ["--hosts", "x", "-h", "--port", "7", "-1"]
    assert build_parser().parse_args(["emulator"]).emulator_args == []


# -- the profile as --hosts ------------------------------------------------------------------------


def test_the_printed_profile_is_accepted_as_hosts_file(tmp_path: Path) -> None:
    with EmulatorServer() as server:
        profile_text = server.profile_json()
    profile = json.loads(profile_text)
    path = tmp_path / "profile.json"
    path.write_text(profile_text + "\n", encoding="utf-8")

    result = subprocess.run(
        [sys.executable, "-m", "skyproto", "--hosts", str(path), "mac256", "1700000000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        mac256("1700000000") + "\n",
        "",
    )

    # The same file read the way every verb gets it: the "hosts" member becomes the profile.
    args = build_parser().parse_args(["--hosts", str(path), "mac256", "x"])
    ctx = CliContext.from_args(args, stdout=io.StringIO(), stderr=io.StringIO())
    assert dict(ctx.hosts.overrides) == profile["hosts"]
    assert ctx.hosts.api == profile["hosts"]["api.skype.com"]
    assert (
        ctx.hosts
        == Hosts.from_json({"hosts": profile["hosts"]})
        == Hosts.from_json(profile["hosts"])
    )


def test_a_hosts_file_that_is_neither_form_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"hosts": ["not", "a", "map"]}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "skyproto", "--hosts", str(path), "mac256", "1700000000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.endswith(
        "error: LocalProtocolError: the 'hosts' member must be a JSON object\n"
    )


# -- importing the package ---------------------------------------------------------------------------


def test_importing_the_emulator_package_leaves_the_server_unloaded() -> None:
    # skyproto itself already pulls in socket and threading (through email.utils and attrs), so
    # the check blocks new imports of them instead of looking at what ends up loaded.
    code = """
import json, sys
import skyproto
blocked = ("socket", "ssl", "threading", "selectors", "signal", "tempfile", "shutil")
saved = {name: sys.modules.get(name) for name in blocked}
sys.modules.update(dict.fromkeys(blocked))  # importing any of them now raises ImportError
try:
    import skyproto.emulator
    from skyproto.emulator import DEFAULT_ACCOUNT, Emulator, Scenario
    from skyproto.emulator.scenario import parse_scenario
finally:
    for name, module in saved.items():
        if module is None:
            del sys.modules[name]
        else:
            sys.modules[name] = module
early = [m for m in ("ssl", "skyproto.emulator.server", "skyproto.emulator.tls") if m in sys.modules]
from skyproto.emulator import EmulatorServer, LoggedRequest, serve
import skyproto.emulator.server as server
print(json.dumps({
    "early": early,
    "lazy": [EmulatorServer is server.EmulatorServer, LoggedRequest is server.LoggedRequest,
             serve is server.serve],
    "listed": sorted(set(skyproto.emulator.__all__) - set(dir(skyproto.emulator))),
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"early": [], "lazy": [True, True, True], "listed": []}


def test_unknown_package_attributes_still_raise_attribute_error() -> None:
    import skyproto.emulator as package

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        package.nope  # noqa: B018
