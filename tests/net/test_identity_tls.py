"""The exported identity works against a real server that requires client certificates.

A loopback HTTPS server (Python ssl, CERT_REQUIRED, trusting only the test CA)
records the client certificate of every request. Each real client is given
exactly what corpnet exports: Python's ssl (what the reachability stage does),
curl with --cert/--key/--pass, Node reading CLAUDE_CODE_CLIENT_* the way Claude
Code does, requests with PIP_CLIENT_CERT (what pip does), and git with
GIT_SSL_CERT/GIT_SSL_KEY.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from corpnet import config, identity
from support.env import host_environ

PASS = "net test passphrase"
CLIENT = "alice@corp.example"


@dataclass
class Seen:
    """Requests the server answered, with the client certificate's email SAN."""

    requests: list[tuple[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    seen: Seen

    def do_GET(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        peer = self.connection.getpeercert() or {}
        who = ",".join(v for k, v in peer.get("subjectAltName", ()) if k == "email")
        self.seen.requests.append((self.path, who))
        if self.path.startswith("/repo.git"):
            self.send_error(404)  # git got this far: the TLS handshake with its cert worked
            return
        body = f"hello {who}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Server:
    port: int
    seen: Seen
    ca_file: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"


@pytest.fixture(scope="module")
def server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS: no client certificate, no connection
    ca.configure_trust(ctx)
    seen = Seen()
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    ca_file = tmp_path_factory.mktemp("server") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield Server(httpd.server_address[1], seen, ca_file)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def mounted(tmp_path: Path, ca: trustme.CA) -> Path:
    """The client certificate mounted the Kubernetes way (tls.crt/tls.key), key encrypted."""
    leaf = ca.issue_cert(CLIENT)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    client_dir = tmp_path / "etc" / "client"
    client_dir.mkdir(parents=True)
    (client_dir / "tls.crt").write_bytes(leaf.cert_chain_pems[0].bytes())
    (client_dir / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASS.encode()),
        )
    )
    (client_dir / "tls.key").chmod(0o440)
    (client_dir / "client.pem").write_bytes(leaf.private_key_pem.bytes())  # for the p12 case
    return tmp_path


def apply(root: Path, ca: trustme.CA, env: Mapping[str, str]) -> identity.IdentityResult:
    settings = config.load(
        {
            "CORPNET_CONFIG_DIR": str(root / "etc"),
            "CORPNET_RUNTIME_DIR": str(root / "run"),
            # The chain is verified at the start only when strict: here it must pass.
            "CORPNET_STRICT": "1",
            **env,
        }
    )
    result = identity.apply(
        settings,
        runtime_dir=root / "run",
        roots_pem=ca.cert_pem.bytes(),
        now=dt.datetime.now(dt.UTC),
    )
    assert result is not None
    assert [c.status for c in result.report.checks if c.name == "chain"] == ["ok"]
    return result


def get(server: Server, ctx: ssl.SSLContext) -> str:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def client_context(server: Server) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    ctx.check_hostname = False  # the server certificate names 127.0.0.1 as an IP SAN anyway
    return ctx


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: scripts/test installs it (apt-get install {name})"
    return path


def run_tool(
    args: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env={**host_environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_server_really_requires_a_client_certificate(server: Server) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        get(server, client_context(server))


def test_python_ssl_with_the_exported_cert_key_and_passphrase(
    server: Server, mounted: Path, ca: trustme.CA
) -> None:
    result = apply(mounted, ca, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS})
    ctx = client_context(server)
    # Exactly what the reachability stage does with an IdentityResult.
    ctx.load_cert_chain(result.cert, result.key, password=result.passphrase)
    assert get(server, ctx) == f"hello {CLIENT}\n"


def curl(server: Server, env: Mapping[str, str] | None) -> subprocess.CompletedProcess[str]:
    """curl given the exported identity the documented way (it reads no variable itself)."""
    args = [tool("curl"), "-sS", "--noproxy", "*", "--cacert", str(server.ca_file), server.url]
    if env is not None:
        args += ["--cert", env["CLAUDE_CODE_CLIENT_CERT"], "--key", env["CLAUDE_CODE_CLIENT_KEY"]]
        if "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE" in env:
            args += ["--pass", env["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"]]
    return run_tool(args)


def test_curl_with_the_exported_values(server: Server, mounted: Path, ca: trustme.CA) -> None:
    env = apply(mounted, ca, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS}).exports.env
    assert curl(server, None).returncode != 0  # the control: no certificate, no answer
    done = curl(server, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"hello {CLIENT}\n"


_NODE_CLIENT = """
// What Claude Code does with its documented variables: PEM paths plus the passphrase.
const fs = require("fs");
const https = require("https");
const env = process.env;
const options = {
  ca: fs.readFileSync(env.TEST_CA),
  cert: fs.readFileSync(env.CLAUDE_CODE_CLIENT_CERT),
  key: fs.readFileSync(env.CLAUDE_CODE_CLIENT_KEY),
  passphrase: env.CLAUDE_CODE_CLIENT_KEY_PASSPHRASE,
};
https.get(env.TEST_URL, options, (res) => {
  let body = "";
  res.on("data", (d) => (body += d));
  res.on("end", () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })));
}).on("error", (e) => { console.error(e.message); process.exit(3); });
"""


def test_node_reads_the_claude_code_variables(
    server: Server, mounted: Path, ca: trustme.CA
) -> None:
    result = apply(mounted, ca, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS})
    env = {**result.exports.env, "TEST_CA": str(server.ca_file), "TEST_URL": server.url}
    done = run_tool([tool("node"), "-e", _NODE_CLIENT], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": 200, "body": f"hello {CLIENT}\n"}


def test_decrypted_copy_serves_pip_and_git(server: Server, mounted: Path, ca: trustme.CA) -> None:
    result = apply(
        mounted, ca, {"CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": PASS, "CORPNET_DECRYPT_KEY": "1"}
    )
    env = result.exports.env
    assert "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE" not in env
    # pip hands PIP_CLIENT_CERT to requests as `cert=` (one file, certificate and key).
    response = requests.get(
        server.url, cert=env["PIP_CLIENT_CERT"], verify=str(server.ca_file), timeout=10
    )
    assert response.text == f"hello {CLIENT}\n"
    # git reads GIT_SSL_CERT / GIT_SSL_KEY; a 404 proves the handshake with its certificate.
    before = len(server.seen.requests)
    done = run_tool(
        [tool("git"), "ls-remote", f"{server.url}repo.git"],
        {**env, "GIT_SSL_CAINFO": str(server.ca_file), "GIT_TERMINAL_PROMPT": "0"},
    )
    assert done.returncode != 0
    assert "not found" in done.stderr, done.stderr
    assert ("/repo.git/info/refs?service=git-upload-pack", CLIENT) in server.seen.requests[before:]


def test_pkcs12_outputs_work_with_curl(server: Server, mounted: Path, ca: trustme.CA) -> None:
    client_dir = mounted / "etc" / "client"
    key = serialization.load_pem_private_key((client_dir / "client.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((client_dir / "tls.crt").read_bytes())
    p12 = mounted / "client.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"alice",
            key,  # type: ignore[arg-type]
            cert,
            None,
            serialization.BestAvailableEncryption(PASS.encode()),
        )
    )
    p12.chmod(0o600)
    result = apply(
        mounted, ca, {"CORPNET_CLIENT_P12": str(p12), "CORPNET_CLIENT_P12_PASSWORD": PASS}
    )
    assert result.exports.env["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == PASS
    done = curl(server, result.exports.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"hello {CLIENT}\n"
