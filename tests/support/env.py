"""The host environment and the in-process CLI runner (``from support.env import ...``).

Kept out of conftest.py: pytest registers every conftest under the module
name ``conftest``, so importing from it picks whichever was loaded last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

# Variables corpnet reads or writes; removed from every test's environment.
_PREFIXES = ("CORPNET_", "CLAUDE_CODE_", "GIT_SSL_", "PIP_", "JAVA_TOOL_OPTIONS", "NODE_")
_NAMES = {
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "HTTPLIB2_CA_CERTS",
    "NIX_SSL_CERT_FILE",
    "CARGO_HTTP_CAINFO",
    "DENO_CERT",
    "BUNDLE_SSL_CA_CERT",
    "HEX_CACERTS_PATH",
    "COMPOSER_CAFILE",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
}
_PROXY = {"http_proxy", "https_proxy", "no_proxy", "all_proxy", "ftp_proxy"}


def is_corpnet_variable(name: str) -> bool:
    return name.startswith(_PREFIXES) or name in _NAMES or name.lower() in _PROXY


def host_environ() -> dict[str, str]:
    """A copy of the process environment without any variable corpnet reads."""
    return {k: v for k, v in os.environ.items() if not is_corpnet_variable(k)}


@dataclass
class CliResult:
    """What one in-process ``corpnet`` invocation did."""

    code: int
    out: str
    err: str


CorpnetCli = Callable[..., CliResult]


CorpnetCli = Callable[..., CliResult]


def compose_command() -> list[str]:
    """`docker compose` (v2) when the Docker CLI has it, else Debian's docker-compose.

    Raises AssertionError (a test failure with the fix) when neither is installed.
    """
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy is not None, (
        "neither `docker compose` nor docker-compose is installed: apt-get install docker-compose"
    )
    return [legacy]
