"""The running e2e topology, and agents started in it (see conftest.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.containers import (
    API_HOST,
    IMAGES,
    PROXY_USER,
    Pki,
    Result,
    Tracker,
    content_hash,
    ensure_image,
    logs,
    make_repo,
    wait_exit,
    wait_for_log,
)

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


def build_images(docker_client: Any, base_image: str) -> dict[str, str]:
    """The test images: squid, inspector, nginx, and the agent image FROM corpnet-base."""
    tags = {"base": base_image}
    for name in ("squid", "inspector", "nginx"):
        tags[name] = ensure_image(docker_client, name, IMAGES / name, content_hash([IMAGES / name]))
    tags["agent"] = ensure_image(
        docker_client,
        "agent",
        IMAGES / "agent",
        content_hash([IMAGES / "agent"], base_image),
        buildargs={"CORPNET_BASE": base_image},
    )
    return tags


def start_world(docker_client: Any, tracker: Tracker, images: dict[str, str], root: Path) -> World:
    """Write the PKI under ``root``, create the networks and start the services."""
    pki = Pki(root)
    pki.write()
    srv, head = make_repo(root / "git")
    password = "p@ss:" + secrets.token_urlsafe(12)  # characters that need URL encoding
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(mode=0o755)
    (secrets_dir / "proxy-password").write_text(password + "\n")
    (secrets_dir / "proxy-password").chmod(0o600)
    os.chown(secrets_dir / "proxy-password", 1000, 1000)

    s = tracker.session
    front = docker_client.networks.create(
        f"corpnet-e2e-{s}-front", internal=True, labels=tracker.labels
    )
    back = docker_client.networks.create(
        f"corpnet-e2e-{s}-back", internal=True, labels=tracker.labels
    )
    w = World(docker_client, tracker, images, pki, root, head, password, front, back)

    api = w.start_service(
        "api",
        images["nginx"],
        [API_HOST],
        volumes={
            str(root / "api"): {"bind": "/run/api", "mode": "ro"},
            str(srv): {"bind": "/srv", "mode": "ro"},
        },
    )
    proxy = w.start_service(
        "proxy",
        images["squid"],
        [],
        environment={"SQUID_USER": PROXY_USER, "SQUID_PASSWORD": password},
    )
    inspector = w.start_service(
        "inspector",
        images["inspector"],
        [],
        volumes={str(root / "inspector"): {"bind": "/run/inspector", "mode": "ro"}},
    )
    front.connect(proxy, aliases=["proxy.corp.test"])
    front.connect(inspector, aliases=["inspector.corp.test"])
    for c in (api, proxy, inspector):
        c.start()
    wait_for_log(api, "start worker process")
    wait_for_log(proxy, "Accepting HTTP Socket connections")
    wait_for_log(inspector, "Accepting SSL bumped HTTP Socket connections")
    w.proxy = proxy
    return w
