"""The gateway: a loopback forward proxy that alone holds the upstream credentials.

Every tool in the container is pointed at ``http://127.0.0.1:3128`` with no
credentials; the gateway logs in upstream (Basic, NTLM, Kerberos), evaluates
the PAC file, applies the user's NO_PROXY once for every client, enforces the
egress policy (``CORPNET_EGRESS``) and writes the audit log. See
docs/gateway.md for the contract and docs/security.md for what it protects.

Public surface: :class:`GatewaySettings` and :func:`load_settings` (the
variables), :func:`agent_proxy` (what the agent is given), :func:`decide`
(the pure per-connection decision), :func:`build` (a ready gateway) and
:func:`start` (its processes, for ``corpnet run``). This module imports no
asyncio: the start path pays for the server only when the gateway is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from corpnet import files
from corpnet.config import ProxySettings
from corpnet.gateway._build import allow_entries, build
from corpnet.gateway._config import DEFAULT_PORT, GatewaySettings
from corpnet.gateway._config import load as load_settings
from corpnet.gateway._listen import Listen
from corpnet.gateway._policy import DIRECT, AllowEntry, Decision, Route, decide, normalise_host
from corpnet.proxy import ProxyConfig, resolve

__all__ = [
    "AGENT_NO_PROXY",
    "AUDIT_LOG",
    "DEFAULT_PORT",
    "DIRECT",
    "AllowEntry",
    "Decision",
    "GatewaySettings",
    "Listen",
    "Route",
    "agent_proxy",
    "allow_entries",
    "build",
    "decide",
    "load_settings",
    "normalise_host",
]

AUDIT_LOG = files.EGRESS_LOG
# What the agent's NO_PROXY holds when the gateway is on: the gateway decides the rest.
AGENT_NO_PROXY = "localhost,127.0.0.1,::1"


def agent_proxy(gateway: GatewaySettings) -> ProxyConfig:
    """The proxy configuration the agent gets: the gateway, no credentials, loopback direct."""
    url = gateway.proxy_url
    # No NO_PROXY of ours to normalise: loopback is always added, and set exactly below.
    config = resolve(ProxySettings(https_proxy=url, http_proxy=url), allowlist=())
    # Exactly loopback: every other name is the gateway's to decide.
    env = {**config.exports.env, "NO_PROXY": AGENT_NO_PROXY, "no_proxy": AGENT_NO_PROXY}
    return replace(config, exports=replace(config.exports, env=env))


def serve(
    environ: Mapping[str, str], *, fds: tuple[int, ...] = (), ready_fd: int | None = None
) -> int:
    """Run the gateway in this process until SIGTERM (``corpnet gateway``)."""
    from corpnet.gateway._serve import serve as _serve

    return _serve(environ, fds=fds, ready_fd=ready_fd)
