"""Environment values that are not UTF-8: a clear 78 naming the variable, as for ``_FILE``.

Python decodes the environment with ``surrogateescape`` (PEP 383): a byte like
0xff arrives as the lone surrogate U+DCFF, which no UTF-8 encoder takes. The
real bytes only reach a process through ``execve``, so the CLI runs as a
subprocess with a bytes environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpnet import config
from corpnet.errors import ConfigErrors, ExitCode
from support.env import host_environ

BAD = b"p\xffw0rd-Zx9"  # the 0xff byte is what makes it invalid


def corpnet_env(tmp_path: Path, extra: dict[bytes, bytes]) -> subprocess.CompletedProcess[bytes]:
    env: dict[bytes, bytes] = {os.fsencode(k): os.fsencode(v) for k, v in host_environ().items()}
    env |= {
        b"CORPNET_CONFIG_DIR": os.fsencode(tmp_path / "etc"),
        b"CORPNET_RUNTIME_DIR": os.fsencode(tmp_path / "run"),
        b"CORPNET_WAIT": b"off",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "corpnet", "env", "--format", "sh"],
        env=env,  # type: ignore[arg-type] # subprocess takes bytes keys and values on POSIX
        capture_output=True,
        check=False,
        timeout=20,
    )


PROXY_URL = b"http://alice:" + BAD + b"@proxy:3128"
PROXY_ACCOUNT = {b"CORPNET_PROXY_USER": b"alice", b"HTTPS_PROXY": b"http://proxy:3128"}


@pytest.mark.parametrize(
    ("variable", "value", "extra"),
    [
        (b"CORPNET_PROXY_PASSWORD", BAD, PROXY_ACCOUNT),
        (b"HTTPS_PROXY", PROXY_URL, {}),
        (b"https_proxy", PROXY_URL, {}),
        (b"HTTP_PROXY", PROXY_URL, {}),
        (b"NO_PROXY", BAD, {}),
        (b"JAVA_TOOL_OPTIONS", b"-Dx=" + BAD, {}),
    ],
)
def test_invalid_utf8_in_a_variable_is_78_naming_it(
    tmp_path: Path, variable: bytes, value: bytes, extra: dict[bytes, bytes]
) -> None:
    done = corpnet_env(tmp_path, {variable: value, **extra})
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 78, err
    name = variable.decode()
    assert f"corpnet: error: {name} is not valid UTF-8: set {name} to UTF-8 text" in err
    assert "internal error" not in err
    assert b"w0rd-Zx9" not in done.stderr + done.stdout  # the value never appears


def test_the_file_twin_with_the_same_bytes_says_the_same(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(BAD)
    done = corpnet_env(
        tmp_path,
        {
            b"CORPNET_PROXY_PASSWORD_FILE": os.fsencode(secret),
            **PROXY_ACCOUNT,
        },
    )
    err = done.stderr.decode()
    assert done.returncode == 78, err
    assert f"CORPNET_PROXY_PASSWORD_FILE points at {secret}, which is not UTF-8 text" in err


def test_config_load_names_every_such_variable_at_once() -> None:
    env = {
        "CORPNET_PROXY_PASSWORD": "p\udcffw",
        "JAVA_TOOL_OPTIONS": "-Dx=\udcff",
        "PATH": "\udcff",
    }
    with pytest.raises(ConfigErrors) as info:
        config.load(env)
    variables = [e.variable for e in info.value.errors]
    assert "CORPNET_PROXY_PASSWORD" in variables
    assert "JAVA_TOOL_OPTIONS" in variables
    assert "PATH" not in variables  # not corpnet's to judge
    assert info.value.exit_code == ExitCode.CONFIG
