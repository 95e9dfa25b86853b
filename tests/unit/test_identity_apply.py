"""apply(): outputs in the runtime directory (PKCS#12, decrypted key) and the exported variables."""

from __future__ import annotations

import io
import os
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from test_identity import (  # noqa: F401 - shared fixtures, registered by name
    Client,
    client_fixture,
    issuing_fixture,
    root_fixture,
)

from corpnet import identity
from corpnet import log as logmod
from corpnet.errors import ExitCode
from corpnet.identity._keys import pem_labels
from support.client_pki import (
    NOW,
    Authority,
    cert_pem,
    key_pem,
    make_leaf,
    p12_bundle,
    private_key,
)

PASS = "s3cret phrase"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logmod.configure({}, stream=stream)
    yield stream
    logmod.configure({})  # back to sys.stderr, resolved late (capsys in later tests sees it)


def apply(
    client: Client,
    env: Mapping[str, str] | None = None,
    *,
    owner: tuple[int, int] | None = None,
    roots: bytes | None = None,
) -> identity.IdentityResult | None:
    return identity.apply(
        client.settings(env),
        runtime_dir=client.root / "run",
        roots_pem=roots,
        now=NOW,
        owner=owner,
    )


def loads_in_ssl(cert: Path, key: Path | None, password: str | None) -> None:
    """What the reachability stage does with the result."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(cert, key, password=password)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_plain_pem_key_is_used_in_place(client: Client, root: Authority) -> None:
    key = private_key("ec")
    crt = client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    tls_key = client.write("tls.key", key_pem(key), 0o440)
    result = apply(client)
    assert result is not None
    assert (result.cert, result.key, result.passphrase) == (crt, tls_key, None)
    combined = client.root / "run" / "client" / "tls-combined.pem"
    assert dict(result.exports.env) == {
        "CLAUDE_CODE_CLIENT_CERT": str(crt),
        "CLAUDE_CODE_CLIENT_KEY": str(tls_key),
        "GIT_SSL_CERT": str(crt),
        "GIT_SSL_KEY": str(tls_key),
        "PIP_CLIENT_CERT": str(combined),
        "SSL_CLIENT_CERT": str(combined),
    }
    assert result.exports.secret_names == frozenset()
    assert mode(combined) == 0o600
    assert mode(combined.parent) == 0o700
    loads_in_ssl(combined, None, None)  # one file, certificate and key: what pip and uv load
    loads_in_ssl(result.cert, result.key, result.passphrase)


def test_encrypted_key_stays_encrypted(client: Client, root: Authority) -> None:
    key = private_key("rsa")
    crt = client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    tls_key = client.write("tls.key", key_pem(key, "pkcs1", PASS))
    result = apply(client, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS})
    assert result is not None
    assert (result.cert, result.key, result.passphrase) == (crt, tls_key, PASS)
    env = result.exports.env
    assert env["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == PASS
    assert env["GIT_SSL_CERT_PASSWORD_PROTECTED"] == "1"
    assert "PIP_CLIENT_CERT" not in env  # pip cannot take a passphrase
    assert result.exports.secret_names == {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"}
    assert PASS not in repr(result)
    assert not (client.root / "run" / "client").exists() or not any(
        (client.root / "run" / "client").iterdir()
    )
    loads_in_ssl(result.cert, result.key, result.passphrase)


def test_passphrase_from_a_file_is_exported_for_claude_code(
    client: Client, root: Authority, tmp_path: Path
) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key, "sec1", PASS))
    (tmp_path / "pass").write_text(PASS + "\n")
    result = apply(client, {"CORPNET_CLIENT_KEY_PASSPHRASE_FILE": str(tmp_path / "pass")})
    assert result is not None
    assert result.exports.env["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == PASS


def test_decrypt_key_writes_a_0600_copy_and_recommends_tmpfs(
    client: Client, root: Authority, log_lines: io.StringIO
) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key, "pkcs8", PASS))
    result = apply(client, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS, "CORPNET_DECRYPT_KEY": "1"})
    assert result is not None
    out = client.root / "run" / "client" / "tls.key"
    assert result.key == out
    assert result.passphrase is None
    assert mode(out) == 0o600
    assert pem_labels(out.read_bytes()) == ["PRIVATE KEY"]  # unencrypted PKCS#8
    assert "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE" not in result.exports.env
    assert "GIT_SSL_CERT_PASSWORD_PROTECTED" not in result.exports.env
    assert result.exports.env["CLAUDE_CODE_CLIENT_KEY"] == str(out)
    assert "PIP_CLIENT_CERT" in result.exports.env
    assert "tmpfs" in log_lines.getvalue()
    loads_in_ssl(result.cert, result.key, None)


def test_pkcs12_with_password(client: Client, root: Authority, issuing: Authority) -> None:
    key = private_key("rsa")
    leaf = make_leaf(issuing, key=key)
    client.write("client.p12", p12_bundle(key, leaf, [issuing.cert, root.cert], PASS))
    # CORPNET_STRICT: the chain is verified at the start too (and must pass).
    env = {"CORPNET_CLIENT_P12_PASSWORD": PASS, "CORPNET_STRICT": "1"}
    result = apply(client, env, roots=root.pem)
    assert result is not None
    out = client.root / "run" / "client"
    assert (result.cert, result.key, result.passphrase) == (out / "tls.crt", out / "tls.key", PASS)
    assert mode(result.cert) == mode(result.key) == 0o600
    # Leaf then intermediate; the root the bundle carried is left out.
    assert result.cert.read_bytes() == cert_pem(leaf, issuing.cert)
    assert b"ENCRYPTED PRIVATE KEY" in result.key.read_bytes()
    assert result.report.source == "pkcs12"
    assert [c.status for c in result.report.checks if c.name == "chain"] == ["ok"]
    assert result.exports.env["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == PASS
    loads_in_ssl(result.cert, result.key, result.passphrase)
    # A restart with the same bundle leaves the files byte-identical (no new salt).
    before = result.key.read_bytes()
    again = apply(client, {"CORPNET_CLIENT_P12_PASSWORD": PASS})
    assert again is not None
    assert again.key.read_bytes() == before


def test_pkcs12_without_password(client: Client, root: Authority) -> None:
    key = private_key("ec")
    client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None))
    result = apply(client)
    assert result is not None
    assert result.passphrase is None
    assert pem_labels(result.key.read_bytes()) == ["PRIVATE KEY"]
    assert "PIP_CLIENT_CERT" in result.exports.env
    loads_in_ssl(result.cert, result.key, None)


def test_pkcs12_from_the_variable_with_decrypt(
    client: Client, root: Authority, tmp_path: Path
) -> None:
    key = private_key("ec")
    p12 = tmp_path / "me.pfx"
    p12.write_bytes(p12_bundle(key, make_leaf(root, key=key), [], PASS))
    p12.chmod(0o600)
    env = {
        "CORPNET_CLIENT_P12": str(p12),
        "CORPNET_CLIENT_P12_PASSWORD": PASS,
        "CORPNET_DECRYPT_KEY": "1",
    }
    result = apply(client, env)
    assert result is not None
    assert result.passphrase is None
    assert b"ENCRYPTED" not in result.key.read_bytes()


@pytest.mark.parametrize(
    ("env", "error", "code", "expected"),
    [
        ({}, identity.KeyPassphraseError, ExitCode.CONFIG, "is password-protected: set"),
        (
            {"CORPNET_CLIENT_P12_PASSWORD": "nope"},
            identity.KeyPassphraseError,
            ExitCode.CONFIG,
            "does not open",
        ),
    ],
    ids=["missing-password", "wrong-password"],
)
def test_pkcs12_password_errors(  # noqa: PLR0917 - pytest passes parameters by name
    client: Client,
    root: Authority,
    env: dict[str, str],
    error: type[Exception],
    code: ExitCode,
    expected: str,
) -> None:
    key = private_key("ec")
    client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], PASS))
    with pytest.raises(error) as e:
        apply(client, env)
    assert expected in str(e.value)
    assert getattr(e.value, "exit_code", None) == code


def test_pkcs12_unneeded_password_is_a_warning(client: Client, root: Authority) -> None:
    key = private_key("ec")
    client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None))
    result = apply(client, {"CORPNET_CLIENT_P12_PASSWORD": "pw"})
    assert result is not None
    assert any("has no password" in w for w in result.warnings)


@pytest.mark.parametrize(
    "data", [b"\x30\x03garbage", b"plain text", b""], ids=["der", "text", "empty"]
)
def test_pkcs12_garbage(client: Client, data: bytes) -> None:
    client.write("client.p12", data)
    with pytest.raises(identity.ClientFileError) as e:
        apply(client)
    assert str(client.client_dir / "client.p12") in str(e.value)
    assert e.value.exit_code == ExitCode.DATA


def test_world_readable_pkcs12_is_refused(client: Client, root: Authority) -> None:
    key = private_key("ec")
    client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None), 0o644)
    with pytest.raises(identity.ClientKeyPermissionError, match="PKCS#12 bundle"):
        apply(client)


def test_outputs_stay_root_s_and_the_agent_group_reads_them(
    client: Client, root: Authority
) -> None:
    """Written by root for the agent: readable through its group, never its to change."""
    assert os.geteuid() == 0, "this test checks ownership as root: run the suite as root"
    key = private_key("ec")
    client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None))
    result = apply(client, owner=(65534, 65534))
    assert result is not None
    expected = {result.cert: 0o640, result.key: 0o640, result.cert.parent: 0o750}
    for path, mode in expected.items():
        st = path.lstat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 65534, mode), path


def test_stale_outputs_are_removed(client: Client, root: Authority) -> None:
    key = private_key("ec")
    p12 = client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None))
    first = apply(client)
    assert first is not None
    assert first.key.exists()
    p12.unlink()
    assert apply(client) is None
    assert not first.key.exists()
    assert not (client.root / "run" / "client" / "tls-combined.pem").exists()


def test_pem_pair_wins_over_a_default_p12(client: Client, root: Authority) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key))
    client.write("client.p12", b"ignored")
    result = apply(client)
    assert result is not None
    assert result.report.source == "pem"


def test_unwritable_runtime_dir_is_a_permission_error(client: Client, root: Authority) -> None:
    key = private_key("ec")
    client.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None))
    (client.root / "run").write_text("a file where the runtime directory should be")
    with pytest.raises(identity.ClientKeyPermissionError) as e:
        apply(client)
    assert f"cannot write the client identity outputs in {client.root / 'run' / 'client'}" in str(
        e.value
    )
    assert "CORPNET_RUNTIME_DIR" in str(e.value)


def test_a_decrypted_copy_remembers_the_users_key_for_a_nested_run(
    client: Client, root: Authority
) -> None:
    """A shell that sourced env.sh (docker exec) re-runs corpnet on the user's real key."""
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    users_key = client.write("team.key", key_pem(key, "pkcs8", PASS))
    first_env = {
        "CLAUDE_CODE_CLIENT_KEY": str(users_key),
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS,
        "CORPNET_DECRYPT_KEY": "1",
    }
    first = apply(client, first_env)
    assert first is not None
    assert first.exports.env["CLAUDE_CODE_CLIENT_KEY"] == str(client.root / "run/client/tls.key")
    assert first.exports.env["CORPNET_INPUT_CLIENT_KEY"] == str(users_key)
    # The nested run sees what env.sh exported, on top of the container's variables.
    nested = apply(client, {**first_env, **first.exports.env})
    assert nested is not None
    assert nested.report.key_path == users_key  # checked the real input, not our copy
    assert nested.report.encrypted
    assert client.settings({**first_env, **first.exports.env}).identity.key == users_key


