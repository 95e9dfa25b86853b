"""Benchmark: the gateway in front of Squid, against Squid itself and against px-proxy.

    .venv/bin/python bench/gateway.py [--pairs 300] [--rounds 15] [--mb 200] [--tunnels 100]
                                      [--bursts 3] [--no-px] [--src WORKTREE]

Set-up (issue 12, "Speed"): Debian's Squid with Basic authentication on
loopback (tests/support/squid.py), two origins on 127.0.0.2 in a child process
(``--serve``; not 127.0.0.1, which corpnet always sends DIRECT): a TLS origin
with a trustme certificate that answers ``GET /<n>`` with n bytes, and a raw
bulk server that sends the number of bytes asked for on its first line. Three
paths to them, each a separate process as users run it:

- **direct**: the client talks to Squid itself, Basic credentials sent at once
  (what a client given ``http://alice:s3cret@squid`` does); the baseline;
- **corpnet**: ``corpnet gateway`` in the foreground (``CORPNET_GATEWAY_LISTEN``,
  ``HTTPS_PROXY`` to Squid, ``CORPNET_PROXY_USER``/``CORPNET_PROXY_PASSWORD``);
  the client sends no credentials;
- **px**: px-proxy, the tool users compare with, from the package registry
  into a virtual environment of the same interpreter under bench/out/
  (``--proxy`` Squid, ``--username``, ``--auth=BASIC``, ``PX_PASSWORD``), as
  it installs: libcurl from the pymcurl wheel, uvloop.

Measured, the paths taking turns in a rotating order so a load spike hits each
alike:

- time to first byte: CONNECT, TLS handshake, one GET, first byte of the
  answer; per pair, the path's time minus direct's; median over ``--pairs``
  with the interquartile range. Bound: corpnet adds <= 1 ms;
- throughput: ``--mb`` MB down one CONNECT tunnel from the bulk server; per
  round, the path's rate over direct's; median over ``--rounds`` with min-max.
  Bound: corpnet >= 50 % of direct;
- ``--tunnels`` concurrent tunnels (CONNECT, TLS, GET of 64 KiB, each checked),
  ``--bursts`` times. Bound: no error through corpnet, here or above (a failed
  sample, a transfer cut short: each is counted, not fatal, and left out of
  the pairs);
- peak RSS of the proxy process (VmHWM in /proc/<pid>/status) after all of
  it. Bound: corpnet <= 30 MB;
- corpnet against px on each figure: corpnet must beat it.

Squid's access log must show every tunnel, logged in as alice: a path that went
around Squid would measure nothing. Exits 1 when a bound is missed.
``--src`` measures the gateway of another checkout (its entrypoint/ first on
PYTHONPATH), to weigh a proposed change on the same run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import socketserver
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPNET = Path(sys.executable).parent / "corpnet"
PX_VENV = REPO / "bench" / "out" / "px-venv"
PX_VERSION = "0.13.0"  # pinned: a figure names the version it measured
ORIGIN_HOST = "127.0.0.2"  # corpnet sends localhost, 127.0.0.1 and ::1 DIRECT, whatever NO_PROXY
USER, PASSWORD = "alice", "s3cret"  # tests/support/squid.py's defaults
TIMEOUT = 30.0  # every socket operation; a stuck path fails the run instead of hanging it
SMALL = 64 * 1024  # the body each concurrent tunnel fetches

MAX_OVERHEAD_MS = 1.0
MIN_THROUGHPUT = 0.50
MAX_ERRORS = 0
MAX_RSS_MB = 30.0


# --- the child: origins on 127.0.0.2 ------------------------------------------------------


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # a burst of concurrent tunnels arrives at once


def _serve(workdir: Path) -> None:
    import trustme

    ca = trustme.CA(organization_name="Bench CA")
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(ORIGIN_HOST).configure_cert(tls)
    block = memoryview(bytes(1 << 20))

    class Origin(socketserver.BaseRequestHandler):
        """One TLS request: ``GET /<n>`` answered with n bytes, then close."""

        def handle(self) -> None:
            with contextlib.suppress(OSError):
                self.request.settimeout(TIMEOUT)
                conn = tls.wrap_socket(self.request, server_side=True)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 8192:
                    if not (data := conn.recv(4096)):
                        return
                    head += data
                size = min(int(head.split(b" ", 2)[1][1:] or b"0"), 1 << 24)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size
                )
                _send(conn, block, size)
                conn.close()

    class Bulk(socketserver.StreamRequestHandler):
        """Raw bytes: the first line asks for n, n are sent, then close."""

        def handle(self) -> None:
            with contextlib.suppress(OSError, ValueError):
                self.request.settimeout(TIMEOUT)
                _send(self.request, block, int(self.rfile.readline(32)))

    servers = [_Server((ORIGIN_HOST, 0), Origin), _Server((ORIGIN_HOST, 0), Bulk)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = {"tls": servers[0].server_address[1], "bulk": servers[1].server_address[1]}
    print(json.dumps({**ports, "ca": str(workdir / "ca.pem")}), flush=True)
    sys.stdin.readline()  # the parent closes our stdin (or dies): stop


def _send(sock: socket.socket, block: memoryview, size: int) -> None:
    while size > 0:
        sock.sendall(block[: min(size, len(block))])
        size -= len(block)


# --- the paths and the clients ------------------------------------------------------------


@dataclass
class Path_:  # noqa: N801 - "Path" is pathlib's
    """A way to the origins: a proxy port, and the header the client must send."""

    name: str
    port: int
    authorization: str | None = None
    pid: int | None = None  # the proxy process, for its RSS and CPU (None: Squid itself)
    tunnels: int = 0  # tunnels that ended well: Squid must have logged each


def _connect(path: Path_, target: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", path.port), timeout=TIMEOUT)
    try:
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if path.authorization:
            lines.append(f"Proxy-Authorization: {path.authorization}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        _established(sock, path.name)
    except BaseException:
        sock.close()
        raise
    return sock


def _established(sock: socket.socket, name: str) -> None:
    """Read the answer to CONNECT, one byte at a time (nothing past it); raise unless 200."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        if not (data := sock.recv(1)) or len(head) > 8192:
            raise ConnectionError(f"{name}: no answer to CONNECT ({head[:80]!r})")
        head += data
    if head.split(b" ", 2)[1] != b"200":
        raise ConnectionError(f"{name}: {head.splitlines()[0].decode(errors='replace')}")


