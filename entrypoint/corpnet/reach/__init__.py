"""The reachability stage: wait until the allowlisted hosts answer, or say why not.

Every host is probed concurrently (bounded by :attr:`RetryPolicy.concurrency`)
along the route the agent will take: ``route(host, port)`` is the same function
that produced NO_PROXY (``corpnet.proxy.ProxyConfig.proxy_for``). Through a
proxy: TCP (TLS for an ``https://`` proxy), ``CONNECT`` with Basic
``Proxy-Authorization``, then TLS to the host with SNI, the merged trust bundle
and, for mTLS hosts, the client certificate. Direct: DNS, TCP, TLS. With
``CORPNET_PROBE=http`` an HTTP request follows; any status below 500 counts.

Retries go through tenacity, stamina-style: only what can heal is retried
(:attr:`Diagnosis.retryable`), stopping on attempts or the deadline, whichever
comes first; a sleep never reaches past the deadline; each attempt has its own
timeout. A host whose connection was *refused* (a proxy still starting) is
woken as soon as that endpoint accepts, instead of sleeping out its backoff.

Entry points: :func:`wait_for_hosts` (the pipeline stage, settings in, report
out, raises on failure), :func:`check` (the same without settings), and
:func:`exit_on_signals` (SIGTERM/SIGINT become :class:`Interrupted`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from corpnet.config import ReachSettings
from corpnet.errors import DataError, ExitCode, UnreachableError
from corpnet.reach import _probe as probe_mod
from corpnet.reach._diagnose import Context, Diagnosis, ProbeFailure, Stage
from corpnet.reach._diagnose import timeout as timeout_diagnosis
from corpnet.reach._model import ClientIdentity, HostResult, Report, Target
from corpnet.reach._probe import Plan, Proxy, Resolver
from corpnet.reach._retry import Clock, Events, Prober, RetryPolicy, Route, Silent, Sleep
from corpnet.reach._signals import Interrupted, exit_on_signals, run_interruptible

if TYPE_CHECKING:
    from corpnet.reach._discover import Discovery

__all__ = [
    "ClientIdentity",
    "Diagnosis",
    "HostResult",
    "Interrupted",
    "Proxy",
    "ReachError",
    "Report",
    "RetryPolicy",
    "Route",
    "Stage",
    "Target",
    "check",
    "discover",
    "exit_on_signals",
    "probe",
    "proxy_speaks_tls",
    "run_interruptible",
    "targets_for",
    "tls_context",
    "wait_for_hosts",
]

DEFAULT_POLICY = RetryPolicy()


class ReachError(UnreachableError):
    """Required hosts are not reachable; ``exit_code`` is 69, 78 or 65 (see Report)."""

    def __init__(self, report: Report) -> None:
        self.report = report
        failing = sorted(
            (r for r in report.required if r.problem),
            key=lambda r: _severity(
                r.diagnosis.exit_code
                if r.status == "failed" and r.diagnosis
                else ExitCode.UNAVAILABLE
            ),
        )
        first = failing[0] if failing else next(r for r in report.required if not r.ok)
        others = len(failing) - 1
        more = f" (and {others} more required host{'s' if others > 1 else ''}, see above)"
        more = more if others > 0 else ""
        d = first.diagnosis
        if first.status == "failed" and d is not None:
            message, hint = f"{first.target}: {d.message}{more}", d.fix
        else:
            last = f": {d.message}" if d else ""
            tries = "attempt" if first.attempts == 1 else "attempts"
            message = (
                f"{first.target} not reachable after {report.elapsed:.1f}s "
                f"({first.attempts} {tries}, deadline {report.timeout:g}s){last}{more}"
            )
            hint = d.fix.removesuffix("; retrying").removesuffix("retrying").rstrip() if d else ""
            hint = hint or "raise CORPNET_WAIT_TIMEOUT, or check the network path"
        super().__init__(message, hint=hint, host=first.target.host)
        self.exit_code = report.exit_code


def _severity(code: ExitCode) -> int:
    return {ExitCode.CONFIG: 0, ExitCode.DATA: 1}.get(code, 2)


# --- inputs ----------------------------------------------------------------------------


def targets_for(settings: ReachSettings, *, identity: bool) -> list[Target]:
    """The targets of ``settings``: required hosts, then optional ones not already listed.

    ``identity``: a client certificate is configured; it goes to every host, or
    to those ``CORPNET_MTLS_HOSTS`` names (``.example.com`` also matches subdomains).
    """

    def mtls(host: str) -> bool:
        if not identity:
            return False
        if settings.mtls_hosts is None:
            return True
        return any(
            host == name or (name.startswith(".") and host.endswith(name)) or host == name[1:]
            for name in settings.mtls_hosts
        )

    targets = [Target(h.host, h.port, required=True, mtls=mtls(h.host)) for h in settings.allowlist]
    seen = {(t.host, t.port) for t in targets}
    for h in settings.optional:
        if (h.host, h.port) not in seen:
            seen.add((h.host, h.port))
            targets.append(Target(h.host, h.port, required=False, mtls=mtls(h.host)))
    return targets


def _no_passphrase() -> str:
    # Without a callback OpenSSL prompts on the terminal for an encrypted key;
    # an empty answer makes it fail instead, and the error says what to set.
    return ""


def tls_context(ca_pem: bytes | None, identity: ClientIdentity | None = None) -> ssl.SSLContext:
    """A client context trusting ``ca_pem`` (None: the system default) with ``identity``.

    Raises :class:`DataError` when the bundle or the identity cannot be loaded.
    """
    try:
        if ca_pem is not None:
            ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii", "replace"))
        else:
            ctx = ssl.create_default_context()
    except ssl.SSLError as e:
        raise DataError(
            "the merged CA bundle holds no usable certificate",
            hint="run `corpnet trust` to see which mounted file is wrong",
        ) from e
    # Python 3.13 turns on X509_STRICT; Node (the agent) and curl do not, and
    # corporate inspection CAs often lack the extensions it demands.
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    if identity is not None:
        password = identity.passphrase if identity.passphrase is not None else _no_passphrase
        try:
            ctx.load_cert_chain(identity.cert, identity.key, password=password)
        except FileNotFoundError as e:
            raise DataError(
                f"client certificate or key {e.filename} does not exist",
                hint="mount it, or fix CLAUDE_CODE_CLIENT_CERT / CLAUDE_CODE_CLIENT_KEY",
                path=e.filename,
            ) from e
        except (ssl.SSLError, OSError) as e:
            hint = (
                "check CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"
                if identity.passphrase is not None
                else "if the key is encrypted, set CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"
            )
            raise DataError(
                f"cannot load the client certificate {identity.cert} with key {identity.key} "
                f"({getattr(e, 'reason', None) or e.__class__.__name__})",
                hint=hint + "; `corpnet identity` checks the pair",
                path=identity.key,
            ) from e
    return ctx


def _describe_identity(identity: ClientIdentity) -> str:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(identity.cert.read_bytes())
    except (OSError, ValueError):
        return str(identity.cert)
    return f"{cert.subject.rfc4514_string() or identity.cert} ({identity.cert})"


async def probe(
    targets: Sequence[Target],
    *,
    route: Route,
    ca_pem: bytes | None,
    identity: ClientIdentity | None = None,
    probe: str = "tls",
    timeout: float,
    policy: RetryPolicy | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    resolver: Resolver = probe_mod.resolve,
    events: Events | None = None,
    wait_optional: bool = False,
    fail_fast: bool = True,
) -> Report:
    """Probe ``targets`` until every required one is ready, fails for good, or time runs out.

    Args:
        targets: what to probe; optional targets are never waited for unless
            ``wait_optional`` (``corpnet doctor``).
        route: ``(host, port) -> proxy or None`` (direct).
        ca_pem: the trust bundle (PEM); None trusts the system default.
        identity: the client certificate for targets with ``mtls``.
        probe: ``"tls"`` or ``"http"`` (also an HTTP request; below 500 counts).
        timeout: the deadline, in seconds from now.
        fail_fast: stop everything once a required host failed for good.

    Returns:
        The :class:`Report`; it does not raise for unreachable hosts.

    Raises:
        DataError: the bundle or the client identity cannot be loaded.
    """
    server = tls_context(ca_pem)
    plan = Plan(
        server=server,
        proxy_tls=server,
        resolver=resolver,
        mtls=tls_context(ca_pem, identity) if identity is not None else None,
        client_cert=_describe_identity(identity) if identity is not None else None,
        http=probe == "http",
    )
    prober = Prober(
        targets,
        route,
        plan,
        policy=policy or DEFAULT_POLICY,  # read at call time: tests swap it for a fast one
        timeout=timeout,
        clock=clock,
        sleep=sleep,
        rand=rand,
        events=events or Silent(),
    )
    report = await prober.run(wait_optional=wait_optional, fail_fast=fail_fast)
    if plan.describe_peer and any(r.status == "failed" for r in report.results):
        # Imported here: it needs cryptography, which a start whose hosts answer never loads.
        from corpnet.reach import _discover

        now = dt.datetime.now(dt.UTC)
        report = await _discover.refine(report, route=route, plan=plan, ca_pem=ca_pem, now=now)
    return report


def check(targets: Sequence[Target], **kwargs: Any) -> Report:
    """:func:`probe` from synchronous code; SIGTERM/SIGINT raise :class:`Interrupted`."""
    hosts = ", ".join(str(t) for t in targets if t.required) or "hosts"
    return run_interruptible(probe(targets, **kwargs), doing=f"waiting for {hosts}")


def proxy_speaks_tls(
    proxy: Proxy, *, ca_pem: bytes | None, timeout: float = 5.0
) -> Diagnosis | None:
    """None when the ``https://`` proxy completes a TLS handshake we trust; else why not."""

    async def run() -> Diagnosis | None:
        plan = Plan(
            server=tls_context(ca_pem), proxy_tls=tls_context(ca_pem), resolver=probe_mod.resolve
        )
        try:
            async with asyncio.timeout(timeout):
                return await probe_mod.proxy_tls(proxy, plan, timeout)
        except TimeoutError:
            ctx = Context(proxy.host, proxy.port, proxy=proxy.redacted())
            return timeout_diagnosis(ctx, Stage.PROXY_TLS, timeout)

    return run_interruptible(run(), doing=f"checking the proxy {proxy.redacted()}")


