"""Benchmark: the reachability wait against probing one host after another with curl.

    .venv/bin/python bench/reach.py [--runs 5] [--curl-runs N] [--rtt 0.2] [--late 3]
                                    [--deadline 3] [--origin nginx|python]

Set-up (issues 5 and 14): a CONNECT proxy on loopback that adds latency to
every packet it forwards (half the round trip each way, the whole round trip
before its CONNECT answer), in front of one TLS origin whose certificate covers
``*.bench.test``; the proxy maps every ``hN.bench.test`` to it, so each name is
one more "far away" host. The proxy runs in a child process (``--serve``), so
the probes and the servers do not share one interpreter (they do share the
machine's cores). The origin is nginx with two workers (TLS 1.3, session
tickets, as OpenSSL sends them): a hundred real hosts each do their own
handshake, and an origin in the proxy's Python process (``--origin python``,
issue 14's set-up) makes them queue behind each other there, which measures
the benchmark's server rather than corpnet.

Each of ``--runs`` runs measures, one after another (the order of the host
counts alternates from run to run):

- corpnet probing 1, 5 and 100 hosts in-process (``reach.check``, the code
  ``corpnet wait`` runs) and as a whole process (``python -m corpnet wait``
  with ``CORPNET_ALLOWLIST`` and ``HTTPS_PROXY``: start-up included);
- beside them, the baseline: curl probing the same hosts one after another
  (``curl --proxy ... https://hN.bench.test/``; ``--curl-runs`` runs, as 100
  hosts take a minute each);
- a proxy that starts accepting ``--late`` seconds after corpnet began waiting;
- a dead proxy (its port refuses connections) in front of 100 hosts, as a
  whole process with ``--timeout`` ``--deadline``.

Ratios are paired: each run's 5- and 100-host time over the same run's one
host. Every figure is the median over the runs, with the range (min-max).
Claims: 5 and 100 hosts <= 1.3x one host, in-process and as a whole process
(medians); the late proxy: ready <= 1.5 s after it accepts (every run); the
dead proxy: exit 69, no earlier than the deadline and no later than one second
past it, timed from the process start as a user sees it (every run).

Prints the load average before and after (the figures are only as quiet as the
machine). Needs curl and nginx. Exits 1 when a claim does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOSTS = (1, 5, 100)
MAX_RATIO = {5: 1.3, 100: 1.3}
MAX_LATE = 1.5
DEAD_SLACK = 1.0  # the dead proxy's exit: no later than this past the deadline
UNAVAILABLE = 69  # corpnet's exit code for a deadline passed (EX_UNAVAILABLE)


# --- the child: latency proxy and origin ---------------------------------------------------


async def _serve(rtt: float, late: float, workdir: Path, origin_port: int | None) -> None:
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

    servers = []
    if origin_port is None:  # --origin python
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(workdir / "leaf.pem")
        servers.append(await asyncio.start_server(origin, "127.0.0.1", 0, ssl=server_ctx))
        origin_port = servers[0].sockets[0].getsockname()[1]

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
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(rtt)  # the CONNECT request and its answer: one round trip
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", origin_port)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    servers.append(await asyncio.start_server(proxy, "127.0.0.1", 0))
    print(json.dumps({"proxy": servers[-1].sockets[0].getsockname()[1], "origin": origin_port}))
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    # Each line on stdin asks for a late proxy: bound now (so connections are
    # refused), listening `late` seconds after its port is printed.
    while await loop.run_in_executor(None, sys.stdin.readline):
        late_sock = socket.socket()
        late_sock.bind(("127.0.0.1", 0))
        print(json.dumps({"late": late_sock.getsockname()[1]}), flush=True)
        await asyncio.sleep(late)
        servers.append(await asyncio.start_server(proxy, sock=late_sock))
        print(json.dumps({"late_accepting": time.time()}), flush=True)


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()


NGINX_CONF = """
daemon off;
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {work}/leaf.pem;
        ssl_certificate_key {work}/leaf.pem;
        ssl_protocols TLSv1.2 TLSv1.3;  # Debian 12's nginx leaves TLS 1.3 out by default
        return 204;
    }}
}}
"""


@contextlib.contextmanager
def nginx_origin(work: Path) -> Iterator[int]:
    """nginx serving ``*.bench.test`` on loopback (TLS 1.3, session tickets on); its port."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if nginx is None:
        sys.exit("bench/reach.py: nginx is not installed: apt-get install nginx-light "
                 "(or run with --origin python)")  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port))
    log = work / "nginx-error.log"
    server = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work), "-e", str(log)])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            if server.poll() is not None:
                said = log.read_text().strip() if log.exists() else "no log"
                sys.exit(f"bench/reach.py: nginx exited {server.returncode}: {said}")
            time.sleep(0.05)
        else:
            sys.exit(f"bench/reach.py: nginx did not listen on 127.0.0.1:{port} within 15 s")
        yield port
    finally:
        server.terminate()
        server.wait()


# --- the parent: measurements -------------------------------------------------------------