def fetch(path: Path_, port: int, tls: ssl.SSLContext, size: int = 0) -> float:
    """CONNECT, TLS handshake, ``GET /<size>``: seconds to the answer's first byte."""
    started = time.perf_counter()
    with (
        _connect(path, f"{ORIGIN_HOST}:{port}") as raw,
        tls.wrap_socket(raw, server_hostname=ORIGIN_HOST) as conn,
    ):
        conn.sendall(f"GET /{size} HTTP/1.1\r\nHost: {ORIGIN_HOST}\r\n\r\n".encode())
        data = conn.recv(65536)
        first = time.perf_counter() - started
        while b"\r\n\r\n" not in data and (more := conn.recv(65536)):
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        received = len(body)
        while received < size and (more := conn.recv(65536)):
            received += len(more)
        if not head.startswith(b"HTTP/1.1 200") or received != size:
            raise ConnectionError(f"{path.name}: {received} of {size} bytes")
    return first


def bulk(path: Path_, port: int, size: int) -> float:
    """``size`` bytes down one tunnel: seconds from the request to the last byte."""
    buf = bytearray(1 << 20)
    with _connect(path, f"{ORIGIN_HOST}:{port}") as sock:
        started = time.perf_counter()
        sock.sendall(b"%d\n" % size)
        received = 0
        while received < size and (n := sock.recv_into(buf)):
            received += n
        took = time.perf_counter() - started
    if received != size:
        raise ConnectionError(f"{path.name}: {received} of {size} bytes")
    return took


def burst(path: Path_, port: int, tls: ssl.SSLContext, tunnels: int) -> tuple[int, float, str]:
    """``tunnels`` concurrent fetches: errors, wall seconds and the first error."""
    gate = threading.Barrier(tunnels, timeout=TIMEOUT)
    errors: list[str] = []

    def one() -> None:
        try:
            gate.wait()
            fetch(path, port, tls, SMALL)
        except (OSError, threading.BrokenBarrierError) as e:
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=one) for _ in range(tunnels)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    return len(errors), time.perf_counter() - started, errors[0] if errors else ""


