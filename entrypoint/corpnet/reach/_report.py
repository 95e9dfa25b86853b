"""How a wait is shown: a live line and a table on a terminal, timestamped lines otherwise.

``--json`` output is :meth:`Report.to_json`; ``CORPNET_LOG=json`` turns every
line here into a JSON record through the process logger. Every line passes the
logger's secret scrubber, although routes are already redacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from corpnet.log import Log
from corpnet.reach._model import HostResult, Report

_HEADERS = ("HOST", "ROUTE", "STAGE", "RESULT", "ATTEMPTS", "TIME")


def describe(r: HostResult) -> str:
    """One line for a finished host."""
    what = "" if r.target.required else " (optional)"
    if r.ok:
        stage = r.stage.value if r.stage else "-"
        took = f"{stage}, {_attempts(r.attempts)}, {r.elapsed:.2f}s"
        return f"{r.target}{what} ready {_route(r)} ({took})"
    d = r.diagnosis
    if r.status == "skipped":
        last = f"; last: {d.message}" if d else ""
        return f"{r.target}{what} not waited for{last}"
    if r.status == "stopped":
        return f"{r.target}{what} not finished: stopped after another required host failed"
    if d is None:
        return f"{r.target}{what} {r.status} after {r.elapsed:.1f}s"
    state = "failed" if r.status == "failed" else f"still failing after {r.elapsed:.1f}s"
    return f"{r.target}{what} {state} ({d.kind}, {_attempts(r.attempts)}): {d.line()}"


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _route(r: HostResult) -> str:
    return "direct" if r.route == "direct" else f"via {r.route}"


def table(report: Report) -> str:
    """The final table, then one "what to do" line per host that is not ready."""
    rows = [
        (
            str(r.target) + ("" if r.target.required else " (optional)"),
            _route(r),
            r.stage.value if r.stage else "-",
            r.status,
            str(r.attempts),
            f"{r.elapsed:.2f}s",
        )
        for r in report.results
    ]
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [_HEADERS, *rows]
    ]
    for r in report.results:
        if not r.ok and r.diagnosis is not None and r.status != "stopped":
            lines.append(f"{r.target}: {r.diagnosis.line()}")
    return "\n".join(lines)


def summary_line(report: Report) -> str:
    """One line for the whole wait."""
    required = report.required
    ready = sum(r.ok for r in required)
    if report.ok:
        return f"{ready} required host{'s' if ready != 1 else ''} ready in {report.elapsed:.2f}s"
    return f"{ready} of {len(required)} required hosts ready after {report.elapsed:.2f}s"


class Reporter:
    """Timestamped lines on stderr, one per change, for logs and CI."""

    def __init__(self, log: Log, *, now: Callable[[], float] = time.time) -> None:
        self.log = log
        self.now = now
        self._last_kind: dict[str, str] = {}
        self._finished_as: dict[str, str] = {}  # the class each failure was shown with

    def _write(self, level: str, message: str, **fields: object) -> None:
        if self.log.as_json:
            self.log.emit("warning" if level == "warning" else "info", message, **fields)
            return
        if self.log.quiet and level != "warning":
            return
        stamp = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        prefix = "corpnet: warning: " if level == "warning" else "corpnet: "
        self.log.stream.write(self.log.scrub(f"{stamp}Z {prefix}{message}") + "\n")
        self.log.stream.flush()

    def started(self, results: Sequence[HostResult], timeout: float) -> None:
        required = [str(r.target) for r in results if r.target.required]
        optional = len(results) - len(required)
        extra = f" (and {optional} optional)" if optional else ""
        self._write(
            "info",
            f"waiting up to {timeout:g}s for {', '.join(required) or 'no required hosts'}{extra}",
            event="wait-start",
        )

    def retrying(self, result: HostResult, sleep: float) -> None:
        d = result.diagnosis
        if d is None or self._last_kind.get(str(result.target)) == d.kind:
            return  # one line per new kind of failure, not one per attempt
        self._last_kind[str(result.target)] = d.kind
        self._write(
            "info",
            f"{result.target} not ready ({d.kind}, attempt {result.attempts}): {d.message}; "
            "retrying",
            event="retry",
            host=str(result.target),
            error=d.kind,
        )

    def finished(self, result: HostResult) -> None:
        level = "info" if result.ok else "warning"
        if result.diagnosis is not None and not result.ok:
            self._finished_as[str(result.target)] = result.diagnosis.kind
        self._write(
            level,
            describe(result),
            event="host",
            host=str(result.target),
            status=result.status,
            stage=result.stage.value if result.stage else None,
            attempts=result.attempts,
            elapsed=round(result.elapsed, 3),
        )

    def tick(self, elapsed: float) -> None:
        pass

    def summary(self, report: Report) -> None:
        """After the wait: hosts never finished (stopped, skipped), then one line.

        A failure explained after it was shown (the chains fetched as evidence,
        ``_discover.refine``) is shown again, with what it turned out to be.
        """
        for r in report.results:
            if r.status in ("skipped", "stopped"):
                self._write("info", describe(r), event="host", host=str(r.target), status=r.status)
            shown = self._finished_as.get(str(r.target))
            if r.diagnosis is not None and shown is not None and shown != r.diagnosis.kind:
                self._write(
                    "warning",
                    describe(r),
                    event="host",
                    host=str(r.target),
                    status=r.status,
                    error=r.diagnosis.kind,
                )
        self._write("info", summary_line(report), event="wait-end", ok=report.ok)


class TtyReporter(Reporter):
    """A live progress line while waiting, then the table."""

    def __init__(self, log: Log, *, now: Callable[[], float] = time.time) -> None:
        super().__init__(log, now=now)
        self._results: Sequence[HostResult] = ()
        self._timeout = 0.0
        self._elapsed = 0.0

    @property
    def _stream(self) -> TextIO:
        return self.log.stream

    def started(self, results: Sequence[HostResult], timeout: float) -> None:
        self._results, self._timeout = results, timeout
        self._draw()

    def retrying(self, result: HostResult, sleep: float) -> None:
        self._draw()

    def finished(self, result: HostResult) -> None:
        self._draw()

    def tick(self, elapsed: float) -> None:
        self._elapsed = elapsed
        self._draw()

    def _draw(self) -> None:
        if self.log.quiet:
            return
        required = [r for r in self._results if r.target.required]
        ready = sum(r.ok for r in required)
        waiting = [r for r in required if r.status == "probing" and r.diagnosis is not None]
        line = (
            f"corpnet: waiting {self._elapsed:.1f}s/{self._timeout:g}s: "
            f"{ready}/{len(required)} ready"
        )
        if waiting:
            w = waiting[0]
            line += (
                f"; {w.target}: {w.diagnosis.kind if w.diagnosis else ''} (attempt {w.attempts})"
            )
        self._stream.write("\r\x1b[K" + self.log.scrub(line[:200]))
        self._stream.flush()

    def summary(self, report: Report) -> None:
        self._stream.write("\r\x1b[K")
        if not self.log.quiet or not report.ok:
            self._stream.write(self.log.scrub(table(report)) + "\n")
            self._stream.write(f"corpnet: {summary_line(report)}\n")
        self._stream.flush()


def for_log(log: Log) -> Reporter:
    """The reporter for this process's stderr: live on a terminal, lines otherwise."""
    isatty = getattr(log.stream, "isatty", None)
    if not log.as_json and isatty is not None and isatty():
        return TtyReporter(log)
    return Reporter(log)
