"""`corpnet build` hands the host's CAs and proxy to RUN steps, and nothing of them stays.

The build goes through a real authenticating Squid on Docker's default bridge
(which has a route out, as a build host's proxy does) with an extra test CA;
its RUN step fetches the package index over HTTPS. Then the image is searched:
history, configuration and every file.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme

from corpnet import build as corpnet_build
from corpnet.build._strip import TRUST_DIR, needles_for
from support.containers import Tracker, find_in_export, host_env, wait_for_log

pytestmark = pytest.mark.e2e


def package_index_url() -> str:
    """pip's index as this host configures it, else pip's own default (never written here)."""
    got = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        check=False,
    )
    if got.returncode == 0 and got.stdout.strip().startswith("http"):
        return got.stdout.strip()
    from pip._internal.models.index import PyPI

    return str(PyPI.simple_url)


@pytest.fixture(scope="module")
def build_proxy(docker_client: Any, tracker: Tracker, images: dict[str, str]) -> Any:
    password = "b/" + secrets.token_urlsafe(10)
    proxy = docker_client.containers.run(
        images["squid"],
        detach=True,
        environment={"SQUID_USER": "builder", "SQUID_PASSWORD": password},
        labels=tracker.labels,
    )
    wait_for_log(proxy, "Accepting HTTP Socket connections")
    proxy.reload()
    ip = proxy.attrs["NetworkSettings"]["IPAddress"]
    proxy.url = f"http://builder:{password.replace('/', '%2F')}@{ip}:3128"  # type: ignore[attr-defined]
    proxy.password = password  # type: ignore[attr-defined]
    return proxy


def test_build_uses_host_ca_and_proxy_and_keeps_neither(
    docker_client: Any, tracker: Tracker, base_image: str, build_proxy: Any, tmp_path: Path
) -> None:
    extra_ca = trustme.CA(organization_name="E2E Build-only CA")
    ca_file = tmp_path / "build-ca.pem"
    extra_ca.cert_pem.write_to_path(str(ca_file))
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG CORPNET_BASE=corpnet-base\n"
        "FROM ${CORPNET_BASE}\n"
        "ARG INDEX_URL\n"
        'RUN curl -sS --fail -o /dev/null "$INDEX_URL" && echo fetched > /home/agent/fetched\n'
    )
    inputs = corpnet_build.host_inputs(
        {**host_env(), "HTTPS_PROXY": build_proxy.url, "HTTP_PROXY": build_proxy.url},
        ca_files=[ca_file],
    )
    tag = f"corpnet-e2e/build-leak:{tracker.session}"
    image_id = corpnet_build.build(
        docker_client,
        context,
        tag=tag,
        inputs=inputs,
        buildargs={"CORPNET_BASE": base_image, "INDEX_URL": package_index_url()},
        nocache=True,
        quiet=True,
    )
    try:
        # The RUN step went through the proxy, authenticated.
        access = build_proxy.exec_run(["cat", "/tmp/access.log"]).output.decode()
        assert "CONNECT" in access and "builder" in access, access

        image = docker_client.images.get(image_id)
        base = docker_client.images.get(base_image)
        # Exactly one layer on top of the base: the RUN step's, no trust layer.
        assert image.attrs["RootFS"]["Layers"][:-1] == base.attrs["RootFS"]["Layers"]
        assert image.attrs["Config"]["Env"] == base.attrs["Config"]["Env"]
        history = json.dumps(docker_client.api.history(image_id))
        config = json.dumps(image.attrs)
        for text in (history, config):
            assert str(TRUST_DIR) not in text
            assert build_proxy.password not in text and "builder" not in text
            assert "_PROXY=" not in text.upper(), text
            assert extra_ca.cert_pem.bytes().decode().splitlines()[1] not in text

        container = docker_client.containers.create(image_id, labels=tracker.labels)
        try:
            needles = [
                *needles_for(corpnet_build.pem_certificates(extra_ca.cert_pem.bytes())),
                build_proxy.password.encode(),
            ]
            assert find_in_export(container, needles) == []
            stream, _ = container.get_archive("/home/agent/fetched")
            assert b"fetched" in b"".join(stream)
        finally:
            container.remove(force=True)
    finally:
        docker_client.images.remove(tag, force=True)


def test_a_ca_copied_into_the_image_fails_the_build(
    docker_client: Any, tracker: Tracker, base_image: str, tmp_path: Path
) -> None:
    extra_ca = trustme.CA(organization_name="E2E Leaky CA")
    ca_file = tmp_path / "leaky.pem"
    extra_ca.cert_pem.write_to_path(str(ca_file))
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG CORPNET_BASE=corpnet-base\nFROM ${CORPNET_BASE}\n"
        'RUN cp "$SSL_CERT_FILE" /home/agent/copied.pem\n'
    )
    inputs = corpnet_build.host_inputs(host_env(), ca_files=[ca_file])
    with pytest.raises(corpnet_build.DataError, match=r"/home/agent/copied\.pem"):
        corpnet_build.build(
            docker_client,
            context,
            tag=f"corpnet-e2e/build-leaky:{tracker.session}",
            inputs=inputs,
            buildargs={"CORPNET_BASE": base_image},
            quiet=True,
        )
    assert not corpnet_build.image_exists(
        docker_client, f"corpnet-e2e/build-leaky:{tracker.session}"
    )


def test_keep_cache_reuses_layers_and_still_strips_the_trust_layer(
    docker_client: Any, tracker: Tracker, base_image: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG CORPNET_BASE=corpnet-base\nFROM ${CORPNET_BASE}\n"
        "RUN head -c 16 /dev/urandom > /home/agent/random\n"
    )
    before = {t for i in docker_client.images.list(name="corpnet-build-trust") for t in i.tags}
    tags = [f"corpnet-e2e/build-cache:{tracker.session}-{n}" for n in (1, 2)]
    try:
        ids = [
            corpnet_build.build(
                docker_client,
                context,
                tag=tag,
                inputs=corpnet_build.host_inputs(host_env()),
                buildargs={"CORPNET_BASE": base_image},
                quiet=True,
                keep_cache=True,
            )
            for tag in tags
        ]
        layers = [docker_client.images.get(i).attrs["RootFS"]["Layers"] for i in ids]
        assert layers[0] == layers[1]  # the RUN step came from the cache the second time
        base_layers = docker_client.images.get(base_image).attrs["RootFS"]["Layers"]
        assert layers[1][:-1] == base_layers  # and the trust layer is gone all the same
    finally:
        for tag in tags:
            if corpnet_build.image_exists(docker_client, tag):
                docker_client.images.remove(tag, force=True)
        kept = [
            i.id
            for i in docker_client.images.list(name="corpnet-build-trust")
            if not set(i.tags) & before
        ]
        corpnet_build._remove(docker_client, corpnet_build._descendants(docker_client, kept), set())
