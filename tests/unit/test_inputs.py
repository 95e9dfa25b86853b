"""Bounded inputs: only regular files are read, with a size cap, from every source.

A FIFO must not block a start, ``/dev/zero`` must not fill memory: each case
runs ``corpnet`` as a subprocess (a hang is then a timeout, not a stuck test
run) under a 2 GB address-space limit, and asserts the exit code and the
one line that names the variable and the fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.client_pki import cert_pem, key_pem, make_ca, make_leaf, p12_bundle, private_key
from support.env import host_environ
from support.pki import make_cert, pem, system_bundle

SYSTEM_PEM, _ = system_bundle()
CA1 = make_cert("Corp Root One", serial=31)
SECRET = "Zx9-unique-PASSPHRASE-q7w"
# Old code read /dev/zero until memory ran out; the limit turns that into a quick failure.
ADDRESS_SPACE = 2_000_000_000
# The caps the README documents (corpnet.inputs is imported only where it is tested
# directly, so that the CLI tests here also run against code without it).
CA_CAP = 64 << 20
SECRET_CAP = 64 << 10


@dataclass
class Run:
    code: int
    err: str
    seconds: float


@pytest.fixture
def box(tmp_path: Path) -> Path:
    (tmp_path / "etc" / "ca.d").mkdir(parents=True)
    (tmp_path / "etc" / "client").mkdir()
    (tmp_path / "system.pem").write_bytes(SYSTEM_PEM)
    return tmp_path


def corpnet(box: Path, *args: str, **env: str) -> Run:
    """``corpnet ARGS`` as a subprocess, every system path inside ``box``."""
    full = {
        **host_environ(),
        "CORPNET_CONFIG_DIR": str(box / "etc"),
        "CORPNET_RUNTIME_DIR": str(box / "run"),
        "CORPNET_SYSTEM_BUNDLE": str(box / "system.pem"),
        "CORPNET_SYSTEM_STORE": "off",  # we run as root: never touch this host's store
        "PATH": "/usr/bin:/bin",
        **env,
    }
    started = time.monotonic()
    done = subprocess.run(
        ["prlimit", f"--as={ADDRESS_SPACE}", sys.executable, "-m", "corpnet", *args],
        env=full, capture_output=True, text=True, check=False, timeout=20,
    )  # fmt: skip
    return Run(done.returncode, done.stderr, time.monotonic() - started)


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def assert_one_line(run: Run, code: int, *fragments: str) -> None:
    assert run.code == code, run.err
    lines = run.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("corpnet: error: ")]
    assert errors, run.err
    for fragment in fragments:
        assert any(fragment in line for line in errors), (fragment, run.err)
    assert "Traceback" not in run.err
    assert "internal error" not in run.err
    assert run.seconds < 10, run.seconds  # nothing blocks (a second, plus interpreter start)


# --- the helper itself -------------------------------------------------------------------------


def test_the_caps_are_the_documented_ones() -> None:
    from corpnet import inputs

    assert (inputs.CA_INPUT_LIMIT, inputs.SECRET_INPUT_LIMIT) == (CA_CAP, SECRET_CAP)
    assert inputs.CLIENT_INPUT_LIMIT == 1 << 20


def test_read_regular_reads_up_to_the_limit_and_refuses_one_byte_more(tmp_path: Path) -> None:
    from corpnet import inputs

    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert inputs.read_regular(path, 100).data == b"x" * 100
    with pytest.raises(inputs.InputFileError) as info:
        inputs.read_regular(path, 99)
    assert info.value.too_large
    assert info.value.what == "is 100 bytes, more than the 99 bytes corpnet reads from such a file"


@pytest.mark.parametrize(
    ("target", "what"),
    [
        ("/dev/zero", "is a character device, not a regular file"),
        ("/dev/urandom", "is a character device, not a regular file"),
        ("fifo", "is a FIFO (named pipe), not a regular file"),
        ("dir", "is a directory, not a regular file"),
        ("loop", "is a symlink loop"),
    ],
)
def test_read_regular_refuses_what_is_not_a_regular_file(
    tmp_path: Path, target: str, what: str
) -> None:
    from corpnet import inputs

    fifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "loop").symlink_to("loop")
    path = tmp_path / target if not target.startswith("/") else Path(target)
    link = tmp_path / "link"
    link.symlink_to(path)  # followed, as Kubernetes secret keys are symlinks
    with pytest.raises(inputs.InputFileError) as info:
        inputs.read_regular(link if target != "loop" else path, inputs.CA_INPUT_LIMIT)
    assert info.value.what == what
    assert not info.value.too_large


# --- CA inputs: every source --------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["CORPNET_CA_FILES", "NODE_EXTRA_CA_CERTS"])
def test_a_fifo_named_as_a_ca_file_is_78_at_once(box: Path, variable: str) -> None:
    pipe = fifo(box / "pipe")
    run = corpnet(box, "trust", **{variable: str(pipe)})
    assert_one_line(
        run, 78, f"{variable} names {pipe}, which is a FIFO (named pipe), not a regular file"
    )
    assert f"point {variable} at a CA file (PEM or DER)" in run.err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("variable", ["CORPNET_CA_FILES", "NODE_EXTRA_CA_CERTS"])
def test_an_endless_device_named_as_a_ca_file_is_78(box: Path, variable: str, device: str) -> None:
    run = corpnet(box, "trust", **{variable: device})
    assert_one_line(run, 78, f"{variable} names {device}, which is a character device")


def test_a_fifo_in_ca_d_is_an_error_naming_the_directory_variable(box: Path) -> None:
    (box / "etc" / "ca.d" / "corp.pem").write_bytes(pem(CA1))
    pipe = fifo(box / "etc" / "ca.d" / "pipe.pem")
    run = corpnet(box, "trust")
    assert_one_line(
        run,
        78,
        f"{pipe}, found through the ca.d directory (CORPNET_CONFIG_DIR), is a FIFO (named pipe)",
    )
    assert "remove it: only CA files (PEM or DER) belong in a CA directory" in run.err


def test_a_device_linked_into_a_ca_dirs_directory_is_an_error(box: Path) -> None:
    extra = box / "extra"
    extra.mkdir()
    (extra / "zero.pem").symlink_to("/dev/zero")
    run = corpnet(box, "trust", CORPNET_CA_DIRS=str(extra))
    assert_one_line(
        run, 78, f"{extra / 'zero.pem'}, found through CORPNET_CA_DIRS, is a character device"
    )


def test_a_ca_file_over_the_cap_is_65_without_reading_it(box: Path) -> None:
    huge = box / "etc" / "ca.d" / "huge.pem"
    with huge.open("wb") as f:
        f.truncate(CA_CAP + 1)  # sparse: no disk, no memory
    run = corpnet(box, "trust")
    assert_one_line(run, 65, f"{huge}, found through the ca.d directory", "more than the 64 MiB")


def test_a_self_referencing_symlink_in_ca_d_is_named_as_a_loop(box: Path) -> None:
    loop = box / "etc" / "ca.d" / "loop.pem"
    loop.symlink_to(loop.name)
    run = corpnet(box, "trust")
    assert_one_line(run, 78, f"{loop}, found through the ca.d directory", "is a symlink loop")
    assert "cannot list" not in run.err


def test_the_kubernetes_layout_and_dangling_keys_still_work(box: Path) -> None:
    ca_d = box / "etc" / "ca.d"
    stamp = ca_d / "..2026_06_01_00_00_00.1"
    stamp.mkdir()
    (stamp / "ca.crt").write_bytes(pem(CA1))
    (ca_d / "..data").symlink_to(stamp.name)
    (ca_d / "ca.crt").symlink_to("..data/ca.crt")
    (ca_d / "gone.crt").symlink_to("..data/gone.crt")  # a key the volume no longer has
    (ca_d / "sub").mkdir()  # directories are walked, not refused
    run = corpnet(box, "trust")
    assert run.code == 0, run.err
    assert "added 1 corporate CA certificate from 1 file" in run.err


# --- client identity and _FILE secrets ----------------------------------------------------------


def test_a_client_key_that_is_a_fifo_names_the_variable(box: Path) -> None:
    root = make_ca("Corp Root CA")
    key = private_key("ec")
    cert = box / "tls.crt"
    cert.write_bytes(cert_pem(make_leaf(root, key=key)))
    pipe = fifo(box / "tls.key")
    run = corpnet(
        box, "identity", CLAUDE_CODE_CLIENT_CERT=str(cert), CLAUDE_CODE_CLIENT_KEY=str(pipe)
    )
    assert_one_line(
        run, 78, f"CLAUDE_CODE_CLIENT_KEY points at {pipe}, which is a FIFO (named pipe)"
    )


def test_a_p12_that_is_dev_zero_names_the_variable(box: Path) -> None:
    run = corpnet(box, "identity", CORPNET_CLIENT_P12="/dev/zero")
    assert_one_line(run, 78, "CORPNET_CLIENT_P12 points at /dev/zero, which is a character device")


@pytest.mark.parametrize(
    ("variable", "extra"),
    [
        ("CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE", {}),
        ("CORPNET_CLIENT_KEY_PASSPHRASE_FILE", {}),
        ("CORPNET_CLIENT_P12_PASSWORD_FILE", {}),
        ("CORPNET_PROXY_PASSWORD_FILE", {"CORPNET_PROXY_USER": "alice"}),
    ],
)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_secret_file_that_is_not_a_regular_file_is_78(
    box: Path, variable: str, extra: dict[str, str], kind: str
) -> None:
    path = fifo(box / "secret") if kind == "fifo" else Path(kind)
    run = corpnet(box, "identity", **{variable: str(path)}, **extra)
    assert_one_line(run, 78, f"{variable} points at {path}, which is a ")
    assert "not a regular file" in run.err


def test_a_secret_file_over_the_cap_is_78(box: Path) -> None:
    big = box / "secret"
    big.write_bytes(b"x" * (SECRET_CAP + 1))
    run = corpnet(box, "identity", CORPNET_CLIENT_P12_PASSWORD_FILE=str(big))
    assert_one_line(run, 78, f"CORPNET_CLIENT_P12_PASSWORD_FILE points at {big}, which is 65537")


def test_a_regular_p12_and_password_file_still_work(box: Path) -> None:
    root = make_ca("Corp Root CA")
    key = private_key("ec")
    p12 = box / "etc" / "client" / "client.p12"
    p12.write_bytes(p12_bundle(key, make_leaf(root, key=key), [], SECRET))
    p12.chmod(0o600)
    password = box / "password"
    password.write_text(SECRET + "\n")
    run = corpnet(box, "identity", CORPNET_CLIENT_P12_PASSWORD_FILE=str(password))
    assert run.code == 0, run.err
    assert SECRET not in run.err
    assert key_pem(key) not in run.err.encode()
