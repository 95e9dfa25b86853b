"""The gateway's corners of the e2e world: a Kerberos proxy, an NTLM proxy, PAC and WPAD.

Added to the topology of :mod:`support.world` (see tests/e2e/conftest.py):

    front: agent ─┬─ proxy-krb.corp.test, kdc.corp.test ──┐
                  │  (MIT KDC + Squid, negotiate_kerberos) │
                  ├─ proxy-ntlm.corp.test ─────────────────┤  back: api.corp.test
                  │  (Squid + Samba ntlm_auth, no DC)      │
                  ├─ proxy.corp.test (Squid, Basic) ───────┘
                  └─ pac.corp.test, wpad.corp.test (nginx: PAC files; dnsmasq: DNS)

Every secret the gateway holds is a *canary*: a random value the tests look
for wherever the agent can read (its environment, env.sh, files, other
processes, output). Password files are mounted 0400 root, the way the docs
tell users to mount them for a root start with ``CORPNET_USER``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.containers import (
    IMAGES,
    Result,
    archive_files,
    content_hash,
    ensure_image,
    logs,
    wait_for_log,
)
from support.proxy_harness import node_with_env_proxy
from support.world import World

REALM = "CORP.TEST"
KRB_PROXY = "proxy-krb.corp.test"
# The same Squid under names whose HTTP/ principal Squid's keytab lacks (stale)
# or the KDC does not know (unknown): see tests/e2e/images/krb-squid/start.sh.
KRB_PROXY_STALE = "proxy-krb-stale.corp.test"
KRB_PROXY_UNKNOWN = "proxy-krb-unknown.corp.test"
NTLM_PROXY = "proxy-ntlm.corp.test"
PAC_HOST = "pac.corp.test"
# A port nothing listens on, on a host that exists: connections are refused at once.
DEAD_PROXY = "inspector.corp.test:3999"
ALICE = f"alice@{REALM}"  # a password login
BOT = f"bot@{REALM}"  # a keytab login
CAROL = "carol"  # the NTLM user (empty domain: the rig has no domain controller)
NODE24 = "/opt/node24/bin/node"

# PAC files served by pac.corp.test (nginx). The dead proxy comes first in
# failover.pac: the gateway must skip it and take the live one.
PAC_FILES = {
    "failover.pac": f"""
function FindProxyForURL(url, host) {{
  return "PROXY {DEAD_PROXY}; PROXY proxy.corp.test:3128";
}}
""",
    "direct.pac": f"""
function FindProxyForURL(url, host) {{
  if (dnsDomainIs(host, "{PAC_HOST}")) return "DIRECT";
  return "PROXY proxy.corp.test:3128";
}}
""",
    "throws.pac": """
function FindProxyForURL(url, host) {
  throw new Error("e2e: this PAC file is broken on purpose");
}
""",
    "wpad.dat": """
