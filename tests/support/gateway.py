"""The gateway in a thread of the test process, built from an environment as `corpnet run` does.

``running_gateway(env)`` loads the settings from ``env`` exactly as the
entrypoint does (config, proxy, gateway variables), listens on a free
loopback port, and yields a handle with the port, the audit log and the
proxy URL to give clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpnet import config, gateway, proxy


@dataclass
class RunningGateway:
    port: int
    audit: Path
    gw: gateway.Gateway

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def records(self, count: int | None = None, timeout: float = 10) -> list[dict[str, Any]]:
        """The audit lines; with ``count``, wait for that many (a tunnel is logged when it ends)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.audit.read_text().splitlines() if self.audit.exists() else []
            if count is None or len(lines) >= count or time.monotonic() > deadline:
                return [json.loads(line) for line in lines]
            time.sleep(0.02)


@contextlib.contextmanager
def running_gateway(env: Mapping[str, str], audit_dir: Path) -> Iterator[RunningGateway]:
    settings = config.load(env)
    proxy_config = proxy.for_settings(settings)
    gw_settings = gateway.load_settings(env)
    password = settings.proxy.password
    gw = gateway.build(
        settings, proxy_config, gw_settings, password=lambda: password, audit_dir=audit_dir
    )
    loop = asyncio.new_event_loop()
    servers, failed = loop.run_until_complete(gw.start([gateway.Listen("127.0.0.1", 0)]))
    assert servers, failed
    port = servers[0].sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield RunningGateway(port, audit_dir / gateway.AUDIT_LOG, gw)
    finally:

        async def stop() -> None:
            for s in servers:
                s.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_pids(runtime_dir: Path) -> tuple[list[int], list[int]]:
    """(supervisors, workers) serving ``runtime_dir``: root's, and the gateway user's.

    `corpnet run` detaches the supervisor (PID 1 reaps it in a container); on the
    host the tests find it by the runtime directory in its environment.
    """
    needle = f"CORPNET_RUNTIME_DIR={runtime_dir}".encode()
    supervisors, workers = [], []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if b"gateway" not in (proc / "cmdline").read_bytes():
                continue
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            uid = proc.stat().st_uid
        except OSError:
            continue
        (supervisors if uid == 0 else workers).append(int(proc.name))
    return supervisors, workers


def stop_gateways(runtime_dir: Path) -> None:
    """Kill every gateway process serving ``runtime_dir``."""
    supervisors, workers = gateway_pids(runtime_dir)
    for pid in [*supervisors, *workers]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
