"""Loopback servers for the reachability tests: TLS origins, scripted proxies, silent peers.

Every server listens on 127.0.0.0/8 only, runs in daemon threads and is closed
by its fixture. Certificates come from trustme CAs made in the test session.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from corpnet.reach import RetryPolicy

Handler = Callable[[socket.socket], None]


class Server:
    """A listening socket whose connections each get ``handler`` in a thread."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        listen: bool = True,
        backlog: int = 128,
    ) -> None:
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.accepted = 0
        self.listening_since: float | None = None
        self._closed = False
        self._backlog = backlog
        if listen:
            self.listen()

    def listen(self) -> None:
        """Start accepting (a port bound but not listening refuses connections)."""
        self.sock.listen(self._backlog)
        self.listening_since = time.monotonic()
        threading.Thread(target=self._accept, daemon=True).start()

    def listen_after(self, seconds: float) -> None:
        """Start accepting ``seconds`` from now: a proxy that comes up late."""
        timer = threading.Timer(seconds, self.listen)
        timer.daemon = True
        timer.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.connections.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()


def silent(conn: socket.socket) -> None:
    """Accept and never speak: the peer that eats a deadline."""
    conn.settimeout(30)
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass


@dataclass
class Origin:
    """How a TLS origin behaves."""

    cert: trustme.LeafCert
    client_ca: trustme.CA | None = None  # require a client certificate issued by it
    http_status: int | None = None  # answer an HTTP request with this status
    delay: float = 0.0  # before the handshake: a far-away server

    def handler(self, conn: socket.socket) -> None:
        if self.delay:
            time.sleep(self.delay)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        if self.client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.client_ca.configure_trust(ctx)
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            if self.http_status is None:
                with contextlib.suppress(OSError):
                    tls.recv(1)
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                head += chunk
            status = self.http_status
            answer = f"HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            tls.sendall(answer.encode())


def _read_head(conn: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("closed before the end of the head")
        head += chunk
    return head


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def copy(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=copy, args=(b, a), daemon=True)
    t.start()
    copy(a, b)
    t.join(10)


@dataclass
class ScriptedProxy:
    """A CONNECT proxy: tunnels to ``hosts`` (name -> loopback address), or answers a status.

    ``auth`` (user, password) demands Basic credentials; ``status`` answers every
    CONNECT with that code and ``challenge`` as Proxy-Authenticate; ``tls`` makes
    it an ``https://`` proxy with that certificate. ``requests`` records each
    CONNECT target, so a test can prove which way a probe went.
    """

    hosts: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    status: int | None = None
    challenge: tuple[str, ...] = ("Basic realm=corp",)
    tls: trustme.LeafCert | None = None
    requests: list[str] = field(default_factory=list)
    # What a plain proxy does with a TLS ClientHello: Squid answers 400 at once,
    # proxy.py waits for the rest of a "request" that never comes.
    hang_on_tls: bool = False

    def handler(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        if self.tls is None:
            self._serve(conn)
            return
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.configure_cert(ctx)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            self._serve(tls)

    def _serve(self, conn: socket.socket) -> None:
        if not isinstance(conn, ssl.SSLSocket) and conn.recv(1, socket.MSG_PEEK) == b"\x16":
            # A TLS handshake record, not an HTTP request.
            if self.hang_on_tls:
                silent(conn)
            else:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            return
        head = _read_head(conn).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        self.requests.append(target)
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        if method != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if headers.get("proxy-authorization") != expected:
                self._answer(conn, 407, "Proxy Authentication Required", ("Basic realm=corp",))
                return
        if self.status is not None:
            reason = {403: "Forbidden", 407: "Proxy Authentication Required"}.get(
                self.status, "Bad Gateway"
            )
            self._answer(conn, self.status, reason, self.challenge if self.status == 407 else ())
            return
        host, _, port = target.rpartition(":")
        address = self.hosts.get(host.strip("[]"), host.strip("[]"))
        try:
            upstream = socket.create_connection((address, int(port)), timeout=5)
        except OSError:
            self._answer(conn, 502, "Bad Gateway", ())
            return
        with upstream:
            upstream.settimeout(None)
            conn.settimeout(None)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(conn, upstream)

    @staticmethod
    def _answer(conn: socket.socket, status: int, reason: str, challenges: tuple[str, ...]) -> None:
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Length: 0", "Connection: close"]
        lines += [f"Proxy-Authenticate: {c}" for c in challenges]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


@contextlib.contextmanager
def serving(handler: Handler, **kwargs: object) -> Iterator[Server]:
    server = Server(handler, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


def full_backlog() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full: new SYNs are dropped (TCP timeout)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    fillers: list[socket.socket] = []
    for _ in range(2):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(sock.getsockname())
        fillers.append(c)
    time.sleep(0.05)
    return sock, fillers


# --- pytest fixtures shared by the reachability tests ---------------------------------------
# Imported by the test modules under their *_fixture names; tests ask for `leaf` and `serve`.

# Short backoff: retry cases take a fraction of a second; the deadline logic is the same.
FAST = RetryPolicy(initial=0.01, maximum=0.05, attempt_timeout=1.0, watch_interval=0.05)
# One origin certificate for every way the tests name the loopback servers.
NAMES = ("localhost", "127.0.0.1", "127.0.0.2", "api.corp.test")


@pytest.fixture(scope="module", name="leaf")
def leaf_fixture(ca: trustme.CA) -> trustme.LeafCert:
    """An origin certificate from the session's corporate CA, for every name in NAMES."""
    return ca.issue_cert(*NAMES)


@pytest.fixture(name="serve")
def serve_fixture() -> Iterator[Callable[..., Server]]:
    """``serve(handler, **kwargs)`` starts a :class:`Server`, closed after the test."""
    started: list[Server] = []

    def start(handler: Handler, **kwargs: Any) -> Server:
        server = Server(handler, **kwargs)
        started.append(server)
        return server

    yield start
    for s in started:
        s.close()