def discover(
    host: str, port: int, *, route: Route, ca_pem: bytes | None, timeout: float = 10.0
) -> Discovery:
    """The chain ``host:port`` presents along ``route``, captured without trusting it.

    Nothing is trusted or written: the caller hands the CA over to the user.

    Raises:
        CorpnetError: the route failed (the probe's diagnosis and exit code), or no
            chain arrived within ``timeout`` (69).
    """
    from corpnet.reach import _discover

    ctx = Context(host, port)
    plan = Plan(
        server=tls_context(ca_pem), proxy_tls=tls_context(ca_pem), resolver=probe_mod.resolve
    )

    async def run() -> Discovery:
        try:
            return await _discover.discover(
                host, port, route=route, plan=plan, ca_pem=ca_pem, timeout=timeout
            )
        except ProbeFailure as e:
            raise _failure(ctx, e.diagnosis) from e
        except TimeoutError as e:
            raise _failure(ctx, timeout_diagnosis(ctx, Stage.TLS, timeout)) from e

    return run_interruptible(run(), doing=f"fetching the certificates of {ctx.target}")


def _failure(ctx: Context, d: Diagnosis) -> UnreachableError:
    error = UnreachableError(
        f"cannot fetch the certificates of {ctx.target}: {d.message}",
        hint=d.fix.removesuffix("; retrying").removesuffix("retrying").rstrip() or "",
        host=ctx.host,
    )
    error.exit_code = d.exit_code
    return error


