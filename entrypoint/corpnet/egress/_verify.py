"""Proving the lockdown before the agent starts: try to leave as the agent would.

A child process becomes the agent's uid and gid (no supplementary groups) and
tries, with a one-second budget each: a direct TCP connection to every upstream
proxy address and to a destination outside the capture ports, over IPv4 and
IPv6 where there are addresses; a UDP datagram to port 443 (QUIC); and the
gateway's own port, which must answer. Anything that leaves is a finding, and
the agent does not start.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class Checks:
    """What to try as the agent."""

    refused: tuple[Endpoint, ...]  # must fail: direct TCP
    udp: tuple[Endpoint, ...] = ()  # must fail: a datagram (QUIC)
    reachable: tuple[Endpoint, ...] = ()  # must work: the gateway


def addresses(host: str, port: int) -> list[Endpoint]:
    """Every address ``host`` resolves to, with ``port`` (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    found: list[Endpoint] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        endpoint = (str(sockaddr[0]), port)
        if endpoint not in found:
            found.append(endpoint)
    return found


def _tcp(endpoint: Endpoint, timeout: float) -> bool:
    family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(endpoint)
        except OSError:
            return False
        return True


def _udp(endpoint: Endpoint) -> bool:
    family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"\x00", endpoint)  # a rejected datagram fails at once (EPERM)
        except OSError:
            return False
        return True


def run_checks(checks: Checks, *, timeout: float = 1.0) -> list[str]:
    """Try everything in this process; return the findings (empty: locked down)."""
    findings = [f"TCP to {_show(e)} left the container" for e in checks.refused if _tcp(e, timeout)]
    findings += [f"UDP to {_show(e)} left the container" for e in checks.udp if _udp(e)]
    findings += [
        f"the gateway at {_show(e)} did not answer"
        for e in checks.reachable
        if not _tcp(e, timeout)
    ]
    return findings


def as_user(checks: Checks, uid: int, gid: int) -> list[str]:
    """:func:`run_checks` in a child that is ``uid``/``gid`` with no other group."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.write(write_fd, json.dumps(run_checks(checks)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(read_fd, 65536):
            data += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        return [f"the check as uid {uid} could not run"]
    findings: list[str] = json.loads(data)
    return findings


def _show(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def has_ipv6(if_inet6: str) -> bool:
    """Does the container have an IPv6 address beyond loopback and link-local?"""
    for line in if_inet6.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] != "lo" and not fields[0].startswith("fe80"):
            return True
    return False


def describe(findings: Sequence[str]) -> str:
    return "; ".join(findings)
