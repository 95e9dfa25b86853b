"""``corpnet lockdown``: install and verify the egress rules, then exit (an init container)."""

from __future__ import annotations

import os

import click


@click.command()
def lockdown() -> None:
    """Install the CORPNET_EGRESS=lockdown rules and verify them, then exit.

    For a Kubernetes init container with the NET_ADMIN capability (the Istio
    pattern): the rules live in the pod's network namespace, so the main
    container needs no added capability. They let only the gateway's user
    (corpnet-gateway, uid 990) leave; every other process reaches loopback and
    the DNS resolvers, and its TCP to ports 80 and 443 is captured by the
    gateway. The check runs as CORPNET_USER (default uid 1000): a direct
    connection to the upstream proxy must be refused. Exit codes: 0 installed
    and verified, 77 no NET_ADMIN, 78 the rules let something through.
    """
    from corpnet import config, egress, proxy
    from corpnet.config import HostPort
    from corpnet.gateway import _process, load_settings
    from corpnet.run._privileges import resolve_account

    settings = config.load(os.environ)
    gw = load_settings(os.environ, config_dir=settings.config_dir)
    upstream = proxy.for_settings(settings)
    account = resolve_account(settings.run.user or "1000", euid=os.geteuid())
    user = _process.gateway_user(0)
    proxies = [HostPort(p.host, p.port) for p in (upstream.https, upstream.http, upstream.all) if p]
    report = egress.install(
        environ=os.environ,
        gateway_uid=user.uid if user else 990,
        capture_port=gw.capture[0].port,
        agent=(account.uid, account.gid) if account else (1000, 1000),
        upstream=proxies,
        allowlist=settings.reach.allowlist,
    )
    if not report.installed:
        raise SystemExit(0)