# --- the proxies as processes -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(
    name: str, argv: list[str], env: dict[str, str], port: int, work: Path
) -> Iterator[int]:
    """Run a proxy until the block ends; yield its pid once it accepts on ``port``."""
    log = work / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"bench: {name} exited {proc.returncode}: {log.read_text()[-800:]}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {name} did not listen on {port} within 20 s")
            time.sleep(0.05)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def corpnet_gateway(
    squid_port: int, port: int, work: Path, src: Path | None
) -> contextlib.AbstractContextManager[int]:
    runtime, config = work / "corpnet-runtime", work / "corpnet-config"
    runtime.mkdir()
    config.mkdir()  # empty: nothing of this host's /etc/corpnet
    env = {
        "PATH": str(CORPNET.parent),
        "HOME": str(work),
        "HTTPS_PROXY": f"http://127.0.0.1:{squid_port}",
        "CORPNET_PROXY_USER": USER,
        "CORPNET_PROXY_PASSWORD": PASSWORD,
        "CORPNET_GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "CORPNET_RUNTIME_DIR": str(runtime),
        "CORPNET_CONFIG_DIR": str(config),
        "CORPNET_SYSTEM_STORE": "off",
    }
    if src is not None:  # another checkout's code ahead of .venv's editable install
        env["PYTHONPATH"] = str(src / "entrypoint")
    return _process("corpnet", [str(CORPNET), "gateway"], env, port, work)


def install_px() -> tuple[Path | None, str]:
    """px-proxy in its own venv under bench/out/; (its ``px``, "") or (None, why not)."""
    px = PX_VENV / "bin" / "px"
    try:
        if not (PX_VENV / "bin" / "pip").exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(PX_VENV)], check=True, capture_output=True
            )
        subprocess.run(
            [str(PX_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
             f"px-proxy=={PX_VERSION}"],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or e.stdout or "").strip().splitlines()
        return None, f"pip install px-proxy=={PX_VERSION} failed: {lines[-1] if lines else e}"
    except subprocess.TimeoutExpired:
        return None, f"pip install px-proxy=={PX_VERSION} took more than 300 s"
    return px, ""


def px_proxy(
    px: Path, squid_port: int, port: int, work: Path
) -> contextlib.AbstractContextManager[int]:
    home = work / "px-home"  # no px.ini, no keyring of this host: the password comes from env
    home.mkdir()
    env = {"PATH": str(px.parent), "HOME": str(home), "PX_PASSWORD": PASSWORD}
    argv = [
        str(px),
        f"--proxy=127.0.0.1:{squid_port}",
        f"--username={USER}",
        "--auth=BASIC",
        "--listen=127.0.0.1",
        f"--port={port}",
    ]
    return _process("px", argv, env, port, work)


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"bench: no VmHWM for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# --- measurement --------------------------------------------------------------------------


@dataclass
class Results:
    """Per path; a failed TTFB sample or transfer is None (and counted in ``errors``)."""

    ttfb: dict[str, list[float | None]] = field(default_factory=dict)  # seconds, per pair
    rate: dict[str, list[float | None]] = field(default_factory=dict)  # bytes/s, per round
    cpu: dict[str, list[float]] = field(default_factory=dict)  # proxy CPU s per transfer
    errors: dict[str, list[int]] = field(default_factory=dict)  # [TTFB, bulk, concurrent]
    burst: dict[str, list[float]] = field(default_factory=dict)  # wall seconds per burst
    first_error: dict[str, str] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)  # VmHWM at start, after each part


def rotated(paths: list[Path_], i: int) -> list[Path_]:
    k = i % len(paths)
    return paths[k:] + paths[:k]


def measure(
    args: argparse.Namespace, paths: list[Path_], ports: dict[str, int], tls: ssl.SSLContext
) -> Results:
    res = Results()

    def peak() -> None:
        for p in paths:
            if p.pid:
                res.rss.setdefault(p.name, []).append(vm_hwm_mb(p.pid))

    def attempt(p: Path_, part: int, measured: Callable[[], float]) -> float | None:
        try:
            value = measured()
        except OSError as e:  # ssl.SSLError and ConnectionError too
            res.errors[p.name][part] += 1
            res.first_error.setdefault(p.name, f"{type(e).__name__}: {e}")
            return None
        p.tunnels += 1
        return value

    peak()
    for p in paths:
        res.ttfb[p.name], res.rate[p.name], res.cpu[p.name] = [], [], []
        res.errors[p.name], res.burst[p.name] = [0, 0, 0], []
        # Warm-up: the gateway learns Basic, Squid caches the login; a failure counts.
        attempt(p, 0, lambda p=p: fetch(p, ports["tls"], tls))
        attempt(p, 1, lambda p=p: bulk(p, ports["bulk"], 1 << 20))
    for i in range(args.pairs):
        for p in rotated(paths, i):
            res.ttfb[p.name].append(attempt(p, 0, lambda p=p: fetch(p, ports["tls"], tls)))
    peak()
    size = args.mb * 1_000_000
    for i in range(args.rounds):
        for p in rotated(paths, i):
            cpu = cpu_seconds(p.pid) if p.pid else 0.0
            took = attempt(p, 1, lambda p=p: bulk(p, ports["bulk"], size))
            res.rate[p.name].append(size / took if took else None)
            res.cpu[p.name].append(cpu_seconds(p.pid) - cpu if p.pid else 0.0)
    peak()
    for i in range(args.bursts):
        for p in rotated(paths, i):
            errors, wall, first = burst(p, ports["tls"], tls, args.tunnels)
            res.errors[p.name][2] += errors
            res.burst[p.name].append(wall)
            if first:
                res.first_error.setdefault(p.name, first)
            p.tunnels += args.tunnels - errors
    peak()
    return res