function FindProxyForURL(url, host) {
  if (isPlainHostName(host)) return "DIRECT";
  return "PROXY proxy.corp.test:3128";
}
""",
    "direct.txt": "direct-ok\n",
}


def krb5_conf(kdc: str = "kdc.corp.test", *, timesync: bool = True) -> str:
    """An /etc/krb5.conf for the agent container (the gateway's Kerberos library reads it)."""
    # MIT corrects a skewed clock from the KDC's reply unless told not to.
    sync = "" if timesync else "    kdc_timesync = 0\n"
    return (
        "[libdefaults]\n"
        f"    default_realm = {REALM}\n"
        "    dns_lookup_kdc = false\n"
        "    dns_lookup_realm = false\n"
        "    # Docker's DNS has no PTR records for network aliases: never canonicalise.\n"
        "    rdns = false\n"
        "    dns_canonicalize_hostname = false\n"
        f"{sync}"
        "[realms]\n"
        f"    {REALM} = {{\n        kdc = {kdc}\n    }}\n"
        "[domain_realm]\n"
        f"    .corp.test = {REALM}\n"
        f"    corp.test = {REALM}\n"
    )


@dataclass
class GatewayRigs:
    """The running rigs, the agent-side files for them, and the canaries."""

    world: World
    images: dict[str, str]
    root: Path
    krb: Any
    ntlm: Any
    pac: Any
    pac_ip: str
    node: str  # host path of a Node >= 22.21 (fetch with NODE_USE_ENV_PROXY)
    passwords: dict[str, str] = field(default_factory=dict)  # file name -> value
    keytab: bytes = b""

    @property
    def canaries(self) -> list[bytes]:
        """Every secret the gateway may hold: none may reach the agent."""
        return [
            *(p.encode() for p in self.passwords.values()),
            self.world.proxy_password.encode(),
            self.keytab,
        ]

    def file(self, name: str) -> str:
        return str(self.root / name)

    def agent_env(self, **extra: str | None) -> dict[str, str | None]:
        """A root start that drops to uid 1000, with the gateway on, over the Basic Squid."""
        return {
            "CORPNET_USER": "1000",
            "CORPNET_GATEWAY": "on",
            "CORPNET_PROXY_PASSWORD_FILE": "/run/secrets/basic-password",
            "E2E_NODE": NODE24,
            **extra,
        }

    def agent_volumes(self, **extra: str | None) -> dict[str, str | None]:
        """Root-only secrets at /run/secrets, krb5.conf, and Node 24 for fetch."""
        return {
            "/run/secrets": self.file("secrets"),
            "/etc/krb5.conf": self.file("krb5.conf"),
            NODE24: self.node,
            **extra,
        }

    def proxy_log(self, rig: Any) -> str:
        """The access log of a rig's Squid (or the world's, ``rig=None``)."""
        container = rig if rig is not None else self.world.proxy
        _, out = container.exec_run(["cat", "/tmp/access.log"])
        text: str = out.decode(errors="replace")
        return text


@dataclass
class GatewayRun:
    """What a gateway agent did, what it could read, and what the gateway logged."""

    result: Result
    egress: list[dict[str, Any]]
    scan: dict[str, Any]
    proxy_logs: dict[str, str]  # rig name -> access-log lines written during this run

    def connect(self, target: str) -> str:
        for line in self.result.out.splitlines():
            if line.startswith(f"E2E-CONNECT {target}: "):
                return line.split(": ", 1)[1]
        raise AssertionError(f"no CONNECT probe of {target}:\n{self.result}")


def build_gateway_images(docker_client: Any, images: Mapping[str, str]) -> dict[str, str]:
    """The rigs' images, and the gateway agent image FROM the world's agent image."""
    tags = {}
    for name in ("krb-squid", "ntlm-squid", "pac-dns"):
        tags[name] = ensure_image(docker_client, name, IMAGES / name, content_hash([IMAGES / name]))
    tags["agent-gw"] = ensure_image(
        docker_client,
        "agent-gw",
        IMAGES / "agent-gw",
        content_hash([IMAGES / "agent-gw"], images["agent"]),
        buildargs={"AGENT_IMAGE": images["agent"]},
    )
    return tags


def _root_only(path: Path, data: bytes) -> None:
    """A secret as the docs say to mount it for a root start: root's, 0400."""
    path.write_bytes(data)
    path.chmod(0o400)


def start_gateway_rigs(world: World, images: Mapping[str, str]) -> GatewayRigs:
    """Start the Kerberos, NTLM and PAC rigs; write the agent-side files under world.root/gw."""
    root = world.root / "gw"
    (root / "secrets").mkdir(parents=True)
    root.chmod(0o755)
    (root / "secrets").chmod(0o755)
    passwords = {
        "alice-password": "krb-canary-" + secrets.token_urlsafe(12),
        "carol-password": "ntlm-canary-" + secrets.token_urlsafe(12),
        "wrong-password": "not-the-password-" + secrets.token_urlsafe(6),
    }
    for name, value in passwords.items():
        _root_only(root / "secrets" / name, value.encode() + b"\n")
    _root_only(root / "secrets" / "basic-password", world.proxy_password.encode() + b"\n")
    for name, text in {
        "krb5.conf": krb5_conf(),
        "krb5-no-kdc.conf": krb5_conf("127.0.0.1"),  # nothing listens on port 88 there
        "krb5-no-timesync.conf": krb5_conf(timesync=False),
    }.items():
        (root / name).write_text(text)
        (root / name).chmod(0o644)
    pac_dir = root / "pac"
    pac_dir.mkdir(mode=0o755)
    for name, text in PAC_FILES.items():
        (pac_dir / name).write_text(text)
        (pac_dir / name).chmod(0o644)

    krb = world.start_service(
        "krb",
        images["krb-squid"],
        [],
        environment={"KRB_ALICE_PASSWORD": passwords["alice-password"]},
    )
    ntlm = world.start_service(
        "ntlm",
        images["ntlm-squid"],
        [],
        environment={"NTLM_USER": CAROL, "NTLM_PASSWORD": passwords["carol-password"]},
    )
    pac = world.client.containers.create(
        images["pac-dns"],
        name=f"corpnet-e2e-{world.tracker.session}-pac",
        labels=world.tracker.labels,
        network=world.front.name,
        networking_config={
            world.front.name: world.client.api.create_endpoint_config(aliases=[PAC_HOST])
        },
        volumes={str(pac_dir): {"bind": "/srv/pac", "mode": "ro"}},
    )
    world.containers["pac"] = pac
    world.front.connect(
        krb, aliases=["kdc.corp.test", KRB_PROXY, KRB_PROXY_STALE, KRB_PROXY_UNKNOWN]
    )
    world.front.connect(ntlm, aliases=[NTLM_PROXY])
    for c in (krb, ntlm, pac):
        c.start()
    wait_for_log(krb, "Accepting HTTP Socket connections")
    wait_for_log(ntlm, "Accepting HTTP Socket connections")
    wait_for_log(pac, "start worker process")
    pac.reload()
    pac_ip = pac.attrs["NetworkSettings"]["Networks"][world.front.name]["IPAddress"]

    # The client keytab the KDC made at start, copied out (never committed).
    keytab = archive_files(krb, "/out/bot.keytab")
    ((_, (_, data)),) = keytab.items()
    _root_only(root / "bot.keytab", data)
    return GatewayRigs(
        world, dict(images), root, krb, ntlm, pac, pac_ip, node_with_env_proxy(), passwords, data
    )


def run_gateway_agent(
    rigs: GatewayRigs,
    *,
    env: Mapping[str, str | None] | None = None,
    volumes: Mapping[str, str | None] | None = None,
    hold: bool = True,
    timeout: float = 150,
    user: str = "0",
    **kwargs: Any,
) -> GatewayRun:
    """Start a gateway agent as root (``CORPNET_USER=1000``) and return what it did.

    With ``hold``, the agent's command stays up after its checks, so the test
    can look at the live container: what uid 1000 can read while the gateway
    runs (scan.py), and the gateway's audit log. Without it (the failures),
    the container runs to its exit.
    """
    world = rigs.world
    rigs_logs = {"basic": world.proxy, "krb": rigs.krb, "ntlm": rigs.ntlm}
    before = {name: len(rigs.proxy_log(c)) for name, c in rigs_logs.items()}
    merged_env = {**rigs.agent_env(), **(env or {})}
    if hold:
        merged_env["E2E_HOLD"] = "1"
    container = world.create_agent(
        image=rigs.images["agent-gw"],
        command=["/opt/e2e/gw/check.sh"],
        env=merged_env,
        volumes={**rigs.agent_volumes(), **(volumes or {})},
        user=user,
        **kwargs,
    )
    try:
        container.start()
        started = time.monotonic()
        scan: dict[str, Any] = {}
        egress: list[dict[str, Any]] = []
        if hold:
            _wait_done(container, timeout)
            code = 0
            needles = ",".join(c.hex() for c in rigs.canaries)
            done = container.exec_run(
                ["python3", "/opt/e2e/gw/scan.py"],
                user="1000",
                environment={"E2E_NEEDLES": needles},
            )
            assert done.exit_code == 0, done.output.decode(errors="replace")
            scan = json.loads(done.output.decode().splitlines()[-1])
            _, raw = container.exec_run(["cat", "/run/corpnet/egress.log"], user="0")
            egress = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
            out, err = logs(container)
            code = 0 if "E2E-DONE 0" in out else 1
        else:
            status = container.wait(timeout=timeout)
            code = int(status["StatusCode"])
            out, err = logs(container)
            files = archive_files(container, "/run/corpnet")
            raw = files.get("corpnet/egress.log", (0, b""))[1]
            egress = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        seconds = time.monotonic() - started
    finally:
        container.remove(force=True)
    proxy_logs = {name: rigs.proxy_log(c)[before[name] :] for name, c in rigs_logs.items()}
    return GatewayRun(Result(code, out, err, seconds), egress, scan, proxy_logs)


def _wait_done(container: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if "E2E-DONE" in container.logs(stdout=True, stderr=False).decode(errors="replace"):
            return
        if container.status == "exited":
            break
        time.sleep(0.3)
    out, err = logs(container)
    raise AssertionError(
        f"the agent did not finish its checks within {timeout}s "
        f"(status {container.status}):\n--- stdout\n{out}\n--- stderr\n{err}"
    )
