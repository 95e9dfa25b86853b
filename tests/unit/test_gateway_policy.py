"""The gateway's pure parts: settings, the decision, login choice, PAC answers, WPAD names."""

from __future__ import annotations

import pytest

from corpnet.errors import ConfigErrors
from corpnet.gateway import DIRECT, AllowEntry, Route, decide, load_settings, normalise_host
from corpnet.gateway._auth import AuthError, Credentials, choose, offered
from corpnet.gateway._pac import parse_answer, wpad_candidates
from corpnet.gateway._policy import parse_allow
from corpnet.proxy import ProxyURL

UPSTREAM = (Route("proxy", ProxyURL("http", "proxy.corp.example", 3128)),)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("API.Example.COM.", "api.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("::1", "::1"),
    ],
)
def test_names_are_normalised_once(raw: str, normal: str) -> None:
    assert normalise_host(raw) == normal


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("api.example.com", AllowEntry("api.example.com")),
        (".corp.example", AllowEntry(".corp.example")),
        ("git.corp.example:7999", AllowEntry("git.corp.example", 7999)),
        ("[fd00::1]:443", AllowEntry("fd00::1", 443)),
        ("Bücher.Example", AllowEntry("xn--bcher-kva.example")),
    ],
)
def test_allow_entries(text: str, entry: AllowEntry) -> None:
    assert parse_allow(text) == entry


def test_allow_entry_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="not a number from 1 to 65535"):
        parse_allow("host:99999")


def test_policy_refuses_with_the_variable_to_change() -> None:
    allow = (AllowEntry("api.anthropic.com", 443), AllowEntry(".corp.example"))
    kwargs = {"scheme": "https", "allow": allow, "no_proxy": (), "upstream": UPSTREAM}
    assert decide("api.anthropic.com", 443, egress="allowlist", **kwargs).allowed  # type: ignore[arg-type]
    assert decide("x.corp.example", 8443, egress="allowlist", **kwargs).allowed  # type: ignore[arg-type]
    refused = decide("api.anthropic.com", 8443, egress="allowlist", **kwargs)  # type: ignore[arg-type]
    assert not refused.allowed
    assert "api.anthropic.com:8443 is not allowed" in refused.reason
    assert "CORPNET_EGRESS_ALLOW" in refused.reason
    assert decide("evil.example", 443, egress="open", **kwargs).allowed  # type: ignore[arg-type]


def test_no_proxy_goes_direct_and_pac_replaces_the_static_proxy() -> None:
    pac = [Route("proxy", ProxyURL("http", "pac-a", 3128)), DIRECT]
    kwargs = {"scheme": "https", "egress": "open", "allow": (), "upstream": UPSTREAM}
    direct = decide("10.1.2.3", 443, no_proxy=("10.0.0.0/8",), pac_routes=pac, **kwargs)  # type: ignore[arg-type]
    assert direct.routes == (DIRECT,)
    assert direct.reason == "NO_PROXY 10.0.0.0/8"
    assert decide("a.example", 443, no_proxy=(), pac_routes=pac, **kwargs).routes == tuple(pac)  # type: ignore[arg-type]
    assert decide("a.example", 443, no_proxy=(), **kwargs).routes == UPSTREAM  # type: ignore[arg-type]


def test_settings_collect_every_error() -> None:
    env = {
        "CORPNET_GATEWAY": "maybe",
        "CORPNET_EGRESS": "closed",
        "CORPNET_GATEWAY_LISTEN": "0.0.0.0:3128",
        "CORPNET_PAC_URL": "ftp://x/proxy.pac",
        "CORPNET_EGRESS_ALLOW": "ok.example,bad:port",
    }
    with pytest.raises(ConfigErrors) as info:
        load_settings(env)
    text = str(info.value)
    for part in (
        "CORPNET_GATEWAY='maybe'",
        "CORPNET_EGRESS='closed'",
        "not a loopback address",
        "CORPNET_PAC_URL='ftp://x/proxy.pac'",
        "CORPNET_EGRESS_ALLOW",
    ):
        assert part in text


def test_settings_say_why_auto_turns_the_gateway_on() -> None:
    assert load_settings({}).wanted() is None
    assert load_settings({"CORPNET_PAC_URL": "wpad"}).wanted() == "CORPNET_PAC_URL is set"
    assert load_settings({"CORPNET_EGRESS": "allowlist"}).wanted() == "CORPNET_EGRESS=allowlist"
    assert load_settings({"CORPNET_GATEWAY": "off", "CORPNET_PAC_URL": "wpad"}).wanted() is None


def test_the_strongest_offered_login_is_chosen() -> None:
    both = ["NTLM", "Negotiate", 'Basic realm="corp"']
    assert offered(["NTLM TlRMTVNTUAACAAAA"]) == {"NTLM": "TlRMTVNTUAACAAAA"}
    kerberos = Credentials(user="alice@CORP.EXAMPLE")
    assert choose(both, kerberos) == "Negotiate"
    # Negotiate without a Kerberos name or keytab would be NTLM: say NTLM plainly.
    assert choose(both, Credentials(user="CORP\\alice")) == "NTLM"
    assert choose(['Basic realm="x"'], Credentials(user="alice")) == "Basic"
    assert choose(both, Credentials(user="alice", mode="basic")) == "Basic"


def test_login_errors_name_the_variables() -> None:
    with pytest.raises(AuthError, match="CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE"):
        choose(["NTLM"], Credentials())
    with pytest.raises(AuthError, match="CORPNET_PROXY_AUTH=ntlm but the upstream proxy offers"):
        choose(["Basic"], Credentials(user="alice", mode="ntlm"))
    with pytest.raises(AuthError, match="cannot do"):
        choose(["Digest realm=x"], Credentials(user="alice"))


def test_pac_answers_become_routes_in_order() -> None:
    routes, notes = parse_answer("PROXY a.corp:3128; HTTPS b.corp:443; SOCKS5 c:1080; DIRECT")
    assert [r.describe() for r in routes] == ["PROXY a.corp:3128", "PROXY b.corp:443", "DIRECT"]
    assert routes[1].proxy is not None and routes[1].proxy.scheme == "https"
    assert notes == ["PAC entry 'SOCKS5 c:1080' skipped (corpnet speaks no SOCKS)"]


def test_wpad_walks_up_but_never_to_the_top_level_domain() -> None:
    resolv = "nameserver 127.0.0.11\nsearch eng.emea.corp.example lab.example\n"
    assert wpad_candidates(resolv) == [
        "http://wpad.eng.emea.corp.example/wpad.dat",
        "http://wpad.emea.corp.example/wpad.dat",
        "http://wpad.corp.example/wpad.dat",
        "http://wpad.lab.example/wpad.dat",
    ]
