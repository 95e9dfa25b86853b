"""Real clients trust a loopback HTTPS server whose CA came only through ca.d.

`corpnet trust --env` runs as a real process; each client then runs twice
against the same server: with the host's default trust (it must fail: the
test CA is nowhere else) and with the exported environment (it must succeed).
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from support.env import host_environ

JAVA_PROBE = """
import java.net.URI;
import javax.net.ssl.HttpsURLConnection;

public class Probe {
    public static void main(String[] args) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URI(args[0]).toURL().openConnection();
        byte[] body = c.getInputStream().readAllBytes();
        System.out.println(c.getResponseCode() + " " + new String(body));
    }
}
"""
NODE_PROBE = (
    "require('https').get(process.argv[1], r => { r.pipe(process.stdout) })"
    ".on('error', e => { console.error(e.message); process.exit(1) })"
)
PY_URLLIB = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
PY_REQUESTS = "import sys, requests; print(requests.get(sys.argv[1], timeout=10).text)"
PY_CAPATH = (
    "import os, ssl, sys, urllib.request\n"
    "ctx = ssl.create_default_context(capath=os.environ['SSL_CERT_DIR'])\n"
    "print(urllib.request.urlopen(sys.argv[1], context=ctx).read().decode())"
)


@dataclass(frozen=True)
class Server:
    url: str
    port: int


@pytest.fixture(scope="module")
def server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """HTTPS on 127.0.0.1 with a certificate from the test CA; also a dumb-HTTP git repo."""
    root = tmp_path_factory.mktemp("www")
    (root / "hello").write_text("corpnet trust ok\n")
    repo = root / "repo.git"
    (repo / "info").mkdir(parents=True)
    (repo / "info" / "refs").write_text(f"{'1' * 40}\trefs/heads/main\n")
    (repo / "HEAD").write_text("ref: refs/heads/main\n")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(f"https://localhost:{port}/hello", port)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def exported(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment `corpnet trust --env` prints, with the test CA mounted in ca.d only."""
    base = tmp_path_factory.mktemp("corpnet")
    (base / "ca.d").mkdir()
    ca.cert_pem.write_to_path(str(base / "ca.d" / "corp-root.crt"))
    env = {
        **host_environ(),
        "CORPNET_CONFIG_DIR": str(base),
        "CORPNET_RUNTIME_DIR": str(base / "run"),
        "CORPNET_SYSTEM_STORE": "off",  # never the host's /etc
    }
    done = subprocess.run(
        [sys.executable, "-m", "corpnet", "trust", "--env"],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        ["sh", "-c", done.stdout + "env -0"], env={}, capture_output=True, text=True, check=True
    )
    variables = dict(item.split("=", 1) for item in shown.stdout.split("\0") if "=" in item)
    assert "JAVA_TOOL_OPTIONS" in variables, "java is on PATH: the truststore must be exported"
    return {k: v for k, v in variables.items() if k not in {"PWD", "SHLVL", "_"}}


@dataclass(frozen=True)
class Client:
    id: str
    tool: str
    argv: tuple[str, ...]  # {url}, {host}, {port} are filled in
    keep: tuple[str, ...] = ()  # only these exported variables: proves which one works


CLIENTS = [
    Client("curl", "curl", ("curl", "-fsS", "{url}"), keep=("CURL_CA_BUNDLE",)),
    Client(
        "python-urllib", "python", ("python", "-c", PY_URLLIB, "{url}"), keep=("SSL_CERT_FILE",)
    ),
    Client(
        "python-requests",
        "python",
        ("python", "-c", PY_REQUESTS, "{url}"),
        keep=("REQUESTS_CA_BUNDLE",),
    ),
    Client("node", "node", ("node", "-e", NODE_PROBE, "{url}"), keep=("NODE_EXTRA_CA_CERTS",)),
    Client(
        "git",
        "git",
        ("git", "ls-remote", "https://localhost:{port}/repo.git"),
        keep=("GIT_SSL_CAINFO",),
    ),
    Client("java", "java", ("java", "{probe}", "{url}"), keep=("JAVA_TOOL_OPTIONS",)),
    # The hashed directory alone (SSL_CERT_DIR), through three OpenSSL front ends.
    Client("python-capath", "python", ("python", "-c", PY_CAPATH, "{url}"), keep=("SSL_CERT_DIR",)),
    Client(
        "curl-capath",
        "curl",
        ("sh", "-c", 'exec curl -fsS --capath "$SSL_CERT_DIR" "$0"', "{url}"),
        keep=("SSL_CERT_DIR",),
    ),
    Client(
        "openssl-capath",
        "openssl",
        (
            "sh",
            "-c",
            'openssl s_client -connect "$0" -servername localhost -verify_return_error '
            '-CApath "$SSL_CERT_DIR" -no-CAfile -no-CAstore < /dev/null',
            "127.0.0.1:{port}",
        ),
        keep=("SSL_CERT_DIR",),
    ),
]


def run(
    client: Client, server: Server, env: dict[str, str], probe: Path
) -> subprocess.CompletedProcess[str]:
    fill = {"{url}": server.url, "{port}": str(server.port), "{probe}": str(probe)}
    argv = list(client.argv)
    for old, new in fill.items():
        argv = [a.replace(old, new) for a in argv]
    if argv[0] == "python":
        argv[0] = sys.executable
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.id)
def test_client_trusts_the_corporate_ca_only_with_the_exported_environment(
    client: Client, server: Server, exported: dict[str, str], tmp_path: Path
) -> None:
    assert shutil.which(client.tool), f"{client.tool} is not installed: run scripts/test"
    probe = tmp_path / "Probe.java"
    probe.write_text(JAVA_PROBE)
    base = {**host_environ(), "HOME": str(tmp_path)}
    if client.tool == "java":
        base.pop("JAVA_TOOL_OPTIONS", None)
    # SSL_CERT_DIR needs a value even for the failing run: point it at an empty dir.
    empty = tmp_path / "empty"
    empty.mkdir()
    without = run(client, server, {**base, "SSL_CERT_DIR": str(empty)}, probe)
    assert without.returncode != 0, f"{client.id} trusted the test CA without corpnet"
    env = {**base, **{k: exported[k] for k in client.keep}}
    with_env = run(client, server, env, probe)
    assert with_env.returncode == 0, with_env.stderr + with_env.stdout
    if client.id == "git":
        assert "refs/heads/main" in with_env.stdout
    elif client.id == "openssl-capath":
        assert "Verify return code: 0 (ok)" in with_env.stdout
    else:
        assert "corpnet trust ok" in with_env.stdout


def test_merged_bundle_keeps_the_system_cas(exported: dict[str, str]) -> None:
    """Most variables *replace* a tool's store: the bundle must hold the system roots too."""
    bundle = Path(exported["SSL_CERT_FILE"]).read_bytes()
    system = Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()
    assert bundle.count(b"BEGIN CERTIFICATE") >= system.count(b"BEGIN CERTIFICATE")
    assert Path(exported["NODE_EXTRA_CA_CERTS"]).samefile(exported["SSL_CERT_FILE"])
