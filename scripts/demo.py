"""The main job's demo: an agent container working through a corporate-style network.

Run by ``bash scripts/demo`` (which provisions Docker, the base image and the
virtual environment first). It

1. builds ``corpnet-base`` with ``corpnet build`` (this machine's CAs reach the
   build only, as they would on a laptop behind a TLS-inspecting proxy);
2. starts a small corporate network on internal Docker networks with no route
   out: Squid with basic auth, a TLS-inspecting Squid that re-signs with its
   own CA, and an nginx API that demands a client certificate;
3. starts an agent container from an image ``FROM corpnet-base``, configured
   only through mounts and documented variables, whose command makes real
   requests with curl, Python (urllib, requests), Node and git;
4. shows what corpnet said at start and what each client got, then a second
   agent with a mistake in its setup, to show the one-line diagnosis;
5. puts a newcomer behind the TLS-inspecting proxy with nothing mounted:
   ``corpnet doctor`` names the inspector's CA by subject and fingerprint,
   ``corpnet trust --discover`` writes it, and the agent started with that
   file mounted reaches the API (the flow of the README's "First run");
6. removes every container and network it created.

The topology is the one the e2e tests use (tests/e2e), built by the same code.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from corpnet import build as corpnet_build  # noqa: E402
from support import first_run  # noqa: E402
from support.containers import API_HOST, Tracker  # noqa: E402
from support.world import World, build_images, start_world  # noqa: E402

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def show(text: str, prefix: str = "   ") -> None:
    for line in text.rstrip().splitlines():
        print(f"{prefix}{line}", flush=True)


def main() -> int:
    say("corpnet build --tag corpnet-base .   (host CAs and proxy for the build only)")
    corpnet = REPO / ".venv" / "bin" / "corpnet"
    built = subprocess.run(
        [str(corpnet), "build", "--quiet", "--tag", "corpnet-base", str(REPO)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(f"   built corpnet-base (image {built.stdout.strip()[:19]})", flush=True)
    client = corpnet_build.connect()
    tracker = Tracker(client)
    try:
        say("starting the corporate network (Squid with basic auth, TLS inspector, mTLS API)")
        images = build_images(client, "corpnet-base")
        with tempfile.TemporaryDirectory(prefix="corpnet-demo-") as tmp:
            root = Path(tmp)
            root.chmod(0o755)
            world = start_world(client, tracker, images, root)
            env = world.base_env()
            show(
                f"HTTPS_PROXY={env['HTTPS_PROXY']}\n"
                f"CORPNET_PROXY_USER={env['CORPNET_PROXY_USER']}\n"
                f"CORPNET_PROXY_PASSWORD_FILE={env['CORPNET_PROXY_PASSWORD_FILE']}\n"
                f"CORPNET_ALLOWLIST={env['CORPNET_ALLOWLIST']}\n"
                "mounted: /etc/corpnet/ca.d (corporate CA), /etc/corpnet/client (tls.crt, tls.key)",
                prefix=f"   {DIM}agent: {RESET}",
            )

            say(f"agent: curl, Python urllib and requests, Node, git -> https://{API_HOST}/ (mTLS)")
            result = world.run_agent()
            show(result.err, prefix=f"   {DIM}stderr| {RESET}")
            show(result.out, prefix="   ")
            ok = result.code == 0
            verdict = "all clients reached the API" if ok else "FAILED"
            print(f"   agent exit code {result.code}: {verdict}")

            say("the same agent without the corporate CA mounted: one line says what to do")
            bad = world.run_agent(
                env={"CORPNET_WAIT_TIMEOUT": "10"}, volumes={"/etc/corpnet/ca.d": None}
            )
            errors = [x for x in bad.err.splitlines() if "error" in x]
            show("\n".join(errors) or bad.err, prefix=f"   {DIM}stderr| {RESET}")
            print(f"   agent exit code {bad.code} (65/69/78 are documented in the README)")
            ok = ok and bad.code != 0
            ok = first_run_behind_the_inspector(world, root) and ok
    finally:
        say("cleaning up")
        tracker.cleanup()
    say("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def first_run_behind_the_inspector(world: World, root: Path) -> bool:
    """Nothing mounted, behind the TLS-inspecting proxy: find its CA, check it, mount it."""
    first_run.start_public_host(world)
    say(
        f"first run behind the TLS-inspecting proxy {first_run.INSPECTOR}, nothing mounted: "
        "corpnet doctor"
    )
    doctor = first_run.doctor(world)
    lines = doctor.out.splitlines()
    start = next((i for i, x in enumerate(lines) if x == "discovery:"), 0)
    show("\n".join(lines[start : start + 5]) or doctor.err, prefix=f"   {DIM}doctor| {RESET}")

    say(f"corpnet trust --discover {API_HOST}:8443 --out inspection-ca.pem")
    found, pem = first_run.discover(world, f"{API_HOST}:8443")
    show(found.err, prefix=f"   {DIM}trust | {RESET}")
    expected = world.pki.inspector_ca.cert_pem.bytes().decode()
    matches = pem is not None and pem.strip() == expected.strip()
    print(
        "   the fingerprint is the inspector's CA's (what IT would publish): mount it"
        if matches
        else "   FAILED: not the inspector's CA",
        flush=True,
    )

    say("the agent with only that file mounted under /etc/corpnet/ca.d")
    mounted = first_run.start_with(world, pem or "", root)
    show(mounted.out, prefix="   ")
    print(f"   agent exit code {mounted.code}", flush=True)
    return doctor.code == 1 and matches and mounted.code == 0


if __name__ == "__main__":
    sys.exit(main())
