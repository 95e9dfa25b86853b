"""The proxy password stays with the gateway: the agent reaches the API and never reads it.

`corpnet run` as root with CORPNET_USER=4242 and CORPNET_GATEWAY=on, a real
Squid with Basic auth, a TLS origin on 127.0.0.2, the password in a root-only
file. The agent (uid 4242, no supplementary group) fetches the origin with
curl through the gateway, then looks for the canary password everywhere it
can: its environment, env.sh, every file it can read under the runtime
directory, every process's environ and memory. Squid's log proves the
authenticated CONNECT.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from support.env import host_environ
from support.gateway import stop_gateways
from support.servers import Origin, Server
from support.squid import squid_logs

CANARY = "canary-Gw-7:@/%x"
AGENT = "4242"
ORIGIN = "127.0.0.2"

# Run as the agent: fetch through the gateway, then hunt for the password.
HUNT = r"""
set -u
probe="${PROBE_A}${PROBE_B}"  # never whole in any environment
echo "uid=$(id -u)"
curl -sS --max-time 20 -o /dev/null -w 'fetch=%{http_code}\n' "https://$ORIGIN_NETLOC/"
env | grep -c -F -- "$probe" | sed 's/^/env_hits=/'
cat "$PASSWORD_FILE" >/dev/null 2>&1 && echo password_file=readable || echo password_file=denied
hits=0
for f in $(find "$CORPNET_RUNTIME_DIR" -type f 2>/dev/null); do
    if grep -q -F -- "$probe" "$f" 2>/dev/null; then hits=$((hits+1)); echo "hit $f"; fi
done
echo "runtime_hits=$hits"
procs=0
for p in /proc/[0-9]*; do
    if grep -a -q -F -- "$probe" "$p/environ" 2>/dev/null; then procs=$((procs+1)); echo "in $p"; fi
    if [ "$(stat -c %u "$p" 2>/dev/null)" != "$(id -u)" ]; then
        (: < "$p/environ") 2>/dev/null && echo "environ readable $p"
        (: < "$p/mem") 2>/dev/null && echo "mem readable $p"
    fi
done
echo "proc_hits=$procs"
"""


@pytest.fixture(name="box")
def box_fixture() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("this test starts corpnet as root and plays the agent as uid 4242: run as root")
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        stop_gateways(base / "run")
        shutil.rmtree(base, ignore_errors=True)


def test_agent_reaches_the_origin_and_never_reads_the_password(box: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert(ORIGIN)
    origin = Server(Origin(leaf, http_status=200).handler, host=ORIGIN)
    (box / "etc" / "ca.d").mkdir(parents=True)
    ca.cert_pem.write_to_path(str(box / "etc" / "ca.d" / "corp.pem"))
    secret = box / "secret"
    secret.mkdir(mode=0o700)
    password_file = secret / "proxy-password"
    password_file.write_text(CANARY + "\n")
    password_file.chmod(0o400)
    try:
        with squid_logs(auth="basic", password=CANARY) as sq:
            env = host_environ()
            env.update(
                CORPNET_CONFIG_DIR=str(box / "etc"),
                CORPNET_RUNTIME_DIR=str(box / "run"),
                CORPNET_SYSTEM_STORE="off",
                CORPNET_WAIT="off",
                CORPNET_USER=f"{AGENT}:{AGENT}",
                CORPNET_GATEWAY="on",
                HTTPS_PROXY=f"http://127.0.0.1:{sq.port}",
                CORPNET_PROXY_USER="alice",
                CORPNET_PROXY_PASSWORD_FILE=str(password_file),
                ORIGIN_NETLOC=f"{ORIGIN}:{origin.port}",
                PASSWORD_FILE=str(password_file),
                # Split, so no environment (this test's included) ever holds it whole.
                PROBE_A=CANARY[:6],
                PROBE_B=CANARY[6:11],  # "canary-Gw-7": raw and percent-encoded alike
            )
            done = subprocess.run(
                [sys.executable, "-m", "corpnet", "run", "--", "sh", "-c", HUNT],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            log = sq.access_log()
    finally:
        origin.close()
    out = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out["uid"] == AGENT
    assert out["fetch"] == "200", done.stdout + done.stderr
    assert f"CONNECT {ORIGIN}:{origin.port} alice" in log  # the gateway logged in for it
    assert out["env_hits"] == "0"
    assert out["password_file"] == "denied"
    assert out["runtime_hits"] == "0", done.stdout
    assert out["proc_hits"] == "0", done.stdout
    assert "readable /proc" not in done.stdout, done.stdout
    assert CANARY not in done.stdout + done.stderr
    env_sh = (box / "run" / "env.sh").read_text()
    assert CANARY not in env_sh
    assert "HTTPS_PROXY='http://127.0.0.1:3128'" in env_sh
