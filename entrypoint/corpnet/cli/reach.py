"""``corpnet wait`` and ``corpnet doctor``: the reachability stage, and every stage's checks."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from corpnet.config import MAX_WAIT_TIMEOUT


def _seconds(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    """A deadline bounded like CORPNET_WAIT_TIMEOUT (click's FloatRange lets NaN through)."""
    if value is not None and not 0 <= value <= MAX_WAIT_TIMEOUT:  # NaN fails too
        raise click.BadParameter(f"{value:g} is not from 0 to {MAX_WAIT_TIMEOUT:g} seconds")
    return value


_TIMEOUT = click.option(
    "--timeout",
    type=float,
    callback=_seconds,
    default=None,
    metavar="SECONDS",
    help=f"Deadline in seconds, 0 to {MAX_WAIT_TIMEOUT:g} (default: CORPNET_WAIT_TIMEOUT, 60).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")


@click.command()
@_TIMEOUT
@_JSON
def wait(timeout: float | None, as_json: bool) -> None:
    """Wait until the allowlisted hosts answer along the agent's route.

    Probes CORPNET_ALLOWLIST (default api.anthropic.com, claude.ai,
    platform.claude.com) concurrently, through the proxy NO_PROXY does not
    bypass, with the trust bundle and client certificate the agent will use;
    retries what can heal until the deadline. CORPNET_ALLOWLIST_OPTIONAL hosts
    are reported, never waited for. Exit codes: 0 ready (or CORPNET_WAIT=warn
    / off), 69 deadline passed or a host refused for good, 78 configuration
    (proxy credentials, missing CA, unknown host name), 65 client certificate
    rejected, 143/130 SIGTERM/SIGINT.
    """
    from corpnet import config, reach
    from corpnet import log as logmod
    from corpnet import proxy as proxymod
    from corpnet.reach import _inputs

    settings = config.load(os.environ)
    log = logmod.get()
    for secret in settings.secrets():
        log.add_secret(secret)
    reach_settings = reach.with_timeout(settings.reach, timeout)
    if reach_settings.wait == "off":
        reach.wait_for_hosts(reach_settings, route=_direct, ca_pem=None)
        if as_json:
            click.echo(json.dumps({"ok": True, "skipped": "CORPNET_WAIT=off"}))
        return
    proxy = proxymod.for_settings(settings)
    for warning in proxy.warnings:
        log.warning(warning)
    bundle = _inputs.bundle(settings)
    with contextlib.ExitStack() as stack:
        identity = _inputs.identity(settings, bundle.pem, stack)
        try:
            report = reach.wait_for_hosts(
                reach_settings, route=proxy.proxy_for, ca_pem=bundle.pem, identity=identity
            )
        except reach.ReachError as e:
            if as_json:
                _echo_json(e.report.to_json())
            raise
    if as_json and report is not None:
        _echo_json(report.to_json())


def _direct(host: str, port: int) -> None:
    del host, port


def _echo_json(data: dict[str, object]) -> None:
    from corpnet import log as logmod

    click.echo(logmod.get().scrub(json.dumps(data, indent=2)))


@click.command()
@_TIMEOUT
@_JSON
def doctor(timeout: float | None, as_json: bool) -> None:
    """Run every stage's checks without changing anything, and say what is wrong.

    Trust (the mounted CAs, merged in memory), the client identity, the proxy
    configuration (and, for an https:// proxy, whether it speaks TLS), then
    the reachability of every allowlisted and optional host, waiting for all of
    them (deadline --timeout, default 15 s). Writes no file. Exit codes: 0 all
    good (warnings included), 1 something is wrong.
    """
    from corpnet import doctor
    from corpnet import log as logmod

    result = doctor.run(os.environ, timeout=timeout)
    if as_json:
        _echo_json(result.to_json())
    else:
        click.echo(logmod.get().scrub(result.render()))
    if not result.ok:
        sys.exit(1)
