"""The running e2e topology, and agents started in it (see conftest.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _e2e_env import API_HOST, PROXY_USER, Pki, Result, Tracker, logs, wait_exit

PROXY_URL = "http://proxy.corp.test:3128"


@dataclass
class World:
    """The running topology and a way to start agents in it."""

    client: Any
    tracker: Tracker
    images: dict[str, str]
    pki: Pki
    root: Path
    repo_head: str
    proxy_password: str
    front: Any
    back: Any
    proxy: Any = None
    containers: dict[str, Any] = field(default_factory=dict)

    def base_env(self) -> dict[str, str]:
        return {
            "HTTPS_PROXY": PROXY_URL,
            "HTTP_PROXY": PROXY_URL,
            "CORPNET_PROXY_USER": PROXY_USER,
            "CORPNET_PROXY_PASSWORD_FILE": "/run/secrets/proxy-password",
            "CORPNET_ALLOWLIST": f"{API_HOST}:443",
            "CORPNET_WAIT_TIMEOUT": "20",
            "E2E_URL": f"https://{API_HOST}/",
            "E2E_REPO": f"https://{API_HOST}/repo.git",
        }

    def base_volumes(self) -> dict[str, str]:
        """Container path -> host path of the default read-only mounts."""
        return {
            "/etc/corpnet/ca.d": str(self.root / "ca.d"),
            "/etc/corpnet/client": str(self.root / "client"),
            "/run/secrets": str(self.root / "secrets"),
        }

    def create_agent(
        self,
        *,
        env: Mapping[str, str | None] | None = None,
        volumes: Mapping[str, str | None] | None = None,
        command: list[str] | None = None,
        image: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A created (not started) agent container on the front network.

        ``env`` and ``volumes`` (container path -> host path, mounted read-only)
        are laid over the defaults; None removes an entry.
        """
        merged_env = {**self.base_env(), **(env or {})}
        merged_vol = {**self.base_volumes(), **(volumes or {})}
        return self.client.containers.create(
            image or self.images["agent"],
            command=command if command is not None else ["/opt/e2e/check.sh"],
            environment={k: v for k, v in merged_env.items() if v is not None},
            volumes={
                host: {"bind": path, "mode": "ro"} for path, host in merged_vol.items() if host
            },
            network=self.front.name,
            labels=self.tracker.labels,
            **kwargs,
        )

    def run_agent(self, *, timeout: float = 120, **kwargs: Any) -> Result:
        """Start an agent, wait for it to exit, return what it did; the container is removed."""
        c = self.create_agent(**kwargs)
        try:
            c.start()
            code, seconds = wait_exit(c, timeout)
            out, err = logs(c)
            return Result(code, out, err, seconds)
        finally:
            c.remove(force=True)

    def start_service(self, name: str, image: str, aliases: list[str], **kwargs: Any) -> Any:
        """Create service ``name`` on the back network under ``aliases``."""
        endpoint = self.client.api.create_endpoint_config(aliases=aliases)
        c = self.client.containers.create(
            image,
            name=f"corpnet-e2e-{self.tracker.session}-{name}",
            labels=self.tracker.labels,
            network=self.back.name,
            networking_config={self.back.name: endpoint},
            **kwargs,
        )
        self.containers[name] = c
        return c
