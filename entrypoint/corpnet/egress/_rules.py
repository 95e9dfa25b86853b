"""The lockdown rule set, as data: one ``inet`` table for IPv4 and IPv6 together (pure).

Every process but the gateway may reach only loopback and the DNS resolvers;
TCP to ports 80 and 443 from any other process is redirected to the
gateway's transparent listener; everything else is rejected (a TCP reset or an
ICMP "administratively prohibited", so clients fail at once instead of
hanging). Only the gateway's own uid goes further: it enforces the policy
itself and alone reaches the upstream proxies, the PAC server and the
destinations the policy sends DIRECT.

Facts behind some rules (measured in containers here: docs/dev/gateway-lockdown-feasibility.md):

- A packet the nat chain redirected to loopback still has ``oifname`` of the
  real interface in the filter chain (the hook's output device is fixed when
  traversal starts): ``fib daddr type local accept`` lets it through.
- IPv6 neighbour discovery is sent by the kernel without a socket uid: without
  its ICMPv6 types even the gateway's IPv6 connections time out.
- Docker's embedded DNS (127.0.0.11) is NAT rules inside the container's
  namespace, and the engine forwards queries from inside it as uid 0: DNS from
  uid 0 stays allowed, nothing else of root's.
- The table is replaced in one transaction (``add``, ``delete``, define), so a
  second start leaves exactly one table and never a moment without rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

TABLE = "corpnet"


@dataclass(frozen=True)
class Lockdown:
    """What the rules need to know."""

    gateway_uid: int
    capture_port: int  # the gateway's transparent listener on 127.0.0.1 and ::1
    resolvers: tuple[str, ...] = ()  # nameserver addresses from /etc/resolv.conf
    # Extra rules placed before the final rejects: for tests of the verifier only.
    extra: tuple[str, ...] = ()


def resolvers(resolv_conf: str) -> tuple[str, ...]:
    """The ``nameserver`` addresses of a resolv.conf (zone ids dropped)."""
    found: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                address = str(ipaddress.ip_address(words[1].split("%", 1)[0]))
            except ValueError:
                continue
            if address not in found:
                found.append(address)
    return tuple(found)


def _set(addresses: Sequence[str]) -> str:
    return "{ " + ", ".join(addresses) + " }"


def ruleset(spec: Lockdown) -> str:
    """The ``nft -f`` input: one transaction that replaces the table."""
    v4 = [a for a in spec.resolvers if ":" not in a]
    v6 = [a for a in spec.resolvers if ":" in a]
    dns: list[str] = []
    if v4:
        dns.append(f"ip daddr {_set(v4)} meta l4proto {{ tcp, udp }} th dport 53 accept")
    if v6:
        dns.append(f"ip6 daddr {_set(v6)} meta l4proto {{ tcp, udp }} th dport 53 accept")
    lines = [
        f"add table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "    chain capture {",
        "        type nat hook output priority -100; policy accept;",
        f"        meta skuid {spec.gateway_uid} return",
        "        fib daddr type local return",
        f"        meta nfproto ipv4 tcp dport {{ 80, 443 }} redirect to :{spec.capture_port}",
        f"        meta nfproto ipv6 tcp dport {{ 80, 443 }} redirect to :{spec.capture_port}",
        "    }",
        "    chain egress {",
        "        type filter hook output priority filter; policy accept;",
        '        oifname "lo" accept',
        "        fib daddr type local accept",
        "        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept",
        f"        meta skuid {spec.gateway_uid} accept",
        *(f"        {rule}" for rule in dns),
        "        meta skuid 0 meta l4proto { tcp, udp } th dport 53 accept",
        *(f"        {rule}" for rule in spec.extra),
        "        udp dport 443 reject with icmpx type admin-prohibited",
        "        meta l4proto tcp reject with tcp reset",
        "        reject with icmpx type admin-prohibited",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
