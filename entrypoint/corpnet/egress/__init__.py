"""The egress lockdown: only the gateway leaves the container, over IPv4 and IPv6.

``CORPNET_EGRESS=lockdown``, started as root with CAP_NET_ADMIN: nftables rules
(corpnet.egress._rules) let every process but the gateway reach only loopback
and the DNS resolvers, capture TCP 80/443 into the gateway's transparent
listener, and reject everything else. They are installed as one transaction,
then **verified** as the agent's uid before the agent starts; after the
privilege drop the agent has no capability left to change them.

Public surface: :func:`install` (the start's stage and ``corpnet lockdown``),
:class:`LockdownError`, :func:`ruleset` and :class:`Lockdown` (the pure rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corpnet import log as logmod
from corpnet.config import HostPort
from corpnet.egress._apply import ApplyError, apply, has_net_admin
from corpnet.egress._rules import TABLE, Lockdown, resolvers, ruleset
from corpnet.egress._verify import Checks, addresses, as_user, has_ipv6
from corpnet.errors import ExitCode, PermissionDeniedError

__all__ = ["TABLE", "Lockdown", "LockdownError", "Report", "install", "ruleset"]

REQUIRE_VARIABLE = "CORPNET_EGRESS_REQUIRE"
PROBE_PORT = 8443  # a port outside the capture: a direct connection to it must be refused


class LockdownError(PermissionDeniedError):
    """The lockdown cannot be installed (77), or let something through (78)."""


@dataclass(frozen=True)
class Report:
    """What the lockdown stage did."""

    installed: bool
    seconds: float = 0.0  # installing and verifying
    checked: int = 0  # endpoints tried as the agent


def required(environ: Mapping[str, str]) -> bool:
    """``CORPNET_EGRESS_REQUIRE`` (default 1): is a start without the lockdown an error?"""
    return environ.get(REQUIRE_VARIABLE, "1").strip().lower() not in {"0", "false", "no", "off"}


def install(
    *,
    environ: Mapping[str, str],
    gateway_uid: int,
    capture_port: int,
    agent: tuple[int, int],
    upstream: Sequence[HostPort],
    allowlist: Sequence[HostPort],
    gateway: Sequence[tuple[str, int]] = (),
    resolv_conf: Path = Path("/etc/resolv.conf"),
    if_inet6: Path = Path("/proc/net/if_inet6"),
    extra_rules: tuple[str, ...] = (),
) -> Report:
    """Install and verify the rules; raise :class:`LockdownError` when the agent must not start.

    Without CAP_NET_ADMIN and with ``CORPNET_EGRESS_REQUIRE=0``, say so and
    return an uninstalled report (the gateway's allowlist still applies).
    """
    import time

    log = logmod.get()
    if not has_net_admin():
        if not required(environ):
            log.warning(
                "CORPNET_EGRESS=lockdown without the NET_ADMIN capability: no rules installed, "
                "only the gateway's allowlist applies (CORPNET_EGRESS_REQUIRE=0)"
            )
            return Report(installed=False)
        import os

        if os.geteuid() != 0:
            raise LockdownError(
                "CORPNET_EGRESS=lockdown needs a start as root (with CORPNET_USER, the agent's "
                "user) and the NET_ADMIN capability",
                hint="docker run --user 0 -e CORPNET_USER=1000 --cap-add NET_ADMIN; in a "
                'devcontainer "containerUser": "root" and runArgs ["--cap-add=NET_ADMIN"]; '
                f"{REQUIRE_VARIABLE}=0 starts without the rules",
                variable="CORPNET_EGRESS",
            )
        raise LockdownError(
            "CORPNET_EGRESS=lockdown needs the NET_ADMIN capability to install its rules",
            hint="add it: docker run --cap-add NET_ADMIN, devcontainer runArgs "
            '["--cap-add=NET_ADMIN"], or a Kubernetes init container running `corpnet lockdown`; '
            f"{REQUIRE_VARIABLE}=0 starts without the rules",
            variable="CORPNET_EGRESS",
        )
    started = time.monotonic()
    try:
        resolv = resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        resolv = ""
    spec = Lockdown(gateway_uid, capture_port, resolvers(resolv), extra=extra_rules)
    try:
        apply(ruleset(spec))
    except ApplyError as e:
        raise LockdownError(
            str(e), hint="check that the kernel has nf_tables", variable="CORPNET_EGRESS"
        ) from e
    checks = _checks(upstream, allowlist, gateway, if_inet6)
    findings = as_user(checks, *agent)
    if findings:
        error = LockdownError(
            "the lockdown rules let traffic through: " + "; ".join(findings),
            hint="the agent does not start; report this with `nft list ruleset` "
            "(another table may accept it first)",
            variable="CORPNET_EGRESS",
        )
        error.exit_code = ExitCode.CONFIG
        raise error
    seconds = time.monotonic() - started
    count = len(checks.refused) + len(checks.udp) + len(checks.reachable)
    log.info(f"egress locked down: only the gateway leaves ({count} checks in {seconds:.2f}s)")
    return Report(installed=True, seconds=seconds, checked=count)


def _checks(
    upstream: Sequence[HostPort],
    allowlist: Sequence[HostPort],
    gateway: Sequence[tuple[str, int]],
    if_inet6: Path,
) -> Checks:
    """What the agent must not reach: every upstream proxy address, and one allowlisted
    host off the capture ports; over IPv6 too when the container has it."""
    refused: list[tuple[str, int]] = []
    for proxy in upstream:
        refused += addresses(proxy.host, proxy.port)
    for host in allowlist[:1]:
        refused += addresses(host.host, PROBE_PORT)
    try:
        v6 = has_ipv6(if_inet6.read_text())
    except OSError:
        v6 = False
    families = {":" in host for host, _ in refused}
    if v6 and True not in families:
        logmod.get().info(
            "no IPv6 address to try for the lockdown check: the rules still cover IPv6"
        )
    udp = [(host, 443) for host, _ in refused[:2]]
    return Checks(refused=tuple(refused), udp=tuple(udp), reachable=tuple(gateway))
