"""The examples, run the way users run them: the Claude Code image, compose, devcontainers.

They use the corporate topology of conftest.py (``world``: Squid with basic
auth at proxy.corp.test, the mTLS nginx at api.corp.test, internal networks, the
test PKI) and add one service: ``anthropic.corp.test``, a stand-in for the
Anthropic Messages API on HTTPS with a certificate from the corporate CA,
requiring client certificates from the client CA (Python's ssl module in a
corpnet-base container). Claude Code itself talks to it, so a run succeeds only
if the proxy URL with its credentials, the corporate CA and the client
certificate, key and passphrase all reached the Claude Code process.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from corpnet import build as corpnet_build
from corpnet.build._strip import needles_for
from support.containers import (
    API_HOST,
    PROXY_USER,
    REPO,
    Result,
    Tracker,
    archive_files,
    content_hash,
    ensure_image,
    find_in_export,
    logs,
    wait_exit,
    wait_for_log,
)
from support.devcontainer import devcontainer
from support.devcontainer import user_env as devcontainer_env
from support.devcontainer import workspace as devcontainer_workspace
from support.env import compose_command
from support.gateway_world import ALICE, KRB_PROXY, GatewayRigs
from support.world import PROXY_URL, World

pytestmark = pytest.mark.e2e

CLAUDE_DIR = REPO / "images" / "claude-code"
PROXY_DIR = REPO / "examples" / "compose" / "proxy"
ANTHROPIC_HOST = "anthropic.corp.test"
MTLS_API = "https://api.corp.test/"
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
# Claude Code aimed at the stand-in API, and at nothing else.
CLAUDE_ENV = {
    "ANTHROPIC_BASE_URL": f"https://{ANTHROPIC_HOST}",
    "ANTHROPIC_API_KEY": "sk-e2e-not-a-real-key",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}

# The Messages API as Claude Code uses it: POST /v1/messages, streamed as
# server-sent events. Requires a client certificate (CERT_REQUIRED) and logs
# the subject of each one it accepts, and what it answered.
#
# `api.py REPLY` answers every request with REPLY. `api.py REPLY TOOL URL...`
# is the agent loop of an MCP tool call: a request offering TOOL is answered
# with one tool_use block per URL (input {"url": URL}, stop_reason "tool_use"),
# and the request carrying the tool results with REPLY followed by each
# result's text, one per line, so the tool's output shows in what Claude Code
# prints. The stream is the Messages API's: a tool_use content block starts
# with an empty input, which arrives as input_json_delta fragments.
_API_SERVER = r"""
import http.server, json, ssl, sys

REPLY = sys.argv[1]
TOOL = sys.argv[2] if len(sys.argv) > 2 else None
URLS = sys.argv[3:]

def results(body):
    for message in body.get("messages", []):
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "".join(b.get("text", "") for b in inner)
                yield str(inner)

def answer(body):
    got = list(results(body)) if TOOL else []
    if got:
        return [{"type": "text", "text": "\n".join([REPLY, *got])}], "end_turn", "tool_result"
    if TOOL and TOOL in {t.get("name") for t in body.get("tools", [])}:
        calls = [{"type": "tool_use", "id": f"toolu_e2e_{i}", "name": TOOL, "input": {"url": u}}
                 for i, u in enumerate(URLS)]
        return calls, "tool_use", "tool_use"
    return [{"type": "text", "text": REPLY}], "end_turn", "text"

def message(model, content, stop):
    return {"id": "msg_e2e", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}

def events(model, blocks, stop):
    yield "message_start", {"type": "message_start", "message": message(model, [], None)}
    for i, block in enumerate(blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = dict(block, input={})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_start", {"type": "content_block_start", "index": i,
                                      "content_block": start}
        yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                      "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta", "usage": {"output_tokens": 1},
                            "delta": {"stop_reason": stop, "stop_sequence": None}}
    yield "message_stop", {"type": "message_stop"}

class Api(http.server.BaseHTTPRequestHandler):
    def _peer(self):
        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
        return subject.get("commonName", "?")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if not self.path.startswith("/v1/messages"):
            print(f"request POST {self.path} client={self._peer()}", flush=True)
            self.send_error(404)
            return
        blocks, stop, kind = answer(body)
        print(f"request POST {self.path} client={self._peer()} answer={kind}", flush=True)
        model = body.get("model", "claude")
        if body.get("stream"):
            data = "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n"
                           for n, d in events(model, blocks, stop))
            ctype = "text/event-stream"
        else:
            data, ctype = json.dumps(message(model, blocks, stop)), "application/json"
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
ctx.load_cert_chain("/pki/server.pem", "/pki/server.key")
ctx.load_verify_locations("/pki/client-ca.pem")
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


