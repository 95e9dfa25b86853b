"""Session fixtures of the container tests: images, PKI, the corporate topology.

Topology, on two internal Docker networks (``internal=True``: no route out):

    front: agent ── proxy.corp.test (Squid, basic auth) ──┐
                 └─ inspector.corp.test (squid-openssl,   │  back: api.corp.test
                    ssl_bump re-signing with its own CA) ─┴─ (nginx; 443 needs a
                                                             client cert, 8443 not)

The agent is not on ``back``: it reaches the API through a proxy or not at all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from _e2e_env import (
    API_HOST,
    IMAGES,
    PROXY_USER,
    REPO,
    Pki,
    Tracker,
    base_inputs_hash,
    content_hash,
    ensure_image,
    make_repo,
    wait_for_log,
)
from _e2e_world import World

from corpnet import build as corpnet_build
from corpnet.errors import CorpnetError

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def docker_client() -> Any:
    try:
        return corpnet_build.connect()
    except CorpnetError as e:
        pytest.fail(f"the e2e tests need a Docker engine: {e}")


@pytest.fixture(scope="session")
def tracker(docker_client: Any) -> Iterator[Tracker]:
    t = Tracker(docker_client)
    yield t
    t.cleanup()


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """corpnet-base, built from this checkout by ``corpnet build``."""
    if not corpnet_build.image_exists(docker_client, "debian:bookworm-slim"):
        pytest.fail("debian:bookworm-slim is missing: run bash scripts/test (it bootstraps it)")
    return ensure_image(docker_client, "base", REPO, base_inputs_hash())


@pytest.fixture(scope="session")
def images(docker_client: Any, base_image: str) -> dict[str, str]:
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


@pytest.fixture(scope="session")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    tracker: Tracker,
    images: dict[str, str],
) -> World:
    root = tmp_path_factory.mktemp("e2e")
    root.chmod(0o755)
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
