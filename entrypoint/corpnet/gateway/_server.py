"""The gateway's listener: an HTTP/1.1 forward proxy on loopback.

Clients send ``CONNECT host:port`` (HTTPS, and anything tunnelled) or an
absolute-form request (``GET http://host/path``, plain HTTP). Each is
decided once (:func:`corpnet.gateway._policy.decide`), refused with a 403
whose body is one line naming the variable to change, or carried out along
its routes (:class:`corpnet.gateway._upstream.Upstream`), and written to the
audit log. Client connections are kept alive between plain-HTTP requests; a
tunnel uses its connection up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from corpnet.gateway._audit import Audit, Record
from corpnet.gateway._auth import AuthError, Login
from corpnet.gateway._http import (
    HOP_BY_HOP,
    MAX_HEAD,
    Head,
    HttpError,
    body_length,
    keeps_alive,
    read_head,
    relay_body,
    simple_response,
)
from corpnet.gateway._listen import Listen
from corpnet.gateway._policy import Decision, Route, normalise_host

if TYPE_CHECKING:
    from corpnet.gateway._pac import Pac
from corpnet.gateway._upstream import RouteError, Upstream, splice

IDLE_TIMEOUT = 300.0  # seconds a kept-alive client connection may wait for its next request
MAX_BODY = 8 * 1024 * 1024  # a plain-HTTP request body is kept to replay it after a 407

Decider = Callable[[str, int, str, str], Awaitable[Decision]]


class Gateway:
    """One gateway: a decision function, a way out and an audit log."""

    def __init__(self, decide: Decider, upstream: Upstream, audit: Audit) -> None:
        self._decide = decide
        self._upstream = upstream
        self._audit = audit
        self.connections = 0  # served so far (for tests and `corpnet doctor`)
        self.decide = decide
        self.upstream = upstream
        self.audit = audit
        self.pac: Pac | None = None  # checked at start (corpnet.gateway._serve)

    async def handle_captured(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection the lockdown redirected here (corpnet.gateway._transparent)."""
        from corpnet.gateway._transparent import handle

        self.connections += 1
        await handle(self, reader, writer)

    async def start(self, addresses: Sequence[Listen]) -> tuple[list[asyncio.Server], list[str]]:
        """Listen on every address that can be bound; return the servers and the failures."""
        servers, failed = [], []
        for address in addresses:
            family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
            try:
                servers.append(
                    await asyncio.start_server(
                        self.handle,
                        address.host,
                        address.port,
                        family=family,
                        reuse_address=True,
                        limit=MAX_HEAD,
                    )
                )
            except OSError as e:
                failed.append(f"{address} ({e.strerror or e})")
        return servers, failed

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection until it closes or a tunnel has used it."""
        self.connections += 1
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if peer else "?"
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: no extra task per request.
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        head = await read_head(reader)
                except HttpError as e:
                    writer.write(simple_response(e.status, "Bad Request", f"corpnet: {e.reason}"))
                    break
                if head is None:
                    break
                if head.first.upper() == "CONNECT":
                    await self._tunnel(head, reader, writer, client)
                    break
                if not await self._forward(head, reader, writer, client):
                    break
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, HttpError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    # --- CONNECT ----------------------------------------------------------------------

    async def _tunnel(
        self,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: str,
    ) -> None:
        started = time.monotonic()
        try:
            host, port = _authority(head.second, default_port=443)
        except ValueError as e:
            writer.write(simple_response(400, "Bad Request", f"corpnet: {e}"))
            return
        decision = await self._decide(host, port, "https", client)
        name = normalise_host(host)  # the name the decision was about
        record = Record(client, "CONNECT", name, port, "allow", decision.reason, started=started)
        record.route = " | ".join(r.describe() for r in decision.routes)
        if not decision.allowed:
            record.decision, record.status = "deny", 403
            writer.write(simple_response(403, "Forbidden", decision.reason))
            self._audit.write(record, monotonic_now=time.monotonic())
            return
        if not decision.routes:  # the PAC file failed for this host: its line says why
            record.status, record.error = 502, decision.reason
            writer.write(simple_response(502, "Bad Gateway", decision.reason))
            self._audit.write(record, monotonic_now=time.monotonic())
            return
        try:
            opened = await self._upstream.open_route(decision.routes, name, port)
        except RouteError as e:
            record.status, record.error = e.status, e.line
            writer.write(simple_response(e.status, "Bad Gateway", e.line))
            self._audit.write(record, monotonic_now=time.monotonic())
            return
        record.route, record.auth, record.status = opened.route.describe(), opened.scheme, 200
        # Where the tunnel went: clients ignore these; corpnet's wait and doctor report them.
        extra = f"X-Corpnet-Route: {opened.route.describe()}\r\n"
        if opened.scheme:
            extra += f"X-Corpnet-Auth: {opened.scheme}\r\n"
        writer.write(f"HTTP/1.1 200 Connection established\r\n{extra}\r\n".encode())
        try:
            record.up, record.down = await splice(reader, writer, opened)
        finally:
            self._audit.write(record, monotonic_now=time.monotonic())

    # --- plain HTTP -------------------------------------------------------------------

    async def _forward(
        self,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: str,
    ) -> bool:
        """Carry one absolute-form request; return whether the client connection lives on."""
        started = time.monotonic()
        url = urlsplit(head.second)
        if url.scheme.lower() != "http" or not url.hostname:
            writer.write(
                simple_response(
                    400,
                    "Bad Request",
                    "corpnet: the gateway is a proxy: send http:// URLs in absolute form, "
                    "and use CONNECT for https://",
                )
            )
            return False
        host, port = url.hostname, url.port or 80
        length = body_length(head, response=False)
        if length is not None and length > MAX_BODY:
            writer.write(simple_response(413, "Payload Too Large", "corpnet: body too large"))
            return False
        body = await _read_body(reader, length)
        decision = await self._decide(host, port, "http", client)
        record = Record(
            client,
            head.first,
            normalise_host(host),
            port,
            "allow",
            decision.reason,
            started=started,
        )
        record.route = " | ".join(r.describe() for r in decision.routes)
        if not decision.allowed:
            record.decision, record.status = "deny", 403
            writer.write(simple_response(403, "Forbidden", decision.reason, close=False))
            self._audit.write(record, monotonic_now=time.monotonic())
            return keeps_alive(head)
        if not decision.routes:
            record.status, record.error = 502, decision.reason
            writer.write(simple_response(502, "Bad Gateway", decision.reason))
            self._audit.write(record, monotonic_now=time.monotonic())
            return False
        origin_form = url.path or "/"
        if url.query:
            origin_form += "?" + url.query
        headers = [(k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if body or head.first.upper() in {"POST", "PUT", "PATCH"}:
            headers.append(("Content-Length", str(len(body))))
        headers.append(("Connection", "close"))
        try:
            response, up_reader, up_writer, route, scheme = await self._send_http(
                decision.routes, head, origin_form, headers, body, host, port
            )
        except RouteError as e:
            record.status, record.error = e.status, e.line
            writer.write(simple_response(e.status, "Bad Gateway", e.line))
            self._audit.write(record, monotonic_now=time.monotonic())
            return False
        record.route, record.auth, record.status = route.describe(), scheme, response.status
        record.up = len(body)
        try:
            resp_length = body_length(response, response=True, request_method=head.first.upper())
            client_alive = keeps_alive(head) and resp_length is not None
            out = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
            if resp_length == -1:
                out.append(("Transfer-Encoding", "chunked"))
            out.append(("Connection", "keep-alive" if client_alive else "close"))
            writer.write(Head(response.first, response.second, response.third, out).encode())
            record.down = await relay_body(up_reader, writer, resp_length)
        finally:
            up_writer.close()
            self._audit.write(record, monotonic_now=time.monotonic())
        return client_alive

    async def _send_http(  # noqa: PLR0917 - one request's parts
        self,
        routes: Sequence[Route],
        head: Head,
        origin_form: str,
        headers: list[tuple[str, str]],
        body: bytes,
        host: str,
        port: int,
    ) -> tuple[Head, asyncio.StreamReader, asyncio.StreamWriter, Route, str | None]:
        failures: list[str] = []
        for route in routes:
            try:
                if route.proxy is None:
                    r, w = await self._upstream.connect(normalise_host(host), port)
                    request = Head(head.first, origin_form, "HTTP/1.1", headers)
                    response = await _exchange(r, w, request, body)
                    return response, r, w, route, None
                return await self._via_proxy(route, head, headers, body)
            except OSError as e:
                failures.append(f"{route.describe()}: {e.strerror or e}")
            except TimeoutError:
                failures.append(f"{route.describe()}: no answer")
        raise RouteError(502, f"corpnet: cannot reach {host}:{port}: " + "; ".join(failures))

    async def _via_proxy(
        self, route: Route, head: Head, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[Head, asyncio.StreamReader, asyncio.StreamWriter, Route, str | None]:
        proxy = route.proxy
        assert proxy is not None  # noqa: S101 - the caller's branch
        upstream = self._upstream
        r, w = await upstream.proxy_connection(proxy)
        login = Login(upstream.creds_for(proxy), proxy.host)
        authorization = login.preemptive(upstream.learned(proxy))
        for _ in range(4):
            extra = [("Proxy-Authorization", authorization)] if authorization else []
            if login.scheme in {"NTLM", "Negotiate"}:
                extra.append(("Proxy-Connection", "keep-alive"))
            request = Head(head.first, head.second, "HTTP/1.1", [*headers, *extra])
            response = await _exchange(r, w, request, body)
            if response.status != 407:
                if login.scheme:
                    upstream.learn(proxy, login.scheme)
                return response, r, w, route, login.scheme
            try:
                authorization = login.respond(response.get_all("proxy-authenticate"))
            except AuthError as e:
                w.close()
                raise RouteError(502, f"corpnet: {e}") from e
            length = body_length(response, response=True)
            if length is None or not keeps_alive(response):
                w.close()
                r, w = await upstream.proxy_connection(proxy)
            else:
                await relay_body(r, None, length)
        w.close()
        raise RouteError(502, f"corpnet: the upstream proxy {proxy.netloc} kept asking to log in")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Head, body: bytes
) -> Head:
    writer.write(request.encode() + body)
    await writer.drain()
    response = await read_head(reader, response=True)
    if response is None:
        raise ConnectionResetError("closed before answering")
    return response


async def _read_body(reader: asyncio.StreamReader, length: int | None) -> bytes:
    if not length:
        return b""
    if length > 0:
        return await reader.readexactly(length)
    chunks: list[bytes] = []  # chunked request body: de-chunked, re-sent with a length

    class _Sink:
        def write(self, data: bytes) -> None:
            chunks.append(data)

        async def drain(self) -> None:
            return None

    await relay_body(reader, _Sink(), -1)  # type: ignore[arg-type]
    return _dechunk(b"".join(chunks))


def _dechunk(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


def _authority(text: str, *, default_port: int) -> tuple[str, int]:
    """``host:port`` of a CONNECT target, IPv6 in brackets; raises ValueError."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in CONNECT target {text[:80]!r}")
    if not host:
        raise ValueError(f"no host in CONNECT target {text[:80]!r}")
    return host, int(port_text)