# --- images, secrets and the stand-in API ---------------------------------------------------


def _npm_registry() -> str:
    """The npm registry this machine's npm uses, for the image's `npm install`."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: apt-get install npm")
    done = subprocess.run(
        [npm, "config", "get", "registry"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="session")
def claude_image(docker_client: Any, base_image: str) -> str:
    """images/claude-code FROM this checkout's corpnet-base, built by `corpnet build`."""
    registry = _npm_registry()
    return ensure_image(
        docker_client,
        "claude-code",
        CLAUDE_DIR,
        content_hash([CLAUDE_DIR], base_image, registry),
        buildargs={"CORPNET_BASE": base_image, "NPM_REGISTRY": registry},
    )


@pytest.fixture(scope="session")
def proxy_image(docker_client: Any) -> str:
    """The local proxy of compose.example.yml's local-proxy profile."""
    return ensure_image(docker_client, "example-proxy", PROXY_DIR, content_hash([PROXY_DIR]))


@dataclass(frozen=True)
class Secrets:
    """The corporate inputs, laid out like compose.example.yml's secrets directory."""

    dir: Path
    proxy_password: str
    passphrase: str

    def __getitem__(self, name: str) -> Path:
        return self.dir / name


def _agent_reads(path: Path, data: bytes) -> None:
    """A secret file as the docs tell users to prepare it: the agent's (uid 1000), 0600."""
    path.write_bytes(data)
    os.chown(path, 1000, 1000)
    path.chmod(0o600)


@pytest.fixture(scope="session")
def example_secrets(world: World) -> Secrets:
    """corporate-ca.crt, client.crt, client.key (encrypted), key-passphrase, proxy-password."""
    d = world.root / "example-secrets"
    d.mkdir(mode=0o755)
    world.pki.corp_ca.cert_pem.write_to_path(str(d / "corporate-ca.crt"))
    (d / "corporate-ca.crt").chmod(0o644)
    leaf = world.pki.client_leaf("claude@corp.test")
    leaf.cert_chain_pems[0].write_to_path(str(d / "client.crt"))
    (d / "client.crt").chmod(0o644)
    passphrase = secrets.token_hex(8)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    _agent_reads(
        d / "client.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        ),
    )
    _agent_reads(d / "key-passphrase", passphrase.encode() + b"\n")
    _agent_reads(d / "proxy-password", world.proxy_password.encode() + b"\n")
    return Secrets(d, world.proxy_password, passphrase)


def _anthropic_pki(world: World, host: str = ANTHROPIC_HOST) -> Path:
    """A stand-in server's certificate (corporate CA) and the client CA the API requires."""
    d = world.root / f"{host}-pki"
    if d.is_dir():
        return d
    d.mkdir(mode=0o755)
    server = world.pki.corp_ca.issue_cert(host)
    server.cert_chain_pems[0].write_to_path(str(d / "server.pem"))
    server.private_key_pem.write_to_path(str(d / "server.key"))
    world.pki.client_ca.cert_pem.write_to_path(str(d / "client-ca.pem"))
    for f in d.iterdir():
        f.chmod(0o644)  # test-only key, read by the server container's root
    return d


@pytest.fixture(scope="session")
def anthropic_api(world: World, base_image: str) -> Any:
    """anthropic.corp.test on the topology's back network (reached only through a proxy)."""
    script = world.root / "anthropic-api.py"
    script.write_text(_API_SERVER)
    script.chmod(0o644)
    pki = _anthropic_pki(world)
    api = world.start_service(
        "anthropic",
        base_image,
        [ANTHROPIC_HOST],
        command=["/srv/api.py", REPLY],
        entrypoint=["python3"],
        user="0",
        volumes={
            str(script): {"bind": "/srv/api.py", "mode": "ro"},
            str(pki): {"bind": "/pki", "mode": "ro"},
        },
    )
    api.start()
    wait_for_log(api, "listening")
    return api


def _requests(api: Any) -> list[str]:
    return re.findall(r"^request .*$", api.logs().decode(), re.MULTILINE)


def _proxy_log(world: World) -> str:
    _, out = world.proxy.exec_run(["cat", "/tmp/access.log"])
    text: str = out.decode()
    return text


