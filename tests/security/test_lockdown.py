"""The egress lockdown on the host's real kernel, in network namespaces of the test's own.

Two namespaces joined by a veth, IPv4 and IPv6: the agent's, and a network
holding Squid (Basic auth, the upstream) and a "leak target" serving HTTP on
80 and 8080 and TLS on 443 on both families. `corpnet run` starts as root in
the agent's namespace with CORPNET_EGRESS=lockdown and CORPNET_USER=4242; the
agent then tries to leave every way it can. The control (no lockdown)
reaches the target directly over both families. Container tests (Docker's
network, its embedded DNS) are in tests/e2e.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from support.env import host_environ
from support.netns import NET4, NET6, Pair, namespace_pair
from support.squid import squid_logs

SERVER = Path(__file__).resolve().parents[1] / "support" / "leak_server.py"

# As the agent: every way out, one line each.
ATTEMPTS = r"""
out=$(mktemp)
try() {
    name=$1; shift
    if "$@" >"$out" 2>&1; then echo "$name=yes $(head -c 40 "$out")"; else echo "$name=no"; fi
}
direct() { curl -sf -m 3 --noproxy '*' "$@"; }
try direct4 direct http://10.77.0.2:8080/
try direct6 direct -g "http://[fd00:77::2]:8080/"
try proxy4 direct http://10.77.0.2:3128/
try captured_env_i env -i /usr/bin/curl -sf -m 10 --cacert "$CA" https://10.77.0.2/
try captured_http env -i /usr/bin/curl -sf -m 10 http://10.77.0.2/
try explicit curl -sf -m 10 --cacert "$CA" https://10.77.0.2/
try refused_name env -i /usr/bin/curl -sf -m 10 -k --resolve other.example:443:10.77.0.2 \
    https://other.example/
