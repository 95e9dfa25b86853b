"""Ways out: a TCP connection to the destination, or a tunnel through an upstream proxy.

:func:`open_route` tries the routes a decision gave, in order (PAC's
``PROXY a; PROXY b; DIRECT`` fail-over): a route that cannot be reached is
skipped; an answer from a proxy (403, a refused login) is final, since the
next proxy would be asked the same thing. Logins go through
:class:`corpnet.gateway._auth.Login`, one per connection, on the same socket
for every leg; the scheme a proxy wanted is remembered, so later tunnels send
it at once instead of collecting a 407 first.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from corpnet.gateway._auth import AuthError, Credentials, Login, Scheme
from corpnet.gateway._http import (
    MAX_HEAD,
    Head,
    HttpError,
    body_length,
    keeps_alive,
    read_head,
    relay_body,
)
from corpnet.gateway._policy import Route
from corpnet.proxy import ProxyURL

MAX_LEGS = 4  # Basic: 2 requests; NTLM: 3; Kerberos: 2; one spare for a reconnect


@dataclass
class Opened:
    """A connection ready to carry the client's bytes."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    route: Route
    scheme: str | None  # the login used upstream, if any


@dataclass
class _Conn:
    """The current connection to a proxy; a login may have to replace it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class RouteError(Exception):
    """No route worked; ``status`` and ``line`` are what the client gets."""

    def __init__(self, status: int, line: str, *, head: Head | None = None) -> None:
        super().__init__(line)
        self.status = status
        self.line = line
        self.head = head


class Upstream:
    """Connections out, with what was learned about each proxy (its scheme)."""

    def __init__(
        self,
        creds: Credentials,
        *,
        connect_timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.creds = creds
        self.connect_timeout = connect_timeout
        self._tls = tls
        self._schemes: dict[str, Scheme] = {}

    async def open_route(self, routes: Sequence[Route], host: str, port: int) -> Opened:
        """The first route that yields a tunnel to ``host:port``; raises :class:`RouteError`."""
        failures: list[str] = []
        for route in routes:
            try:
                if route.proxy is None:
                    reader, writer = await self.connect(host, port)
                    return Opened(reader, writer, route, None)
                return await self._tunnel(route, host, port)
            except OSError as e:
                failures.append(f"{route.describe()}: {e.strerror or e}")
            except TimeoutError:
                failures.append(f"{route.describe()}: no answer in {self.connect_timeout:.0f}s")
        raise RouteError(
            502, f"corpnet: cannot reach {_netloc(host, port)}: " + "; ".join(failures)
        )

    async def connect(
        self, host: str, port: int, *, tls_host: str | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = None
        if tls_host is not None:
            context = self._tls or ssl.create_default_context()
        async with asyncio.timeout(self.connect_timeout):  # no extra task, unlike wait_for
            return await asyncio.open_connection(
                host, port, ssl=context, server_hostname=tls_host, limit=MAX_HEAD
            )

    async def proxy_connection(
        self, proxy: ProxyURL
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        tls_host = proxy.host if proxy.scheme == "https" else None
        return await self.connect(proxy.host, proxy.port, tls_host=tls_host)

    async def _tunnel(self, route: Route, host: str, port: int) -> Opened:
        proxy = route.proxy
        assert proxy is not None  # noqa: S101 - the caller's branch
        conn = _Conn(*await self.proxy_connection(proxy))
        try:
            return await self._legs(conn, route, proxy, _netloc(host, port))
        except BaseException:
            conn.writer.close()
            raise

    async def _legs(self, conn: _Conn, route: Route, proxy: ProxyURL, target: str) -> Opened:
        """CONNECT, answering each 407 on the same connection while the proxy keeps it."""
        login = Login(self.creds_for(proxy), proxy.host)
        header = login.preemptive(self.learned(proxy))
        for _ in range(MAX_LEGS):
            head = await self._send_connect(conn.reader, conn.writer, target, header)
            if 200 <= head.status < 300:
                if login.scheme:
                    self.learn(proxy, login.scheme)
                return Opened(conn.reader, conn.writer, route, login.scheme)
            if head.status != 407:
                body = await _small_body(conn.reader, head)
                raise RouteError(head.status, _upstream_line(proxy, target, head, body), head=head)
            try:
                header = login.respond(head.get_all("proxy-authenticate"))
            except AuthError as e:
                raise RouteError(502, f"corpnet: {e}", head=head) from e
            length = body_length(head, response=True, request_method="CONNECT")
            if length is not None and keeps_alive(head):
                await relay_body(conn.reader, None, length)
                continue
            # The proxy closes after its 407: a Basic login starts again on a new
            # connection, but NTLM's challenge is bound to this one.
            if (
                login.scheme == "NTLM"
                and head.get(
                    "proxy-authenticate",
                )
                != "NTLM"
            ):
                raise RouteError(
                    502,
                    f"corpnet: the upstream proxy {proxy.netloc} closed the connection in the "
                    "middle of an NTLM login: it must keep connections alive",
                )
            conn.writer.close()
            conn.reader, conn.writer = await self.proxy_connection(proxy)
        raise RouteError(502, f"corpnet: the upstream proxy {proxy.netloc} kept asking to log in")

    def learned(self, proxy: ProxyURL) -> Scheme | None:
        """The login scheme ``proxy`` asked for last time, to send it at once."""
        return self._schemes.get(proxy.netloc)

    def learn(self, proxy: ProxyURL, scheme: Scheme) -> None:
        self._schemes[proxy.netloc] = scheme

    def creds_for(self, proxy: ProxyURL) -> Credentials:
        # Credentials in the proxy URL (HTTPS_PROXY=http://user:pw@…) win: every client reads them.
        if proxy.username is not None:
            password = proxy.password
            return Credentials(
                user=proxy.username,
                password=lambda: password,
                keytab=self.creds.keytab,
                mode=self.creds.mode,
            )
        return self.creds

    @staticmethod
    async def _send_connect(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        target: str,
        authorization: str | None,
    ) -> Head:
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if authorization:
            lines.append(f"Proxy-Authorization: {authorization}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        head = await read_head(reader, response=True)
        if head is None:
            raise RouteError(502, "corpnet: the upstream proxy closed the connection")
        return head


async def _small_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    length = body_length(head, response=True, request_method="CONNECT")
    if length is None or length < 0 or length > 4096:
        return b""
    try:
        return await asyncio.wait_for(reader.readexactly(length), 2)
    except (asyncio.IncompleteReadError, TimeoutError, HttpError):
        return b""


def _upstream_line(proxy: ProxyURL, target: str, head: Head, body: bytes) -> str:
    return (
        f"corpnet: the upstream proxy {proxy.netloc} answered {head.status} {head.third} "
        f"for {target}: the proxy's policy refuses it; ask IT, or check the host name"
        if head.status == 403
        else f"corpnet: the upstream proxy {proxy.netloc} answered {head.status} {head.third} "
        f"for {target}" + (f" ({body[:120].decode(errors='replace').strip()})" if body else "")
    )


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def splice(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opened: Opened
) -> tuple[int, int]:
    """Copy both ways until both sides are done; return (bytes up, bytes down).

    Once the tunnel is open there is nothing left to parse: each transport gets a
    :class:`_Relay` protocol (``set_protocol``, public asyncio API) that writes
    what it receives straight to the other transport, with the transports' own
    flow control (a full write buffer pauses reading on the other side). That
    saves the stream layer's buffering and a task switch per chunk: half the CPU
    per byte of a read/write loop, and memory bounded by the transports' limits.
    Bytes the streams had already read (a client that sent its ClientHello with
    the CONNECT) are handed over first: after ``feed_eof`` a stream returns them
    without waiting.
    """
    loop = asyncio.get_running_loop()
    # StreamWriter.transport is typed as a write transport; a socket's is both.
    client = cast("asyncio.Transport", writer.transport)
    server = cast("asyncio.Transport", opened.writer.transport)
    done: asyncio.Future[None] = loop.create_future()
    up = _Relay(server, done)
    down = _Relay(client, done)
    up.partner, down.partner = down, up
    client.set_protocol(up)
    server.set_protocol(down)
    for stream, relay in ((reader, up), (opened.reader, down)):
        stream.feed_eof()
        if early := await stream.read():
            relay.data_received(early)
    for transport in (client, server):
        if transport.is_closing():
            if not done.done():
                done.set_result(None)
        else:
            transport.resume_reading()  # a stream may have paused it; a no-op otherwise
    try:
        await done
    finally:
        client.close()
        server.close()
    return up.moved, down.moved


class _Relay(asyncio.Protocol):
    """One direction of a tunnel: what arrives on one transport goes out of ``peer``."""

    def __init__(self, peer: asyncio.BaseTransport, done: asyncio.Future[None]) -> None:
        self.peer: asyncio.Transport = peer  # type: ignore[assignment]
        self.partner: _Relay | None = None
        self.done = done
        self.moved = 0
        self.eof = False
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.moved += len(data)
        self.peer.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.peer.can_write_eof():
            self.peer.write_eof()  # half-close: the other direction may still be sending
        partner = self.partner
        if partner is not None and partner.eof and not self.done.done():
            self.done.set_result(None)
        return True  # keep the transport open for the other direction

    def connection_lost(self, exc: Exception | None) -> None:
        del exc
        if not self.done.done():
            self.done.set_result(None)

    # Called when the transport this relay reads from cannot take more writes: what
    # fills it comes from ``peer`` (through the partner relay), so pause that side.
    def pause_writing(self) -> None:
        self.peer.pause_reading()

    def resume_writing(self) -> None:
        self.peer.resume_reading()
