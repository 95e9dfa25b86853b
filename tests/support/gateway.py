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
