"""SIGTERM and SIGINT while waiting: exit 143 / 130 within a second, never a traceback.

A container runtime sends SIGTERM on ``docker stop``; a user presses Ctrl-C.
Either must end the wait at once with its conventional code (128 + signal) and
one line, not a Python traceback. As PID 1 in a container the kernel ignores a
signal that has no handler, so without these ``docker stop`` would wait out
its grace period and then kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

from corpnet.errors import CorpnetError, ExitCode

T = TypeVar("T")


class Interrupted(CorpnetError):  # noqa: N818 - reads as what happened: "Interrupted"
    """SIGTERM or SIGINT arrived; ``exit_code`` is 143 or 130."""

    def __init__(self, signum: int, doing: str = "") -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}" + (f" while {doing}" if doing else ""))
        self.signum = signum
        self.exit_code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


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
