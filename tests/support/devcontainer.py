"""The devcontainer example, started with the devcontainers CLI as a user starts it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.containers import PROXY_USER, REPO
from support.world import PROXY_URL, World

CLI = REPO / ".venv" / "node" / "node_modules" / ".bin" / "devcontainer"
EXAMPLE = REPO / "examples" / "devcontainer"


def devcontainer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the devcontainers CLI; a missing CLI fails with the command that installs it."""
    if not CLI.exists():
        pytest.fail(
            f"the devcontainers CLI is not installed at {CLI}: run"
            " `bash scripts/test` once (provision_linters in scripts/lib.sh installs it)"
        )
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def jsonc(path: Path) -> dict[str, Any]:
    """devcontainer.json is JSON with comments; the example uses whole-line ones only."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("//")]
    data: dict[str, Any] = json.loads("\n".join(lines))
    return data


def workspace(world: World, image: str) -> Path:
    """A copy of the example whose only changes are the test topology's image and network."""
    folder = world.root / f"project-{secrets.token_hex(3)}"
    shutil.copytree(EXAMPLE, folder)
    config_file = folder / ".devcontainer" / "devcontainer.json"
    config = jsonc(config_file)
    config["image"] = image
    # A user's container reaches the corporate network by default; this one the
    # topology's internal network, labelled for the session's clean-up.
    label = "=".join(next(iter(world.tracker.labels.items())))
    config["runArgs"] = ["--network", world.front.name, "--label", label]
    config_file.write_text(json.dumps(config))
    return folder


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The shell that starts the container, as the example's comment asks for it."""
    return dict(os.environ) | {
        "HOME": str(home),
        "HTTPS_PROXY": PROXY_URL,
        "CORPNET_PROXY_USER": PROXY_USER,
        **extra,
    }
