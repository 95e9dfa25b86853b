"""corpnet.proxy: proxy URLs, credentials, exports and the stage's errors.

NO_PROXY normalisation and the bypass decision are in test_proxy_no_proxy.py.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

import pytest

from corpnet import config
from corpnet.config import HostPort, ProxySettings
from corpnet.errors import ConfigErrors, ExitCode
from corpnet.proxy import ProxyConfig, ProxyURL, parse_proxy_url, redact, resolve

ALLOWLIST = [HostPort("api.anthropic.com"), HostPort("claude.ai"), HostPort("platform.claude.com")]
# Each character that breaks a naively built proxy URL, alone and all together.
SPECIAL_PASSWORDS = ["p@ss", "p:ss", "p/ss", "p%ss", "p#ss", "p?ss", "p ss", "%41", "@:/%#? x"]


def _resolve(**kwargs: str) -> ProxyConfig:
    return resolve(ProxySettings(**kwargs), allowlist=ALLOWLIST)  # type: ignore[arg-type]


def _error(**kwargs: str) -> str:
    with pytest.raises(ConfigErrors) as info:
        _resolve(**kwargs)
    assert info.value.exit_code == ExitCode.CONFIG
    return str(info.value)


# --- proxy URLs -------------------------------------------------------------------


def test_a_proxy_without_scheme_gets_http_and_a_note() -> None:
    c = _resolve(https_proxy="proxy.corp.example:3128")
    assert c.https == ProxyURL("http", "proxy.corp.example", 3128)
    assert c.exports.env["HTTPS_PROXY"] == "http://proxy.corp.example:3128"
    assert "HTTPS_PROXY has no scheme: using http://proxy.corp.example:3128" in c.notes


def test_a_proxy_without_port_gets_the_scheme_default_explicitly() -> None:
    # curl alone would use 1080 for a port-less proxy: the explicit port makes all agree.
    c = _resolve(https_proxy="http://proxy.corp.example", http_proxy="https://tls-proxy.example")
    assert c.exports.env["https_proxy"] == "http://proxy.corp.example:80"
    assert c.exports.env["http_proxy"] == "https://tls-proxy.example:443"
    assert any("has no port: using 80" in n for n in c.notes)


@pytest.mark.parametrize("scheme", ["socks4", "socks4a", "socks5", "socks5h", "SOCKS5"])
def test_socks_proxies_are_refused_with_the_fix(scheme: str) -> None:
    text = _error(https_proxy=f"{scheme}://user:hunter2@gw.corp:1080")
    assert "HTTPS_PROXY is a SOCKS proxy" in text
    assert "Claude Code does not support" in text
    assert "point it at an HTTP proxy" in text
    assert "hunter2" not in text


def test_socks_in_all_proxy_is_refused_too() -> None:
    assert "ALL_PROXY is a SOCKS proxy" in _error(all_proxy="socks5h://gw:1080")


def test_an_https_proxy_is_accepted() -> None:
    c = _resolve(https_proxy="https://proxy.corp.example:8443")
    assert c.https is not None
    assert c.https.scheme == "https"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ftp://proxy:21", "has the scheme ftp://"),
        ("http://:3128", "has no valid host name"),
        ("http://proxy:0", "the port '0'"),
        ("http://proxy:99999", "the port '99999'"),
        ("http://proxy:31a", "the port '31a'"),
        ("http://[fe80::zz]:3128", "a malformed IPv6 address"),
    ],
)
def test_malformed_proxy_urls_say_what_is_wrong(value: str, expected: str) -> None:
    text = _error(http_proxy=value)
    assert "HTTP_PROXY" in text
    assert expected in text


def test_every_malformed_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigErrors) as info:
        _resolve(https_proxy="socks5://a:1", http_proxy="ftp://b:2", no_proxy="*,x")
    assert len(info.value.errors) == 3


def test_ipv6_proxy_host() -> None:
    c = _resolve(https_proxy="http://[FD00::1]:3128")
    assert c.https == ProxyURL("http", "fd00::1", 3128)
    assert c.exports.env["HTTPS_PROXY"] == "http://[fd00::1]:3128"
    assert "-Dhttps.proxyHost=fd00::1" in c.exports.java_options


def test_a_raw_blank_in_the_url_is_refused_without_showing_the_password() -> None:
    text = _error(https_proxy="http://u:hunter two@proxy:3128")
    assert "HTTPS_PROXY contains a blank or control character" in text
    assert "%20" in text
    assert "hunter" not in text
    assert "two" not in text


def test_a_newline_in_the_url_is_refused_without_showing_the_password() -> None:
    # Node throws ERR_PROXY_INVALID_CONFIG quoting the whole URL, password included.
    text = _error(https_proxy="http://u:hunter2@proxy:3128\nx")
    assert "blank or control character" in text
    assert "hunter2" not in text


# --- credentials -------------------------------------------------------------------


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
def test_corpnet_proxy_credentials_are_percent_encoded_into_the_url(password: str) -> None:
    c = _resolve(https_proxy="http://proxy:3128", user="svc agent@corp", password=password)
    url = c.exports.env["HTTPS_PROXY"]
    parts = urlsplit(url)
    # What every client does with the userinfo: split at the last '@', then decode.
    assert (parts.hostname, parts.port) == ("proxy", 3128)
    assert unquote(parts.username or "") == "svc agent@corp"
    assert unquote(parts.password or "") == password
    assert c.https is not None
    expected = base64.b64encode(f"svc agent@corp:{password}".encode()).decode()
    assert c.https.authorization() == f"Basic {expected}"
    assert c.https.redacted() == "http://svc%20agent%40corp:***@proxy:3128"


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
def test_credentials_in_the_url_survive_normalisation(password: str) -> None:
    # Percent-encoded as the Claude Code docs require, and re-encoded identically.
    given = ProxyURL("http", "proxy", 3128, "u", password).url
    c = _resolve(https_proxy=given)
    assert c.https == ProxyURL("http", "proxy", 3128, "u", password)
    assert c.exports.env["HTTPS_PROXY"] == given


def test_a_raw_at_sign_in_a_url_password_is_understood() -> None:
    url, _ = parse_proxy_url("http://user:p@ss@proxy:3128", "HTTPS_PROXY")
    assert (url.username, url.password, url.host) == ("user", "p@ss", "proxy")
    assert url.url == "http://user:p%40ss@proxy:3128"


def test_a_password_git_would_decode_twice_is_warned_about() -> None:
    # git 2.39 sends the proxy password `%41` (encoded `%2541`) as `A`.
    c = _resolve(https_proxy="http://proxy:3128", user="u", password="ab%41")
    assert any("git decodes a second time" in w for w in c.warnings)
    assert not _resolve(https_proxy="http://u:p%25zz@proxy:3128").warnings


def test_a_user_without_password() -> None:
    url, _ = parse_proxy_url("http://alice@proxy:3128", "HTTPS_PROXY")
    assert (url.username, url.password) == ("alice", None)
    assert url.url == "http://alice@proxy:3128"
    assert url.redacted() == "http://alice@proxy:3128"
    assert url.authorization() == "Basic " + base64.b64encode(b"alice:").decode()


def test_credentials_apply_to_every_proxy_variable() -> None:
    c = _resolve(
        https_proxy="http://p:1", http_proxy="http://p:2", all_proxy="http://p:3", user="u",
        password="pw",
    )  # fmt: skip
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        assert c.exports.env[name] == c.exports.env[name.lower()]
        assert c.exports.env[name].startswith("http://u:pw@p:")
    assert c.exports.secret_names == {
        "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
    }  # fmt: skip


def test_url_credentials_that_contradict_corpnet_proxy_user_are_an_error() -> None:
    text = _error(https_proxy="http://bob:x@proxy:3128", user="alice", password="secret-pw")
    assert "HTTPS_PROXY has credentials for 'bob' and CORPNET_PROXY_USER is set" in text
    assert "secret-pw" not in text
    assert ":x@" not in text


def test_a_restart_that_sourced_env_sh_is_not_a_contradiction() -> None:
    # env.sh holds the URL with the credentials corpnet put there; the inputs are still set.
    first = _resolve(https_proxy="http://proxy:3128", user="alice", password="p@ss:w/rd")
    again = _resolve(
        https_proxy=first.exports.env["HTTPS_PROXY"], user="alice", password="p@ss:w/rd"
    )
    assert again.exports == first.exports


def test_password_never_in_repr_notes_or_warnings() -> None:
    c = _resolve(https_proxy="proxy:3128", user="u", password="hunter2!", no_proxy="claude.ai")
    assert "hunter2" not in repr(c.https)
    assert "hunter2" not in " ".join(c.notes + c.warnings)


def test_config_load_feeds_resolve_from_the_password_file(tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "proxy-password"
    secret.write_text("s3cr#t word\n")
    settings = config.load(
        {
            "https_proxy": "http://proxy:3128",
            "CORPNET_PROXY_USER": "svc",
            "CORPNET_PROXY_PASSWORD_FILE": str(secret),
        }
    )
    c = resolve(settings.proxy, allowlist=settings.reach.allowlist)
    assert c.exports.env["HTTPS_PROXY"] == "http://svc:s3cr%23t%20word@proxy:3128"


# --- exports -------------------------------------------------------------------------


def test_both_cases_identical_and_node_use_env_proxy() -> None:
    c = _resolve(https_proxy="http://proxy:3128", no_proxy="corp.example")
    env = c.exports.env
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy:3128"
    assert env["NO_PROXY"] == env["no_proxy"]
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert "HTTP_PROXY" not in env  # not given, not invented
    assert c.exports.secret_names == frozenset()


def test_all_proxy_is_also_exported_as_the_scheme_variables() -> None:
    # Node's core agent, undici and Go never read ALL_PROXY.
    c = _resolve(all_proxy="http://proxy:3128", https_proxy="http://other:8080")
    assert c.exports.env["HTTP_PROXY"] == "http://proxy:3128"
    assert c.exports.env["HTTPS_PROXY"] == "http://other:8080"
    assert c.exports.env["ALL_PROXY"] == "http://proxy:3128"
    assert "ALL_PROXY also exported as HTTP_PROXY" in c.notes


def test_java_properties() -> None:
    c = _resolve(
        https_proxy="http://u:pw@proxy:3128",
        http_proxy="http://plain:8080",
        no_proxy="corp.example 10.0.0.0/8 10.1.2.3",
    )
    assert c.exports.java_options == (
        "-Dhttps.proxyHost=proxy",
        "-Dhttps.proxyPort=3128",
        "-Dhttp.proxyHost=plain",
        "-Dhttp.proxyPort=8080",
        "-Dhttp.nonProxyHosts=corp.example|*.corp.example|10.1.2.3|localhost|*.localhost|127.0.0.1|::1",
    )
    # The JVM prints JAVA_TOOL_OPTIONS at every start: never credentials there.
    assert "pw" not in " ".join(c.exports.java_options)


def test_no_proxy_at_all_exports_nothing() -> None:
    c = _resolve()
    assert c.exports.env == {}
    assert c.exports.java_options == ()
    assert c.proxy_for("api.anthropic.com") is None
    assert any("no proxy configured" in n for n in c.notes)


def test_no_proxy_alone_is_still_normalised_and_exported() -> None:
    c = _resolve(no_proxy="Corp.Example.")
    assert (
        c.exports.env["NO_PROXY"] == "corp.example,.corp.example,localhost,.localhost,127.0.0.1,::1"
    )
    assert "NODE_USE_ENV_PROXY" not in c.exports.env


def test_proxy_for_picks_the_scheme_variable() -> None:
    c = _resolve(https_proxy="http://s:1", http_proxy="http://h:2", no_proxy="corp.example")
    assert c.proxy_for("api.anthropic.com") == ProxyURL("http", "s", 1)
    assert c.proxy_for("api.anthropic.com", 80, "http") == ProxyURL("http", "h", 2)
    assert c.proxy_for("git.corp.example") is None
    assert c.proxy_for("localhost", 8080) is None
    only_https = _resolve(https_proxy="http://s:1")
    assert only_https.proxy_for("example.org", 80, "http") is None


# --- redaction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://u:pw@proxy:3128", "http://u:***@proxy:3128"),
        ("P=https://svc:p%40ss@proxy:3128/ x", "P=https://svc:***@proxy:3128/ x"),
        ("raw http://u:p@ss@proxy:1 x", "raw http://u:***@proxy:1 x"),
        ('{"a": "http://u:pw@h:1", "b": "http://v:qq@h:2"}', '{"a": "http://u:***@h:1", "b": "http://v:***@h:2"}'),
        ("http://alice@proxy:3128", "http://alice@proxy:3128"),
        ("no url at all: a@b", "no url at all: a@b"),
    ],
)  # fmt: skip
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
def test_redact_hides_every_special_password(password: str) -> None:
    url = ProxyURL("http", "proxy", 3128, "u", password)
    assert redact(f"got {url.url} ok") == "got http://u:***@proxy:3128 ok"
    assert url.redacted() == "http://u:***@proxy:3128"


def test_an_ipv6_host_without_its_closing_bracket_is_refused() -> None:
    # ::1:3128 is itself a valid address: without the check, the port became part of it.
    with pytest.raises(ConfigErrors) as info:
        _resolve(https_proxy="http://alice:pw@[::1:3128")
    assert str(info.value) == (
        "HTTPS_PROXY has an IPv6 address without its closing ] (http://alice:***@[::1:3128): "
        "use http://host:port, e.g. http://proxy.corp.example:3128"
    )
    assert info.value.exit_code == ExitCode.CONFIG


def test_a_password_without_a_user_name_is_refused_not_dropped() -> None:
    with pytest.raises(ConfigErrors) as info:
        _resolve(https_proxy="http://:pw@proxy:3128")
    text = str(info.value)
    assert text.startswith("HTTPS_PROXY has a password but no user name (http://:***@proxy:3128)")
    assert "CORPNET_PROXY_USER" in text
    assert ":pw@" not in text
