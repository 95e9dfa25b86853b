"""The egress lockdown in a real container on a dual-stack Docker network (issue 13).

The agent container (root start, CORPNET_USER=1000, --cap-add NET_ADMIN,
CORPNET_EGRESS=lockdown) sits on the world's network (Squid, the mTLS API)
and on an internal network with IPv6 where a "leak target" serves HTTP on
both families. The control start, without lockdown, reaches the target
directly over IPv4 and IPv6; under lockdown every tool still reaches the mTLS
API through the gateway and Squid, a client with an empty environment is
captured, Docker's embedded DNS still resolves, and nothing else leaves.
The host-kernel variant with namespaces of our own is tests/security/test_lockdown.py.
"""

from __future__ import annotations

import random
import time
from typing import Any

import docker
import pytest

from support.containers import API_HOST, logs
from support.gateway_world import GatewayRigs

pytestmark = pytest.mark.e2e

PROBE = r"""
try() {
    name=$1; shift
    if "$@" >/tmp/try.out 2>&1; then echo "E2E-TRY $name=yes"; else echo "E2E-TRY $name=no"; fi
}
direct() { curl -sf -m 3 --noproxy '*' "$@"; }
try direct4 direct "http://$LEAK4:8080/"
try direct6 direct -g "http://[$LEAK6]:8080/"
try dns getent hosts proxy.corp.test
try captured env -i /usr/bin/curl -s -m 10 -o /dev/null --cacert /run/corpnet/ca-bundle.pem \
    https://api.corp.test/
try flush nft flush table inet corpnet
exec /opt/e2e/gw/check.sh
"""


def _dual_stack(client: Any, labels: dict[str, str]) -> Any:
    third = random.randrange(100, 250)
    # IPv6 needs its subnet named; IPv4 comes from Docker's own pools, which a fixed
    # 172.x range collided with once the session had made enough networks.
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=f"fd00:c0de:{third:x}::/64")]
    )
    name = f"corpnet-e2e-v6-{third}-{int(time.time())}"
    return client.networks.create(
        name, driver="bridge", internal=True, enable_ipv6=True, ipam=ipam, labels=labels
    )


def _run(gw_rigs: GatewayRigs, *, lockdown: bool) -> dict[str, str]:
    world = gw_rigs.world
    client = world.client
    net = _dual_stack(client, world.tracker.labels)
    leak = client.containers.run(
        gw_rigs.images["agent-gw"],
        entrypoint=["python3", "-m", "http.server", "8080", "--bind", "::"],
        detach=True,
        network=net.name,
        labels=world.tracker.labels,
        user="1000",
    )
    agent = None
    try:
        leak.reload()
        addresses = leak.attrs["NetworkSettings"]["Networks"][net.name]
        leak4, leak6 = addresses["IPAddress"], addresses["GlobalIPv6Address"]
        assert leak6, "the internal network got no IPv6 address: Docker's IPv6 is off"
        extra: dict[str, str | None] = {
            "LEAK4": leak4,
            "LEAK6": leak6,
            "E2E_TOOLS": "curl urllib requests node git",
        }
        if lockdown:
            extra["CORPNET_EGRESS"] = "lockdown"
        else:
            extra["NO_PROXY"] = f"{leak4},{leak6}"
        agent = world.create_agent(
            image=gw_rigs.images["agent-gw"],
            env=gw_rigs.agent_env(**extra),
            volumes=gw_rigs.agent_volumes(),
            user="0",
            cap_add=["NET_ADMIN"] if lockdown else [],
            command=["bash", "-c", PROBE],
            # The API's name resolves here to the leak target, which does not serve it:
            # only the gateway, going by the TLS server name through Squid, reaches it.
            extra_hosts={API_HOST: leak4},
        )
        net.connect(agent)
        agent.start()
        status = agent.wait(timeout=180)
        out, err = logs(agent)
    finally:
        for c in (agent, leak):
            if c is not None:
                c.remove(force=True)
        net.remove()
    got = {}
    for line in out.splitlines():
        if line.startswith("E2E-TRY "):
            name, _, value = line[len("E2E-TRY ") :].partition("=")
            got[name] = value
        elif line.startswith(("E2E-OK ", "E2E-FAIL ")):
            tool = line.split(" ", 2)[1].rstrip(":")
            got[f"tool:{tool}"] = "ok" if line.startswith("E2E-OK") else line
    got["_code"] = str(status["StatusCode"])
    got["_err"] = err
    return got


def test_without_lockdown_the_target_is_reachable_directly(gw_rigs: GatewayRigs) -> None:
    got = _run(gw_rigs, lockdown=False)
    assert got["direct4"] == "yes", got
    assert got["direct6"] == "yes", got


def test_under_lockdown_only_the_gateway_leaves(gw_rigs: GatewayRigs) -> None:
    got = _run(gw_rigs, lockdown=True)
    assert "egress locked down: only the gateway leaves" in got["_err"], got["_err"]
    assert (got["direct4"], got["direct6"], got["flush"]) == ("no", "no", "no"), got
    assert got["dns"] == "yes", got  # Docker's embedded DNS keeps working (the proxy's name)
    assert got["captured"] == "yes", got  # an empty environment, captured to the gateway
    for tool in ("curl", "urllib", "requests", "node", "git"):
        assert got.get(f"tool:{tool}") == "ok", (tool, got)
