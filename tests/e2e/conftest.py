"""Session fixtures of the container tests: images, PKI, the corporate topology.

Topology, on two internal Docker networks (``internal=True``: no route out):

    front: agent ── proxy.corp.test (Squid, basic auth) ──┐
                 └─ inspector.corp.test (squid-openssl,   │  back: api.corp.test
                    ssl_bump re-signing with its own CA) ─┴─ (nginx; 443 needs a
                                                             client cert, 8443 not)

The agent is not on ``back``: it reaches the API through a proxy or not at all.
The gateway tests add a Kerberos proxy with its KDC, an NTLM proxy, and PAC
files with WPAD on ``front`` (``gw_rigs``, support/gateway_world.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from corpnet import build as corpnet_build
from corpnet.errors import CorpnetError
from support.containers import (
    REPO,
    Tracker,
    base_inputs_hash,
    ensure_image,
)
from support.gateway_world import GatewayRigs, build_gateway_images, start_gateway_rigs
from support.world import World, build_images, start_world

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
    return build_images(docker_client, base_image)


@pytest.fixture(scope="session")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    tracker: Tracker,
    images: dict[str, str],
) -> World:
    root = tmp_path_factory.mktemp("e2e")
    root.chmod(0o755)
    return start_world(docker_client, tracker, images, root)


@pytest.fixture(scope="session")
def gw_rigs(docker_client: Any, world: World, images: dict[str, str]) -> GatewayRigs:
    """The gateway's rigs (Kerberos, NTLM, PAC and WPAD) added to the world, once a session."""
    tags = build_gateway_images(docker_client, images)
    return start_gateway_rigs(world, {**images, **tags})