@dataclass(frozen=True)
class World:
    proxy: int
    origin: int
    ca_file: str
    runtime: Path  # CORPNET_RUNTIME_DIR for `corpnet wait`: holds ca-bundle.pem

    @property
    def ca_pem(self) -> bytes:
        return Path(self.ca_file).read_bytes()

    def names(self, hosts: int) -> list[str]:
        return [f"h{i}.bench.test" for i in range(hosts)]


def in_process(world: World, hosts: int) -> float:
    """Seconds ``reach.check`` takes for ``hosts`` names behind the latency proxy."""
    from corpnet import reach
    from corpnet.proxy import ProxyURL

    url = ProxyURL("http", "127.0.0.1", world.proxy)
    targets = [reach.Target(name, world.origin) for name in world.names(hosts)]
    started = time.perf_counter()
    report = reach.check(targets, route=lambda h, p: url, ca_pem=world.ca_pem, timeout=30)
    took = time.perf_counter() - started
    assert report.ok, [r.diagnosis for r in report.results if not r.ok]
    return took


def _wait_process(world: World, hosts: int, proxy_port: int, *extra: str) -> tuple[int, float, str]:
    """Run ``python -m corpnet wait``: (exit code, seconds from start to exit, its output)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(world.runtime),
        "CORPNET_RUNTIME_DIR": str(world.runtime),
        "CORPNET_CONFIG_DIR": str(world.runtime / "etc"),  # none: no client identity
        "CORPNET_ALLOWLIST": " ".join(f"{n}:{world.origin}" for n in world.names(hosts)),
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}",
        "CORPNET_WAIT_TIMEOUT": "30",
    }
    if "PYTHONPATH" in os.environ:  # measure the same corpnet as in-process
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "corpnet", "wait", *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    return done.returncode, took, done.stdout + done.stderr


def whole_process(world: World, hosts: int) -> float:
    """Seconds ``corpnet wait`` takes, as a process, for ``hosts`` names."""
    code, took, output = _wait_process(world, hosts, world.proxy)
    assert code == 0, output
    return took


def curl_one_by_one(world: World, hosts: int) -> float:
    curl = shutil.which("curl")
    assert curl, "curl is not installed: apt-get install curl"
    started = time.perf_counter()
    for name in world.names(hosts):
        subprocess.run(
            [curl, "-sS", "-o", "/dev/null", "--noproxy", "", "--proxy",
             f"http://127.0.0.1:{world.proxy}", "--cacert", world.ca_file,
             f"https://{name}:{world.origin}/"],
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    return time.perf_counter() - started


def late_proxy(child: subprocess.Popen[str], world: World) -> float:
    """Seconds between the late proxy accepting and corpnet reporting ready."""
    from corpnet import reach
    from corpnet.proxy import ProxyURL

    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("late\n")
    child.stdin.flush()
    url = ProxyURL("http", "127.0.0.1", json.loads(child.stdout.readline())["late"])
    targets = [reach.Target(name, world.origin) for name in world.names(3)]
    report = reach.check(targets, route=lambda h, p: url, ca_pem=world.ca_pem, timeout=60)
    ready = time.time()
    assert report.ok, [r.diagnosis for r in report.results if not r.ok]
    accepting = json.loads(child.stdout.readline())["late_accepting"]
    return float(ready - accepting)


@dataclass(frozen=True)
class Dead:
    code: int
    took: float  # from the process start to its exit
    waited: float  # the wait's own clock (--json "elapsed")


def dead_proxy(world: World, deadline: float) -> Dead:
    """``corpnet wait --timeout deadline`` for 100 hosts behind a port that refuses."""
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = refusing.getsockname()[1]
        code, took, output = _wait_process(world, 100, port, "--timeout", f"{deadline:g}", "--json")
    start = output.find("{")
    report = json.JSONDecoder().raw_decode(output[start:])[0] if start >= 0 else {}
    return Dead(code, took, float(report.get("elapsed", float("nan"))))


@dataclass
class Series:
    """One figure over the runs."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self, unit: str, digits: int = 3) -> str:
        lo, hi = min(self.values), max(self.values)
        return f"{self.median:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def _paired(
    runs: int, measure: Callable[[int], float], label: str
) -> tuple[dict[int, Series], dict[int, Series]]:
    """Times per host count and ratios to the same run's one host, over ``runs`` runs."""
    times = {n: Series() for n in HOSTS}
    ratios = {n: Series() for n in HOSTS}
    for run in range(runs):
        order: Sequence[int] = HOSTS if run % 2 == 0 else HOSTS[::-1]
        took = {n: measure(n) for n in order}
        for n in HOSTS:
            times[n].add(took[n])
            ratios[n].add(took[n] / took[1])
        print(f"  {label} run {run + 1}: " + ", ".join(f"{n}: {took[n]:.3f}s" for n in HOSTS),
              file=sys.stderr, flush=True)  # fmt: skip
    return times, ratios


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Results:
    ours: tuple[dict[int, Series], dict[int, Series]]  # times, ratios: in-process
    process: tuple[dict[int, Series], dict[int, Series]]  # corpnet wait as a process
    curl: tuple[dict[int, Series], dict[int, Series]]
    late: Series
    dead: list[Dead]
    load_before: str


