"""Fixtures every test folder shares.

The host running the tests is itself behind a TLS-inspecting egress and exports
CA and proxy variables; corpnet reads exactly those, so every test starts from
an environment with none of them (``clean_env``) and sets what it needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import trustme

from support import progress
from support.env import CliResult, CorpnetCli, is_corpnet_variable


def pytest_configure(config: pytest.Config) -> None:
    # Image builds in session fixtures say they are running (support/progress.py).
    progress.configure(config)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every CA, proxy and corpnet variable the host exported."""
    for name in list(os.environ):
        if is_corpnet_variable(name):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A corporate root CA, generated for this test session."""
    return trustme.CA(organization_name="Corp Test Root CA")


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
