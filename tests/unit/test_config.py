"""config.load: parsing, reconciliation and every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpnet import config
from corpnet.errors import ConfigErrors, ExitCode


def test_defaults_from_an_empty_environment() -> None:
    s = config.load({})
    assert s.runtime_dir == Path("/run/corpnet")
    assert s.trust.ca_dir == Path("/etc/corpnet/ca.d")
    assert s.identity.cert == Path("/etc/corpnet/client/tls.crt")
    assert not s.identity.cert_explicit
    assert [str(h) for h in s.reach.allowlist] == [
        "api.anthropic.com:443",
        "claude.ai:443",
        "platform.claude.com:443",
    ]
    assert s.reach.wait == "required"
    assert s.reach.timeout == 60


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    env = {
        "CORPNET_WAIT": "sometimes",
        "CORPNET_WAIT_TIMEOUT": "soon",
        "HTTPS_PROXY": "http://a:3128",
        "https_proxy": "http://b:3128",
        "CORPNET_PROXY_PASSWORD": "x",
        "CORPNET_PROXY_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    with pytest.raises(ConfigErrors) as info:
        config.load(env)
    text = str(info.value)
    assert "CORPNET_WAIT='sometimes'" in text
    assert "CORPNET_WAIT_TIMEOUT='soon'" in text
    assert "HTTPS_PROXY and https_proxy are both set and differ" in text
    assert "CORPNET_PROXY_PASSWORD and CORPNET_PROXY_PASSWORD_FILE are both set" in text
    assert info.value.exit_code == ExitCode.CONFIG


def test_same_value_in_both_cases_is_fine() -> None:
    s = config.load({"HTTPS_PROXY": "http://p:3128", "https_proxy": "http://p:3128"})
    assert s.proxy.https_proxy == "http://p:3128"


def test_secret_from_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "pass").write_text("s3cret word\n\n")
    s = config.load({"CORPNET_CLIENT_KEY_PASSPHRASE_FILE": str(tmp_path / "pass")})
    assert s.identity.passphrase == "s3cret word\n"
    assert s.identity.passphrase_source == "CORPNET_CLIENT_KEY_PASSPHRASE_FILE"


def test_missing_secret_file_names_variable_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigErrors) as info:
        config.load({"CORPNET_PROXY_PASSWORD_FILE": str(missing), "CORPNET_PROXY_USER": "u"})
    assert f"CORPNET_PROXY_PASSWORD_FILE points at {missing}, which does not exist" in str(
        info.value
    )


def test_password_never_appears_in_settings_repr() -> None:
    s = config.load({"CORPNET_PROXY_USER": "u", "CORPNET_PROXY_PASSWORD": "hunter2!"})
    assert "hunter2!" not in repr(s)
    assert "hunter2!" in s.secrets()


def test_node_extra_ca_certs_pointing_at_our_own_bundle_is_not_an_input(tmp_path: Path) -> None:
    env = {"CORPNET_RUNTIME_DIR": str(tmp_path), "NODE_EXTRA_CA_CERTS": str(tmp_path / "b.pem")}
    assert config.load(env).trust.node_extra_ca_certs is None
    env["NODE_EXTRA_CA_CERTS"] = "/mnt/corp.pem"
    assert config.load(env).trust.node_extra_ca_certs == Path("/mnt/corp.pem")


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("api.anthropic.com", "api.anthropic.com", 443),
        ("Proxy.Corp.:8443", "proxy.corp", 8443),
        ("[::1]:8443", "::1", 8443),
        ("::1", "::1", 443),
        ("https://claude.ai/", "claude.ai", 443),
    ],
)
def test_parse_hostport(text: str, host: str, port: int) -> None:
    hp = config.parse_hostport(text)
    assert (hp.host, hp.port) == (host, port)


@pytest.mark.parametrize("text", ["", "a b", "host:0", "host:99999", "[::1]x", "exa mple"])
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        config.parse_hostport(text)


def test_allowlist_error_names_the_variable() -> None:
    with pytest.raises(ConfigErrors) as info:
        config.load({"CORPNET_ALLOWLIST": "api.anthropic.com, bad:host:x"})
    assert "CORPNET_ALLOWLIST: 'bad:host:x' is not host[:port]" in str(info.value)


def test_cli_has_help_for_every_command(corpnet) -> None:  # type: ignore[no-untyped-def]
    from corpnet.cli import COMMANDS, cli

    result = corpnet("--help")
    assert result.code == 0
    assert "Make a container work inside a corporate network" in result.out
    import click

    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, f"corpnet {name} is not implemented"
        assert cmd.help, f"corpnet {name} has no help text"


# --- hostile values (issue 11) ----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["inf", "1e12", "-1", "nan", "86400.5"])
def test_the_wait_timeout_is_finite_and_capped(raw: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        config.load({"CORPNET_WAIT_TIMEOUT": raw})
    assert str(info.value) == (
        f"CORPNET_WAIT_TIMEOUT={raw!r} is out of range: use a number of seconds from 0 to "
        "86400, e.g. CORPNET_WAIT_TIMEOUT=60"
    )
    assert info.value.exit_code == ExitCode.CONFIG


def test_the_wait_timeout_cap_itself_is_accepted() -> None:
    assert config.load({"CORPNET_WAIT_TIMEOUT": "86400"}).reach.timeout == 86400
    assert config.load({"CORPNET_WAIT_TIMEOUT": "0"}).reach.timeout == 0


def test_cert_warn_days_is_capped_too() -> None:
    with pytest.raises(ConfigErrors) as info:
        config.load({"CORPNET_CERT_WARN_DAYS": "inf"})
    assert "CORPNET_CERT_WARN_DAYS='inf' is out of range: use a number of days from 0 to 3650" in (
        str(info.value)
    )


def test_no_proxy_in_both_cases_is_compared_as_a_set() -> None:
    s = config.load({"NO_PROXY": "a.corp,b.corp", "no_proxy": "B.corp. , a.corp"})
    assert s.proxy.no_proxy == "a.corp,b.corp"
    with pytest.raises(ConfigErrors, match="NO_PROXY and no_proxy are both set and differ"):
        config.load({"NO_PROXY": "a.corp,b.corp", "no_proxy": "a.corp"})


def test_an_unclosed_ipv6_bracket_in_the_allowlist_is_refused() -> None:
    with pytest.raises(ConfigErrors, match=r"CORPNET_ALLOWLIST: '\[::1:443' is not host\[:port\]"):
        config.load({"CORPNET_ALLOWLIST": "[::1:443"})


# --- CORPNET_MISSING_FILES ------------------------------------------------------------------


def _named_files(tmp_path: Path) -> dict[str, str]:
    """Every kind of variable that names a file, each at a path where nothing is."""
    gone = tmp_path / "gone"
    return {
        "CORPNET_CA_FILES": f"{gone}/corporate-ca.crt",
        "CLAUDE_CODE_CLIENT_CERT": f"{gone}/client.crt",
        "CLAUDE_CODE_CLIENT_KEY": f"{gone}/client.key",
        "CORPNET_PROXY_USER": "alice",
        "CORPNET_PROXY_PASSWORD_FILE": f"{gone}/proxy-password",
    }


def test_a_named_file_that_is_missing_is_an_error_by_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        config.load(_named_files(tmp_path))
    assert info.value.exit_code == ExitCode.CONFIG
    assert f"CORPNET_PROXY_PASSWORD_FILE points at {tmp_path}/gone/proxy-password" in str(
        info.value
    )


def test_missing_files_warn_leaves_them_out_and_says_what_to_add(tmp_path: Path) -> None:
    env = _named_files(tmp_path) | {"CORPNET_MISSING_FILES": "warn"}
    s = config.load(env)
    assert s.proxy.password is None
    assert s.proxy.user == "alice"
    assert s.trust.ca_files == ()
    assert not s.identity.cert_explicit
    assert not s.identity.key_explicit
    assert s.without_missing == {
        "CORPNET_CA_FILES": "",
        "CLAUDE_CODE_CLIENT_CERT": "",
        "CLAUDE_CODE_CLIENT_KEY": "",
        "CORPNET_PROXY_PASSWORD_FILE": "",
    }
    lines = [str(m) for m in s.missing_files]
    assert len(lines) == 4
    assert lines[-1] == (
        f"CORPNET_PROXY_PASSWORD_FILE names {tmp_path}/gone/proxy-password, which does not "
        "exist, so the proxy account gets no password: add the file there and restart the "
        "container (CORPNET_MISSING_FILES=warn started without it)"
    )


def test_missing_files_warn_keeps_the_files_that_are_there(tmp_path: Path) -> None:
    present = tmp_path / "corporate-ca.crt"
    present.write_text("a CA\n")
    (tmp_path / "pw").write_text("s3cret\n")
    env = {
        "CORPNET_MISSING_FILES": "warn",
        "CORPNET_CA_FILES": f"{tmp_path}/other.crt:{present}",
        "CORPNET_PROXY_USER": "alice",
        "CORPNET_PROXY_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    s = config.load(env)
    assert s.trust.ca_files == (present,)
    assert s.proxy.password == "s3cret"
    assert s.without_missing == {"CORPNET_CA_FILES": str(present)}
    assert [m.variable for m in s.missing_files] == ["CORPNET_CA_FILES"]


def test_missing_files_warn_still_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    # A link to nothing is a broken mount (a secret without that key), not an absent input.
    (tmp_path / "pw").symlink_to(tmp_path / "nowhere")
    env = {
        "CORPNET_MISSING_FILES": "warn",
        "CORPNET_PROXY_USER": "alice",
        "CORPNET_PROXY_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    with pytest.raises(ConfigErrors, match="CORPNET_PROXY_PASSWORD_FILE points at"):
        config.load(env)


def test_missing_files_takes_error_or_warn_only() -> None:
    with pytest.raises(ConfigErrors, match=r"CORPNET_MISSING_FILES='ignore' is not a valid value"):
        config.load({"CORPNET_MISSING_FILES": "ignore"})
