"""Fixtures every test folder shares.

The host running the tests is itself behind a TLS-inspecting egress and exports
CA and proxy variables; corpnet reads exactly those, so every test starts from
an environment with none of them (``clean_env``) and sets what it needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

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


def _is_ours(name: str) -> bool:
    return name.startswith(_PREFIXES) or name in _NAMES or name.lower() in _PROXY


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every CA, proxy and corpnet variable the host exported."""
    for name in list(os.environ):
        if _is_ours(name):
            monkeypatch.delenv(name)


def host_environ() -> dict[str, str]:
    """A copy of the process environment without any variable corpnet reads."""
    return {k: v for k, v in os.environ.items() if not _is_ours(k)}


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A corporate root CA, generated for this test session."""
    return trustme.CA(organization_name="Corp Test Root CA")


@dataclass
class CliResult:
    """What one in-process ``corpnet`` invocation did."""

    code: int
    out: str
    err: str


CorpnetCli = Callable[..., CliResult]


@pytest.fixture
def corpnet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[CorpnetCli]:
    """Run ``corpnet ARGS`` in-process through ``main()``, exit-code mapping included.

    ``env`` entries are added to the (clean) environment for that call only.
    """
    from corpnet import log as logmod
    from corpnet.cli import main

    def invoke(*args: str, env: Mapping[str, str] | None = None) -> CliResult:
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            capsys.readouterr()
            code = 0
            try:
                main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            captured = capsys.readouterr()
        logmod.configure({})  # back to quiet=False on stderr; secrets stay registered
        return CliResult(code, captured.out, captured.err)

    yield invoke


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[str], Path]:
    """``tree("a/b")`` makes and returns a directory under this test's tmp_path."""

    def make(rel: str) -> Path:
        path = tmp_path / rel
        path.mkdir(parents=True, exist_ok=True)
        return path

    return make
