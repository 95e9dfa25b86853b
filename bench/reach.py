"""Benchmark: the reachability wait against probing one host after another with curl.

    .venv/bin/python bench/reach.py [--runs 5] [--rtt 0.2] [--late 3]

Set-up (issue 5, "Speed"): a CONNECT proxy on loopback that adds latency to
every packet it forwards (half the round trip each way, the whole round trip
before its CONNECT answer), in front of one TLS origin whose certificate covers
``*.bench.test``; the proxy maps every ``hN.bench.test`` to it, so each name is
one more "far away" host. The servers run in a child process (``--serve``), so
the probes and the servers do not share one interpreter.

Measured, medians over ``--runs``:

- corpnet probing 1 host (``reach.check``, the code ``corpnet wait`` runs), 5
  hosts and 100 hosts; claims: 5 hosts <= 1.3 x one probe, 100 <= 1.5 x;
- beside it, curl probing the same hosts one after another (``curl --proxy
  ... https://hN.bench.test/``), the baseline;
- a proxy that starts accepting ``--late`` seconds after corpnet began
  waiting: corpnet must report ready <= 1.5 s after the proxy accepts.

Exits 1 when a claim does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_5, MAX_100, MAX_LATE = 1.3, 1.5, 1.5


# --- the child: latency proxy and origin ---------------------------------------------------


async def _serve(rtt: float, late: float, workdir: Path) -> None:
    import trustme

    ca = trustme.CA(organization_name="Bench CA")
    leaf = ca.issue_cert("*.bench.test")
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_ctx)

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers one HTTP request (for curl); a TLS-only probe just closes.
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    origin_server = await asyncio.start_server(origin, "127.0.0.1", 0, ssl=server_ctx)
    origin_port = origin_server.sockets[0].getsockname()[1]

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await src.read(65536):
                loop.call_later(rtt / 2, _write, dst, data)  # half a round trip each way
        except OSError:
            pass
        loop.call_later(rtt / 2, _close, dst)

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(rtt)  # the CONNECT request and its answer: one round trip
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", origin_port)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            return
        del head
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    proxy_server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    proxy_port = proxy_server.sockets[0].getsockname()[1]
    # The late proxy: bound now (so connections are refused), listening later.
    late_sock = socket.socket()
    late_sock.bind(("127.0.0.1", 0))
    late_port = late_sock.getsockname()[1]
    print(
        json.dumps(
            {"proxy": proxy_port, "origin": origin_port, "late": late_port, "ca": str(ca_file)}
        ),
        flush=True,
    )
    # The parent says when its late-proxy wait began; the proxy starts `late` s after.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(late)
    await asyncio.start_server(proxy, sock=late_sock)
    print(json.dumps({"late_accepting": time.time()}), flush=True)
    await asyncio.Event().wait()


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()


# --- the parent: measurements -------------------------------------------------------------


def corpnet_wait(hosts: int, proxy_port: int, origin_port: int, ca_pem: bytes) -> float:
    """Seconds ``reach.check`` takes for ``hosts`` names behind the latency proxy."""
    from corpnet import reach
    from corpnet.proxy import ProxyURL

    url = ProxyURL("http", "127.0.0.1", proxy_port)
    targets = [reach.Target(f"h{i}.bench.test", origin_port) for i in range(hosts)]
    started = time.perf_counter()
    report = reach.check(targets, route=lambda h, p: url, ca_pem=ca_pem, timeout=30)
    took = time.perf_counter() - started
    assert report.ok, [r.diagnosis for r in report.results if not r.ok]
    return took


def curl_one_by_one(hosts: int, proxy_port: int, origin_port: int, ca_file: str) -> float:
    curl = shutil.which("curl")
    assert curl, "curl is not installed"
    started = time.perf_counter()
    for i in range(hosts):
        subprocess.run(
            [curl, "-sS", "-o", "/dev/null", "--noproxy", "", "--proxy",
             f"http://127.0.0.1:{proxy_port}", "--cacert", ca_file,
             f"https://h{i}.bench.test:{origin_port}/"],
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    return time.perf_counter() - started


def late_proxy(
    child: subprocess.Popen[str], late_port: int, origin_port: int, ca_pem: bytes
) -> float:
    """Seconds between the late proxy accepting and corpnet reporting ready."""
    from corpnet import reach
    from corpnet.proxy import ProxyURL

    assert child.stdin is not None and child.stdout is not None
    url = ProxyURL("http", "127.0.0.1", late_port)
    targets = [reach.Target(f"h{i}.bench.test", origin_port) for i in range(3)]
    child.stdin.write("go\n")
    child.stdin.flush()
    report = reach.check(targets, route=lambda h, p: url, ca_pem=ca_pem, timeout=60)
    ready = time.time()
    assert report.ok
    accepting = json.loads(child.stdout.readline())["late_accepting"]
    return float(ready - accepting)


def median(runs: int, measure) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(measure() for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rtt", type=float, default=0.2, help="round trip to each host, s")
    parser.add_argument("--late", type=float, default=3.0, help="the late proxy's delay, s")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.rtt, args.late, args.serve))
        return 0

    with tempfile.TemporaryDirectory() as work:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", work, "--rtt", str(args.rtt),
             "--late", str(args.late)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            ports = json.loads(child.stdout.readline())
            ca_pem = Path(ports["ca"]).read_bytes()
            p, o = ports["proxy"], ports["origin"]
            corpnet_wait(1, p, o, ca_pem)  # warm-up: imports, first TLS context
            one = median(args.runs, lambda: corpnet_wait(1, p, o, ca_pem))
            five = median(args.runs, lambda: corpnet_wait(5, p, o, ca_pem))
            hundred = median(max(1, args.runs // 2), lambda: corpnet_wait(100, p, o, ca_pem))
            curl_one = median(args.runs, lambda: curl_one_by_one(1, p, o, ports["ca"]))
            curl_five = median(args.runs, lambda: curl_one_by_one(5, p, o, ports["ca"]))
            curl_hundred = curl_one_by_one(100, p, o, ports["ca"])
            late = late_proxy(child, ports["late"], o, ca_pem)
        finally:
            child.kill()
            child.wait()

    print(f"round trip per host: {args.rtt * 1000:.0f} ms (latency proxy on loopback)")
    print(f"{'hosts':>6}  {'corpnet (concurrent)':>22}  {'ratio':>6}  {'curl one by one':>16}  "
          f"{'ratio':>6}  {'claim':>8}")  # fmt: skip
    ok = True
    for n, ours, theirs, claim in (
        (1, one, curl_one, None),
        (5, five, curl_five, MAX_5),
        (100, hundred, curl_hundred, MAX_100),
    ):
        ratio = ours / one
        held = claim is None or ratio <= claim
        ok &= held
        claim_text = "-" if claim is None else f"<= {claim}x {'ok' if held else 'FAIL'}"
        print(f"{n:>6}  {ours:>21.3f}s  {ratio:>5.2f}x  {theirs:>15.3f}s  "
              f"{theirs / curl_one:>5.2f}x  {claim_text}")  # fmt: skip
    late_ok = late <= MAX_LATE
    ok &= late_ok
    print(
        f"proxy up {args.late:g}s late: corpnet ready {late:.3f}s after it accepted "
        f"(claim <= {MAX_LATE}s {'ok' if late_ok else 'FAIL'})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
