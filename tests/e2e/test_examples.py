"""The examples, run the way users run them: the Claude Code image, compose, devcontainers.

Topology on an internal Docker network with no route out:

* ``proxy.corp.test``: the example Squid of compose.example.yml (basic auth);
* ``api.corp.test``: an Anthropic Messages API stand-in on HTTPS with a
  certificate from the test corporate CA, requiring client certificates from a
  test client CA (Python's ssl module in a corpnet-base container);
* the agent: the Claude Code image, configured only through mounts and the
  documented variables, running the real ``claude`` binary.

Claude Code succeeds only if the proxy URL with its credentials, the corporate
CA and the client certificate, key and passphrase all reach its process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from docker.models.containers import Container

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLAUDE_DIR = ROOT / "images" / "claude-code"
PROXY_DIR = ROOT / "examples" / "compose" / "proxy"
DEVCONTAINER_CLI = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "devcontainer"
CORPNET = ROOT / ".venv" / "bin" / "corpnet"
# Every container and network these tests create carries it.
_LABELS = {"corpnet.test": "examples"}
PROXY_HOST = "proxy.corp.test"
API_HOST = "api.corp.test"
PROXY_USER = "agent"
# What the stand-in API answers; Claude Code prints it.
REPLY = "corpnet-ok-from-the-mtls-api"
# The six variables the Claude Code network documentation names.
CLAUDE_VARS = (
    "HTTPS_PROXY",
    "NO_PROXY",
    "NODE_EXTRA_CA_CERTS",
    "CLAUDE_CODE_CLIENT_CERT",
    "CLAUDE_CODE_CLIENT_KEY",
    "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE",
)

# The Messages API as Claude Code uses it: POST /v1/messages, streamed as
# server-sent events. Requires a client certificate (CERT_REQUIRED) and logs
# the subject of each one it accepts.
_API_SERVER = r"""
import http.server, json, ssl, sys

REPLY = sys.argv[1]

def events(model):
    msg = {"id": "msg_e2e", "type": "message", "role": "assistant", "model": model,
           "content": [], "stop_reason": None, "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": msg}
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}
    yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": REPLY}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "usage": {"output_tokens": 1},
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    yield "message_stop", {"type": "message_stop"}

class Api(http.server.BaseHTTPRequestHandler):
    def _peer(self):
        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
        return subject.get("commonName", "?")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        print(f"request POST {self.path} client={self._peer()}", flush=True)
        if not self.path.startswith("/v1/messages"):
            self.send_error(404)
            return
        model = body.get("model", "claude")
        if body.get("stream"):
            data = "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events(model))
            ctype = "text/event-stream"
        else:
            final = dict(list(events(model))[0][1]["message"], stop_reason="end_turn",
                         content=[{"type": "text", "text": REPLY}])
            data, ctype = json.dumps(final), "application/json"
        raw = data.encode()
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        print(f"request GET {self.path} client={self._peer()}", flush=True)
        raw = REPLY.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain("/pki/api.pem")
