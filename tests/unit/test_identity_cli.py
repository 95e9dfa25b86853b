"""``corpnet identity``: the report, exit codes, and no passphrase in any output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from support.client_pki import (
    DAY,
    NOW,
    Authority,
    cert_pem,
    key_pem,
    make_ca,
    make_leaf,
    p12_bundle,
    private_key,
)
from support.env import CorpnetCli

# Distinctive, so that finding it anywhere in the output is proof of a leak.
SECRET = "Zx9-unique-PASSPHRASE-q7w"


@pytest.fixture(scope="module")
def root() -> Authority:
    return make_ca("Corp Root CA")


class Mount:
    """A client directory (/etc/corpnet/client stand-in) and the base environment."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.dir = tmp_path / "etc" / "client"
        self.dir.mkdir(parents=True)
        self.env = {
            "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
            "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
        }

    def write(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(mode)
        return path


@pytest.fixture
def mount(tmp_path: Path) -> Mount:
    return Mount(tmp_path)


def test_help(corpnet: CorpnetCli) -> None:
    result = corpnet("identity", "--help")
    assert result.code == 0
    assert "--strict" in result.out
    assert "--json" in result.out


def test_nothing_configured(corpnet: CorpnetCli, mount: Mount) -> None:
    result = corpnet("identity", env=mount.env)
    assert result.code == 0
    assert "no client certificate configured" in result.out
    result = corpnet("identity", "--json", env=mount.env)
    assert json.loads(result.out) == {"configured": False}


def test_text_report(corpnet: CorpnetCli, mount: Mount, root: Authority) -> None:
    key = private_key("rsa")
    mount.write("tls.crt", cert_pem(make_leaf(root, key=key, cn="carol")), 0o644)
    mount.write("tls.key", key_pem(key, "pkcs8", SECRET), 0o440)
    mount.write("ca.crt", root.pem, 0o644)
    result = corpnet("identity", env={**mount.env, "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET})
    assert result.code == 0, result.err
    out = result.out
    for expected in (
        "subject      CN=carol,O=Corp",
        "issuer       CN=Corp Root CA,O=Corp",
        "SANs         email:carol@corp.example",
        "RSA 2048, PKCS#8, encrypted",
        "sha256       ",
        "days left",
        "ok       pair",
        "ok       chain",
        "verified to CN=Corp Root CA,O=Corp (ca.crt",
    ):
        assert expected in out, expected
    assert "PRIVATE KEY" not in out
    assert SECRET not in out + result.err


def test_json_report(corpnet: CorpnetCli, mount: Mount, root: Authority) -> None:
    key = private_key("ec")
    mount.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    mount.write("tls.key", key_pem(key, "sec1"))
    result = corpnet("identity", "--json", env=mount.env)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["configured"] is True
    assert data["key_type"] == "EC secp256r1"
    assert data["key_format"] == "SEC1"
    assert data["key_encrypted"] is False
    assert data["days_left"] > 300
    assert {c["name"] for c in data["checks"]} >= {"certificate", "key", "pair", "chain"}
    assert len(data["sha256_fingerprint"].split(":")) == 32


def test_strict_fails_on_an_unverified_chain(
    corpnet: CorpnetCli, mount: Mount, root: Authority
) -> None:
    key = private_key("ec")
    mount.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    mount.write("tls.key", key_pem(key))
    mount.write("ca.crt", make_ca("Unrelated CA", n=5).pem, 0o644)
    relaxed = corpnet("identity", env=mount.env)
    assert relaxed.code == 0
    assert "warning  chain" in relaxed.out
    strict = corpnet("identity", "--strict", env=mount.env)
    assert strict.code == 65
    assert "does not chain to a trusted CA" in strict.err
    assert corpnet("identity", env={**mount.env, "CORPNET_STRICT": "1"}).code == 65


def test_variable_and_file_twin_both_set(corpnet: CorpnetCli, mount: Mount, tmp_path: Path) -> None:
    (tmp_path / "pass").write_text(SECRET)
    env = {
        **mount.env,
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET,
        "CORPNET_CLIENT_KEY_PASSPHRASE_FILE": str(tmp_path / "pass"),
    }
    result = corpnet("identity", env=env)
    assert result.code == 78
    assert (
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE and CORPNET_CLIENT_KEY_PASSPHRASE_FILE are both set"
        in result.err
    )
    assert SECRET not in result.out + result.err


# --- every error, and never the passphrase -----------------------------------------------------

Setup = Callable[[Mount, Authority], dict[str, str]]


def _pair(m: Mount, root: Authority, *, passphrase: str | None = SECRET, **leaf: object) -> None:
    key = private_key("ec")
    m.write("tls.crt", cert_pem(make_leaf(root, key=key, **leaf)), 0o644)  # type: ignore[arg-type]
    m.write("tls.key", key_pem(key, "pkcs8", passphrase))


def wrong_passphrase(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root, passphrase="the real one")
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def wrong_passphrase_file(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root, passphrase="the real one")
    (m.tmp / "pass").write_text(SECRET + "\n")
    return {"CORPNET_CLIENT_KEY_PASSPHRASE_FILE": str(m.tmp / "pass")}


def unneeded_passphrase(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root, passphrase=None)
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def missing_passphrase(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root)
    return {}


def mismatch(m: Mount, root: Authority) -> dict[str, str]:
    m.write("tls.crt", cert_pem(make_leaf(root, key=private_key("ec", 3))), 0o644)
    m.write("tls.key", key_pem(private_key("ec", 4), "pkcs8", SECRET))
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def expired(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root, not_before=NOW - 900 * DAY, not_after=NOW - 500 * DAY)
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def not_yet_valid(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root, not_before=NOW + 900 * DAY, not_after=NOW + 1000 * DAY)
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def server_only(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def world_readable(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root)
    (m.dir / "tls.key").chmod(0o644)
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def openssh(m: Mount, root: Authority) -> dict[str, str]:
    key = private_key("ec")
    m.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    m.write("tls.key", key_pem(key, "openssh"))
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def garbage_key(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root)
    m.write("tls.key", b"garbage")
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def directory_key(m: Mount, root: Authority) -> dict[str, str]:
    m.write("tls.crt", cert_pem(make_leaf(root)), 0o644)
    (m.dir / "tls.key").mkdir()
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def p12_wrong_password(m: Mount, root: Authority) -> dict[str, str]:
    key = private_key("ec")
    m.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], "the real one"))
    return {"CORPNET_CLIENT_P12_PASSWORD": SECRET}


def half_mounted(m: Mount, root: Authority) -> dict[str, str]:
    m.write("tls.crt", cert_pem(make_leaf(root)), 0o644)
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET}


