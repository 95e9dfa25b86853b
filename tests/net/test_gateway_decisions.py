"""One decision for every client: through the gateway, NO_PROXY means the same to all of them.

Without the gateway, curl, urllib, requests, Node and git each read NO_PROXY
their own way (docs/proxy.md): trailing dots, upper case, IDN against
punycode entries, CIDR ranges, ports and wildcards split them. With the
gateway on, the agent's NO_PROXY is loopback only and every client sends the
rest to the gateway, which decides once. Each case's expected route is
written down; the audit log proves every client got exactly that.

Runs in a network namespace of its own (``unshare --net``): nothing can leave
the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from support.proxy_harness import node_with_env_proxy

TABLE = Path(__file__).resolve().parents[1] / "support" / "gateway_table.py"
NO_PROXY = "corp.example,*.wild.example,xn--bcher-kva.example,127.0.0.0/24"
PROXIED = "PROXY 127.0.0.1:9"

# URL -> (the host the gateway logs, the route it must choose)
CASES = {
    "https://api.corp.example/": ("api.corp.example", "DIRECT"),
    "https://api.corp.example./": ("api.corp.example", "DIRECT"),  # trailing dot
    "https://API.Corp.Example/": ("api.corp.example", "DIRECT"),  # clients lower-case it
    "https://api.corp.example:8443/": ("api.corp.example", "DIRECT"),  # any port
    "https://a.b.wild.example/": ("a.b.wild.example", "DIRECT"),  # wildcard entry
    "https://bücher.example/": ("xn--bcher-kva.example", "DIRECT"),  # IDN vs punycode entry
    "https://127.0.0.5/": ("127.0.0.5", "DIRECT"),  # a CIDR range
    "https://notcorp.example/": ("notcorp.example", PROXIED),  # label boundary
    "https://other.example/": ("other.example", PROXIED),
    "https://[fd00::5]/": ("fd00::5", PROXIED),  # no entry: proxied, never reached
    "https://128.0.0.5/": ("128.0.0.5", PROXIED),  # outside the range
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    if os.geteuid() != 0:
        pytest.fail("this test makes a network namespace (unshare --net): run it as root")
    tmp = tmp_path_factory.mktemp("gateway-table")
    (tmp / "home").mkdir()
    spec = {
        "no_proxy": NO_PROXY,
        "urls": list(CASES),
        "node": node_with_env_proxy(),
        "audit": str(tmp / "audit"),
        "home": str(tmp / "home"),
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        ["unshare", "--net", "--", sys.executable, str(TABLE), str(tmp / "spec.json")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


# What a client cannot send at all, proxy or not: not a routing decision.
CANNOT = {
    # http.client writes the CONNECT line as ASCII and fails before any byte is sent.
    ("urllib", "https://bücher.example/"),
}


def test_every_client_sends_every_name_to_the_gateway(runs: list[dict[str, object]]) -> None:
    missing = {(r["client"], r["url"]) for r in runs if not r["records"]}
    assert missing == CANNOT


def test_every_client_gets_the_same_route(runs: list[dict[str, object]]) -> None:
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for run in runs:
        for record in run["records"]:  # type: ignore[attr-defined]
            seen[str(run["url"])].add((record["host"], record["route"]))
    for url, (host, route) in CASES.items():
        assert seen[url] == {(host, route)}, (url, seen[url])
