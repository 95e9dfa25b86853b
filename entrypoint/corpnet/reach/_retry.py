"""The concurrent, retrying core of the reachability stage.

One task per host, at most :attr:`RetryPolicy.concurrency` attempts in flight.
Each host retries through tenacity, stamina-style: the errors retried are named
(:attr:`Diagnosis.retryable`, i.e. what can heal), stopping on attempts or the
deadline, whichever comes first, with ``reraise`` so the last real failure is
reported. Clock, sleep and randomness are injected: tests run the deadline
arithmetic on a fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import tenacity

from corpnet.reach import _probe as probe_mod
from corpnet.reach._diagnose import Context, ProbeFailure, Stage
from corpnet.reach._diagnose import timeout as timeout_diagnosis
from corpnet.reach._model import HostResult, Report, Target
from corpnet.reach._probe import Plan, Proxy, Resolver, Tracker

Route = Callable[[str, int], Proxy | None]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Timer granularity and float noise: a wait shorter than this before the last
# attempt means that attempt has already run (else a fake or coarse clock loops).
_SLACK = 0.001


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


class Events(Protocol):
    """What a reporter hears while probing (see ``corpnet.reach._report``)."""

    def started(self, results: Sequence[HostResult], timeout: float) -> None: ...
    def retrying(self, result: HostResult, sleep: float) -> None: ...
    def finished(self, result: HostResult) -> None: ...
    def tick(self, elapsed: float) -> None: ...


class Silent:
    def started(self, results: Sequence[HostResult], timeout: float) -> None:
        pass

    def retrying(self, result: HostResult, sleep: float) -> None:
        pass

    def finished(self, result: HostResult) -> None:
        pass

    def tick(self, elapsed: float) -> None:
        pass


class Watches:
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


class Prober:
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
        # One lookup of the proxy's name for all the hosts behind it, not one each.
        self.plan = plan = replace(plan, resolver=probe_mod.joined(plan.resolver))
        self.policy = policy
        self.clock = clock
        self._sleep = sleep
        self.rand = rand
        self.events = events
        self.start = clock()
        self.timeout = timeout
        self.deadline = self.start + timeout
        self.gate = asyncio.Semaphore(policy.concurrency)
        self.watches = Watches(plan.resolver, policy.watch_interval, sleep)
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

        # Decided in wait(), which tenacity calls before stop() after each failure:
        # both must read one clock reading, or stop() sees the time a moment later
        # and gives up a whole backoff before the deadline.
        done = [False]

        def wait(state: tenacity.RetryCallState) -> float:
            room = self.remaining() - self.policy.min_attempt
            if room <= _SLACK:
                done[0] = True  # no attempt fits any more: the last one ran at the deadline
                return 0.0
            # A backoff that would overshoot is cut to a last attempt at the
            # deadline (less min_attempt) rather than given up a backoff early.
            return min(self.policy.backoff(state.attempt_number, self.rand()), room)

        def stop(state: tenacity.RetryCallState) -> bool:
            return done[0] or state.attempt_number >= self.policy.max_attempts

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
                # A last attempt the deadline cut short says less than the failure
                # before it (a 407 stays a 407, not "no answer within 0.1s").
                if not (e.cut_short and result.diagnosis is not None):
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
                    stage = await probe_mod.attempt(
                        target.host,
                        target.port,
                        proxy,
                        mtls=target.mtls,
                        listed_in="CORPNET_ALLOWLIST"
                        if target.required
                        else "CORPNET_ALLOWLIST_OPTIONAL",
                        plan=self.plan,
                        tracker=tracker,
                    )
            except TimeoutError as e:
                ctx = Context(target.host, target.port, proxy.redacted() if proxy else None)
                raise ProbeFailure(
                    timeout_diagnosis(ctx, tracker.stage, budget),
                    cut_short=budget < self.policy.attempt_timeout,
                ) from e
            if tracker.via is not None:  # through corpnet's gateway: where it went on
                result = self.results[target]
                result.route = f"{result.route.split(' -> ')[0]} -> {tracker.via}"
            return stage

    async def run(self, *, wait_optional: bool, fail_fast: bool) -> Report:
        self.events.started(list(self.results.values()), self.timeout)
        tasks = {asyncio.ensure_future(self.host(t)): t for t in self.results}
        ticker = asyncio.ensure_future(self._tick())
        # Each task says when it is done (not asyncio.wait in a loop, which would
        # hook onto every task still running each time one finishes: n² for n hosts).
        finished: asyncio.Queue[asyncio.Task[None]] = asyncio.Queue()
        waited = [task for task, t in tasks.items() if t.required or wait_optional]
        for task in waited:
            task.add_done_callback(finished.put_nowait)
        try:
            for _ in waited:
                try:
                    # A safety net: attempts are bounded by the deadline already.
                    async with asyncio.timeout(max(self.remaining(), 0.0) + 1.0):
                        target = tasks[await finished.get()]
                except TimeoutError:
                    break
                if fail_fast and target.required and self.results[target].status == "failed":
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
