"""The identity checks: key formats, passphrases, pairing, validity, usage, chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from corpnet import config, identity
from corpnet.errors import ExitCode
from support.client_pki import (
    DAY,
    NOW,
    Authority,
    cert_pem,
    key_pem,
    make_ca,
    make_leaf,
    private_key,
)

PASS = "correct horse battery"


@dataclass
class Client:
    """A client directory laid out like a mount, and the settings that point at it."""

    root: Path

    @property
    def client_dir(self) -> Path:
        return self.root / "etc" / "client"

    def write(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        path = self.client_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        return path

    def settings(self, env: Mapping[str, str] | None = None) -> config.Settings:
        return config.load(
            {
                "CORPNET_CONFIG_DIR": str(self.root / "etc"),
                "CORPNET_RUNTIME_DIR": str(self.root / "run"),
                **(env or {}),
            }
        )

    def check(
        self,
        env: Mapping[str, str] | None = None,
        *,
        roots: bytes | None = None,
        uid: int = 0,
        gids: frozenset[int] = frozenset({0}),
        strict: bool = False,
    ) -> identity.IdentityReport | None:
        s = self.settings(env).identity
        if strict:
            s = replace(s, strict=True)
        return identity.check(s, roots_pem=roots, now=NOW, uid=uid, gids=gids)


@pytest.fixture(name="client")
def client_fixture(tmp_path: Path) -> Client:
    return Client(tmp_path)


@pytest.fixture(name="root", scope="module")
def root_fixture() -> Authority:
    return make_ca("Corp Root CA")


@pytest.fixture(name="issuing", scope="module")
def issuing_fixture(root: Authority) -> Authority:
    return make_ca("Corp Issuing CA", issuer=root, n=1)


def pem_pair(client: Client, issuer: Authority, *, key_kind: str = "ec", **leaf: object) -> None:
    key = private_key(key_kind)  # type: ignore[arg-type]
    client.write("tls.crt", cert_pem(make_leaf(issuer, key=key, **leaf)))  # type: ignore[arg-type]
    client.write("tls.key", key_pem(key))


# --- key formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fmt", "label", "format_name"),
    [
        ("rsa", "pkcs1", b"RSA PRIVATE KEY", "PKCS#1"),
        ("rsa", "pkcs8", b"PRIVATE KEY", "PKCS#8"),
        ("ec", "sec1", b"EC PRIVATE KEY", "SEC1"),
        ("ec", "pkcs8", b"PRIVATE KEY", "PKCS#8"),
    ],
)
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_every_key_format_loads(  # noqa: PLR0917 - pytest passes parameters by name
    client: Client,
    root: Authority,
    kind: str,
    fmt: str,
    label: bytes,
    format_name: str,
    encrypted: bool,
) -> None:
    key = private_key(kind)  # type: ignore[arg-type]
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)))
    data = key_pem(key, fmt, PASS if encrypted else None)  # type: ignore[arg-type]
    assert b"-----BEGIN " + (b"ENCRYPTED " if encrypted and fmt == "pkcs8" else b"") + label in data
    client.write("tls.key", data)
    report = client.check({"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS} if encrypted else None)
    assert report is not None
    assert report.key_format == format_name
    assert report.encrypted is encrypted
    assert report.key_type == ("RSA" if kind == "rsa" else "EC secp256r1")
    assert report.key_bits == (2048 if kind == "rsa" else 256)
    assert {c.name for c in report.checks} >= {"certificate", "key", "pair", "validity", "usage"}


def test_openssh_key_says_how_to_convert(client: Client, root: Authority) -> None:
    key = private_key("rsa")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)))
    client.write("tls.key", key_pem(key, "openssh"))
    with pytest.raises(identity.ClientFileError) as e:
        client.check()
    assert "OpenSSH format" in str(e.value)
    assert "ssh-keygen -p -m PEM" in str(e.value)
    assert e.value.exit_code == ExitCode.DATA


# --- passphrases: three distinct errors ----------------------------------------------------------


@pytest.fixture
def encrypted_pair(client: Client, root: Authority) -> Client:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)))
    client.write("tls.key", key_pem(key, "pkcs8", PASS))
    return client


def test_missing_passphrase(encrypted_pair: Client) -> None:
    with pytest.raises(identity.KeyPassphraseError) as e:
        encrypted_pair.check()
    key = encrypted_pair.client_dir / "tls.key"
    assert str(e.value) == (
        f"Client key {key} is encrypted: set CLAUDE_CODE_CLIENT_KEY_PASSPHRASE or "
        "CORPNET_CLIENT_KEY_PASSPHRASE_FILE"
    )
    assert e.value.exit_code == ExitCode.CONFIG


def test_wrong_passphrase(encrypted_pair: Client) -> None:
    with pytest.raises(identity.KeyPassphraseError) as e:
        encrypted_pair.check({"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "not it"})
    assert "The passphrase from CLAUDE_CODE_CLIENT_KEY_PASSPHRASE does not decrypt" in str(e.value)
    assert "not it" not in str(e.value)
    assert e.value.exit_code == ExitCode.CONFIG


def test_wrong_passphrase_from_file_names_the_file_variable(
    encrypted_pair: Client, tmp_path: Path
) -> None:
    (tmp_path / "pass").write_text("nope\n")
    env = {"CORPNET_CLIENT_KEY_PASSPHRASE_FILE": str(tmp_path / "pass")}
    with pytest.raises(
        identity.KeyPassphraseError, match="from CORPNET_CLIENT_KEY_PASSPHRASE_FILE"
    ):
        encrypted_pair.check(env)


def test_passphrase_file_with_trailing_newline_works(
    encrypted_pair: Client, tmp_path: Path
) -> None:
    (tmp_path / "pass").write_text(PASS + "\n")
    report = encrypted_pair.check(
        {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE": str(tmp_path / "pass")}
    )
    assert report is not None
    assert report.encrypted


def test_unneeded_passphrase(client: Client, root: Authority) -> None:
    pem_pair(client, root)
    with pytest.raises(identity.KeyPassphraseError) as e:
        client.check({"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS})
    assert "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE is set but client key" in str(e.value)
    assert "is not encrypted: unset CLAUDE_CODE_CLIENT_KEY_PASSPHRASE" in str(e.value)


def test_three_passphrase_errors_are_distinct(encrypted_pair: Client, root: Authority) -> None:
    messages = set()
    for env in (None, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "wrong"}):
        with pytest.raises(identity.KeyPassphraseError) as e:
            encrypted_pair.check(env)
        messages.add(e.value.message)
    encrypted_pair.write("tls.key", key_pem(private_key("ec")))
    with pytest.raises(identity.KeyPassphraseError) as e:
        encrypted_pair.check({"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "x"})
    messages.add(e.value.message)
    assert len(messages) == 3


# --- pairing and order -------------------------------------------------------------------------


def test_mismatched_pair(client: Client, root: Authority) -> None:
    client.write("tls.crt", cert_pem(make_leaf(root, key=private_key("ec", 1))))
    client.write("tls.key", key_pem(private_key("ec", 2)))
    with pytest.raises(identity.ClientFileError) as e:
        client.check()
    assert "does not belong to certificate" in str(e.value)
    assert "openssl x509 -noout -pubkey" in str(e.value)
    assert e.value.exit_code == ExitCode.DATA


def test_leaf_must_come_first(client: Client, root: Authority, issuing: Authority) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(issuing.cert, make_leaf(issuing, key=key)))
    client.write("tls.key", key_pem(key))
    with pytest.raises(
        identity.ClientFileError, match="does not start with the client certificate"
    ):
        client.check()


def test_combined_pem_in_both_variables(client: Client, root: Authority) -> None:
    key = private_key("ec")
    both = client.write("both.pem", key_pem(key) + cert_pem(make_leaf(root, key=key)))
    env = {"CLAUDE_CODE_CLIENT_CERT": str(both), "CLAUDE_CODE_CLIENT_KEY": str(both)}
    report = client.check(env)
    assert report is not None
    assert report.cert_path == report.key_path == both


# --- validity ----------------------------------------------------------------------------------


def test_expired(client: Client, root: Authority) -> None:
    pem_pair(client, root, not_before=NOW - 400 * DAY, not_after=NOW - 3 * DAY)
    with pytest.raises(identity.ClientFileError) as e:
        client.check()
    assert "expired on" in str(e.value)
    assert "(3 days ago)" in str(e.value)
    assert "renew it" in str(e.value)


def test_not_yet_valid(client: Client, root: Authority) -> None:
    pem_pair(client, root, not_before=NOW + 2 * DAY, not_after=NOW + 400 * DAY)
    with pytest.raises(identity.ClientFileError) as e:
        client.check()
    assert "is not valid before" in str(e.value)
    assert "check the container's clock" in str(e.value)


def test_expiring_soon_is_a_warning(client: Client, root: Authority) -> None:
    pem_pair(client, root, not_after=NOW + 5 * DAY + DAY / 2)
    report = client.check()
    assert report is not None
    assert report.days_left == 5
    assert len(report.warnings) == 1
    assert "expires in 5 days" in report.warnings[0]
    # CORPNET_CERT_WARN_DAYS moves the threshold.
    report = client.check({"CORPNET_CERT_WARN_DAYS": "3"})
    assert report is not None
    assert report.warnings == ()


# --- key usage ---------------------------------------------------------------------------------


def test_server_only_eku_is_an_error(client: Client, root: Authority) -> None:
    pem_pair(client, root, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    with pytest.raises(identity.ClientFileError) as e:
        client.check()
    assert "is not for client authentication (extended key usage: serverAuth)" in str(e.value)
    assert "clientAuth" in e.value.hint


@pytest.mark.parametrize(
    "eku",
    [None, (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)],
    ids=["no-eku", "server-and-client"],
)
def test_eku_absent_or_including_client_auth_passes(
    client: Client, root: Authority, eku: tuple[object, ...] | None
) -> None:
    pem_pair(client, root, eku=eku)
    report = client.check(roots=root.pem)
    assert report is not None
    assert [c.status for c in report.checks if c.name in {"usage", "chain"}] == ["ok", "ok"]


# --- chain -------------------------------------------------------------------------------------


def chain_status(report: identity.IdentityReport | None) -> tuple[str, str]:
    assert report is not None
    (chain,) = [c for c in report.checks if c.name == "chain"]
    return chain.status, chain.detail


def test_chain_with_intermediate_verifies_to_ca_crt(
    client: Client, root: Authority, issuing: Authority
) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(issuing, key=key), issuing.cert))
    client.write("tls.key", key_pem(key))
    client.write("ca.crt", root.pem, 0o644)
    report = client.check()
    status, detail = chain_status(report)
    assert status == "ok"
    assert "CN=Corp Root CA" in detail
    assert "ca.crt" in detail
    assert report is not None
    assert report.intermediates == 1


def test_chain_without_intermediate_warns_what_to_add(
    client: Client, root: Authority, issuing: Authority
) -> None:
    pem_pair(client, issuing)
    client.write("ca.crt", root.pem, 0o644)
    report = client.check()
    status, detail = chain_status(report)
    assert status == "warning"
    assert "CN=Corp Issuing CA" in detail
    assert "append the intermediate CA certificate" in detail
    assert report is not None
    assert report.warnings == (detail,)


def test_chain_with_intermediate_but_untrusted_root_names_the_root(
    client: Client, root: Authority, issuing: Authority
) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(issuing, key=key), issuing.cert))
    client.write("tls.key", key_pem(key))
    status, detail = chain_status(client.check(roots=make_ca("Public Root", n=9).pem))
    assert status == "warning"
    assert "the chain in the file ends at CN=Corp Root CA,O=Corp, which is not in the trust" in (
        detail
    )
    assert "mount that CA as /etc/corpnet/client/ca.crt" in detail


def test_chain_without_intermediate_fails_when_strict(
    client: Client, root: Authority, issuing: Authority
) -> None:
    pem_pair(client, issuing)
    client.write("ca.crt", root.pem, 0o644)
    with pytest.raises(identity.ClientFileError, match="does not chain to a trusted CA"):
        client.check(strict=True)


def test_wrong_ca_warns(client: Client, root: Authority) -> None:
    pem_pair(client, root)
    other = make_ca("Some Other CA", n=7)
    client.write("ca.crt", other.pem, 0o644)
    status, detail = chain_status(client.check(roots=other.pem))
    assert status == "warning"
    assert "CN=Corp Root CA" in detail  # the issuer it could not find
    with pytest.raises(identity.ClientFileError) as e:
        client.check(roots=other.pem, strict=True)
    assert e.value.exit_code == ExitCode.DATA


def test_corporate_cert_without_san_or_aki_verifies(
    client: Client, root: Authority, issuing: Authority
) -> None:
    key = private_key("rsa")
    leaf = make_leaf(issuing, key=key, san=False, aki=False, eku=None)
    client.write("tls.crt", cert_pem(leaf, issuing.cert))
    client.write("tls.key", key_pem(key, "pkcs1"))
    report = client.check(roots=root.pem)
    assert chain_status(report) == ("ok", "verified to CN=Corp Root CA,O=Corp (the trust bundle)")
    assert report is not None
    assert report.sans == ()


def test_critical_eku_with_client_auth_verifies(client: Client, root: Authority) -> None:
    # RFC 5280 lets a CA mark the EKU critical; the Web PKI policy alone would refuse it.
    pem_pair(client, root, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), eku_critical=True)
    assert chain_status(client.check(roots=root.pem))[0] == "ok"


def test_bundle_is_used_when_ca_crt_does_not_verify(client: Client, root: Authority) -> None:
    pem_pair(client, root)
    client.write("ca.crt", make_ca("Unrelated", n=8).pem, 0o644)
    status, detail = chain_status(client.check(roots=root.pem))
    assert status == "ok"
    assert "the trust bundle" in detail


def test_no_anchor_at_all_skips_the_chain_check(client: Client, root: Authority) -> None:
    pem_pair(client, root)
    assert chain_status(client.check())[0] == "skipped"


def test_broken_ca_crt_is_a_warning_not_an_error(client: Client, root: Authority) -> None:
    pem_pair(client, root)
    client.write("ca.crt", b"not a certificate", 0o644)
    report = client.check(roots=root.pem)
    assert report is not None
    assert any("Client CA file" in w and "ignored" in w for w in report.warnings)
    assert chain_status(report)[0] == "ok"


# --- the report --------------------------------------------------------------------------------


def test_report_facts(client: Client, root: Authority) -> None:
    key = private_key("ec")
    leaf = make_leaf(root, key=key, cn="bob")
    client.write("tls.crt", cert_pem(leaf))
    client.write("tls.key", key_pem(key))
    report = client.check()
    assert report is not None
    assert report.subject == "CN=bob,O=Corp"
    assert report.issuer == "CN=Corp Root CA,O=Corp"
    assert report.sans == ("email:bob@corp.example",)
    assert report.serial == f"{leaf.serial_number:x}"
    assert report.days_left == 365
    assert report.fingerprint_sha256.count(":") == 31
    data = report.to_dict()
    assert data["not_after"] == "2027-11-20T12:00:00Z"
    assert data["sha256_fingerprint"] == report.fingerprint_sha256
    assert "BEGIN" not in repr(data)


def test_nothing_configured_is_skipped(client: Client) -> None:
    assert client.check() is None
    client.write("ca.crt", b"", 0o644)  # a CA alone is not an identity
    assert client.check() is None
