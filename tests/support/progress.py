"""Lines on the terminal during the long, otherwise silent parts of a test run.

The first run builds the e2e images inside session fixtures (about five
minutes), while pytest's output capture swallows whatever a fixture prints.
:func:`say` writes past the capture through pytest's terminal reporter, the way
pytest's own live logging does; :func:`heartbeat` says every so often that a
step is still running, with the time it has taken: every 15 s on a terminal,
every 60 s into a log, so a CI log stays short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_config: pytest.Config | None = None
_lock = threading.Lock()


def configure(config: pytest.Config) -> None:
    """Remember the session's config (tests/conftest.py calls this from pytest_configure)."""
    global _config  # noqa: PLW0603 - one pytest session per process
    _config = config


def say(line: str) -> None:
    """Write ``line`` to pytest's terminal, capture or not (nothing outside pytest)."""
    if _config is None:
        return
    reporter = _config.pluginmanager.get_plugin("terminalreporter")
    capture = _config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with _lock:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)


def _interval() -> float:
    reporter = _config.pluginmanager.get_plugin("terminalreporter") if _config else None
    return 15.0 if reporter is not None and reporter.isatty else 60.0


def elapsed(seconds: float) -> str:
    """``42s`` or ``3m05s``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@contextmanager
def heartbeat(what: str) -> Iterator[None]:
    """Say ``what`` started, that it is still running every so often, and when it ended."""
    start = time.monotonic()
    done = threading.Event()
    every = _interval()

    def beat() -> None:
        while not done.wait(every):
            say(f"[e2e] still {what}: {elapsed(time.monotonic() - start)}")

    say(f"[e2e] {what}")
    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    say(f"[e2e] done {what} in {elapsed(time.monotonic() - start)}")
