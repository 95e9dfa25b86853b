"""Pytest-side helpers for the proxy tests: Node provisioning, certificates, the scenario run."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

HERE = Path(__file__).resolve().parent
# Node reads HTTPS_PROXY/NO_PROXY itself only with NODE_USE_ENV_PROXY=1, which
# appeared in v22.21.0 and v24.0.0 (fetch first, then the http/https agents).
# Debian 12's Node 20 ignores the variable: its fetch and https.get go direct.
NODE_MIN = (22, 21)
NODE_MAJOR = 24
REPO = HERE.parents[1]


def _node_version(node: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.match(r"v(\d+)\.(\d+)", out.stdout)
    return (int(m[1]), int(m[2])) if m else None


def node_with_env_proxy() -> str:
    """A Node that honours NODE_USE_ENV_PROXY: on PATH, in .venv, or installed with npm.

    The npm registry's ``node-linux-<arch>`` package carries the official
    binary; it is installed once into .venv/node-24 (beside scripts/lib.sh's npm
    tools in .venv/node) with the host's own npm configuration (registry, CA),
    so no registry name appears here.
    """
    arch = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    package = f"node-linux-{arch}"
    prefix = REPO / ".venv" / f"node-{NODE_MAJOR}"
    cached = prefix / "node_modules" / package / "bin" / "node"
    provisioned = REPO / ".venv" / "node" / "node_modules" / package / "bin" / "node"
    for candidate in (shutil.which("node"), str(provisioned), str(cached)):
        version = _node_version(candidate) if candidate else None
        if version is not None and version >= NODE_MIN:
            return str(candidate)
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"Node >= {NODE_MIN[0]}.{NODE_MIN[1]} is needed and npm is missing: install npm"
        )
    p = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix),
         f"{package}@{NODE_MAJOR}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if p.returncode != 0 or _node_version(str(cached)) is None:
        pytest.fail(
            f"Node >= {NODE_MIN[0]}.{NODE_MIN[1]} is needed (NODE_USE_ENV_PROXY) and "
            f"`npm install {package}@{NODE_MAJOR}` failed: {p.stderr.strip()[-400:]}"
        )
    return str(cached)


def bare_repo(where: Path) -> Path:
    """A bare git repository served over git's dumb HTTP protocol (static files)."""
    work = where / "work"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(where)}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(work)], check=True, env=env)
    commit = [*git, "-C", str(work), "commit", "-q", "--allow-empty", "-m", "x"]
    subprocess.run(commit, check=True, env=env)
    repo = where / "repo.git"
    subprocess.run([*git, "clone", "-q", "--bare", str(work), str(repo)], check=True, env=env)
    subprocess.run([*git, "-C", str(repo), "update-server-info"], check=True, env=env)
    return repo


def client_env(ca_file: Path, home: Path, exports: dict[str, str]) -> dict[str, str]:
    """What a client gets: a bare environment, the test CA for every client, and ``exports``."""
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    # The trust stage's job in the real container; here simply the test CA.
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                 "NODE_EXTRA_CA_CERTS"):  # fmt: skip
        base[name] = str(ca_file)
    return {**base, **exports}


@dataclass
class Scenario:
    """Inputs of one namespace run; see proxy_scenario.py."""

    hosts: dict[str, list[str]]
    server_ports: list[int]
    proxies: list[dict[str, object]]
    runs: list[dict[str, object]] = field(default_factory=list)
    node: str = ""

    def addresses(self) -> list[str]:
        found = {a for addrs in self.hosts.values() for a in addrs}
        return sorted(a for a in found if a not in {"127.0.0.1", "::1"})


@dataclass
class Outcome:
    """What the proxy forwarded, what the servers saw, what each client said."""

    proxy_log: list[tuple[int, str, int]]
    server_log: list[tuple[int, str, str]]
    runs: dict[str, list[dict[str, object]]]


def run_scenario(tmp: Path, scenario: Scenario, ca: trustme.CA) -> Outcome:
    """Run ``scenario`` in a new network + mount namespace (needs root: unshare)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("the proxy tests need unshare (util-linux) and ip (iproute2)")
    names = [n for n in scenario.hosts if n != "localhost"]
    server = ca.issue_cert(*names, *scenario.addresses(), "localhost", "127.0.0.1", "::1")
    cert, key, ca_file = tmp / "server.pem", tmp / "server.key", tmp / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    spec = {
        "workdir": str(tmp),
        "hosts": scenario.hosts,
        "addresses": scenario.addresses(),
        "cert": str(cert),
        "key": str(key),
        "repo": str(bare_repo(tmp)),
        "server_ports": scenario.server_ports,
        "proxies": scenario.proxies,
        "node": scenario.node,
        "runs": scenario.runs,
    }
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps(spec))
    p = subprocess.run(
        ["unshare", "--net", "--mount", "--", sys.executable, str(HERE / "proxy_scenario.py"),
         str(spec_file)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    if p.returncode != 0:
        pytest.fail(f"the proxy scenario failed (exit {p.returncode}): {p.stderr[-2000:]}")
    (tmp / "outcome.json").write_text(p.stdout)  # for a look after a failure
    data = json.loads(p.stdout)
    return Outcome(
        proxy_log=[(int(a), h, int(b)) for a, h, b in data["proxy_log"]],
        server_log=[(int(a), h, path) for a, h, path in data["server_log"]],
        runs={r["id"]: r["results"] for r in data["runs"]},
    )


def ca_file_for(tmp: Path) -> Path:
    """Where run_scenario writes the CA (clients' environments point at it)."""
    return tmp / "ca.pem"