def paired(ours: list[float | None], base: list[float | None]) -> list[tuple[float, float]]:
    """The samples where both the path and direct succeeded."""
    return [(a, b) for a, b in zip(ours, base, strict=True) if a is not None and b is not None]


def _median(values: list[float | None]) -> float:
    return statistics.median(v for v in values if v is not None)


def squid_logged(access_log: Callable[[], str], expected: int) -> int:
    """Tunnels to the origins Squid logged as alice's (it logs a tunnel when it ends)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [
            line
            for line in access_log().splitlines()
            if "TCP_TUNNEL/200" in line
            and f"CONNECT {ORIGIN_HOST}:" in line
            and f" {USER} " in line
        ]
        if len(lines) >= expected or time.monotonic() > deadline:
            return len(lines)
        time.sleep(0.1)


# --- the report ---------------------------------------------------------------------------

WIDTH = 32  # the label column


def _verdict(held: bool) -> str:
    return "ok" if held else "FAIL"


def _row(label: str, cells: dict[str, str], vs_px: str = "", bound: str = "") -> None:
    text = "".join(f"{cells.get(n, '-'):>28}" for n in ("direct", "corpnet", "px"))
    print(f"{label:<{WIDTH}}{text}  {vs_px:>10}  {bound}".rstrip())


@dataclass
class Judge:
    """Holds each figure to its bound and, when px ran, to px's figure."""

    has_px: bool
    ok: bool = True

    def __call__(self, held: bool, bound: str, ours: float, px: float | None, lower: bool) -> str:
        """The bound column; ``lower`` says whether less is better (time, memory, errors)."""
        text = f"{bound} {_verdict(held)}"
        if self.has_px and px is not None:
            op = "<=" if bound.startswith("=") else "<" if lower else ">"
            beat = {"<=": ours <= px, "<": ours < px, ">": ours > px}[op]
            text += f"; {op} px {_verdict(beat)}"
            held &= beat
        self.ok &= held
        return text


def _ratio(ours: float, px: float | None) -> str:
    return f"{ours / px:.2f}x" if px else ""


