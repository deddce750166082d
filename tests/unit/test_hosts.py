"""Service URLs, host overrides and the trust allow-list (skyproto.hosts)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from skyproto import Hosts, LocalProtocolError, UntrustedHostError
from skyproto.hosts import DEFAULT_TRUSTED_DOMAINS, SERVICE_URLS, is_known_host

LOOPBACK = Hosts(
    overrides={
        "login.live.com": "http://127.0.0.1:8080/login.live.com/",
        "client-s.gateway.messenger.live.com": "https://127.0.0.12:8443",
    }
)


# -- defaults -----------------------------------------------------------------------------------


def test_service_urls_are_the_protocol_base_urls() -> None:
    assert dict(SERVICE_URLS) == {
        "login": "https://login.skype.com/login",
        "msacc": "https://login.live.com",
        "edge": "https://edge.skype.com/rps/v1/rps/skypetoken",
        "api": "https://api.skype.com",
        "join": "https://join.skype.com",
        "join_api": "https://api.join.skype.com/v1",
        "messenger": "https://client-s.gateway.messenger.live.com/v1",
    }


def test_default_hosts_change_nothing() -> None:
    hosts = Hosts()
    assert [
        hosts.login,
        hosts.msacc,
        hosts.edge,
        hosts.api,
        hosts.join,
        hosts.join_api,
        hosts.messenger,
    ] == [
        SERVICE_URLS[name]
        for name in ("login", "msacc", "edge", "api", "join", "join_api", "messenger")
    ]
    assert hosts.url("https://login.live.com/RST.srf?x=1") == "https://login.live.com/RST.srf?x=1"
    assert hosts.trusted_bases is None


def test_unknown_service_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="unknown service 'nope'"):
        Hosts().service("nope")


# -- mapping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:8080/login.live.com", "http://127.0.0.1:8080/login.live.com/RST.srf"),
        ("http://127.0.0.1:8080/login.live.com/", "http://127.0.0.1:8080/login.live.com/RST.srf"),
        ("https://127.0.0.12:8443", "https://127.0.0.12:8443/RST.srf"),
        ("https://127.0.0.12:8443/", "https://127.0.0.12:8443/RST.srf"),
        ("HTTP://LocalHost:8080/A", "http://localhost:8080/A/RST.srf"),
    ],
)
def test_mapping_a_real_url_onto_a_base(base: str, expected: str) -> None:
    hosts = Hosts(overrides={"login.live.com": base})
    assert hosts.url("https://login.live.com/RST.srf") == expected


def test_mapping_keeps_the_query_drops_the_fragment_and_ignores_host_case() -> None:
    assert LOOPBACK.url("https://LOGIN.live.com/ppsecure/post.srf?wa=wsignin1.0&x=%7C#f") == (
        "http://127.0.0.1:8080/login.live.com/ppsecure/post.srf?wa=wsignin1.0&x=%7C"
    )
    assert LOOPBACK.url("https://login.live.com") == "http://127.0.0.1:8080/login.live.com"
    assert LOOPBACK.msacc == "http://127.0.0.1:8080/login.live.com"
    assert LOOPBACK.messenger == "https://127.0.0.12:8443/v1"
    assert LOOPBACK.api == "https://api.skype.com"
    assert LOOPBACK.url("https://other.example/x") == "https://other.example/x"


# -- from_json / from_file ----------------------------------------------------------------------


def test_from_json_with_a_bare_map() -> None:
    hosts = Hosts.from_json({"login.live.com": "http://127.0.0.1:8080/login.live.com"})
    assert dict(hosts.overrides) == {"login.live.com": "http://127.0.0.1:8080/login.live.com"}


def test_from_json_with_the_emulator_profile_object() -> None:
    profile = {
        "hosts": {
            "login.live.com": "https://127.0.0.12:8443/login.live.com/",
            "API.Skype.com": "https://127.0.0.12:8443/api.skype.com",
        },
        "ca_bundle": "/tmp/ca.pem",
        "account": {"user": "me", "password": "pw"},
    }
    for data in (profile, json.dumps(profile), json.dumps(profile).encode()):
        hosts = Hosts.from_json(data)
        assert dict(hosts.overrides) == {
            "login.live.com": "https://127.0.0.12:8443/login.live.com",
            "api.skype.com": "https://127.0.0.12:8443/api.skype.com",
        }
        assert hosts.api == "https://127.0.0.12:8443/api.skype.com"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"hosts": ["x"]}, "'hosts' member must be a JSON object"),
        ({"login.live.com": 5}, "strings"),
        ({"https://login.live.com": "http://127.0.0.1/"}, "bare host name"),
        ({"login.live.com:443": "http://127.0.0.1/"}, "bare host name"),
        ({"login.live.com/x": "http://127.0.0.1/"}, "bare host name"),
        ({"ca_bundle": "/tmp/ca.pem"}, "bare host name"),
        ({"login.live.com": "ftp://127.0.0.1/"}, "absolute http"),
        ({"login.live.com": "/relative"}, "absolute http"),
        ({"login.live.com": "http://127.0.0.1/?q=1"}, "no query or fragment"),
        ({"login.live.com": "http://127.0.0.1/#f"}, "no query or fragment"),
        ({"login.live.com": "http://127.0.0.1/?"}, "no query or fragment"),
        ({"login.live.com": "http://u:p@127.0.0.1/"}, "no user info"),
        ({"login.live.com": "http://127.0.0.1/a/../b"}, "'..' segments"),
        ({"login.live.com": "http://127.0.0.1/a/%2E%2E/b"}, "'..' segments"),
        ({"login.live.com": "http://127.0.0.1:99999/"}, "not a valid base URL"),
        ({"login.live.com": "http://127.0.0.1:x/"}, "not a valid base URL"),
        ({"login.live.com": "http://127.0.0.1\\@evil/"}, "backslashes"),
        ({"login.live.com": "http://127.0.0.1/ a"}, "spaces"),
    ],
)
def test_from_json_refuses_invalid_profiles(data: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Hosts.from_json(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "maps no host"),
        ({"hosts": {}}, "maps no host"),
        ({"logn.live.com": "http://127.0.0.1/"}, "unknown host"),
        ({"example.com": "http://127.0.0.1/"}, "unknown host"),
        ({"skype.com.evil.example": "http://127.0.0.1/"}, "unknown host"),
        ({"hosts": {"login.live.com": "http://127.0.0.1/"}, "cabundle": "x"}, "unknown member"),
        ({"hosts": {"login.live.com": "http://127.0.0.1/"}, "host": {}}, "unknown member"),
    ],
)
def test_from_json_refuses_unknown_keys_and_an_empty_map(data: Any, message: str) -> None:
    # Either would otherwise mean the real services for the hosts it failed to name.
    with pytest.raises(LocalProtocolError, match=message):
        Hosts.from_json(data)
    with pytest.raises(LocalProtocolError, match=message):
        Hosts.from_json(data, profile="teams")


@pytest.mark.parametrize(
    "host",
    [
        *(urllib.parse.urlsplit(url).hostname for url in SERVICE_URLS.values()),
        "login.microsoftonline.com",
        "teams.live.com",
        "msgapi.teams.live.com",
        "go.trouter.skype.com",
        "go.trouter.teams.microsoft.com",
        "edge.skype.com",
        "trouter2-eu.trouter.teams.microsoft.com",
        "pub-ent-euno-07-t.trouter.skype.com",
        "db3-client-s.gateway.messenger.live.com",
        "Login.Live.Com",
    ],
)
def test_every_service_host_is_a_known_key(host: str) -> None:
    assert is_known_host(host)
    profile = {"hosts": {host: "http://127.0.0.1:9/x"}, "ca_bundle": None, "account": {}}
    assert Hosts.from_json(profile, profile="teams").url(f"https://{host}/p") == (
        "http://127.0.0.1:9/x/p"
    )


def test_a_password_in_a_base_is_not_echoed() -> None:
    with pytest.raises(LocalProtocolError) as caught:
        Hosts(overrides={"api.skype.com": "ftp://me:hunter2@127.0.0.1/"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(LocalProtocolError, match="no user info") as caught:
        Hosts(extra_trusted=["https://me:hunter2@127.0.0.1/"])
    assert "hunter2" not in str(caught.value)


def test_constructor_validation() -> None:
    with pytest.raises(LocalProtocolError, match="map host names"):
        Hosts(overrides=[("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="not one string"):
        Hosts(extra_trusted="https://127.0.0.1/")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="must be a str"):
        Hosts(extra_trusted=[b"https://127.0.0.1/"])  # type: ignore[list-item]


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"hosts": {"api.skype.com": "http://127.0.0.1:9/api"}}))
    assert Hosts.from_file(path).api == "http://127.0.0.1:9/api"
    assert Hosts.from_file(str(path)) == Hosts.from_file(path)


def test_from_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(LocalProtocolError, match=f"cannot read hosts file '{missing}'"):
        Hosts.from_file(missing)
    with pytest.raises(LocalProtocolError, match="cannot read hosts file"):
        Hosts.from_file(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("nope")
    with pytest.raises(LocalProtocolError, match="not valid JSON"):
        Hosts.from_file(bad)


# -- trust: default -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://db3-client-s.gateway.messenger.live.com/v1",
        "https://azwus1-client-s.gateway.messenger.live.com/v1/users/ME/endpoints/%7Babc%7D",
        "https://login.skype.com/login?x=1",
        "https://skype.com/",
        "https://API.SKYPE.COM:443/x",
        "https://api.skype.com:8443/x",
        "https://login.microsoftonline.com/x",
        "https://x.microsoft.com",
        "https://x.skype.net/",
    ],
)
def test_default_trusts_skype_and_microsoft_over_https(url: str) -> None:
    assert Hosts().is_trusted(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://db3-client-s.gateway.messenger.live.com/v1",
        "https://evil.example/",
        "https://skype.com.evil.example/v1",
        "https://notskype.com/",
        "https://skype.com@evil.example/",
        "https://evil.example\\@skype.com/",
        "https://evil.example%5C@skype.com/",
        "https://user@skype.com/",
        "https://sky pe.com/",
        "https://sky\tpe.com/",
        "https://sky\npe.com/",
        "https://skype.com\x00.evil.example/",
        "https://xn--skype-\u00e9.com/",
        "https://\u0455kype.com/",  # a Cyrillic letter
        "ftp://skype.com/",
        "//skype.com/x",
        "/v1/users/ME",
        "",
        "https://skype.com:99999/",
        "https://skype.com:x/",
        "https://[::1/",
    ],
)
def test_default_refuses_everything_else(url: str) -> None:
    assert not Hosts().is_trusted(url)


def test_default_trusted_domains() -> None:
    assert DEFAULT_TRUSTED_DOMAINS == (
        "skype.com",
        "live.com",
        "microsoft.com",
        "microsoftonline.com",
        "skype.net",
    )


# -- trust: override mode -----------------------------------------------------------------------


def test_trusted_bases_are_the_overrides_plus_untouched_defaults() -> None:
    assert LOOPBACK.trusted_bases == (
        "http://127.0.0.1:8080/login.live.com",
        "https://127.0.0.12:8443",
        "https://login.skype.com/login",
        "https://edge.skype.com/rps/v1/rps/skypetoken",
        "https://api.skype.com",
        "https://join.skype.com",
        "https://api.join.skype.com/v1",
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/login.live.com",
        "http://127.0.0.1:8080/login.live.com/",
        "http://127.0.0.1:8080/login.live.com/RST.srf?x=1",
        "http://127.0.0.1:8080/login.live.com/a.b/..c/...",
        "https://127.0.0.12:8443",
        "https://127.0.0.12:8443/v1/users/ME/endpoints",
        "https://127.0.0.12:8443/anything",
        "https://login.skype.com/login/oauth/microsoft",
        "https://api.skype.com/users/self/profile",
        "https://API.skype.com:443/",
    ],
)
def test_override_mode_trusts_exactly_the_bases(url: str) -> None:
    assert LOOPBACK.is_trusted(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/login.live.comX",
        "http://127.0.0.1:8080/login.live.com.evil/x",
        "http://127.0.0.1:8080/other",
        "http://127.0.0.1:8080/",
        "https://127.0.0.1:8080/login.live.com/",
        "http://127.0.0.1:8081/login.live.com/",
        "http://127.0.0.1/login.live.com/",
        "http://localhost:8080/login.live.com/",
        "http://127.0.0.12:8443/v1",
        "http://127.0.0.1:8080/login.live.com/../x",
        "http://127.0.0.1:8080/login.live.com/./x",
        "http://127.0.0.1:8080/login.live.com/%2e%2E/x",
        "http://127.0.0.1:8080/login.live.com%2F..%2Fx",
        "http://127.0.0.1:8080/login.live.com/..%5Cx",
        "http://127.0.0.1:8080/login.live.com\\..\\x",
        "https://login.live.com/RST.srf",
        "https://client-s.gateway.messenger.live.com/v1",
        "https://db3-client-s.gateway.messenger.live.com/v1",
        "https://login.skype.com/other",
        "https://login.skype.com/loginx",
        "https://edge.skype.com/",
        "https://skype.com/",
        "http://api.skype.com/",
        "https://u@127.0.0.12:8443/",
    ],
)
def test_override_mode_refuses_everything_else(url: str) -> None:
    assert not LOOPBACK.is_trusted(url)


def test_extra_trusted_bases() -> None:
    hosts = Hosts(overrides=LOOPBACK.overrides, extra_trusted=["https://127.0.0.13:9/extra/"])
    assert hosts.trusted_bases is not None
    assert "https://127.0.0.13:9/extra" in hosts.trusted_bases
    assert hosts.is_trusted("https://127.0.0.13:9/extra/x")
    assert not hosts.is_trusted("https://127.0.0.13:9/other")


# -- require_trusted ----------------------------------------------------------------------------


def test_require_trusted_returns_the_url() -> None:
    url = "https://db3-client-s.gateway.messenger.live.com/v1/users/ME/endpoints"
    assert Hosts().require_trusted(url, "registration redirect") == url


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("https://evil.example/v1/users?t=secret-token#f", "https://evil.example:443"),
        ("http://skype.com/path/secret-path", "http://skype.com:80"),
        ("https://[::1]:8443/secret-path", "https://[::1]:8443"),
        ("https://user:secret-pw@evil.example/", "(an unparsable or ambiguous URL)"),
        ("https://evil.example:99999/secret-path", "(an unparsable or ambiguous URL)"),
    ],
)
def test_require_trusted_names_the_host_but_no_path_or_query(url: str, where: str) -> None:
    with pytest.raises(UntrustedHostError) as caught:
        Hosts().require_trusted(url, "registration redirect")
    assert (
        str(caught.value) == f"refusing to follow registration redirect to untrusted host {where}"
    )
    assert "secret" not in repr(caught.value)