ctx.load_verify_locations("/pki/client-ca.crt")
ctx.verify_mode = ssl.CERT_REQUIRED
server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Api)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
"""


def _dockerfile_arg(dockerfile: Path, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    assert match, f"{dockerfile} has no ARG {name}=default"
    return match.group(1)


CLAUDE_CODE_VERSION = _dockerfile_arg(CLAUDE_DIR / "Dockerfile", "CLAUDE_CODE_VERSION")


# --- images ----------------------------------------------------------------


@pytest.fixture(scope="session")
def dock() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(f"no Docker engine answers ({e}): start dockerd (scripts/test does)")
    return client


def _corpnet_build(tag: str, context: Path, *build_args: str) -> None:
    """Build like a corporate user: `corpnet build` hands the host's CAs to RUN steps only."""
    args = [str(CORPNET), "build", "--quiet", "--tag", tag]
    for arg in build_args:
        args += ["--build-arg", arg]
    done = subprocess.run(
        [*args, str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env=dict(os.environ),
    )
    assert done.returncode == 0, f"corpnet build {context} failed:\n{done.stderr[-4000:]}"


@pytest.fixture(scope="session")
def base_image(dock: docker.DockerClient) -> str:
    tag = "corpnet-base:e2e-examples"
    return "corpnet-base:dev"  # DEVHACK
    _corpnet_build(tag, ROOT)
    return tag


def _npm_registry() -> str:
    """The npm registry this machine uses (npm's own configuration), for the image build."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: apt-get install npm")
    done = subprocess.run(
        [npm, "config", "get", "registry"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="session")
def claude_image(base_image: str) -> str:
    tag = "corpnet-claude-code:e2e"
    _corpnet_build(
        tag,
        CLAUDE_DIR,
        f"CORPNET_BASE={base_image}",
        f"NPM_REGISTRY={_npm_registry()}",
    )
    return tag


@pytest.fixture(scope="session")
def proxy_image(dock: docker.DockerClient) -> str:
    tag = "corpnet-example-proxy:e2e"
    _corpnet_build(tag, PROXY_DIR)
    return tag


# --- certificates and secrets ---------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """The corporate inputs, laid out like compose.example.yml's secrets directory."""

    dir: Path
    pki: Path  # the API server's side: its certificate, the client CA
    proxy_password: str
    passphrase: str

    @property
    def corporate_ca(self) -> Path:
        return self.dir / "corporate-ca.crt"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"

    @property
    def password_file(self) -> Path:
        return self.dir / "proxy-password"

    @property
    def passphrase_file(self) -> Path:
        return self.dir / "key-passphrase"


def _agent_owned(path: Path, data: bytes, mode: int) -> None:
    """Write a secret the agent (uid 1000 in the image) reads, as the docs tell users to."""
    path.write_bytes(data)
    os.chown(path, 1000, 1000)
    path.chmod(mode)


@pytest.fixture(scope="session")
def corp_secrets(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    base = tmp_path_factory.mktemp("corp")
    sdir, pki = base / "secrets", base / "pki"
    sdir.mkdir()
    pki.mkdir()
    for d in (base, sdir, pki):
        d.chmod(0o755)
    client_ca = trustme.CA(organization_name="Corp Test Client CA")
    server = ca.issue_cert(API_HOST)
    server.private_key_and_cert_chain_pem.write_to_path(str(pki / "api.pem"))
    client_ca.cert_pem.write_to_path(str(pki / "client-ca.crt"))
    ca.cert_pem.write_to_path(str(sdir / "corporate-ca.crt"))

    client = client_ca.issue_cert("agent@corp.test", common_name="agent")
    passphrase = secrets.token_hex(8)
    password = secrets.token_hex(8)
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    client.cert_chain_pems[0].write_to_path(str(sdir / "client.crt"))
    _agent_owned(sdir / "client.key", encrypted, 0o600)
    _agent_owned(sdir / "key-passphrase", passphrase.encode() + b"\n", 0o600)
    _agent_owned(sdir / "proxy-password", password.encode() + b"\n", 0o600)
    return Secrets(sdir, pki, password, passphrase)


# --- topology --------------------------------------------------------------


@dataclass
class Topology:
    network: str
    proxy: Container
    api: Container

    def api_requests(self) -> list[str]:
        return re.findall(r"^request .*$", self.api.logs().decode(), re.MULTILINE)

    def proxy_log(self) -> str:
        _, out = self.proxy.exec_run(["cat", "/var/log/squid/access.log"])
        text: str = out.decode()
        return text


def _wait_for_log(container: Container, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if line in container.logs().decode():
            return
        if container.status == "exited":
            break
        time.sleep(0.2)
    pytest.fail(f"{container.name} did not log {line!r}:\n{container.logs().decode()[-2000:]}")


def _remove(*containers: Container | None) -> None:
    for c in containers:
        if c is not None:
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)


@pytest.fixture
def topology(
    dock: docker.DockerClient,
    corp_secrets: Secrets,
    base_image: str,
    proxy_image: str,
    tmp_path: Path,
) -> Iterator[Topology]:
    name = f"corpnet-examples-{secrets.token_hex(4)}"
    # internal: no route out of this network; every request stays in it.
    network = dock.networks.create(name, driver="bridge", internal=True, labels=_LABELS)
    script = tmp_path / "api.py"
    script.write_text(_API_SERVER)
    proxy = api = None
    try:
        proxy = dock.containers.run(
            proxy_image,
            name=f"{name}-proxy",
            detach=True,
            environment={"PROXY_USER": PROXY_USER},
            volumes={
                str(corp_secrets.password_file): {
                    "bind": "/run/secrets/proxy_password",
                    "mode": "ro",
                }
            },
            network=name,
            networking_config={name: dock.api.create_endpoint_config(aliases=[PROXY_HOST])},
            labels=_LABELS,
        )
        api = dock.containers.run(
            base_image,
            ["/srv/api.py", REPLY],
            entrypoint=["python3"],
            user="0",
            name=f"{name}-api",
            detach=True,
            volumes={
                str(script): {"bind": "/srv/api.py", "mode": "ro"},
                str(corp_secrets.pki): {"bind": "/pki", "mode": "ro"},
            },
            network=name,
            networking_config={name: dock.api.create_endpoint_config(aliases=[API_HOST])},
            labels=_LABELS,
        )
        _wait_for_log(api, "listening")
        yield Topology(name, proxy, api)
    finally:
        _remove(proxy, api)
        network.remove()


def _agent_env(**extra: str) -> dict[str, str]:
    """The documented variables, as compose.example.yml sets them, aimed at the topology."""
    return {
        "HTTPS_PROXY": f"http://{PROXY_HOST}:3128",
        "CORPNET_PROXY_USER": PROXY_USER,
        "CORPNET_PROXY_PASSWORD_FILE": "/run/secrets/proxy_password",
        "CORPNET_CA_FILES": "/run/secrets/corporate_ca",
        "CLAUDE_CODE_CLIENT_CERT": "/run/secrets/client_cert",
        "CLAUDE_CODE_CLIENT_KEY": "/run/secrets/client_key",
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE": "/run/secrets/key_passphrase",
        "CORPNET_ALLOWLIST": API_HOST,
        "CORPNET_WAIT_TIMEOUT": "30",
        # Claude Code talks to the stand-in API and nothing else.
        "ANTHROPIC_BASE_URL": f"https://{API_HOST}",
        "ANTHROPIC_API_KEY": "sk-e2e-not-a-real-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        **extra,
    }


def _agent_mounts(s: Secrets) -> dict[str, dict[str, str]]:
    files = {
        s.corporate_ca: "corporate_ca",
        s.client_cert: "client_cert",
        s.client_key: "client_key",
        s.password_file: "proxy_password",
        s.passphrase_file: "key_passphrase",
    }
    return {str(p): {"bind": f"/run/secrets/{n}", "mode": "ro"} for p, n in files.items()}


# --- the Claude Code image -------------------------------------------------


def test_claude_code_image_runs_claude(dock: docker.DockerClient, claude_image: str) -> None:
    out = dock.containers.run(
        claude_image,
        ["claude", "--version"],
        environment={"CORPNET_WAIT": "off", "CORPNET_QUIET": "1"},
        network_disabled=True,
        remove=True,
        stderr=True,
    ).decode()
    assert f"{CLAUDE_CODE_VERSION} (Claude Code)" in out
    config = dock.images.get(claude_image).attrs["Config"]
    assert config["Cmd"] == ["claude"]
    assert config["User"] == "1000"
    # The base image's entrypoint, inherited: corpnet sets up, then execs claude.
    assert config["Entrypoint"][-2:] == ["/opt/corpnet/venv/bin/corpnet", "run"]


def test_claude_code_image_keeps_no_build_ca_or_npm_state(
    dock: docker.DockerClient, claude_image: str
) -> None:
    """The host CA `corpnet build` handed to npm stays out: no variable, no cache."""
    config = dock.images.get(claude_image).attrs["Config"]
    names = {e.split("=", 1)[0] for e in config["Env"]}
    assert not names & {"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "npm_config_registry"}
    out = dock.containers.run(
        claude_image,
        ["sh", "-c", "ls -A /root/.npm /home/agent/.npm 2>&1; command -v npm || echo no-npm"],
        entrypoint=[],
        user="0",
        network_disabled=True,
        remove=True,
    ).decode()
    assert "no-npm" in out
    assert "_cacache" not in out


def test_claude_code_answers_through_the_proxy_with_mtls(
    dock: docker.DockerClient, claude_image: str, topology: Topology, corp_secrets: Secrets
) -> None:
    container = dock.containers.run(
        claude_image,
        ["claude", "-p", "Say hello."],
        environment=_agent_env(),
        volumes=_agent_mounts(corp_secrets),
        network=topology.network,
        detach=True,
        labels=_LABELS,
    )
    try:
        code = container.wait(timeout=180)["StatusCode"]
        logs = container.logs().decode()
    finally:
        _remove(container)
    assert code == 0, logs
    assert REPLY in logs
    # Claude Code itself asked the API, with the client certificate...
    assert any("POST /v1/messages" in r and "client=agent" in r for r in topology.api_requests())
    # ...through the proxy, as the proxy account.
    assert re.search(rf"CONNECT {re.escape(API_HOST)}:443 {PROXY_USER} ", topology.proxy_log())
    assert corp_secrets.proxy_password not in logs
    assert corp_secrets.passphrase not in logs


# Prints the environment of the running `claude` process (found by its
# executable, not trusted to report itself) and the one corpnet persisted.
_ENVIRON_PROBE = r"""
import json, os
from pathlib import Path
from corpnet.environment import read_persisted
procs = []
for p in Path("/proc").iterdir():
    try:
        if p.name.isdigit() and os.path.basename(os.readlink(p / "exe")) == "claude.exe":
            procs.append(p)
    except OSError:
        pass
(proc,) = procs
raw = (proc / "environ").read_bytes().split(b"\0")
environ = dict(x.decode().split("=", 1) for x in raw if b"=" in x)
print(json.dumps({"claude": environ, "corpnet": read_persisted(Path("/run/corpnet"))}))
"""


def test_claude_code_process_gets_the_variables_corpnet_computed(
    dock: docker.DockerClient, claude_image: str, topology: Topology, corp_secrets: Secrets
) -> None:
    # The image's own CMD, interactive as users start it (docker run -it).
    container = dock.containers.run(
        claude_image,
        environment=_agent_env(NO_PROXY="localhost, 127.0.0.1 .internal.corp.test"),
        volumes=_agent_mounts(corp_secrets),
        network=topology.network,
        detach=True,
        tty=True,
        stdin_open=True,
        labels=_LABELS,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            code, out = container.exec_run(
                ["/opt/corpnet/venv/bin/python", "-c", _ENVIRON_PROBE], user="0"
            )
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert code == 0, out.decode() + container.logs().decode()[-2000:]
        seen = json.loads(out)
        _, bundle = container.exec_run(
            ["sh", "-c", 'cat "$0"', seen["claude"]["NODE_EXTRA_CA_CERTS"]]
        )
    finally:
        _remove(container)
    claude, computed = seen["claude"], seen["corpnet"]
    for name in CLAUDE_VARS:
        assert claude.get(name) == computed.get(name), name
    # And the values are the right ones, not merely equal.
    assert claude["HTTPS_PROXY"] == (
        f"http://{PROXY_USER}:{corp_secrets.proxy_password}@{PROXY_HOST}:3128"
    )
    assert ".internal.corp.test" in claude["NO_PROXY"]
    assert claude["CLAUDE_CODE_CLIENT_CERT"] == "/run/secrets/client_cert"
    assert claude["CLAUDE_CODE_CLIENT_KEY"] == "/run/secrets/client_key"
    assert claude["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == corp_secrets.passphrase
    assert corp_secrets.corporate_ca.read_text().strip() in bundle.decode()


# --- compose ---------------------------------------------------------------


def _compose_cmd() -> list[str]:
    """`docker compose` (v2) when the Docker CLI has it, else Debian's docker-compose."""
    docker_cli = shutil.which("docker")
    if docker_cli is not None:
        probe = subprocess.run(
            [docker_cli, "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return [docker_cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail("neither `docker compose` nor docker-compose is installed")
    return [legacy]


def test_compose_example_agent_answers_through_its_local_proxy(  # noqa: PLR0917 - fixtures
    dock: docker.DockerClient,
    claude_image: str,
    proxy_image: str,
    base_image: str,
    corp_secrets: Secrets,
    tmp_path: Path,
) -> None:
    """compose.example.yml as is, plus an override with the test API and an internal network."""
    (tmp_path / "api.py").write_text(_API_SERVER)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    override = {
        "services": {
            "agent": {
                "environment": {
                    "CORPNET_ALLOWLIST": API_HOST,
                    "CORPNET_WAIT_TIMEOUT": "30",
                    "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE": "/run/secrets/key_passphrase",
                    "ANTHROPIC_BASE_URL": f"https://{API_HOST}",
                    "ANTHROPIC_API_KEY": "sk-e2e-not-a-real-key",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                },
                "secrets": ["key_passphrase"],
            },
            "proxy": {"image": proxy_image},
            "api": {
                "image": base_image,
                "entrypoint": ["python3", "/srv/api.py", REPLY],
                "user": "0",
                "volumes": [
                    f"{tmp_path / 'api.py'}:/srv/api.py:ro",
                    f"{corp_secrets.pki}:/pki:ro",
                ],
                "networks": {"default": {"aliases": [API_HOST]}},
            },
        },
        "secrets": {"key_passphrase": {"file": str(corp_secrets.passphrase_file)}},
        # No route out: the agent reaches the API only through the proxy service.
        "networks": {"default": {"internal": True}},
    }
    override_file = tmp_path / "compose.override.json"
    override_file.write_text(json.dumps(override))
    project = f"corpnet-e2e-{secrets.token_hex(4)}"
    compose = [
        *_compose_cmd(),
        "--project-name",
        project,
        "-f",
        str(ROOT / "compose.example.yml"),
        "-f",
        str(override_file),
        "--profile",
        "local-proxy",
    ]
    env = dict(os.environ) | {
        "CORPNET_SECRETS_DIR": str(corp_secrets.dir),
        "CORPNET_PROXY_USER": PROXY_USER,
        "CLAUDE_CODE_IMAGE": claude_image,
        "PROJECT_DIR": str(workspace),
    }

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
            timeout=timeout,
        )

    try:
        up = run("up", "--detach", "--no-build", "proxy", "api")
        assert up.returncode == 0, up.stderr
        agent = run("run", "--rm", "-T", "agent", "claude", "-p", "Say hello.")
        proxy_log = run("exec", "-T", "proxy", "cat", "/var/log/squid/access.log").stdout
        api_log = run("logs", "--no-color", "api").stdout
    finally:
        down = run("down", "--volumes", "--remove-orphans", "--timeout", "1")
    assert agent.returncode == 0, agent.stdout + agent.stderr
    assert REPLY in agent.stdout
    assert re.search(r"POST /v1/messages\S* client=agent", api_log)
    assert re.search(rf"CONNECT {re.escape(API_HOST)}:443 {PROXY_USER} ", proxy_log)
    assert down.returncode == 0, down.stderr
    assert not dock.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


# --- devcontainer ----------------------------------------------------------


def _devcontainer(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    if not DEVCONTAINER_CLI.exists():
        pytest.fail(
            f"the devcontainers CLI is not installed at {DEVCONTAINER_CLI}: run `bash scripts/test`"
            " once (provision_linters in scripts/lib.sh installs it)"
        )
    return subprocess.run(
        [str(DEVCONTAINER_CLI), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=timeout,
    )


def _jsonc(path: Path) -> dict[str, Any]:
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("//")]
    data: dict[str, Any] = json.loads("\n".join(lines))
    return data


def test_devcontainer_example_reaches_the_mtls_api_with_no_extra_setup(
    dock: docker.DockerClient,
    claude_image: str,
    topology: Topology,
    corp_secrets: Secrets,
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "project"
    shutil.copytree(ROOT / "examples" / "devcontainer", workspace)
    config_file = workspace / ".devcontainer" / "devcontainer.json"
    config = _jsonc(config_file)
    # Only what the test topology needs: its image tag and its network (a
    # user's container reaches the corporate network by default).
    config["image"] = claude_image
    config["runArgs"] = ["--network", topology.network, "--label", "corpnet.test=examples"]
    config_file.write_text(json.dumps(config))
    home = tmp_path / "home"
    shutil.copytree(corp_secrets.dir, home / ".corpnet", symlinks=True)
    for f in (home / ".corpnet").iterdir():
        os.chown(f, 1000, 1000)  # copytree keeps modes; the key stays 0600
    env = dict(os.environ) | {
        "HOME": str(home),
        "HTTPS_PROXY": f"http://{PROXY_HOST}:3128",
        "CORPNET_PROXY_USER": PROXY_USER,
        "CORPNET_ALLOWLIST": API_HOST,
    }
    container_id = None
    try:
        up = _devcontainer("up", "--workspace-folder", str(workspace), env=env)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        result = json.loads(up.stdout.strip().splitlines()[-1])
        container_id = result["containerId"]
        # A terminal: the devcontainers CLI's exec, as an IDE opens it. Only the
        # API address and key come from outside (the test's stand-in API).
        claude = _devcontainer(
            "exec",
            "--workspace-folder",
            str(workspace),
            "--remote-env",
            f"ANTHROPIC_BASE_URL=https://{API_HOST}",
            "--remote-env",
            "ANTHROPIC_API_KEY=sk-e2e-not-a-real-key",
            "--remote-env",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
            "claude",
            "-p",
            "Say hello.",
            env=env,
        )
        curl = _devcontainer(
            "exec",
            "--workspace-folder",
            str(workspace),
            "sh",
            "-c",
            f'curl -sS --fail --cert "$CLAUDE_CODE_CLIENT_CERT" --key "$CLAUDE_CODE_CLIENT_KEY"'
            f' --pass "$CLAUDE_CODE_CLIENT_KEY_PASSPHRASE" https://{API_HOST}/health',
            env=env,
        )
        logs = dock.containers.get(container_id).logs().decode()
        container_config = dock.containers.get(container_id).attrs["HostConfig"]
    finally:
        if container_id is not None:
            _remove(dock.containers.get(container_id))
    assert claude.returncode == 0, claude.stdout + claude.stderr
    assert REPLY in claude.stdout
    assert curl.returncode == 0, curl.stdout + curl.stderr
    assert REPLY in curl.stdout
    # The image metadata did it: corpnet init ran at start, under Docker's init.
    assert "corpnet:" in logs
    assert container_config["Init"] is True
    requests = topology.api_requests()
    assert any("POST /v1/messages" in r and "client=agent" in r for r in requests)
    assert any("GET /health" in r for r in requests)
    assert corp_secrets.proxy_password not in logs