def _claude_env(**extra: str) -> dict[str, str]:
    """The documented variables, aimed at the stand-in API; the encrypted key's passphrase."""
    return {
        "CORPNET_ALLOWLIST": ANTHROPIC_HOST,
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE": "/run/secrets/key-passphrase",
        **CLAUDE_ENV,
        **extra,
    }


def _claude_mounts(s: Secrets, client: Path) -> dict[str, str]:
    """Container path -> host path: the client pair (encrypted key) and its passphrase."""
    return {
        "/etc/corpnet/client": str(client),
        "/run/secrets": str(s.dir),
    }


@pytest.fixture(scope="session")
def claude_client_dir(example_secrets: Secrets, world: World) -> Path:
    """The example's client pair as a kubernetes.io/tls secret lays it out (tls.crt, tls.key)."""
    d = world.root / "claude-client"
    d.mkdir(mode=0o755)
    shutil.copy2(example_secrets["client.crt"], d / "tls.crt")
    shutil.copy2(example_secrets["client.key"], d / "tls.key")
    os.chown(d / "tls.key", 1000, 1000)
    return d


# --- the Claude Code image ------------------------------------------------------------------


def test_claude_code_image_runs_claude(docker_client: Any, claude_image: str) -> None:
    out = docker_client.containers.run(
        claude_image,
        ["claude", "--version"],
        environment={"CORPNET_WAIT": "off", "CORPNET_QUIET": "1"},
        network_disabled=True,
        remove=True,
    ).decode()
    assert f"{CLAUDE_CODE_VERSION} (Claude Code)" in out
    config = docker_client.images.get(claude_image).attrs["Config"]
    assert config["Cmd"] == ["claude"]
    assert config["User"] == "1000"
    # The base image's entrypoint, inherited: corpnet sets up, then execs claude.
    assert config["Entrypoint"][-2:] == ["/opt/corpnet/venv/bin/corpnet", "run"]


