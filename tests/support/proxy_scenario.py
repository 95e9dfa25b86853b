"""Run real clients against a real proxy inside a network namespace; report what happened.

    unshare --net --mount -- python proxy_scenario.py SPEC.json

Started by ``_proxy_harness.run_scenario`` in a fresh network and mount
namespace. Why a namespace: the NO_PROXY table needs *names* (``corp.example``,
``git.corp.example``, ``notcorp.example``...) that each client resolves itself
when it goes direct, exactly as it would resolve real DNS. A private
``/etc/hosts`` bind-mounted in our own mount namespace gives every client and
the proxy the same answers through the ordinary glibc resolver, without touching
the host's ``/etc/hosts``; the private network namespace (only ``lo``, with the
table's addresses on it) means no request can leave the machine whatever a
client decides, and fixed ports cannot collide with anything on the host.

In the namespace: one HTTPS server per port (serving a bare git repository for
``git ls-remote``, ``ok`` for everything else), proxy.py with the recording
plugin (``proxy_plugin``) and optional basic auth, then each run's client with
exactly the run's environment. The JSON on stdout lists what the proxy
forwarded, what the servers received, and each client's own result.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_seen: list[list[object]] = []  # [port, Host header, path] of every request served
_lock = threading.Lock()


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def setup_namespace(spec: dict[str, Any]) -> None:
    sh("ip", "link", "set", "lo", "up")
    for address in spec["addresses"]:
        if ":" in address:
            sh("ip", "-6", "addr", "add", f"{address}/128", "dev", "lo", "nodad")
        else:
            sh("ip", "addr", "add", f"{address}/32", "dev", "lo")
    hosts = Path(spec["workdir"]) / "hosts"
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    lines += [f"{addr} {name}" for name, addrs in spec["hosts"].items() for addr in addrs]
    hosts.write_text("\n".join(lines) + "\n")
    sh("mount", "--bind", str(hosts), "/etc/hosts")


class Handler(BaseHTTPRequestHandler):
    repo: Path

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        with _lock:
            _seen.append([port, host, self.path])
        path = self.path.split("?", 1)[0]
        body = b"ok\n"
        if path.startswith("/repo.git/"):
            # git's dumb HTTP protocol: static files of a bare repository.
            file = self.repo / path.removeprefix("/repo.git/")
            if not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def start_servers(spec: dict[str, Any]) -> list[DualStackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(spec["cert"], spec["key"])
    Handler.repo = Path(spec["repo"])
    servers = []
    for port in spec["server_ports"]:
        server = DualStackServer(("::", port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


def start_proxies(spec: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(HERE),
        "PROXY_TEST_LOG": str(Path(spec["workdir"]) / "proxy.log"),
    }
    procs = []
    for proxy in spec["proxies"]:
        cmd = [
            sys.executable, "-m", "proxy", "--hostname", "::", "--port", str(proxy["port"]),
            "--num-workers", "1", "--num-acceptors", "1", "--log-level", "WARNING",
            "--plugins", "proxy_plugin.RecordRequests",
        ]  # fmt: skip
        if proxy.get("auth"):
            cmd += ["--basic-auth", proxy["auth"]]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
    deadline = time.monotonic() + 60  # ten Python processes starting at once on 2 CPUs
    for proxy in spec["proxies"]:
        while True:
            try:
                socket.create_connection(("127.0.0.1", proxy["port"]), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    message = f"proxy.py did not listen on {proxy['port']} within 60 s"
                    raise SystemExit(message) from None
                time.sleep(0.05)
    return procs


def run_client(spec: dict[str, Any], run: dict[str, Any]) -> list[dict[str, object]]:
    client, env, urls = run["client"], run["env"], run["urls"]
    if client in {"urllib", "requests", "httpx"}:
        cmd = [sys.executable, str(HERE / "proxy_clients.py"), client, *urls]
        return _json_client(cmd, env, urls)
    if client in {"node-fetch", "node-https"}:
        mode = client.removeprefix("node-")
        cmd = [spec["node"], str(HERE / "proxy_clients.mjs"), mode, *urls]
        return _json_client(cmd, env, urls)
    results: list[dict[str, object]] = []
    for url in urls:
        if client == "curl":
            # -g: no globbing, so [fd98::7] is an IPv6 address, not a character set.
            cmd = ["curl", "-sS", "-g", "--max-time", "10", "-o", "/dev/null"]
            cmd += ["-w", "%{http_code}", url]
        elif client == "git":
            cmd = ["git", "ls-remote", url + "repo.git"]
        else:
            raise SystemExit(f"unknown client {client}")
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False)
        ok = p.returncode == 0 and (client != "git" or "refs/heads/main" in p.stdout)
        ok = ok and (client != "curl" or p.stdout.strip() == "200")
        results.append({"url": url, "ok": ok, "detail": (p.stderr or p.stdout).strip()[-300:]})
    return results


def timed_run(spec: dict[str, Any], run: dict[str, Any]) -> dict[str, object]:
    start = time.monotonic()
    results = run_client(spec, run)
    return {"id": run["id"], "results": results, "seconds": round(time.monotonic() - start, 3)}


def _json_client(cmd: list[str], env: dict[str, str], urls: list[str]) -> list[dict[str, object]]:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    try:
        results: list[dict[str, object]] = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        detail = f"exit {p.returncode}: {p.stderr.strip()[-500:]}"
        return [{"url": u, "ok": False, "detail": detail} for u in urls]
    if p.stderr.strip():
        for r in results:
            r["stderr"] = p.stderr.strip()[-300:]
    return results


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    setup_namespace(spec)
    servers = start_servers(spec)
    procs = start_proxies(spec)
    try:
        # Each run has its own server port, so runs can overlap without blurring
        # which request was whose.
        with ThreadPoolExecutor(max_workers=4) as pool:
            runs = list(pool.map(lambda run: timed_run(spec, run), spec["runs"]))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    # The servers' threads are daemons: they end with this process (shutdown() would
    # wait out each one's poll interval).
    del servers
    log = Path(spec["workdir"]) / "proxy.log"
    forwarded = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    print(json.dumps({"proxy_log": forwarded, "server_log": _seen, "runs": runs}))


if __name__ == "__main__":
    main()
