"""The egress audit log: one JSON object per connection, never a secret.

``/run/corpnet/egress.log`` (``<runtime dir>/egress.log``): time, client,
destination, decision, route, upstream login scheme, bytes each way and
duration. Written by the gateway alone (its own uid after a root start), one
``write`` per line in append mode, so concurrent connections never interleave.
The log rotates at :data:`MAX_BYTES` to one ``.1`` file, so a busy agent
cannot fill the tmpfs: by copy and truncate, since after a root start the
gateway owns the two files (root made them) but not the directory.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024


@dataclass
class Record:
    """One connection, as the audit log shows it."""

    client: str
    method: str  # CONNECT, GET, … or "capture" for transparent connections
    host: str
    port: int
    decision: str  # "allow" or "deny"
    reason: str
    route: str = ""
    auth: str | None = None
    status: int = 0
    up: int = 0
    down: int = 0
    started: float = 0.0
    error: str | None = None


class Audit:
    """Append-only JSON lines; ``path`` None keeps nothing (tests, ``--no-audit``)."""

    def __init__(self, path: Path | None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._fd: int | None = None

    def write(self, record: Record, *, monotonic_now: float) -> None:
        if self.path is None:
            return
        line = {
            "ts": round(self._clock(), 3),
            "client": record.client,
            "method": record.method,
            "host": record.host,
            "port": record.port,
            "decision": record.decision,
            "reason": record.reason,
            "route": record.route,
            "auth": record.auth,
            "status": record.status,
            "bytes_up": record.up,
            "bytes_down": record.down,
            "ms": round((monotonic_now - record.started) * 1000, 1),
        }
        if record.error:
            line["error"] = record.error
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        try:
            fd = self._open()
            os.write(fd, data)
            if os.fstat(fd).st_size > MAX_BYTES:
                self._rotate()
        except OSError:
            pass  # a full tmpfs must not take egress down; the connection itself went fine

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None  # noqa: S101 - checked by write()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o640)
        return self._fd

    def _rotate(self) -> None:
        assert self.path is not None  # noqa: S101 - checked by write()
        assert self._fd is not None  # noqa: S101 - open while writing
        data = self.path.read_bytes()
        older = self.path.with_name(self.path.name + ".1")
        fd = os.open(older, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.ftruncate(self._fd, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