def test_claude_code_image_keeps_no_build_ca_or_npm(
    docker_client: Any, tracker: Tracker, claude_image: str
) -> None:
    """What `corpnet build` handed to npm stays out: no CA, no variable, no npm, no cache."""
    extras = corpnet_build.host_inputs({}).extra_ders
    assert extras, "this host has no extra CA in /usr/local/share/ca-certificates to look for"
    container = docker_client.containers.create(claude_image, labels=tracker.labels)
    try:
        assert find_in_export(container, needles_for(extras)) == []
    finally:
        container.remove(force=True)
    config = docker_client.images.get(claude_image).attrs["Config"]
    names = {e.split("=", 1)[0] for e in config["Env"]}
    assert not names & {"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "npm_config_registry"}
    out = docker_client.containers.run(
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
    world: World,
    claude_image: str,
    anthropic_api: Any,
    example_secrets: Secrets,
    claude_client_dir: Path,
) -> None:
    result = world.run_agent(
        image=claude_image,
        command=["claude", "-p", "Say hello."],
        env=_claude_env(),
        volumes=_claude_mounts(example_secrets, claude_client_dir),
        timeout=180,
    )
    assert result.code == 0, str(result)
    assert REPLY in result.out
    # Claude Code itself asked the API, with the client certificate...
    assert any(
        "POST /v1/messages" in r and "client=claude@corp.test" in r
        for r in _requests(anthropic_api)
    )
    # ...through the proxy, as the proxy account.
    assert re.search(rf"CONNECT {re.escape(ANTHROPIC_HOST)}:443 .*{PROXY_USER}", _proxy_log(world))
    assert example_secrets.proxy_password not in str(result)
    assert example_secrets.passphrase not in str(result)


def test_claude_code_answers_through_the_gateway_over_kerberos(  # noqa: PLR0917 - fixtures
    world: World,
    claude_image: str,
    anthropic_api: Any,
    example_secrets: Secrets,
    claude_client_dir: Path,
    gw_rigs: GatewayRigs,
) -> None:
    """The gateway logs in to the Kerberos Squid; Claude Code sees only the loopback proxy.

    A root start with CORPNET_USER: alice's password file is root's (0400), and
    the gateway (its own uid) alone reads it.
    """
    result = _claude_over_kerberos(
        world, claude_image, example_secrets, claude_client_dir, gw_rigs, CORPNET_GATEWAY="on"
    )
    assert result.code == 0, str(result)
    assert REPLY in result.out
    assert any(
        "POST /v1/messages" in r and "client=claude@corp.test" in r
        for r in _requests(anthropic_api)
    )
    _, log = gw_rigs.krb.exec_run(["cat", "/tmp/access.log"])
    assert re.search(
        rf"TCP_TUNNEL/200 \d+ CONNECT {re.escape(ANTHROPIC_HOST)}:443 {re.escape(ALICE)} ",
        log.decode(),
    ), log.decode()
    for secret in gw_rigs.canaries:
        assert secret.decode(errors="replace") not in str(result)


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
    world: World,
    claude_image: str,
    anthropic_api: Any,
    example_secrets: Secrets,
    claude_client_dir: Path,
) -> None:
    # `claude -p` reads its prompt from stdin until EOF: while the prompt is
    # half-sent, a live Claude Code process, started by the image's entrypoint
    # like every other, waits to be inspected. Created like `docker run -i`
    # (stdin_open, attached: StdinOnce), so closing stdin is the process's EOF.
    container = world.create_agent(
        image=claude_image,
        command=["claude", "-p"],
        env=_claude_env(NO_PROXY="localhost, 127.0.0.1 .internal.corp.test"),
        volumes=_claude_mounts(example_secrets, claude_client_dir),
        stdin_open=True,
    )
    stdin = container.attach_socket(params={"stdin": 1, "stream": 1})
    try:
        container.start()
        stdin._sock.sendall(b"Say hello.")
        deadline = time.monotonic() + 60
        while True:
            container.reload()
            if container.status != "running":
                pytest.fail(f"the agent exited:\n{logs(container)}")
            # As the agent's own uid: /proc/PID/environ of another uid needs
            # CAP_SYS_PTRACE, which containers lack.
            code, out = container.exec_run(
                ["/opt/corpnet/venv/bin/python", "-c", _ENVIRON_PROBE], user="1000"
            )
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert code == 0, out.decode() + str(logs(container))
        seen = json.loads(out)
        _, bundle = container.exec_run(
            ["sh", "-c", 'cat "$0"', seen["claude"]["NODE_EXTRA_CA_CERTS"]]
        )
        # The rest of the prompt never comes: EOF, and the same process answers.
        stdin._sock.shutdown(socket.SHUT_WR)
        code = container.wait(timeout=120)["StatusCode"]
        out_text, err_text = logs(container)
    finally:
        stdin._sock.close()
        stdin.close()
        container.remove(force=True)
    assert code == 0, out_text + err_text
    assert REPLY in out_text
    claude, computed = seen["claude"], seen["corpnet"]
    for name in CLAUDE_VARS:
        assert claude.get(name) == computed.get(name), name
    # And the values are the right ones, not merely equal.
    proxy = re.sub(r"^http://", "", PROXY_URL)
    assert re.fullmatch(rf"http://{PROXY_USER}:[^@]+@{re.escape(proxy)}/?", claude["HTTPS_PROXY"])
    assert ".internal.corp.test" in claude["NO_PROXY"]
    # corpnet found the pair in /etc/corpnet/client without being told.
    assert claude["CLAUDE_CODE_CLIENT_CERT"] == "/etc/corpnet/client/tls.crt"
    assert claude["CLAUDE_CODE_CLIENT_KEY"] == "/etc/corpnet/client/tls.key"
    assert claude["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == example_secrets.passphrase
    ca_line = world.pki.corp_ca.cert_pem.bytes().decode().splitlines()[1]
    assert ca_line in bundle.decode()


# --- compose --------------------------------------------------------------------------------


def test_compose_example_agent_answers_through_its_local_proxy(  # noqa: PLR0917 - fixtures
    docker_client: Any,
    world: World,
    claude_image: str,
    proxy_image: str,
    base_image: str,
    example_secrets: Secrets,
) -> None:
    """compose.example.yml as is, plus an override: the stand-in API, no route out."""
    work = world.root / f"compose-{secrets.token_hex(3)}"
    (work / "workspace").mkdir(parents=True)
    (work / "api.py").write_text(_API_SERVER)
    override = {
        "services": {
            "agent": {
                "environment": {
                    "CORPNET_ALLOWLIST": ANTHROPIC_HOST,
                    "CORPNET_WAIT_TIMEOUT": "30",
                    "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE": "/run/secrets/key_passphrase",
                    **CLAUDE_ENV,
                },
                "secrets": ["key_passphrase"],
            },
            "proxy": {"image": proxy_image},
            "anthropic": {
                "image": base_image,
                "entrypoint": ["python3", "/srv/api.py", REPLY],
                "user": "0",
                "volumes": [
                    f"{work / 'api.py'}:/srv/api.py:ro",
                    f"{_anthropic_pki(world)}:/pki:ro",
                ],
                "networks": {"default": {"aliases": [ANTHROPIC_HOST]}},
            },
        },
        "secrets": {"key_passphrase": {"file": str(example_secrets["key-passphrase"])}},
        # No route out: the agent reaches the API only through the proxy service.
        "networks": {"default": {"internal": True}},
    }
    (work / "override.json").write_text(json.dumps(override))
    project = f"corpnet-e2e-{world.tracker.session}-compose"
    compose = [
        *compose_command(),
        "--project-name",
        project,
        "-f",
        str(REPO / "compose.example.yml"),
        "-f",
        str(work / "override.json"),
        "--profile",
        "local-proxy",
    ]
    env = dict(os.environ) | {
        "CORPNET_SECRETS_DIR": str(example_secrets.dir),
        "CORPNET_PROXY_USER": PROXY_USER,
        "CLAUDE_CODE_IMAGE": claude_image,
        "PROJECT_DIR": str(work / "workspace"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=False,
            timeout=240,
        )

    try:
        up = run("up", "--detach", "--no-build", "proxy", "anthropic")
        assert up.returncode == 0, up.stderr
        agent = run("run", "--rm", "-T", "agent", "claude", "-p", "Say hello.")
        proxy_log = run("exec", "-T", "proxy", "cat", "/var/log/squid/access.log").stdout
        api_log = run("logs", "--no-color", "anthropic").stdout
    finally:
        down = run("down", "--volumes", "--remove-orphans", "--timeout", "1")
    assert agent.returncode == 0, agent.stdout + agent.stderr
    assert REPLY in agent.stdout
    assert re.search(r"POST /v1/messages\S* client=claude@corp.test", api_log), api_log
    assert re.search(rf"CONNECT {re.escape(ANTHROPIC_HOST)}:443 .*{PROXY_USER}", proxy_log)
    assert example_secrets.proxy_password not in agent.stdout + agent.stderr
    assert down.returncode == 0, down.stderr
    left = docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )
    assert not left


# --- devcontainer ---------------------------------------------------------------------------


@pytest.fixture
def devcontainer_home(world: World, example_secrets: Secrets) -> Path:
    """A HOME whose ~/.corpnet holds what the example's comment asks for (plain key)."""
    home = world.root / f"home-{secrets.token_hex(3)}"
    corp = home / ".corpnet"
    corp.mkdir(parents=True)
    home.chmod(0o755)
    corp.chmod(0o755)
    shutil.copy2(example_secrets["corporate-ca.crt"], corp / "corporate-ca.crt")
    shutil.copy2(world.root / "client" / "tls.crt", corp / "client.crt")
    for name, src in (
        ("client.key", world.root / "client" / "tls.key"),
        ("proxy-password", example_secrets["proxy-password"]),
    ):
        _agent_reads(corp / name, src.read_bytes())
    return home


def test_devcontainer_example_reaches_the_mtls_api_with_no_extra_setup(
    docker_client: Any,
    world: World,
    claude_image: str,
    anthropic_api: Any,
    devcontainer_home: Path,
) -> None:
    # Only what the test topology needs: its image tag and its network.
    folder = devcontainer_workspace(world, claude_image)
    env = devcontainer_env(devcontainer_home, CORPNET_ALLOWLIST=f"api.corp.test,{ANTHROPIC_HOST}")
    ws = ["--workspace-folder", str(folder)]
    up = devcontainer("up", *ws, env=env)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    container = docker_client.containers.get(json.loads(up.stdout.splitlines()[-1])["containerId"])
    try:
        # Terminals, as an IDE opens them: the devcontainers CLI's exec. Only the
        # stand-in API's address and key come from outside.
        remote = [a for k, v in CLAUDE_ENV.items() for a in ("--remote-env", f"{k}={v}")]
        claude = devcontainer("exec", *ws, *remote, "claude", "-p", "Say hello.", env=env)
        curl = devcontainer(
            "exec",
            *ws,
            "sh",
            "-c",
            f'curl -sS --fail --cert "$CLAUDE_CODE_CLIENT_CERT" --key "$CLAUDE_CODE_CLIENT_KEY"'
            f" {MTLS_API}",
            env=env,
        )
        terminal = devcontainer("exec", *ws, "bash", "-ic", "echo ready", env=env)
        out, err = logs(container)
        init = container.attrs["HostConfig"]["Init"]
    finally:
        container.remove(force=True)
    assert claude.returncode == 0, claude.stdout + claude.stderr
    assert REPLY in claude.stdout
    assert curl.returncode == 0, curl.stdout + curl.stderr
    assert curl.stdout.startswith("mtls-ok"), curl.stdout
    assert "agent@corp.test" in curl.stdout  # the API saw the mounted client certificate
    # Everything was there: a terminal has nothing missing to report.
    assert terminal.stdout.strip().endswith("ready"), terminal.stdout + terminal.stderr
    assert "does not exist" not in terminal.stderr
    assert "corpnet: error:" not in terminal.stderr
    # The image metadata did it: corpnet init ran at start, under Docker's init.
    assert "corpnet:" in out + err
    assert init is True
    assert any("POST /v1/messages" in r for r in _requests(anthropic_api))
    assert world.proxy_password not in out + err


def test_claude_code_answers_under_lockdown(  # noqa: PLR0917 - fixtures
    world: World,
    claude_image: str,
    anthropic_api: Any,
    example_secrets: Secrets,
    claude_client_dir: Path,
    gw_rigs: GatewayRigs,
) -> None:
    """CORPNET_EGRESS=lockdown: the real CLI answers through the gateway, and nothing else leaves.

    The same start as above with NET_ADMIN and the lockdown: the rules are
    installed and verified as uid 1000 before Claude Code starts, and Claude
    Code itself, knowing only the loopback proxy, still gets its answer.
    """
    result = _claude_over_kerberos(
        world,
        claude_image,
        example_secrets,
        claude_client_dir,
        gw_rigs,
        CORPNET_EGRESS="lockdown",
        cap_add=["NET_ADMIN"],
    )
    assert result.code == 0, str(result)
    assert "egress locked down: only the gateway leaves" in result.err
    assert REPLY in result.out
    for secret in gw_rigs.canaries:
        assert secret.decode(errors="replace") not in str(result)


def _kerberos_start(
    example_secrets: Secrets, claude_client_dir: Path, gw_rigs: GatewayRigs, **env: str
) -> dict[str, Any]:
    """Agent arguments: a root start with CORPNET_USER=1000, alice's password a 0400 root file."""
    krb_proxy = f"http://{KRB_PROXY}:3128"
    return {
        "env": _claude_env(
            HTTPS_PROXY=krb_proxy,
            HTTP_PROXY=krb_proxy,
            CORPNET_PROXY_USER=ALICE,
            CORPNET_PROXY_PASSWORD_FILE="/run/gw-secrets/alice-password",
            CORPNET_USER="1000",
            **env,
        ),
        "volumes": {
            **_claude_mounts(example_secrets, claude_client_dir),
            "/run/gw-secrets": gw_rigs.file("secrets"),
            "/etc/krb5.conf": gw_rigs.file("krb5.conf"),
        },
        "user": "0",
    }


def _claude_over_kerberos(  # noqa: PLR0917 - fixtures
    world: World,
    claude_image: str,
    example_secrets: Secrets,
    claude_client_dir: Path,
    gw_rigs: GatewayRigs,
    cap_add: list[str] | None = None,
    **env: str,
) -> Result:
    """`claude -p` over the Kerberos Squid (see _kerberos_start)."""
    return world.run_agent(
        image=claude_image,
        command=["claude", "-p", "Say hello."],
        **_kerberos_start(example_secrets, claude_client_dir, gw_rigs, **env),
        cap_add=cap_add or [],
        timeout=180,
    )


# --- an MCP stdio server under lockdown -----------------------------------------------------

# The stand-in API of the MCP run (it answers with tool calls; see _API_SERVER).
MCP_API_HOST = "anthropic-mcp.corp.test"
# HTTPS on 443 with no client certificate asked: a port the lockdown captures,
# unlike api.corp.test's certificate-free 8443 (nginx), and a server any client
# can finish a handshake with. On the back network: the agent reaches it only
# through a proxy.
DOCS_HOST = "docs.corp.test"
# Claude Code names an MCP tool mcp__<server>__<tool>.
MCP_TOOL = "mcp__probe__fetch"
MCP_DIR = "/opt/e2e-mcp"
# The variables a process could learn a CA bundle from (corpnet exports them all).
CA_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE")
# How the probe is started: an environment of PATH and HOME only.
STRIPPED_ENV = ("-i", "PATH=/usr/bin:/bin", "HOME=/home/agent")
# OpenSSL's default CA file on Debian, a link to /etc/ssl/certs/ca-certificates.crt.
OPENSSL_CAFILE = "/usr/lib/ssl/cert.pem"

_DOCS_SERVER = r"""
import http.server, ssl, sys

BODY = sys.argv[1].encode()

class Docs(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(f"request GET {self.path}", flush=True)
        self.send_response(200)
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # asks no client certificate
ctx.load_cert_chain("/pki/server.pem", "/pki/server.key")
server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Docs)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
"""

# An MCP server on stdio (newline-delimited JSON-RPC), standard library only:
# initialize, tools/list, tools/call of one tool, `fetch`, a plain urllib GET.
# It notes the variables it was started with and removes any proxy variable
# and the CA variables named in its arguments that reached it anyway; each
# call answers one JSON line with what urllib then used: its proxies (from the
# environment) and its CA file (SSL_CERT_FILE, else OpenSSL's default file,
# which on Debian is the system bundle corpnet rewrites).
_MCP_PROBE = r"""
import json, os, ssl, sys, urllib.request

CA_VARS = set(sys.argv[1:])
ENV = sorted(os.environ)
for k in ENV:
    if k.lower().endswith("_proxy") or k in CA_VARS:
        del os.environ[k]

def fetch(url):
    out = {"url": url, "env": ENV, "proxies": urllib.request.getproxies(),
           "cafile": ssl.get_default_verify_paths().cafile}
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            out["status"], out["body"] = r.status, r.read().decode()
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out

TOOL = {"name": "fetch", "description": "GET a URL",
        "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}},
                        "required": ["url"]}}

for line in sys.stdin:
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    if method is None or mid is None:
        continue  # a notification (notifications/initialized), or a reply
    reply = {"jsonrpc": "2.0", "id": mid}
    if method == "initialize":
        reply["result"] = {"protocolVersion": msg["params"]["protocolVersion"],
                           "capabilities": {"tools": {}},
                           "serverInfo": {"name": "probe", "version": "1"}}
    elif method == "tools/list":
        reply["result"] = {"tools": [TOOL]}
    elif method == "tools/call":
        text = json.dumps(fetch(msg["params"]["arguments"]["url"]))
        reply["result"] = {"content": [{"type": "text", "text": text}], "isError": False}
    elif method == "ping":
        reply["result"] = {}
    else:
        reply["error"] = {"code": -32601, "message": f"no method {method}"}
    print(json.dumps(reply), flush=True)
"""


@dataclass(frozen=True)
class McpRig:
    """The MCP run's stand-in API, the allowed host and its page, the probe's directory."""

    api: Any
    docs: Any
    page: str
    probe: Path


@pytest.fixture
def mcp_rig(world: World, base_image: str) -> Iterator[McpRig]:
    """An API that calls mcp__probe__fetch on an allowed and a refused URL; docs.corp.test."""
    d = world.root / f"mcp-{secrets.token_hex(3)}"
    d.mkdir(mode=0o755)
    (d / "api.py").write_text(_API_SERVER)
    (d / "docs.py").write_text(_DOCS_SERVER)
    (d / "probe.py").write_text(_MCP_PROBE)
    # Claude Code 2.1.329 hands a stdio server its own environment, proxy and CA
    # variables included; the MCP SDK's StdioClientTransport default (and Codex)
    # pass only a few basics. `env -i` starts the probe the stripped way.
    probe = {
        "command": "/usr/bin/env",
        "args": [*STRIPPED_ENV, "/usr/bin/python3", f"{MCP_DIR}/probe.py", *CA_VARS],
    }
    config = {"mcpServers": {"probe": probe}}
    (d / "mcp.json").write_text(json.dumps(config))
    for f in d.iterdir():
        f.chmod(0o644)
    page = f"corpnet-docs-{secrets.token_hex(6)}"
    # The refused URL: a host the proxy reaches (the mTLS API) but the allowlist does not name.
    urls = [f"https://{DOCS_HOST}/page", MTLS_API]
    api = world.start_service(
        f"anthropic-mcp-{d.name}",
        base_image,
        [MCP_API_HOST],
        command=["/srv/api.py", REPLY, MCP_TOOL, *urls],
        entrypoint=["python3"],
        user="0",
        volumes={
            str(d / "api.py"): {"bind": "/srv/api.py", "mode": "ro"},
            str(_anthropic_pki(world, MCP_API_HOST)): {"bind": "/pki", "mode": "ro"},
        },
    )
    docs = world.start_service(
        f"docs-{d.name}",
        base_image,
        [DOCS_HOST],
        command=["/srv/docs.py", page],
        entrypoint=["python3"],
        user="0",
        volumes={
            str(d / "docs.py"): {"bind": "/srv/docs.py", "mode": "ro"},
            str(_anthropic_pki(world, DOCS_HOST)): {"bind": "/pki", "mode": "ro"},
        },
    )
    try:
        for c in (api, docs):
            c.start()
            wait_for_log(c, "listening")
        yield McpRig(api, docs, page, d)
    finally:
        for c in (api, docs):
            c.remove(force=True)


def _front_address(world: World, container: Any) -> str:
    container.reload()
    address: str = container.attrs["NetworkSettings"]["Networks"][world.front.name]["IPAddress"]
    return address


def test_claude_code_mcp_server_reaches_an_allowed_host_under_lockdown(  # noqa: PLR0917 - fixtures
    world: World,
    claude_image: str,
    example_secrets: Secrets,
    claude_client_dir: Path,
    gw_rigs: GatewayRigs,
    mcp_rig: McpRig,
) -> None:
    """An MCP stdio server with no proxy and no CA variable is captured, and the policy holds.

    Claude Code (under lockdown, as above) starts the probe from --mcp-config
    with a stripped environment and calls its tool twice, as the stand-in API
    asks: for docs.corp.test (allowlisted) and for api.corp.test (not). The
    probe connects to whatever the names resolve to, here Squid's address,
    where nothing listens on 443: only the capture to the gateway, which goes
    by the TLS server name through the Kerberos Squid, reaches the page.
    """
    nowhere = _front_address(world, world.proxy)
    start = _kerberos_start(
        example_secrets,
        claude_client_dir,
        gw_rigs,
        CORPNET_EGRESS="lockdown",
        CORPNET_ALLOWLIST=f"{MCP_API_HOST},{DOCS_HOST}",
        ANTHROPIC_BASE_URL=f"https://{MCP_API_HOST}",
        # MCP tools otherwise stay behind Claude Code's ToolSearch tool: the
        # first request would offer only its name.
        ENABLE_TOOL_SEARCH="false",
    )
    agent = world.create_agent(
        image=claude_image,
        command=[
            "claude",
            "-p",
            "Fetch the two pages.",
            "--mcp-config",
            f"{MCP_DIR}/mcp.json",
            "--strict-mcp-config",
            "--allowedTools",
            MCP_TOOL,
            "--output-format",
            "json",
        ],
        env=start["env"],
        volumes={**start["volumes"], MCP_DIR: str(mcp_rig.probe)},
        user=start["user"],
        cap_add=["NET_ADMIN"],
        extra_hosts={DOCS_HOST: nowhere, API_HOST: nowhere},
    )
    try:
        agent.start()
        code, _ = wait_exit(agent, 180)
        out, err = logs(agent)
        raw = archive_files(agent, "/run/corpnet").get("corpnet/egress.log", (0, b""))[1]
    finally:
        agent.remove(force=True)
    assert code == 0, out + err
    assert "egress locked down: only the gateway leaves" in err
    for secret in gw_rigs.canaries:
        assert secret.decode(errors="replace") not in out + err

    # What Claude Code printed is the API's last answer: REPLY, then each tool result it sent.
    final = json.loads(out.strip().splitlines()[-1])
    lines = final["result"].splitlines()
    assert lines[0] == REPLY, final
    results = {r["url"]: r for r in map(json.loads, lines[1:])}
    assert set(results) == {f"https://{DOCS_HOST}/page", MTLS_API}, final
    page, refused = results[f"https://{DOCS_HOST}/page"], results[MTLS_API]
    assert (page.get("status"), page.get("body")) == (200, mcp_rig.page), page
    # Started with PATH and HOME alone (Python's locale coercion, PEP 538, adds
    # LC_CTYPE), it used no proxy, and verified the page against the system
    # bundle, where corpnet merged the corporate CA.
    assert set(page["env"]) <= {"HOME", "PATH", "LC_CTYPE"}, page
    assert page["proxies"] == {}, page
    assert page["cafile"] == OPENSSL_CAFILE, page
    assert "status" not in refused, refused
    # Two requests: the one the API answered with the tool calls, the one with their results.
    api_log = logs(mcp_rig.api)[0]
    answers = re.findall(r"POST /v1/messages\S* client=claude@corp.test answer=(\w+)", api_log)
    assert answers == ["tool_use", "tool_result"], api_log
    assert "request GET /page" in logs(mcp_rig.docs)[0]

    # The gateway's audit log: both connections were captured, one allowed, one refused.
    egress = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    captured = {
        (e["host"], e["port"]): (e["decision"], e["status"])
        for e in egress
        if e["method"] == "capture"
    }
    assert captured == {(DOCS_HOST, 443): ("allow", 200), (API_HOST, 443): ("deny", 403)}, egress