def measure(args: argparse.Namespace) -> Results:
    import trustme

    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        ca = trustme.CA(organization_name="Bench CA")
        ca.cert_pem.write_to_path(str(work / "ca.pem"))
        ca.issue_cert("*.bench.test").private_key_and_cert_chain_pem.write_to_path(
            str(work / "leaf.pem")
        )
        origin = []
        if args.origin == "nginx":
            origin = ["--origin-port", str(stack.enter_context(nginx_origin(work)))]
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(work), "--rtt", str(args.rtt),
             "--late", str(args.late), *origin],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            ports = json.loads(child.stdout.readline())
            runtime = work / "run"
            runtime.mkdir()
            shutil.copy(work / "ca.pem", runtime / "ca-bundle.pem")  # what the entrypoint writes
            world = World(ports["proxy"], ports["origin"], str(work / "ca.pem"), runtime)
            in_process(world, 1)  # warm-up: imports, first TLS context
            whole_process(world, 1)  # warm-up: the page cache
            return Results(
                ours=_paired(args.runs, lambda n: in_process(world, n), "in-process"),
                process=_paired(args.runs, lambda n: whole_process(world, n), "process"),
                curl=_paired(
                    args.curl_runs or args.runs, lambda n: curl_one_by_one(world, n), "curl"
                ),
                late=Series([late_proxy(child, world) for _ in range(args.runs)]),
                dead=[dead_proxy(world, args.deadline) for _ in range(args.runs)],
                load_before=load_before,
            )
        finally:
            child.kill()
            child.wait()


def report(args: argparse.Namespace, results: Results) -> bool:
    """Print the table; True when every claim holds."""
    print(f"round trip per host: {args.rtt * 1000:.0f} ms (latency proxy on loopback, origin "
          f"{args.origin}); {args.runs} paired runs ({args.curl_runs or args.runs} of curl), "
          "median (min-max)")  # fmt: skip
    print(f"load average (1, 5, 15 min): {results.load_before} before, {_load()} after; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    header = ("hosts", "corpnet in-process", "ratio", "corpnet wait (process)", "ratio",
              "curl one after another", "ratio", "claim")  # fmt: skip
    widths = (5, 26, 20, 26, 20, 28, 24, 0)
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    (ours, ours_ratio), (proc, proc_ratio) = results.ours, results.process
    curl, curl_ratio = results.curl
    ok = True
    for n in HOSTS:
        claim = MAX_RATIO.get(n)
        held = claim is None or (ours_ratio[n].median <= claim and proc_ratio[n].median <= claim)
        ok &= held
        claim_text = "-" if claim is None else f"<= {claim}x {'ok' if held else 'FAIL'}"
        cells = (str(n), ours[n].text(" s"), ours_ratio[n].text("x", 2), proc[n].text(" s"),
                 proc_ratio[n].text("x", 2), curl[n].text(" s"), curl_ratio[n].text("x", 2),
                 claim_text)  # fmt: skip
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    late_ok = max(results.late.values) <= MAX_LATE
    ok &= late_ok
    print(f"proxy up {args.late:g}s late: corpnet ready {results.late.text(' s')} after it "
          f"accepted (claim <= {MAX_LATE} s every run: {'ok' if late_ok else 'FAIL'})")  # fmt: skip
    dead = results.dead
    took, waited = Series([d.took for d in dead]), Series([d.waited for d in dead])
    codes = sorted({d.code for d in dead})
    low, high = args.deadline, args.deadline + DEAD_SLACK
    dead_ok = codes == [UNAVAILABLE] and all(low <= d.took <= high for d in dead)
    ok &= dead_ok
    print(f"dead proxy, 100 hosts, --timeout {args.deadline:g}: exit "
          f"{'/'.join(map(str, codes))} after {took.text(' s')} from the process start "
          f"(the wait's own clock: {waited.text(' s')}) (claim: exit {UNAVAILABLE}, "
          f"{low:g} to {high:g} s every run: {'ok' if dead_ok else 'FAIL'})")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--curl-runs",
        type=int,
        help="runs of the baseline (default --runs; 100 hosts take a minute)",
    )
    parser.add_argument("--rtt", type=float, default=0.2, help="round trip to each host, s")
    parser.add_argument("--late", type=float, default=3.0, help="the late proxy's delay, s")
    parser.add_argument("--deadline", type=float, default=3.0, help="the dead proxy's, s")
    parser.add_argument(
        "--origin",
        choices=("nginx", "python"),
        default="nginx",
        help="the TLS origin: nginx (2 workers), or an asyncio server in the proxy's process",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--origin-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.rtt, args.late, args.serve, args.origin_port))
        return 0
    return 0 if report(args, measure(args)) else 1


if __name__ == "__main__":
    sys.exit(main())
