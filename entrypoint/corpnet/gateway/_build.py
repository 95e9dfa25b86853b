"""A ready gateway from the settings: credentials, allowlist, routes, PAC, audit log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from corpnet import files
from corpnet.config import HostPort, Settings
from corpnet.gateway._config import GatewaySettings
from corpnet.gateway._policy import AllowEntry, Decision, Route, decide, normalise_host
from corpnet.proxy import ProxyConfig, ProxyURL

if TYPE_CHECKING:
    from corpnet.gateway._server import Gateway


def allow_entries(settings: Settings, gateway: GatewaySettings) -> tuple[AllowEntry, ...]:
    """The egress allowlist: the hosts the wait probes, the optional ones, and the extras."""
    hosts: list[HostPort] = [*settings.reach.allowlist, *settings.reach.optional]
    return (*(AllowEntry(normalise_host(h.host), h.port) for h in hosts), *gateway.allow)


def build(
    settings: Settings,
    proxy: ProxyConfig,
    gateway: GatewaySettings,
    *,
    password: Callable[[], str | None],
    audit_dir: Path | None,
) -> Gateway:
    """A gateway for these settings; PAC is evaluated when ``CORPNET_PAC_URL`` is set."""
    from corpnet.gateway._audit import Audit
    from corpnet.gateway._auth import Credentials
    from corpnet.gateway._server import Gateway
    from corpnet.gateway._upstream import Upstream

    creds = Credentials(
        user=settings.proxy.user, password=password, keytab=gateway.keytab, mode=gateway.auth
    )
    allow = allow_entries(settings, gateway)
    # The user's NO_PROXY, applied here for every client (the agent's is loopback only).
    no_proxy = proxy.no_proxy
    https = tuple(_route(p, settings) for p in (proxy.https or proxy.all,) if p is not None)
    http = tuple(_route(p, settings) for p in (proxy.http or proxy.all,) if p is not None)
    pac = None
    if gateway.pac_url:
        from corpnet.gateway._pac import Pac

        pac = Pac(gateway.pac_url)

    async def decider(host: str, port: int, scheme: str, client: str) -> Decision:
        del client
        pac_routes = None
        name = normalise_host(host)
        allowed = gateway.egress == "open" or any(e.matches(name, port) for e in allow)
        if pac is not None and allowed:
            from corpnet.gateway._pac import PacError

            try:
                pac_routes = await pac.routes(f"{scheme}://{host}:{port}/", name)
            except PacError as e:
                return Decision(True, (), f"corpnet: {e}")  # no route: the client gets a 502
        return decide(
            host,
            port,
            scheme=scheme,
            egress=gateway.egress,
            allow=allow,
            no_proxy=no_proxy,
            upstream=https if scheme == "https" else http,
            pac_routes=pac_routes,
        )

    audit = Audit(audit_dir / files.EGRESS_LOG if audit_dir is not None else None)
    gw = Gateway(decider, Upstream(creds), audit)
    gw.pac = pac
    return gw


def _route(url: ProxyURL, settings: Settings) -> Route:
    """A route to an upstream proxy, its login left to :class:`Credentials`.

    corpnet.proxy puts CORPNET_PROXY_USER/PASSWORD into the URL for clients;
    the gateway takes them from the credentials instead, whose password is read
    again when its file changes (a rotated secret). Credentials the user wrote
    into the URL itself stay there.
    """
    if settings.proxy.user is not None and url.username == settings.proxy.user:
        return Route("proxy", replace(url, username=None, password=None))
    return Route("proxy", url)