try udp443 python3 -c "import socket as s; s.socket(2, 2).sendto(b'x', ('10.77.0.2', 443))"
try flush nft flush table inet corpnet
try add nft add table inet evil
"""


@pytest.fixture(name="world", scope="module")
def world_fixture(ca: trustme.CA) -> Iterator[tuple[Pair, Path, int]]:
    if os.geteuid() != 0:
        pytest.fail("these tests make network namespaces and nftables rules: run them as root")
    for tool in ("nft", "ip", "curl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: scripts/test installs nftables, iproute2 and curl")
    box = Path(tempfile.mkdtemp(dir="/tmp"))
    box.chmod(0o755)
    leaf = ca.issue_cert(NET4, NET6, "other.example")
    leaf.cert_chain_pems[0].write_to_path(str(box / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(box / "key.pem"))
    ca.cert_pem.write_to_path(str(box / "ca.pem"))
    (box / "ca.pem").chmod(0o644)
    with namespace_pair() as pair:
        server = subprocess.Popen(
            pair.exec(
                pair.net, sys.executable, str(SERVER), str(box / "cert.pem"), str(box / "key.pem")
            ),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            with squid_logs(auth="basic", listen=NET4, netns=pair.net, port=3128) as sq:
                yield pair, box, sq.port
                (box / "squid.log").write_text(sq.access_log())
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
            if server.stdout is not None:
                server.stdout.close()
            shutil.rmtree(box, ignore_errors=True)


def _run(pair: Pair, box: Path, *, lockdown: bool, tag: str) -> dict[str, str]:
    env = host_environ()
    env.update(
        CORPNET_CONFIG_DIR=str(box / f"etc-{tag}"),
        CORPNET_RUNTIME_DIR=str(box / f"run-{tag}"),
        CORPNET_SYSTEM_STORE="off",
        CORPNET_WAIT="off",
        CORPNET_USER="4242:4242",
        CORPNET_ALLOWLIST=NET4,
        HTTPS_PROXY=f"http://{NET4}:3128",
        HTTP_PROXY=f"http://{NET4}:3128",
        CORPNET_PROXY_USER="alice",
        CORPNET_PROXY_PASSWORD="s3cret",
        CA=str(box / "ca.pem"),
    )
    if lockdown:
        env["CORPNET_EGRESS"] = "lockdown"
        env["CORPNET_EGRESS_ALLOW"] = f"{NET4}:80"  # plain HTTP too (the allowlist is :443)
    else:
        env["CORPNET_GATEWAY"] = "off"
        env["NO_PROXY"] = f"{NET4},{NET6}"
    done = subprocess.run(
        pair.exec(pair.agent, sys.executable, "-m", "corpnet", "run", "--", "sh", "-c", ATTEMPTS),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    results["_stderr"] = done.stderr
    return results


def test_without_lockdown_the_agent_leaves_directly_over_both_families(
    world: tuple[Pair, Path, int],
) -> None:
    pair, box, _ = world
    got = _run(pair, box, lockdown=False, tag="control")
    assert got["direct4"].startswith("yes served-8080"), got
    assert got["direct6"].startswith("yes served-8080"), got


def test_lockdown_lets_only_the_gateway_out(world: tuple[Pair, Path, int]) -> None:
    pair, box, _ = world
    got = _run(pair, box, lockdown=True, tag="locked")
    assert "egress locked down: only the gateway leaves" in got["_stderr"]
    for way in ("direct4", "direct6", "proxy4", "udp443", "flush", "add"):
        assert got[way] == "no", (way, got)
    # No proxy variable at all: captured by the gateway, out through Squid by policy.
    assert got["captured_env_i"].startswith("yes served-443"), got
    assert got["captured_http"].startswith("yes served-80"), got
    assert got["explicit"].startswith("yes served-443"), got
    # A name outside the allowlist, even at an address that would serve it: refused.
    assert got["refused_name"] == "no", got
    audit = [line for line in (box / "run-locked" / "egress.log").read_text().splitlines()]
    assert any('"method":"capture"' in line and '"decision":"allow"' in line for line in audit)
    assert any('"host":"other.example"' in line and '"decision":"deny"' in line for line in audit)


def test_a_second_start_leaves_one_table(world: tuple[Pair, Path, int]) -> None:
    pair, box, _ = world
    _run(pair, box, lockdown=True, tag="again")
    listed = subprocess.run(
        pair.exec(pair.agent, "nft", "list", "tables"), capture_output=True, text=True, check=True
    ).stdout
    assert listed.count("table inet corpnet") == 1, listed


def test_without_net_admin_the_start_stops_with_the_capability_named(
    world: tuple[Pair, Path, int],
) -> None:
    pair, box, _ = world
    env = host_environ()
    env.update(
        CORPNET_CONFIG_DIR=str(box / "etc-nocap"),
        CORPNET_RUNTIME_DIR=str(box / "run-nocap"),
        CORPNET_SYSTEM_STORE="off",
        CORPNET_WAIT="off",
        CORPNET_USER="4242:4242",
        CORPNET_ALLOWLIST=NET4,
        HTTPS_PROXY=f"http://{NET4}:3128",
        CORPNET_EGRESS="lockdown",
    )
    # Root without CAP_NET_ADMIN: dropped from the bounding set before the exec.
    drop = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"]
    argv = pair.exec(pair.agent, *drop, sys.executable, "-m", "corpnet", "run", "--", "true")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 77, done.stderr
    assert "CORPNET_EGRESS=lockdown needs the NET_ADMIN capability" in done.stderr
    assert "--cap-add NET_ADMIN" in done.stderr
    relaxed = subprocess.run(
        argv, env={**env, "CORPNET_EGRESS_REQUIRE": "0"}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert relaxed.returncode == 0, relaxed.stderr
    assert "without the NET_ADMIN capability: no rules installed" in relaxed.stderr


VERIFY = """
import sys
from corpnet import egress
from corpnet.config import HostPort
try:
    egress.install(environ={}, gateway_uid=65534, capture_port=3129, agent=(4242, 4242),
                   upstream=[HostPort("10.77.0.2", 3128)], allowlist=[HostPort("10.77.0.2")],
                   extra_rules=tuple(sys.argv[1:]))
except egress.LockdownError as e:
    print(int(e.exit_code), e)
    sys.exit(0)
print("installed")
"""


def test_rules_that_let_traffic_through_stop_the_start(world: tuple[Pair, Path, int]) -> None:
    """A leaky rule (as another table or a mistake could add) is found by the check as the agent."""
    pair, _, _ = world
    leaky = "ip daddr 10.77.0.2 tcp dport 3128 accept"
    done = subprocess.run(
        pair.exec(pair.agent, sys.executable, "-c", VERIFY, leaky),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout.startswith("78 the lockdown rules let traffic through: "), done.stdout
    assert "TCP to 10.77.0.2:3128 left the container" in done.stdout
    assert "the agent does not start" in done.stdout
    clean = subprocess.run(
        pair.exec(pair.agent, sys.executable, "-c", VERIFY),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert clean.stdout.strip() == "installed", clean.stdout + clean.stderr
