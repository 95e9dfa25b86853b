"""corpnet-base itself: configuration, trust-store layout, lint, nothing baked in."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trustme

from corpnet import build as corpnet_build
from corpnet.build._strip import needles_for
from support.containers import REPO, Tracker, find_in_export

pytestmark = pytest.mark.e2e

ENTRYPOINT = ["/usr/bin/tini", "-g", "--", "/opt/corpnet/venv/bin/corpnet", "run"]


def test_image_configuration(docker_client: Any, base_image: str) -> None:
    config = docker_client.images.get(base_image).attrs["Config"]
    assert config["User"] == "1000"  # numeric: Kubernetes runAsNonRoot can verify it
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["Cmd"] == ["bash"]
    assert sorted(config["Env"]) == sorted(
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "BASH_ENV=/etc/corpnet/bashrc.sh"]
    )  # fmt: skip
    labels = config["Labels"]
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key


def test_layout_before_the_first_start(docker_client: Any, base_image: str) -> None:
    """With the entrypoint overridden, the image still trusts the system CAs."""
    script = (
        "stat -c '%F %u %a' /etc/ssl/certs/ca-certificates.crt; "
        "cmp /etc/ssl/certs/ca-certificates.crt /var/lib/corpnet/system-ca-bundle.pem "
        "&& echo same; "
        "stat -c '%u %a' /run/corpnet; getent passwd agent | cut -d: -f3,6; "
        "for t in python3 curl git tini corpnet; do "
        "command -v $t >/dev/null || echo missing $t; done"
    )
    out = docker_client.containers.run(
        base_image, ["-c", script], entrypoint="sh", remove=True
    ).decode()
    lines = out.splitlines()
    assert lines[0] == "regular file 0 644"  # root's trust anchor, not a link into /run
    assert lines[1] == "same"
    assert lines[2] == "0 1777"  # any uid can start; a root start takes it back
    assert lines[3] == "1000:/home/agent"
    assert "missing" not in out


def test_update_ca_certificates_in_a_derived_image_is_kept(
    docker_client: Any, base_image: str
) -> None:
    """A FROM corpnet-base image that runs update-ca-certificates keeps its added CA.

    The new system bundle differs from the pristine copy and from anything
    corpnet wrote: the next start takes it as the new original.
    """
    ca = trustme.CA()
    line = ca.cert_pem.bytes().decode().splitlines()[1]
    script = (
        "mkdir -p /usr/local/share/ca-certificates && "
        "cp /etc/corpnet-test.crt /usr/local/share/ca-certificates/added.crt && "
        "update-ca-certificates >/dev/null 2>&1; "
        "stat -c '%F %u' /etc/ssl/certs/ca-certificates.crt; "
        "corpnet trust >/dev/null 2>&1; echo trust=$?; "
        f"grep -qF '{line}' /run/corpnet/ca-bundle.pem && echo merged; "
        f"grep -qF '{line}' /var/lib/corpnet/system-ca-bundle.pem && echo pristine"
    )
    with tempfile.NamedTemporaryFile(suffix=".crt") as f:
        f.write(ca.cert_pem.bytes())
        f.flush()
        Path(f.name).chmod(0o644)
        out = docker_client.containers.run(
            base_image,
            ["-c", script],
            entrypoint="sh",
            user="0",
            remove=True,
            volumes={f.name: {"bind": "/etc/corpnet-test.crt", "mode": "ro"}},
        ).decode()
    assert out.splitlines() == ["regular file 0", "trust=0", "merged", "pristine"], out


def test_hadolint_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfiles = [REPO / "Dockerfile", *sorted((REPO / "tests/e2e/images").glob("*/Dockerfile"))]
    result = subprocess.run(
        [str(hadolint), *map(str, dockerfiles)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_build_ca_or_key_material_in_the_image(
    docker_client: Any, tracker: Tracker, base_image: str
) -> None:
    """The host's own CAs, handed to the build of corpnet-base, are nowhere in it."""
    extras = corpnet_build.host_inputs({}).extra_ders
    assert extras, "this host has no extra CA in /usr/local/share/ca-certificates to look for"
    container = docker_client.containers.create(base_image, labels=tracker.labels)
    try:
        assert find_in_export(container, needles_for(extras)) == []
    finally:
        container.remove(force=True)