# --- the pipeline stage ----------------------------------------------------------------


def wait_for_hosts(
    settings: ReachSettings,
    *,
    route: Route,
    ca_pem: bytes | None,
    identity: ClientIdentity | None = None,
    events: Events | None = None,
    policy: RetryPolicy | None = None,
    timeout: float | None = None,
) -> Report | None:
    """The stage as the entrypoint runs it: probe, report, raise unless ready.

    Returns None when ``CORPNET_WAIT=off``; the :class:`Report` when every
    required host is ready, or when ``CORPNET_WAIT=warn`` (failures are then
    logged as warnings). Raises :class:`ReachError` (69, 78 or 65) otherwise,
    :class:`Interrupted` (143/130) on SIGTERM/SIGINT, :class:`DataError` when the
    bundle or identity cannot be loaded.
    """
    from corpnet import log
    from corpnet.reach import _report

    logger = log.get()
    if settings.wait == "off":
        logger.info("CORPNET_WAIT=off: not probing the allowlisted hosts")
        return None
    targets = targets_for(settings, identity=identity is not None)
    if identity is not None:
        logger.add_secret(identity.passphrase)
    reporter = events if events is not None else _report.for_log(logger)
    report = check(
        targets,
        route=route,
        ca_pem=ca_pem,
        identity=identity,
        probe=settings.probe,
        timeout=settings.timeout if timeout is None else timeout,
        policy=policy,
        events=reporter,
    )
    if isinstance(reporter, _report.Reporter):
        reporter.summary(report)
    if report.ok:
        return report
    if settings.wait == "warn":
        error = ReachError(report)
        logger.warning(f"{error} (CORPNET_WAIT=warn: starting anyway)")
        return report
    raise ReachError(report)


def with_timeout(settings: ReachSettings, seconds: float | None) -> ReachSettings:
    """``settings`` with the deadline replaced (``--timeout``)."""
    return settings if seconds is None else replace(settings, timeout=seconds)
