"""Two network namespaces of our own joined by a veth pair, dual-stack: an agent and a network.

``agent`` holds 10.77.0.1/24 and fd00:77::1/64; ``net`` holds 10.77.0.2/24 and
fd00:77::2/64 (the upstream proxy and the "leak target" live there). Nothing
is routed further: traffic can only go between the two namespaces we made.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

AGENT4, NET4 = "10.77.0.1", "10.77.0.2"
AGENT6, NET6 = "fd00:77::1", "fd00:77::2"


@dataclass(frozen=True)
class Pair:
    agent: str  # namespace names for `ip netns exec`
    net: str

    def exec(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def namespace_pair() -> Iterator[Pair]:
    tag = f"cn{os.getpid() % 100000}"
    pair = Pair(f"{tag}-agent", f"{tag}-net")
    for ns in (pair.agent, pair.net):
        _ip("netns", "add", ns)
    try:
        _ip("link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}n")
        _ip("link", "set", f"{tag}a", "netns", pair.agent)
        _ip("link", "set", f"{tag}n", "netns", pair.net)
        for ns, dev, v4, v6 in (
            (pair.agent, f"{tag}a", AGENT4, AGENT6),
            (pair.net, f"{tag}n", NET4, NET6),
        ):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            _ip("-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            _ip("-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        for ns in (pair.agent, pair.net):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
