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
import contextlib
import random
import signal
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import tenacity

from corpnet import _reach_probe as probe_mod
from corpnet._reach_diagnose import Diagnosis, ProbeFailure, Stage
from corpnet._reach_diagnose import timeout as timeout_diagnosis
from corpnet._reach_model import ClientIdentity, HostResult, Report, Target
from corpnet._reach_probe import Plan, Proxy, Resolver, Tracker
from corpnet.config import ReachSettings
from corpnet.errors import CorpnetError, DataError, ExitCode, UnreachableError

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
    "exit_on_signals",
    "probe",
    "proxy_speaks_tls",
    "run_interruptible",
    "targets_for",
    "tls_context",
    "wait_for_hosts",
    "wait_stage",
]

if TYPE_CHECKING:
    from corpnet.run import Prepared

Route = Callable[[str, int], Proxy | None]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How attempts are spaced and bounded."""

    initial: float = 0.2  # first backoff, seconds
    maximum: float = 5.0  # backoff cap
    jitter: float = 0.5  # each backoff is stretched by up to this fraction, at random
    attempt_timeout: float = 10.0  # one silent peer cannot eat more of the deadline
    max_attempts: int = 1000  # the second bound, after the deadline
    min_attempt: float = 0.1  # no attempt is started with less time than this left
    watch_interval: float = 0.25  # how often a refused endpoint is re-tried for wake-ups
    concurrency: int = 128  # probes in flight at once

    def backoff(self, attempt: int, rand: float) -> float:
        """The sleep after failed attempt number ``attempt`` (1-based); ``rand`` in [0, 1)."""
        base = min(self.maximum, self.initial * 2.0 ** (attempt - 1))
        return min(self.maximum, base * (1 + self.jitter * rand))


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
                f"{first.target} not reachable after {report.timeout:g}s "
                f"({first.attempts} {tries}){last}{more}"
            )
            hint = d.fix.removesuffix("; retrying").removesuffix("retrying") if d else ""
            hint = hint or "raise CORPNET_WAIT_TIMEOUT, or check the network path"
        super().__init__(message, hint=hint, host=first.target.host)
        self.exit_code = report.exit_code


class Interrupted(CorpnetError):  # noqa: N818 - reads as what happened: "Interrupted"
    """SIGTERM or SIGINT arrived; ``exit_code`` is 143 or 130."""

    def __init__(self, signum: int, doing: str = "") -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}" + (f" while {doing}" if doing else ""))
        self.signum = signum
        self.exit_code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


def _severity(code: ExitCode) -> int:
    return {ExitCode.CONFIG: 0, ExitCode.DATA: 1}.get(code, 2)


class Events(Protocol):
    """What a reporter hears while probing (see ``corpnet._reach_report``)."""

    def started(self, results: Sequence[HostResult], timeout: float) -> None: ...
    def retrying(self, result: HostResult, sleep: float) -> None: ...
    def finished(self, result: HostResult) -> None: ...
    def tick(self, elapsed: float) -> None: ...


class _Silent:
    def started(self, results: Sequence[HostResult], timeout: float) -> None:
        pass

    def retrying(self, result: HostResult, sleep: float) -> None:
        pass

    def finished(self, result: HostResult) -> None:
        pass

    def tick(self, elapsed: float) -> None:
        pass


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


# --- probing ---------------------------------------------------------------------------


class _Watches:
    """Wake sleepers as soon as a refused endpoint accepts a TCP connection.

    Refused means the peer answered at once: polling it is cheap. A proxy that
    comes up late is noticed within ``interval``, not after a 5 s backoff.
    """

    def __init__(self, resolver: Resolver, interval: float, sleep: Sleep) -> None:
        self._resolver = resolver
        self._interval = interval
        self._sleep = sleep
        self._events: dict[tuple[str, int], asyncio.Event] = {}
        self._pollers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._waiters: dict[tuple[str, int], int] = {}

    async def sleep(self, endpoint: tuple[str, int], seconds: float) -> None:
        event = self._events.setdefault(endpoint, asyncio.Event())
        if event.is_set():
            return
        self._waiters[endpoint] = self._waiters.get(endpoint, 0) + 1
        if endpoint not in self._pollers or self._pollers[endpoint].done():
            self._pollers[endpoint] = asyncio.ensure_future(self._poll(endpoint, event))
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()
            self._waiters[endpoint] -= 1
            if not self._waiters[endpoint]:
                self._pollers.pop(endpoint).cancel()
                self._events.pop(endpoint, None)

    async def _poll(self, endpoint: tuple[str, int], event: asyncio.Event) -> None:
        while True:
            await self._sleep(self._interval)
            try:
                async with asyncio.timeout(1.0):
                    sock = await probe_mod.connect(await self._resolver(*endpoint))
            except (OSError, TimeoutError):
                continue
            sock.close()
            event.set()
            return

    async def close(self) -> None:
        for task in self._pollers.values():
            task.cancel()
        await asyncio.gather(*self._pollers.values(), return_exceptions=True)


class _Prober:
    def __init__(
        self,
        targets: Sequence[Target],
        route: Route,
        plan: Plan,
        *,
        policy: RetryPolicy,
        timeout: float,
        clock: Clock,
        sleep: Sleep,
        rand: Callable[[], float],
        events: Events,
    ) -> None:
        self.plan = plan
        self.policy = policy
        self.clock = clock
        self._sleep = sleep
        self.rand = rand
        self.events = events
        self.start = clock()
        self.timeout = timeout
        self.deadline = self.start + timeout
        self.gate = asyncio.Semaphore(policy.concurrency)
        self.watches = _Watches(plan.resolver, policy.watch_interval, sleep)
        self.routes = {t: route(t.host, t.port) for t in targets}
        self.results = {
            t: HostResult(t, p.redacted() if p is not None else "direct")
            for t, p in self.routes.items()
        }

    def remaining(self) -> float:
        return self.deadline - self.clock()

    async def host(self, target: Target) -> None:
        result = self.results[target]
        watched: list[tuple[str, int] | None] = [None]

        clipped, final = [False], [False]

        def wait(state: tenacity.RetryCallState) -> float:
            backoff = self.policy.backoff(state.attempt_number, self.rand())
            room = self.remaining() - self.policy.min_attempt
            # Never sleep past the point where one last attempt still fits.
            clipped[0] = backoff > room
            return max(0.0, min(backoff, room))

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.policy.max_attempts:
                return True
            if self.remaining() - state.upcoming_sleep < self.policy.min_attempt:
                return True
            if clipped[0]:  # a shortened sleep buys one last attempt, not a tight loop
                if final[0]:
                    return True
                final[0] = True
            return False

        async def sleep(seconds: float) -> None:
            endpoint = watched[0]
            if endpoint is not None:
                await self.watches.sleep(endpoint, seconds)
            else:
                await self._sleep(seconds)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.events.retrying(result, state.upcoming_sleep)

        async def once() -> Stage:
            result.attempts += 1
            try:
                return await self.attempt(target)
            except ProbeFailure as e:
                result.diagnosis, result.stage = e.diagnosis, e.diagnosis.stage
                result.elapsed = self.clock() - self.start
                watched[0] = e.endpoint
                raise

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, ProbeFailure) and e.diagnosis.retryable
            ),
            stop=stop,
            wait=wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,  # the last ProbeFailure, not a RetryError
        )
        try:
            result.stage = await retrying(once)
        except ProbeFailure as e:
            result.status = "timeout" if e.diagnosis.retryable else "failed"
        else:
            result.status = "ready"
        result.elapsed = self.clock() - self.start
        self.events.finished(result)

    async def attempt(self, target: Target) -> Stage:
        async with self.gate:
            budget = min(self.policy.attempt_timeout, max(self.remaining(), 0.0))
            tracker = Tracker(budget=budget)
            proxy = self.routes[target]
            try:
                async with asyncio.timeout(budget):
                    return await probe_mod.attempt(
                        target.host,
                        target.port,
                        proxy,
                        mtls=target.mtls,
                        plan=self.plan,
                        tracker=tracker,
                    )
            except TimeoutError as e:
                from corpnet._reach_diagnose import Context

                ctx = Context(target.host, target.port, proxy.redacted() if proxy else None)
                raise ProbeFailure(timeout_diagnosis(ctx, tracker.stage, budget)) from e

    async def run(self, *, wait_optional: bool, fail_fast: bool) -> Report:
        self.events.started(list(self.results.values()), self.timeout)
        tasks = {asyncio.ensure_future(self.host(t)): t for t in self.results}
        ticker = asyncio.ensure_future(self._tick())
        waited = {task for task, t in tasks.items() if t.required or wait_optional}
        try:
            while waited:
                done, waited = await asyncio.wait(
                    waited,
                    timeout=max(self.remaining(), 0.0) + 1.0,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    break  # a safety net: attempts are bounded by the deadline already
                failed = any(self.results[tasks[d]].status == "failed" for d in done)
                if fail_fast and failed and any(tasks[d].required for d in done):
                    break
        finally:
            ticker.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(ticker, *tasks, return_exceptions=True)
            await self.watches.close()
        for task, target in tasks.items():
            result = self.results[target]
            if result.status == "probing":
                result.elapsed = self.clock() - self.start
                if not target.required:
                    result.status = "skipped"
                elif self.remaining() <= self.policy.min_attempt:
                    result.status = "timeout"
                else:
                    result.status = "stopped"
                del task
        return Report(
            tuple(self.results.values()),
            elapsed=self.clock() - self.start,
            timeout=self.timeout,
            probe="http" if self.plan.http else "tls",
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.events.tick(self.clock() - self.start)


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
    prober = _Prober(
        targets,
        route,
        plan,
        policy=policy or DEFAULT_POLICY,  # read at call time: tests swap it for a fast one
        timeout=timeout,
        clock=clock,
        sleep=sleep,
        rand=rand,
        events=events or _Silent(),
    )
    return await prober.run(wait_optional=wait_optional, fail_fast=fail_fast)


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
            from corpnet._reach_diagnose import Context

            ctx = Context(proxy.host, proxy.port, proxy=proxy.redacted())
            return timeout_diagnosis(ctx, Stage.PROXY_TLS, timeout)

    return run_interruptible(run(), doing=f"checking the proxy {proxy.redacted()}")


# --- signals ---------------------------------------------------------------------------


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    if not _in_main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_interruptible(coro: Coroutine[Any, Any, T], *, doing: str = "") -> T:
    """Run ``coro`` on a new event loop; SIGTERM/SIGINT cancel it and raise :class:`Interrupted`.

    Cancellation aborts every socket at once and DNS lookups run in daemon
    threads, so the process can exit well within a second of the signal.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        received.append(signum)
        loop.call_soon_threadsafe(task.cancel)

    try:
        with _handlers(on_signal):
            try:
                result = loop.run_until_complete(task)
            except asyncio.CancelledError:
                if received:
                    raise Interrupted(received[0], doing) from None
                raise
            if received:
                raise Interrupted(received[0], doing)
            return result
    finally:
        loop.close()


