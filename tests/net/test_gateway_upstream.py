"""The gateway against real proxies and real clients, on loopback.

Squid (Debian's package) with Basic auth and with NTLM (``ntlm_fake_auth``),
TLS origins with generated certificates, and real clients (curl, Python) that
are given only ``http://127.0.0.1:<gateway>`` and no credentials. Squid's
access log proves which login reached it.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

from support.env import host_environ
from support.gateway import RunningGateway, free_port, running_gateway
from support.servers import Origin, Server, leaf_fixture, serve_fixture  # noqa: F401 - fixtures
from support.squid import squid_logs

PASSWORD = "canary-Pw-1:@/%"
ORIGIN = "127.0.0.2"


def base_env(**extra: str) -> dict[str, str]:
    env = {
        "CORPNET_ALLOWLIST": "localhost",
        "CORPNET_WAIT": "off",
        "CORPNET_SYSTEM_STORE": "off",
    }
    env.update(extra)
    return env


def curl(
    gw: RunningGateway, url: str, cacert: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """curl through the gateway, as an agent would: the proxy URL and nothing else."""
    env = {k: v for k, v in host_environ().items() if "proxy" not in k.lower()}
    cmd = ["curl", "-sS", "--max-time", "20", "-x", gw.url, "-o", "-", "-w", "\\n%{http_code}"]
    if cacert is not None:
        cmd += ["--cacert", str(cacert)]
    return subprocess.run([*cmd, url], capture_output=True, text=True, env=env, check=False)


@pytest.fixture(name="cacert")
def cacert_fixture(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(name="origin")
def origin_fixture(leaf: trustme.LeafCert, serve: Callable[..., Server]) -> Server:
    # Not 127.0.0.1: loopback names and 127.0.0.1 always go DIRECT (a proxy cannot
    # reach our loopback), so the origin that Squid must carry us to sits on 127.0.0.2.
    return serve(Origin(leaf, http_status=200).handler, host=ORIGIN)


class _Plain(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"plain-ok {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        del args


@pytest.fixture(name="plain")
def plain_fixture() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer((ORIGIN, 0), _Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_basic_upstream_tunnel_and_plain_http(
    tmp_path: Path, origin: Server, plain: int, cacert: Path
) -> None:
    with squid_logs(auth="basic", password=PASSWORD) as sq:
        env = base_env(
            HTTPS_PROXY=f"http://127.0.0.1:{sq.port}",
            HTTP_PROXY=f"http://127.0.0.1:{sq.port}",
            CORPNET_PROXY_USER="alice",
            CORPNET_PROXY_PASSWORD=PASSWORD,
            CORPNET_GATEWAY="on",
        )
        with running_gateway(env, tmp_path) as gw:
            tls = curl(gw, f"https://{ORIGIN}:{origin.port}/", cacert)
            plain_done = curl(gw, f"http://{ORIGIN}:{plain}/hello")
            records = gw.records(2)
        log = sq.access_log()
    assert tls.stdout.splitlines()[-1] == "200", tls.stderr
    assert plain_done.stdout.split() == ["plain-ok", "/hello", "200"], plain_done.stderr
    assert f"CONNECT {ORIGIN}:{origin.port} alice" in log
    assert f"GET http://{ORIGIN}:{plain}/hello alice" in log
    assert [(r["method"], r["decision"], r["auth"], r["status"]) for r in records] == [
        ("CONNECT", "allow", "Basic", 200),
        ("GET", "allow", "Basic", 200),
    ]
    assert records[0]["bytes_down"] > 0
    audit = (tmp_path / "egress.log").read_text()
    assert PASSWORD not in audit
    assert "canary" not in audit


def test_wrong_password_is_one_line_naming_the_variables(tmp_path: Path, origin: Server) -> None:
    with squid_logs(auth="basic", password=PASSWORD) as sq:
        env = base_env(
            HTTPS_PROXY=f"http://127.0.0.1:{sq.port}",
            CORPNET_PROXY_USER="alice",
            CORPNET_PROXY_PASSWORD="wrong",
            CORPNET_GATEWAY="on",
        )
        with running_gateway(env, tmp_path) as gw:
            done = curl(gw, f"https://{ORIGIN}:{origin.port}/")
    assert "502" in done.stderr + done.stdout or done.returncode != 0
    record = gw.records(1)[0]
    assert record["status"] == 502
    assert "refused the Basic login of alice" in record["error"]
    assert "CORPNET_PROXY_PASSWORD_FILE" in record["error"]


def test_ntlm_only_proxy(tmp_path: Path, origin: Server, cacert: Path) -> None:
    with squid_logs(auth="ntlm") as sq:
        env = base_env(
            HTTPS_PROXY=f"http://127.0.0.1:{sq.port}",
            CORPNET_PROXY_USER="CORP\\alice",
            CORPNET_PROXY_PASSWORD=PASSWORD,
            CORPNET_GATEWAY="on",
        )
        with running_gateway(env, tmp_path) as gw:
            first = curl(gw, f"https://{ORIGIN}:{origin.port}/", cacert)
            second = curl(gw, f"https://{ORIGIN}:{origin.port}/", cacert)
            records = gw.records(2)
        log = sq.access_log()
    assert first.stdout.splitlines()[-1] == "200", first.stderr
    assert second.stdout.splitlines()[-1] == "200", second.stderr
    assert [r["auth"] for r in records] == ["NTLM", "NTLM"]
    tunnels = [line for line in log.splitlines() if f"CONNECT {ORIGIN}:{origin.port}" in line]
    tunnels = [line for line in tunnels if "TCP_TUNNEL/200" in line]  # 407s were the legs
    assert len(tunnels) == 2, log
    # ntlm_fake_auth reads the UTF-16 names pyspnego sends as C strings: "C\a" is
    # CORP\alice's first letters, and proves an NTLM login reached Squid.
    assert all(line.split()[7] == r"C\\a" for line in tunnels), tunnels


def test_allowlist_refuses_with_a_line_and_logs_both(
    tmp_path: Path, origin: Server, cacert: Path
) -> None:
    env = base_env(CORPNET_EGRESS="allowlist", CORPNET_ALLOWLIST=f"{ORIGIN}:{origin.port}")
    with running_gateway(env, tmp_path) as gw:
        allowed = curl(gw, f"https://{ORIGIN}:{origin.port}/", cacert)
        refused = curl(gw, f"https://localhost:{origin.port}/", cacert)
        records = gw.records(2)
    assert allowed.stdout.splitlines()[-1] == "200", allowed.stderr
    assert refused.returncode != 0
    assert [(r["host"], r["decision"]) for r in records] == [
        (ORIGIN, "allow"),
        ("localhost", "deny"),
    ]
    assert "add it to CORPNET_EGRESS_ALLOW" in records[1]["reason"]


def test_refused_plain_http_gets_the_403_line_as_body(tmp_path: Path, plain: int) -> None:
    env = base_env(CORPNET_EGRESS="allowlist", CORPNET_ALLOWLIST="example.invalid")
    with running_gateway(env, tmp_path) as gw:
        done = curl(gw, f"http://{ORIGIN}:{plain}/")
    lines = done.stdout.splitlines()
    assert lines[-1] == "403"
    assert lines[0].startswith(f"corpnet: {ORIGIN}:{plain} is not allowed by the egress policy")
    assert "CORPNET_EGRESS_ALLOW" in lines[0]


def test_user_no_proxy_range_goes_direct_for_every_client(
    tmp_path: Path, origin: Server, cacert: Path
) -> None:
    """NO_PROXY=127.0.0.0/24: a range Node, urllib and Claude Code ignore; the gateway does not."""
    with squid_logs(auth="basic", password=PASSWORD) as sq:
        env = base_env(
            HTTPS_PROXY=f"http://alice:{quote(PASSWORD, safe='')}@127.0.0.1:{sq.port}",
            NO_PROXY="127.0.0.0/24",
            CORPNET_GATEWAY="on",
        )
        with running_gateway(env, tmp_path) as gw:
            direct = curl(gw, f"https://{ORIGIN}:{origin.port}/", cacert)
            records = gw.records(1)
        log = sq.access_log()
    assert direct.stdout.splitlines()[-1] == "200", direct.stderr
    assert [(r["route"], r["reason"]) for r in records] == [("DIRECT", "NO_PROXY 127.0.0.0/24")]
    assert f"{ORIGIN}:{origin.port}" not in log


def test_secrets_never_in_the_environment_of_a_client(tmp_path: Path) -> None:
    """What a client through the gateway is given holds no credential at all."""
    env = base_env(
        CORPNET_GATEWAY="on", CORPNET_PROXY_USER="alice", CORPNET_PROXY_PASSWORD=PASSWORD
    )
    with running_gateway(env, tmp_path) as gw:
        assert "@" not in gw.url
    assert PASSWORD not in os.environ.get("HTTPS_PROXY", "")


def _wait_json(
    gw: RunningGateway, origin: Server, cacert: Path, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in host_environ().items() if "proxy" not in k.lower()}
    env.update(
        HTTPS_PROXY=gw.url,
        CORPNET_ALLOWLIST=f"{ORIGIN}:{origin.port}",
        CORPNET_CA_FILES=str(cacert),
        CORPNET_RUNTIME_DIR=str(tmp_path / "probe-run"),
        CORPNET_CONFIG_DIR=str(tmp_path / "probe-etc"),
        CORPNET_SYSTEM_STORE="off",
    )
    return subprocess.run(
        [sys.executable, "-m", "corpnet", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_wait_and_doctor_report_where_the_gateway_sent_the_tunnel(
    tmp_path: Path, origin: Server, cacert: Path
) -> None:
    with squid_logs(auth="basic", password=PASSWORD) as sq:
        env = base_env(
            HTTPS_PROXY=f"http://127.0.0.1:{sq.port}",
            CORPNET_PROXY_USER="alice",
            CORPNET_PROXY_PASSWORD=PASSWORD,
            CORPNET_GATEWAY="on",
        )
        with running_gateway(env, tmp_path) as gw:
            waited = _wait_json(gw, origin, cacert, tmp_path, "wait", "--json", "--timeout", "10")
            doctor = _wait_json(gw, origin, cacert, tmp_path, "doctor", "--timeout", "10")
    assert waited.returncode == 0, waited.stderr
    route = json.loads(waited.stdout)["hosts"][0]["route"]
    assert route == f"{gw.url} -> PROXY 127.0.0.1:{sq.port} (Basic login)"
    assert f"-> PROXY 127.0.0.1:{sq.port} (Basic login)" in doctor.stdout + doctor.stderr


def test_a_gateway_refusal_stops_the_wait_at_once_with_its_line(
    tmp_path: Path, origin: Server, cacert: Path
) -> None:
    env = base_env(CORPNET_EGRESS="allowlist", CORPNET_ALLOWLIST="only.example.invalid")
    with running_gateway(env, tmp_path) as gw:
        started = time.monotonic()
        waited = _wait_json(gw, origin, cacert, tmp_path, "wait", "--timeout", "30")
        took = time.monotonic() - started
    assert waited.returncode == 78, waited.stderr
    assert f"{ORIGIN}:{origin.port} is not allowed by the egress policy" in waited.stderr
    assert "add it to CORPNET_EGRESS_ALLOW" in waited.stderr
    assert took < 10  # not retried until the deadline


PAC = """
function FindProxyForURL(url, host) {
    if (host == "boom.example") { throw new Error("broken rule"); }
    if (isInNet(host, "127.0.0.2", "255.255.255.255") && url.indexOf(":%(direct)d") > 0) {
        return "DIRECT";
    }
    return "PROXY 127.0.0.1:%(dead)d; PROXY 127.0.0.1:%(squid)d";
}
"""


def test_pac_fail_over_direct_and_a_throwing_rule(
    tmp_path: Path,
    origin: Server,
    cacert: Path,
    leaf: trustme.LeafCert,
    serve: Callable[..., Server],
) -> None:
    second = serve(Origin(leaf, http_status=200).handler, host=ORIGIN)  # reached DIRECT
    with squid_logs(auth="basic", password=PASSWORD) as sq:
        pac = tmp_path / "proxy.pac"
        pac.write_text(PAC % {"dead": 9, "squid": sq.port, "direct": second.port})
        env = base_env(
            CORPNET_PAC_URL=f"file://{pac}",
            CORPNET_PROXY_USER="alice",
            CORPNET_PROXY_PASSWORD=PASSWORD,
        )
        with running_gateway(env, tmp_path) as gw:
            failed_over = curl(gw, f"https://{ORIGIN}:{origin.port}/", cacert)
            direct = curl(gw, f"https://{ORIGIN}:{second.port}/", cacert)
            thrown = curl(gw, "https://boom.example/", cacert)
            records = gw.records(3)
        log = sq.access_log()
    assert failed_over.stdout.splitlines()[-1] == "200", failed_over.stderr
    assert direct.stdout.splitlines()[-1] == "200", direct.stderr
    assert thrown.returncode != 0
    assert [(r["route"], r["reason"]) for r in records[:2]] == [
        (f"PROXY 127.0.0.1:{sq.port}", "PAC"),  # the dead first proxy was skipped
        ("DIRECT", "PAC"),
    ]
    assert f"CONNECT {ORIGIN}:{origin.port} alice" in log
    assert records[2]["status"] == 502
    assert "the PAC file file://" in records[2]["error"]
    assert "failed for boom.example" in records[2]["error"]


def test_an_unreachable_pac_file_stops_the_gateway_with_its_line(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in host_environ().items() if "proxy" not in k.lower()},
        **base_env(CORPNET_PAC_URL="http://127.0.0.1:9/proxy.pac"),
        "CORPNET_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}",
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "corpnet", "gateway"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 69, done.stderr
    assert "cannot fetch the PAC file http://127.0.0.1:9/proxy.pac" in done.stderr
    assert "CORPNET_PAC_URL" in done.stderr
