"""Which files make the identity, and what is wrong with them: kinds, contents, permissions."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_identity import (  # noqa: F401 - shared fixtures, registered by name
    Client,
    client_fixture,
    root_fixture,
)

from corpnet import identity
from corpnet.errors import ExitCode
from support.client_pki import NOW, Authority, cert_pem, key_pem, make_leaf, pem_block, private_key

NOBODY = 65534


def good_pair(client: Client, root: Authority, *, key_mode: int = 0o600) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key), key_mode)


# --- which inputs ------------------------------------------------------------------------------


def test_default_cert_without_key_is_a_config_error(client: Client, root: Authority) -> None:
    client.write("tls.crt", cert_pem(make_leaf(root)), 0o644)
    with pytest.raises(identity.IdentityConfigError) as e:
        client.check()
    assert f"{client.client_dir / 'tls.crt'} is mounted but" in str(e.value)
    assert f"{client.client_dir / 'tls.key'} is not" in str(e.value)
    assert e.value.exit_code == ExitCode.CONFIG


def test_default_key_without_cert_is_a_config_error(client: Client) -> None:
    client.write("tls.key", key_pem(private_key("ec")))
    with pytest.raises(identity.IdentityConfigError, match=r"tls\.key is mounted but"):
        client.check()


def test_explicit_variable_pointing_at_nothing(client: Client, tmp_path: Path) -> None:
    env = {
        "CLAUDE_CODE_CLIENT_CERT": str(tmp_path / "missing.crt"),
        "CLAUDE_CODE_CLIENT_KEY": str(tmp_path / "missing.key"),
    }
    with pytest.raises(identity.IdentityConfigError) as e:
        client.check(env)
    assert str(e.value) == (
        f"CLAUDE_CODE_CLIENT_CERT points at {tmp_path / 'missing.crt'}, which does not exist: "
        "mount the file there or fix CLAUDE_CODE_CLIENT_CERT"
    )


def test_cert_variable_alone_without_a_default_key(client: Client, root: Authority) -> None:
    cert = client.write("mine.crt", cert_pem(make_leaf(root)), 0o644)
    with pytest.raises(identity.IdentityConfigError) as e:
        client.check({"CLAUDE_CODE_CLIENT_CERT": str(cert)})
    assert "CLAUDE_CODE_CLIENT_CERT is set but CLAUDE_CODE_CLIENT_KEY is not" in str(e.value)


def test_cert_variable_with_the_default_key(client: Client, root: Authority) -> None:
    key = private_key("ec")
    cert = client.write("mine.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key))
    report = client.check({"CLAUDE_CODE_CLIENT_CERT": str(cert)})
    assert report is not None
    assert report.key_path == client.client_dir / "tls.key"


def test_p12_and_pem_variables_together(client: Client, tmp_path: Path) -> None:
    env = {"CORPNET_CLIENT_P12": str(tmp_path / "a.p12"), "CLAUDE_CODE_CLIENT_CERT": "/x.crt"}
    with pytest.raises(identity.IdentityConfigError, match="CORPNET_CLIENT_P12 and CLAUDE_CODE"):
        client.check(env)


def test_kubernetes_secret_layout_symlinks_are_followed(client: Client, root: Authority) -> None:
    # The kubelet's atomic writer: tls.key -> ..data/tls.key, ..data -> ..2026_11_20_xx.
    key = private_key("ec")
    stamp = client.client_dir / "..2026_11_20_12_00_00.123"
    stamp.mkdir(parents=True)
    (stamp / "tls.crt").write_bytes(cert_pem(make_leaf(root, key=key)))
    (stamp / "tls.key").write_bytes(key_pem(key))
    (stamp / "tls.key").chmod(0o440)
    (client.client_dir / "..data").symlink_to(stamp.name)
    for name in ("tls.crt", "tls.key"):
        (client.client_dir / name).symlink_to(f"..data/{name}")
    report = client.check()
    assert report is not None
    assert any(c.name == "permissions" and "0440" in c.detail for c in report.checks)


def test_dangling_symlink_is_reported_as_a_broken_mount(client: Client, root: Authority) -> None:
    client.write("tls.crt", cert_pem(make_leaf(root)), 0o644)
    (client.client_dir / "tls.key").symlink_to("..data/tls.key")
    with pytest.raises(identity.IdentityConfigError) as e:
        client.check()
    assert "is a symlink to ..data/tls.key, which does not exist" in str(e.value)


# --- bad contents ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("tls.crt", b"", "Client certificate {path} is empty"),
        ("tls.key", b"", "Client key {path} is empty"),
        ("tls.crt", b"hello world\n", "Client certificate {path} is not a PEM certificate"),
        ("tls.key", b"hello world\n", "Client key {path} is not a PEM private key"),
        ("tls.crt", b"\x30\x82\x01\x00garbage", "Client certificate {path} is binary (DER"),
        (
            "tls.crt",
            pem_block("CERTIFICATE", "AAAA"),
            "Client certificate {path}: certificate #1 in the file is corrupt",
        ),
        (
            "tls.key",
            pem_block("PRIVATE KEY", "AAAA"),
            "Client key {path} is corrupt",
        ),
    ],
    ids=[
        "empty-cert",
        "empty-key",
        "garbage-cert",
        "garbage-key",
        "der-cert",
        "bad-b64",
        "bad-key",
    ],
)
def test_garbage_and_empty_files(
    client: Client, root: Authority, name: str, data: bytes, expected: str
) -> None:
    good_pair(client, root)
    path = client.write(name, data)
    with pytest.raises(identity.ClientFileError) as e:
        client.check()
    assert str(e.value).startswith(expected.format(path=path))
    assert e.value.exit_code == ExitCode.DATA


def test_swapped_cert_and_key(client: Client, root: Authority) -> None:
    good_pair(client, root)
    crt, key = client.client_dir / "tls.crt", client.client_dir / "tls.key"
    env = {"CLAUDE_CODE_CLIENT_CERT": str(key), "CLAUDE_CODE_CLIENT_KEY": str(crt)}
    with pytest.raises(identity.ClientFileError, match="holds a private key, not a certificate"):
        client.check(env)


def test_directory_where_a_file_is_expected(client: Client, root: Authority) -> None:
    good_pair(client, root)
    (client.client_dir / "tls.key").unlink()
    (client.client_dir / "tls.key").mkdir()
    with pytest.raises(identity.IdentityConfigError) as e:
        client.check()
    assert "tls.key is a directory, not a file" in str(e.value)
    assert "Docker creates a directory" in str(e.value)


def test_explicit_variable_naming_a_directory(client: Client, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    env = {"CLAUDE_CODE_CLIENT_CERT": str(tmp_path / "dir"), "CLAUDE_CODE_CLIENT_KEY": "/k"}
    with pytest.raises(identity.IdentityConfigError, match="CLAUDE_CODE_CLIENT_CERT points at"):
        client.check(env)


# --- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_key_open_to_other_users_is_refused(client: Client, root: Authority, mode: int) -> None:
    good_pair(client, root, key_mode=mode)
    with pytest.raises(identity.ClientKeyPermissionError) as e:
        client.check()
    assert f"(mode {mode:04o})" in str(e.value)
    assert "chmod 0600" in str(e.value)
    assert "defaultMode: 0440" in str(e.value)
    assert e.value.exit_code == ExitCode.NOPERM


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o440, 0o640])
def test_owner_and_group_modes_are_fine(client: Client, root: Authority, mode: int) -> None:
    good_pair(client, root, key_mode=mode)
    assert client.check() is not None


def test_key_unreadable_by_the_agent_uid(client: Client, root: Authority) -> None:
    good_pair(client, root, key_mode=0o440)  # owned by root:root (this test runs as root)
    key = client.client_dir / "tls.key"
    st = key.stat()
    with pytest.raises(identity.ClientKeyPermissionError) as e:
        client.check(uid=1000, gids=frozenset({1000}))
    assert f"Client key {key} is not readable by uid 1000, the user the agent runs as" in str(
        e.value
    )
    assert "fsGroup" in str(e.value)
    # The same file is fine for a member of its group (Kubernetes fsGroup).
    assert client.check(uid=1000, gids=frozenset({1000, st.st_gid})) is not None


def test_owner_without_read_bit_cannot_read_even_if_group_can(
    client: Client, root: Authority
) -> None:
    good_pair(client, root, key_mode=0o040)
    os.chown(client.client_dir / "tls.key", 1000, 1000)
    with pytest.raises(identity.ClientKeyPermissionError):
        client.check(uid=1000, gids=frozenset({1000}))


def test_decrypted_copy_means_the_agent_need_not_read_the_key(
    client: Client, root: Authority
) -> None:
    key = private_key("ec")
    client.write("tls.crt", cert_pem(make_leaf(root, key=key)), 0o644)
    client.write("tls.key", key_pem(key, "pkcs8", "pw"), 0o400)
    env = {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "pw", "CORPNET_DECRYPT_KEY": "1"}
    assert client.check(env, uid=1000, gids=frozenset({1000})) is not None
    with pytest.raises(identity.ClientKeyPermissionError):
        client.check({"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "pw"}, uid=1000, gids=frozenset({1000}))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="corpnet-identity-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_unreadable_key_for_real_as_another_user(shared_dir: Path, root: Authority) -> None:
    """A forked child drops to nobody and runs the check: the OS, not our arithmetic, says no."""
    assert os.geteuid() == 0, "this test needs root to switch to uid 65534 (the CI runs as root)"
    client = Client(shared_dir)
    good_pair(client, root, key_mode=0o600)
    client.client_dir.chmod(0o755)
    client.client_dir.parent.chmod(0o755)
    settings = client.settings().identity
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                identity.check(
                    settings, roots_pem=None, now=NOW, uid=NOBODY, gids=frozenset({NOBODY})
                )
                message = "no error"
            except identity.ClientKeyPermissionError as e:
                message = f"{int(e.exit_code)} {e}"
            os.write(write_end, message.encode())
        except BaseException:  # noqa: BLE001 - report anything to the parent
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        message = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    key = client.client_dir / "tls.key"
    assert message.startswith(f"77 Client key {key} is not readable by uid {NOBODY}"), message
