"""The start-path commands skip click; they must mean exactly what click would parse."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import click
import pytest

from corpnet.cli import COMMANDS, cli, fast_path


def _click_parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    # The group has no options of its own that these forms use: what matters is
    # the subcommand's own grammar.
    name, rest = argv[0], argv[1:]
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    return name, command.make_context(name, list(rest)).params


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--", "claude", "--print", "hi"],
        ["run", "bash", "-lc", "echo hi"],
        ["run", "--", "--weird-name"],
        ["init"],
        ["trust"],
        ["trust", "--json"],
        ["trust", "--env", "--strict"],
    ],
)
def test_fast_path_parses_like_click(argv: list[str]) -> None:
    fast = fast_path(argv)
    assert fast is not None
    assert fast == _click_parse(argv)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run"],
        ["run", "--help"],
        ["init", "--help"],
        ["trust", "--json", "--json"],
        ["trust", "--help"],
        ["trust", "--bogus"],
        ["doctor"],
        ["--version"],
    ],
)
def test_everything_else_goes_to_click(argv: list[str]) -> None:
    assert fast_path(argv) is None


def test_every_fast_command_exists_in_click() -> None:
    assert {"run", "init", "trust"} <= set(COMMANDS)


def test_the_fast_path_imports_no_click(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "from corpnet.cli import main\n"
        "try:\n"
        "    main(['trust'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('click' in sys.modules)\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
        "CORPNET_SYSTEM_STORE": "off",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False", done.stderr
    assert (tmp_path / "run" / "ca-bundle.pem").is_file()
