"""The devcontainer example on a machine where nothing, or only the CA, was prepared.

A newcomer runs `devcontainer up` before reading the comment in
devcontainer.json: ~/.corpnet does not exist, or holds the corporate CA only.
The container must come up anyway (the example creates the folder and sets
CORPNET_MISSING_FILES=warn), its terminals must have the environment corpnet
could compute, and an interactive terminal must say what is missing and where
it goes. The "everything" case is test_examples.py's devcontainer test.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from support.containers import API_HOST, PROXY_USER, wait_for_log
from support.devcontainer import devcontainer, user_env, workspace
from support.world import World

pytestmark = pytest.mark.e2e

SECRETS = "/etc/corpnet/secrets"  # where the example mounts ~/.corpnet


def _missing(variable: str, name: str, consequence: str) -> str:
    return (
        f"corpnet: warning: {variable} names {SECRETS}/{name}, which does not exist, so "
        f"{consequence}: add the file there and restart the container"
    )


CA_LINE = _missing("CORPNET_CA_FILES", "corporate-ca.crt", "its CA certificates are not trusted")
CERT_LINE = _missing(
    "CLAUDE_CODE_CLIENT_CERT", "client.crt", "there is no client certificate (mTLS)"
)
PASSWORD_LINE = _missing(
    "CORPNET_PROXY_PASSWORD_FILE", "proxy-password", "the proxy account gets no password"
)


@pytest.mark.parametrize("prepared", ["nothing", "ca-only"])
def test_devcontainer_example_comes_up_with_what_the_user_has(
    docker_client: Any, world: World, base_image: str, prepared: str
) -> None:
    home = world.root / f"home-{secrets.token_hex(3)}"
    home.mkdir(mode=0o755)
    ca_pem = world.pki.corp_ca.cert_pem.bytes()
    if prepared == "ca-only":
        (home / ".corpnet").mkdir(mode=0o755)
        (home / ".corpnet" / "corporate-ca.crt").write_bytes(ca_pem)
    folder = workspace(world, base_image)
    env = user_env(home, CORPNET_ALLOWLIST=API_HOST)
    ws = ["--workspace-folder", str(folder)]

    up = devcontainer("up", *ws, env=env)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    container = docker_client.containers.get(json.loads(up.stdout.splitlines()[-1])["containerId"])
    try:
        # The wait ends at once: the proxy answers 407 to an account without password.
        wait_for_log(container, "corpnet: error:", timeout=60)
        probe = 'echo "$SSL_CERT_FILE|$HTTPS_PROXY|$CLAUDE_CODE_CLIENT_CERT"'
        shell = devcontainer("exec", *ws, "sh", "-c", probe, env=env)
        bundle = devcontainer("exec", *ws, "sh", "-c", 'cat "$SSL_CERT_FILE"', env=env)
        # A terminal as an IDE opens it: an interactive bash.
        terminal = devcontainer("exec", *ws, "bash", "-ic", "echo ready", env=env)
        script = devcontainer("exec", *ws, "bash", "-c", "echo ready", env=env)
        started = container.logs().decode(errors="replace")[-4000:]  # for failures below
    finally:
        container.remove(force=True)

    assert (home / ".corpnet").is_dir()  # initializeCommand made the mount's source
    # The environment corpnet could compute, and no path to a client certificate
    # that is not there (the container's own CLAUDE_CODE_CLIENT_CERT names one).
    assert shell.returncode == 0, shell.stderr
    assert (
        shell.stdout.strip()
        == f"/run/corpnet/ca-bundle.pem|http://{PROXY_USER}@proxy.corp.test:3128|"
    )
    assert bundle.returncode == 0, bundle.stderr
    assert (ca_pem.strip() in bundle.stdout.encode()) == (prepared == "ca-only"), started
    # What is missing, in the terminal, with where it goes; and why the wait failed.
    assert terminal.stdout.strip().endswith("ready"), terminal.stdout + terminal.stderr
    assert (CA_LINE in terminal.stderr) == (prepared == "nothing"), terminal.stderr
    assert CERT_LINE in terminal.stderr, terminal.stderr
    assert PASSWORD_LINE in terminal.stderr
    # The wait's line: the proxy refuses the account without a password.
    errors = [x for x in terminal.stderr.splitlines() if x.startswith("corpnet: error:")]
    assert errors, terminal.stderr
    assert "CORPNET_PROXY_PASSWORD" in errors[-1]
    # Scripts stay quiet.
    assert (script.returncode, script.stdout.strip()) == (0, "ready")
    assert "corpnet" not in script.stderr