def report(args: argparse.Namespace, names: list[str], res: Results) -> bool:
    """Print the table; return whether every bound held."""
    judge = Judge("px" in names)
    px = "px" in names
    _row("", {"direct": "direct -> Squid", "corpnet": "corpnet -> Squid", "px": "px -> Squid"},
         "corpnet/px", "bound")  # fmt: skip

    _row(f"TTFB, median of {args.pairs}",
         {n: f"{_median(res.ttfb[n]) * 1000:.2f} ms" for n in names})  # fmt: skip
    over = {  # per pair: the path's time to first byte minus direct's, in ms
        n: statistics.quantiles(
            [(a - b) * 1000 for a, b in paired(res.ttfb[n], res.ttfb["direct"])],
            n=4,
            method="inclusive",
        )
        for n in names[1:]
    }
    ours, theirs = over["corpnet"][1], over["px"][1] if px else None
    bound = judge(ours <= MAX_OVERHEAD_MS, f"<= {MAX_OVERHEAD_MS:g} ms", ours, theirs, lower=True)
    _row("  added per connection (IQR)",
         {n: f"+{m:.2f} ms ({lo:+.2f}..{hi:+.2f})" for n, (lo, m, hi) in over.items()},
         _ratio(ours, theirs), bound)  # fmt: skip

    _row(f"throughput, {args.mb} MB, median of {args.rounds}",
         {n: f"{_median(res.rate[n]) / 1e6:.0f} MB/s" for n in names})  # fmt: skip
    share = {  # per round: the path's rate over direct's
        n: [a / b for a, b in paired(res.rate[n], res.rate["direct"])] for n in names[1:]
    }
    ours = statistics.median(share["corpnet"])
    theirs = statistics.median(share["px"]) if px else None
    bound = judge(ours >= MIN_THROUGHPUT, f">= {MIN_THROUGHPUT:.0%}", ours, theirs, lower=False)
    _row("  of direct (min..max)",
         {n: f"{statistics.median(r):.0%} ({min(r):.0%}..{max(r):.0%})" for n, r in share.items()},
         _ratio(ours, theirs), bound)  # fmt: skip
    cpu = {n: statistics.median(res.cpu[n]) for n in names[1:]}
    _row("  proxy CPU per transfer", {n: f"{c:.2f} s" for n, c in cpu.items()},
         _ratio(cpu["corpnet"], cpu["px"] if px else None))  # fmt: skip

    ours, theirs = sum(res.errors["corpnet"]), sum(res.errors["px"]) if px else None
    bound = judge(ours <= MAX_ERRORS, f"= {MAX_ERRORS}", ours, theirs, lower=True)
    tries = f"{args.pairs + 1}/{args.rounds + 1}/{args.tunnels * args.bursts}"
    _row(f"errors: TTFB/bulk/{args.tunnels}x{args.bursts} conc.",
         {n: "/".join(f"{e}" for e in res.errors[n]) for n in names}, "",
         f"{bound} (of {tries})")  # fmt: skip
    wall = {n: statistics.median(res.burst[n]) for n in names}
    _row("  concurrent: wall per burst", {n: f"{w * 1000:.0f} ms" for n, w in wall.items()},
         _ratio(wall["corpnet"], wall["px"] if px else None))  # fmt: skip

    ours, theirs = res.rss["corpnet"][-1], res.rss["px"][-1] if px else None
    _row("peak RSS (VmHWM), after all", {n: f"{v[-1]:.1f} MB" for n, v in res.rss.items()},
         _ratio(ours, theirs),
         judge(ours <= MAX_RSS_MB, f"<= {MAX_RSS_MB:g} MB", ours, theirs, lower=True))  # fmt: skip
    _row("  at start, +TTFB, +bulk", {n: "/".join(f"{x:.1f}" for x in v[:3])
                                      for n, v in res.rss.items()})  # fmt: skip
    for n, line in res.first_error.items():
        print(f"first error through {n}: {line}")
    return judge.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="TTFB samples per path")
    parser.add_argument("--rounds", type=int, default=15, help="bulk transfers per path")
    parser.add_argument("--mb", type=int, default=200, help="MB per bulk transfer")
    parser.add_argument("--tunnels", type=int, default=100, help="concurrent tunnels per burst")
    parser.add_argument("--bursts", type=int, default=3, help="bursts per path")
    parser.add_argument("--no-px", action="store_true", help="skip px-proxy")
    parser.add_argument(
        "--src",
        type=Path,
        help="measure the gateway of another checkout (a worktree with a change)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return 0

    sys.path[:0] = [str(REPO / "tests")]
    from support.squid import squid_logs

    if not CORPNET.exists():
        raise SystemExit(f"bench: {CORPNET} is missing (bash scripts/test makes .venv)")
    px, px_note = (None, "--no-px") if args.no_px else install_px()
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="corpnet-bench-gateway-"))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(work)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stack.callback(child.wait)
        stack.callback(child.kill)
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        tls = ssl.create_default_context(cafile=ports["ca"])
        squid = stack.enter_context(squid_logs(auth="basic", user=USER, password=PASSWORD))
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        paths = [Path_("direct", squid.port, authorization=f"Basic {basic}")]
        port = _free_port()
        pid = stack.enter_context(corpnet_gateway(squid.port, port, work, args.src))
        paths.append(Path_("corpnet", port, pid=pid))
        if px is not None:
            port = _free_port()
            pid = stack.enter_context(px_proxy(px, squid.port, port, work))
            paths.append(Path_("px", port, pid=pid))
        res = measure(args, paths, ports, tls)
        expected = sum(p.tunnels for p in paths)
        logged = squid_logged(squid.access_log, expected)

    print(
        f"upstream: Squid (Basic auth) on 127.0.0.1; origins on {ORIGIN_HOST} (TLS, trustme; raw "
        f"bulk); corpnet: {CORPNET} gateway"
        + (f" with {args.src}/entrypoint" if args.src else "")
        + (f"; px-proxy {PX_VERSION} ({PX_VENV.relative_to(REPO)})" if px else "")
    )
    print(
        f"{os.cpu_count()} CPUs; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; run took {time.perf_counter() - started:.0f} s"
    )
    ok = report(args, [p.name for p in paths], res)
    if px is None:
        print(f"px-proxy not measured: {px_note}")
    held = logged >= expected
    print(f"Squid's access log: {logged} of {expected} tunnels, as {USER} ({_verdict(held)})")
    ok &= held
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