def strict_chain(m: Mount, root: Authority) -> dict[str, str]:
    _pair(m, root)
    m.write("ca.crt", make_ca("Unrelated CA", n=6).pem, 0o644)
    return {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": SECRET, "CORPNET_STRICT": "1"}


@pytest.mark.parametrize(
    ("setup", "code", "fragment"),
    [
        (wrong_passphrase, 78, "does not decrypt"),
        (wrong_passphrase_file, 78, "CORPNET_CLIENT_KEY_PASSPHRASE_FILE does not decrypt"),
        (unneeded_passphrase, 78, "is not encrypted"),
        (missing_passphrase, 78, "is encrypted: set CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"),
        (mismatch, 65, "does not belong to certificate"),
        (expired, 65, "expired on"),
        (not_yet_valid, 65, "is not valid before"),
        (server_only, 65, "is not for client authentication"),
        (world_readable, 77, "is readable by every user (mode 0644)"),
        (openssh, 65, "ssh-keygen -p -m PEM"),
        (garbage_key, 65, "is not a PEM private key"),
        (directory_key, 78, "is a directory, not a file"),
        (p12_wrong_password, 78, "does not open"),
        (half_mounted, 78, "is mounted but"),
        (strict_chain, 65, "does not chain to a trusted CA"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
@pytest.mark.parametrize("json_flag", [False, True], ids=["text", "json"])
def test_errors_name_the_problem_and_never_leak_the_passphrase(  # noqa: PLR0917 - pytest passes parameters by name
    corpnet: CorpnetCli,
    mount: Mount,
    root: Authority,
    setup: Setup,
    code: int,
    fragment: str,
    json_flag: bool,
) -> None:
    env = {**mount.env, **setup(mount, root)}
    result = corpnet("identity", *(["--json"] if json_flag else []), env=env)
    assert result.code == code, result.err
    assert fragment in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, lines  # ONE line that says what is wrong and what to do
    assert lines[0].startswith("corpnet: error: ")
    assert str(mount.tmp) in lines[0]  # names the file
    assert "Traceback" not in result.err
    assert SECRET not in result.out
    assert SECRET not in result.err


def test_readability_is_checked_for_corpnet_user_when_root(
    corpnet: CorpnetCli, mount: Mount, root: Authority
) -> None:
    assert os.geteuid() == 0, "this test runs as root (the CI does), like a container entrypoint"
    key = private_key("ec")
    mount.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    mount.write("tls.key", key_pem(key), 0o600)  # root's own: the agent cannot read it
    assert corpnet("identity", env=mount.env).code == 0
    result = corpnet("identity", env={**mount.env, "CORPNET_USER": "65534:65534"})
    assert result.code == 77
    assert "is not readable by uid 65534, the user the agent runs as" in result.err


def test_a_password_for_an_unprotected_p12_is_a_warning_in_identity_and_doctor_alike(
    corpnet: CorpnetCli, mount: Mount, root: Authority
) -> None:
    key = private_key("ec")
    mount.write("client.p12", p12_bundle(key, make_leaf(root, key=key), [], None))
    system = mount.tmp / "system.pem"
    system.write_bytes(root.pem)
    env = {
        **mount.env,
        "CORPNET_CLIENT_P12_PASSWORD": SECRET,
        "CORPNET_SYSTEM_BUNDLE": str(system),
        "CORPNET_ALLOWLIST": "",  # nothing to probe: the identity is the point
    }
    identity = corpnet("identity", env=env)
    assert identity.code == 0, identity.err
    assert "has no password" in identity.out
    doctor = corpnet("doctor", env=env)
    assert doctor.code == 0, doctor.out
    assert "WARN  CORPNET_CLIENT_P12_PASSWORD is set but" in doctor.out
    assert "has no password" in doctor.out
    assert "FAIL" not in doctor.out
    assert SECRET not in doctor.out + doctor.err + identity.out + identity.err
