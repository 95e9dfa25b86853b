"""Where the gateway listens (a module of its own: no asyncio for the settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Listen:
    """An address to listen on: ``127.0.0.1:3128``, ``[::1]:3128``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
