"""Benchmark: what the egress lockdown costs a start, and a captured connection.

    .venv/bin/python bench/lockdown.py [--runs 11] [--pairs 200]

Two figures, each beside its bound, on the host's own kernel in two network
namespaces the benchmark makes (tests/support/netns.py: a dual-stack veth,
Squid with Basic auth and a TLS origin on the far side):

1. Installing and verifying the rules (``corpnet.egress.install``: one ``nft -f``
   transaction, then the checks as the agent's uid), median of ``--runs`` with
   its spread; bound 100 ms of the start.
2. Time to first byte of an HTTPS request captured by the lockdown (the client
   has no proxy variable: its connection to the origin is redirected to the
   gateway) against the same request sent explicitly to the gateway
   (``HTTPS_PROXY``): the baseline is what the gateway costs anyway, so the
   ratio is what capture adds. Paired, alternating, median of ``--pairs``;
   bound 1.2x.

Needs root (namespaces, nftables). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

import trustme  # noqa: E402

from support.env import host_environ  # noqa: E402
from support.netns import NET4, namespace_pair  # noqa: E402
from support.squid import squid_logs  # noqa: E402

INSTALL = """
import json, sys, time
from corpnet import egress
from corpnet.config import HostPort
times = []
for _ in range(int(sys.argv[1])):
    start = time.perf_counter()
    egress.install(environ={}, gateway_uid=65534, capture_port=3129, agent=(4242, 4242),
                   upstream=[HostPort("10.77.0.2", 3128)], allowlist=[HostPort("10.77.0.2")])
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""

# Run as the agent under lockdown (Debian's python3: the venv's is not the agent's to read).
TTFB = r"""
import json, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
def once(explicit):
    start = time.perf_counter()
    if explicit:
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(b"CONNECT 10.77.0.2:443 HTTP/1.1\r\nHost: 10.77.0.2:443\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
    else:
        s = socket.create_connection(("10.77.0.2", 443))
    t = ctx.wrap_socket(s, server_hostname="10.77.0.2")
    t.sendall(b"GET / HTTP/1.1\r\nHost: 10.77.0.2\r\n\r\n")
    t.recv(1)
    took = time.perf_counter() - start
    t.close()
    return took
pairs = []
for i in range(int(sys.argv[1])):
    order = (True, False) if i % 2 else (False, True)
    got = {e: once(e) for e in order}
    pairs.append([got[True], got[False]])
print(json.dumps(pairs))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="rule installations measured")
    parser.add_argument("--pairs", type=int, default=200, help="paired TTFB samples")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/lockdown.py needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    box = Path(tempfile.mkdtemp(dir="/tmp"))
    box.chmod(0o755)
    ca = trustme.CA()
    leaf = ca.issue_cert(NET4)
    leaf.cert_chain_pems[0].write_to_path(str(box / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(box / "key.pem"))
    ca.cert_pem.write_to_path(str(box / "ca.pem"))
    (box / "ca.pem").chmod(0o644)
    server_script = REPO / "tests" / "support" / "leak_server.py"
    with namespace_pair() as pair:
        server = subprocess.Popen(
            pair.exec(pair.net, sys.executable, str(server_script), str(box / "cert.pem"),
                      str(box / "key.pem")),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            server.stdout.readline()
            with squid_logs(auth="basic", listen=NET4, netns=pair.net, port=3128):
                installs = json.loads(
                    subprocess.run(
                        pair.exec(pair.agent, sys.executable, "-c", INSTALL, str(args.runs)),
                        capture_output=True, text=True, check=True, timeout=300,
                    ).stdout
                )  # fmt: skip
                env = host_environ()
                env.update(
                    CORPNET_CONFIG_DIR=str(box / "etc"), CORPNET_RUNTIME_DIR=str(box / "run"),
                    CORPNET_SYSTEM_STORE="off", CORPNET_WAIT="off", CORPNET_USER="4242:4242",
                    CORPNET_ALLOWLIST=NET4, HTTPS_PROXY=f"http://{NET4}:3128",
                    CORPNET_PROXY_USER="alice", CORPNET_PROXY_PASSWORD="s3cret",  # noqa: S106
                    CORPNET_EGRESS="lockdown", CORPNET_QUIET="1",
                )  # fmt: skip
                done = subprocess.run(
                    pair.exec(pair.agent, sys.executable, "-m", "corpnet", "run", "--",
                              "/usr/bin/python3", "-c", TTFB, str(args.pairs), str(box / "ca.pem")),
                    env=env, capture_output=True, text=True, timeout=600, check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    print(done.stdout, done.stderr, file=sys.stderr)
                    return 1
                pairs = json.loads(done.stdout)
        finally:
            server.kill()
            server.wait()
            if server.stdout is not None:
                server.stdout.close()
    ms = sorted(t * 1000 for t in installs)
    install = statistics.median(ms)
    explicit = statistics.median(p[0] for p in pairs) * 1000
    captured = statistics.median(p[1] for p in pairs) * 1000
    ratios = sorted(p[1] / p[0] for p in pairs)
    ratio = statistics.median(ratios)
    q1, q3 = ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]
    ok_install, ok_ratio = install <= 100, ratio <= 1.2
    print(
        f"2 CPUs; load average {os.getloadavg()[0]:.2f}; {args.runs} installs, {args.pairs} pairs"
    )
    print(f"{'':44s}{'measured':>28s}  bound")
    print(f"{'rules installed and verified, median':44s}{install:>22.1f} ms"
          f"  <= 100 ms {'ok' if ok_install else 'FAIL'}")  # fmt: skip
    print(f"{'  spread (min..max)':44s}{ms[0]:>14.1f}..{ms[-1]:.1f} ms")
    print(f"{'TTFB explicit via the gateway, median':44s}{explicit:>22.2f} ms  (baseline)")
    print(f"{'TTFB captured (no proxy variable), median':44s}{captured:>22.2f} ms")
    print(f"{'  captured / explicit, paired median (IQR)':44s}{ratio:>12.2f}x ({q1:.2f}..{q3:.2f})"
          f"  <= 1.2x {'ok' if ok_ratio else 'FAIL'}")  # fmt: skip
    print("OK" if ok_install and ok_ratio else "FAIL")
    return 0 if ok_install and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