@contextlib.contextmanager
def exit_on_signals(doing: str = "") -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT raise :class:`Interrupted` (exit 143 / 130).

    For the pipeline's blocking steps outside the wait (hooks, file work): the
    CLI turns the error into one line and the exit code, never a traceback.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        raise Interrupted(signum, doing)

    with _handlers(on_signal):
        yield


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
    from corpnet import _reach_report, log

    logger = log.get()
    if settings.wait == "off":
        logger.info("CORPNET_WAIT=off: not probing the allowlisted hosts")
        return None
    targets = targets_for(settings, identity=identity is not None)
    if identity is not None:
        logger.add_secret(identity.passphrase)
    reporter = events if events is not None else _reach_report.for_log(logger)
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
    if isinstance(reporter, _reach_report.Reporter):
        reporter.summary(report)
    if report.ok:
        return report
    if settings.wait == "warn":
        error = ReachError(report)
        logger.warning(f"{error} (CORPNET_WAIT=warn: starting anyway)")
        return report
    raise ReachError(report)


def wait_stage(prepared: Prepared, env: Mapping[str, str] | None = None) -> Report | None:
    """:func:`wait_for_hosts` with what the earlier stages of ``corpnet run`` produced.

    ``env`` (the agent's environment after the hooks) is accepted for symmetry
    with the other stages; the settings were read before the hooks ran.
    """
    del env
    ident = prepared.identity
    identity = ClientIdentity(ident.cert, ident.key, ident.passphrase) if ident else None
    return wait_for_hosts(
        prepared.settings.reach,
        route=prepared.proxy.proxy_for,
        ca_pem=prepared.trust.bundle.read_bytes(),
        identity=identity,
    )


def with_timeout(settings: ReachSettings, seconds: float | None) -> ReachSettings:
    """``settings`` with the deadline replaced (``--timeout``)."""
    return settings if seconds is None else replace(settings, timeout=seconds)