def test_nothing_is_remembered_when_the_exported_key_is_the_users_own(
    client: Client, root: Authority
) -> None:
    key = private_key("rsa")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key, "pkcs8"))
    result = apply(client)
    assert result is not None
    assert "CORPNET_INPUT_CLIENT_KEY" not in result.exports.env
    assert "CORPNET_INPUT_CLIENT_CERT" not in result.exports.env


def test_a_start_does_not_warn_about_a_client_ca_the_server_decides_on(
    client: Client, root: Authority, issuing: Authority, log_lines: io.StringIO
) -> None:
    """Issue 15: a client CA that is not a server CA is the usual case, not a warning."""
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(issuing, key=key)))
    client.write("tls.key", key_pem(key))
    result = apply(client, roots=root.pem)  # the chain misses its intermediate
    assert result is not None
    assert result.warnings == []
    chain = [c for c in result.report.checks if c.name == "chain"]
    assert [(c.status, "the server decides" in c.detail) for c in chain] == [("skipped", True)]
    # `corpnet identity` (check) still says it; --strict refuses it at the start.
    assert "does not chain" in " ".join(w for w in client.check(roots=root.pem).warnings)
    with pytest.raises(identity.ClientFileError, match="does not chain to a trusted CA"):
        apply(client, {"CORPNET_STRICT": "1"}, roots=root.pem)
