"""A newcomer behind the e2e topology's TLS-inspecting proxy, with nothing mounted.

Shared by tests/e2e/test_first_run_discovery.py and scripts/demo.py. The
inspector re-signs every site it is asked for; a public host it re-signs is
the evidence that its CA is an inspecting proxy's and not the API server's
own. The topology has no route out, so the public host is played by a second
nginx on the back network under the name ``api.anthropic.com``, with a
certificate from the corporate CA the inspector trusts upstream.
"""

from __future__ import annotations

import re
from pathlib import Path

from support.containers import API_HOST, Result, wait_for_log
from support.world import World

INSPECTOR = "http://inspector.corp.test:3128"
PUBLIC_HOST = "api.anthropic.com"
# The agent's settings: the inspector as its proxy (no login), the API's open port.
ENV: dict[str, str | None] = {
    "HTTPS_PROXY": INSPECTOR,
    "HTTP_PROXY": INSPECTOR,
    "CORPNET_PROXY_USER": None,
    "CORPNET_PROXY_PASSWORD_FILE": None,
    "CORPNET_ALLOWLIST": f"{API_HOST}:8443",
    "CORPNET_ALLOWLIST_OPTIONAL": f"{PUBLIC_HOST}:8443",
    "E2E_URL": f"https://{API_HOST}:8443/",
    "E2E_TOOLS": "curl urllib requests node",
}
NOTHING: dict[str, str | None] = {"/etc/corpnet/ca.d": None, "/etc/corpnet/client": None}
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", re.S)


def start_public_host(world: World) -> None:
    """Start the stand-in for the public API (once per topology)."""
    if "public" in world.containers:
        return
    site = world.root / "public"
    site.mkdir(mode=0o755)
    cert = world.pki.corp_ca.issue_cert(PUBLIC_HOST)
    cert.cert_chain_pems[0].write_to_path(str(site / "server.pem"))
    cert.private_key_pem.write_to_path(str(site / "server.key"))
    world.pki.client_ca.cert_pem.write_to_path(str(site / "client-ca.pem"))
    for f in site.iterdir():
        f.chmod(0o644)
    # The API's nginx image: its server names do not matter to the inspector,
    # which checks the certificate (issued for PUBLIC_HOST) against the corporate CA.
    public = world.start_service(
        "public",
        world.images["nginx"],
        [PUBLIC_HOST],
        volumes={str(site): {"bind": "/run/api", "mode": "ro"}},
    )
    public.start()
    wait_for_log(public, "start worker process")


def doctor(world: World) -> Result:
    """``corpnet doctor`` in an agent container with nothing mounted."""
    return world.run_agent(
        env=ENV, volumes=NOTHING, entrypoint=["corpnet"], command=["doctor", "--timeout", "15"]
    )


def discover(world: World, target: str) -> tuple[Result, str | None]:
    """``corpnet trust --discover TARGET`` in an agent; its report (stderr) and the PEM written."""
    result = world.run_agent(
        env=ENV,
        volumes=NOTHING,
        entrypoint=["sh", "-c"],
        command=[
            f"corpnet trust --discover {target} --out /tmp/discovered.pem >&2 "
            "&& cat /tmp/discovered.pem"
        ],
    )
    found = _PEM.search(result.out)
    return result, found.group(0) if found else None


def start_with(world: World, pem: str, root: Path) -> Result:
    """The agent's normal start with only ``pem`` mounted under /etc/corpnet/ca.d."""
    ca_dir = root / "discovered-ca.d"
    ca_dir.mkdir(mode=0o755)
    (ca_dir / "discovered.pem").write_text(pem)
    (ca_dir / "discovered.pem").chmod(0o644)
    root.chmod(0o755)
    return world.run_agent(
        env=ENV, volumes={"/etc/corpnet/ca.d": str(ca_dir), "/etc/corpnet/client": None}
    )
