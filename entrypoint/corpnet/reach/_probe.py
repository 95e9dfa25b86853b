"""One probe attempt: DNS, TCP, proxy CONNECT, TLS, client certificate, HTTP.

Sockets are opened here (``_tls`` drives TLS to the host over them). An attempt either
returns the last :class:`Stage` it completed or raises
:class:`~corpnet.reach._diagnose.ProbeFailure`; the caller bounds it with a
timeout and reads :attr:`Tracker.stage` to say where a silent peer stopped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from corpnet.reach import _diagnose as diag
from corpnet.reach._diagnose import Context, ProbeFailure, Stage
from corpnet.reach._tls import TLSStream

Address = tuple[int, tuple[object, ...]]  # (family, sockaddr) from getaddrinfo
Resolver = Callable[[str, int], Awaitable[list[Address]]]
_HEAD_LIMIT = 64 * 1024  # a CONNECT answer's head; anything longer is not a proxy
_SETTLE_MIN, _SETTLE_MAX = 0.05, 1.0
_SIDE_CHECK = 1.0  # seconds for a check that names a wrong proxy scheme


class Proxy(Protocol):
    """What a probe needs of a proxy (``corpnet.proxy.ProxyURL`` is one)."""

    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str | None: ...
    def redacted(self) -> str: ...
    def authorization(self) -> str | None: ...


@dataclass
class Tracker:
    """The stage an attempt is in, readable after a timeout cancelled it."""

    stage: Stage = Stage.DNS
    of_proxy: bool = False
    budget: float = 10.0  # the attempt's timeout: side checks take a share of it
    via: str | None = None  # corpnet's gateway said where it sent the tunnel


def _insecure_context() -> ssl.SSLContext:
    # Only used to *describe* a certificate that already failed verification.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(frozen=True)
class Plan:
    """What every attempt shares: TLS contexts (built once), probe mode, resolver."""

    server: ssl.SSLContext  # trust bundle, no client certificate
    proxy_tls: ssl.SSLContext  # trust bundle, for an https:// proxy
    resolver: Resolver
    mtls: ssl.SSLContext | None = None  # trust bundle + client certificate
    client_cert: str | None = None  # description of the client certificate, for messages
    http: bool = False  # CORPNET_PROBE=http
    describe_peer: bool = True  # on a verification failure, fetch the peer's certificate
    proxy_tls_timeout: float = 2.0  # a TLS handshake with a proxy takes one round trip
    insecure: ssl.SSLContext = field(default_factory=_insecure_context)


async def resolve(host: str, port: int) -> list[Address]:
    """``getaddrinfo`` in a daemon thread.

    Not the event loop's executor: a lookup stuck in a resolver timeout would
    hold up ``asyncio.run``'s executor shutdown, and SIGTERM must exit within a
    second. A daemon thread is simply abandoned.
    """
    with contextlib.suppress(socket.gaierror):  # an IP literal: no lookup, no thread
        return _addresses(socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST))
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Address]] = loop.create_future()

    def settle(result: list[Address] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def work() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome: tuple[list[Address] | None, BaseException | None] = (_addresses(infos), None)
        except OSError as e:
            outcome = (None, e)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name=f"resolve {host}", daemon=True).start()
    return await future


def joined(resolver: Resolver) -> Resolver:
    """``resolver``, with lookups of a name already being looked up joined to that one.

    A hundred hosts behind one proxy name would otherwise start a hundred lookups
    of it at once (a hundred threads, a hundred queries to the DNS server). Only a
    lookup in flight is shared: a later attempt looks the name up afresh, so a
    record that changes while corpnet waits is seen. A waiter that gives up (its
    attempt timed out) leaves the lookup running for the others.
    """
    pending: dict[tuple[str, int], asyncio.Future[list[Address]]] = {}

    def forget(key: tuple[str, int], future: asyncio.Future[list[Address]]) -> None:
        del pending[key]
        if not future.cancelled():
            future.exception()  # retrieved: nobody may be left to await it

    async def lookup(host: str, port: int) -> list[Address]:
        key = (host, port)
        future = pending.get(key)
        if future is None:
            future = pending[key] = asyncio.ensure_future(resolver(host, port))
            future.add_done_callback(lambda done: forget(key, done))
        return list(await asyncio.shield(future))

    return lookup


def _addresses(infos: Sequence[tuple[Any, ...]]) -> list[Address]:
    seen: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        item = (int(family), tuple(sockaddr))
        if item not in seen:
            seen.append(item)
    return seen


async def connect(addresses: list[Address]) -> socket.socket:
    """Connect to the first address that accepts; raise the last error."""
    loop = asyncio.get_running_loop()
    last: OSError = OSError("no address")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, sockaddr)
        except OSError as e:
            sock.close()
            last = e
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise last


async def attempt(
    host: str,
    port: int,
    proxy: Proxy | None,
    *,
    mtls: bool,
    plan: Plan,
    tracker: Tracker,
    listed_in: str = "CORPNET_ALLOWLIST",
) -> Stage:
    """Probe ``host:port`` once, through ``proxy`` or direct; return the last stage done."""
    ctx = Context(
        host=host,
        port=port,
        proxy=proxy.redacted() if proxy else None,
        proxy_user=proxy.username if proxy else None,
        client_cert=plan.client_cert if mtls and plan.mtls else None,
        identity_configured=plan.mtls is not None,
        listed_in=listed_in,
    )
    reader, writer = await _tunnel(ctx, proxy, plan, tracker)
    try:
        tracker.stage, tracker.of_proxy = Stage.TLS, False
        context = plan.mtls if ctx.client_cert and plan.mtls else plan.server
        loop = asyncio.get_running_loop()
        started = loop.time()
        tls = TLSStream(reader, writer, context, host)
        try:
            await tls.handshake()
        except ssl.SSLError as e:
            peer = await _describe_peer(ctx, proxy, plan) if _is_verify(e) else None
            raise ProbeFailure(diag.tls(ctx, e, peer=peer)) from e
        except OSError as e:
            raise ProbeFailure(diag.reset(ctx, Stage.TLS, e, of_proxy=False)) from e
        done = Stage.TLS
        if ctx.client_cert:
            tracker.stage = done = Stage.CLIENT_CERT
        await _settle(ctx, tls, loop.time() - started)
        if plan.http:
            tracker.stage = done = Stage.HTTP
            await _http(ctx, tls)
        return done
    finally:
        writer.transport.abort()


async def _tunnel(
    ctx: Context, proxy: Proxy | None, plan: Plan, tracker: Tracker
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An open connection ready for the TLS handshake with the target."""
    name, port = (proxy.host, proxy.port) if proxy else (ctx.host, ctx.port)
    of_proxy = proxy is not None
    tracker.stage, tracker.of_proxy = Stage.DNS, of_proxy
    try:
        addresses = await plan.resolver(name, port)
    except socket.gaierror as e:
        raise ProbeFailure(diag.dns(ctx, e, name=name, of_proxy=of_proxy)) from e
    tracker.stage = Stage.TCP
    endpoint = f"{name}:{port}" if ":" not in name else f"[{name}]:{port}"
    try:
        sock = await connect(addresses)
    except OSError as e:
        failure = diag.connect(ctx, e, endpoint=endpoint, of_proxy=of_proxy)
        raise ProbeFailure(failure, endpoint=(name, port)) from e
    reader, writer = await asyncio.open_connection(sock=sock, limit=_HEAD_LIMIT)
    if proxy is None:
        return reader, writer
    try:
        if proxy.scheme == "https":
            tracker.stage = Stage.PROXY_TLS
            await _proxy_handshake(ctx, proxy, plan, writer, addresses, tracker.budget / 2)
        tracker.stage = Stage.PROXY_CONNECT
        try:
            tracker.via = await _connect_request(ctx, proxy, reader, writer)
        except ProbeFailure as e:
            # Closed without a word: a TLS-only proxy drops a plaintext CONNECT.
            silent = e.diagnosis.kind == "connection-reset" and proxy.scheme == "http"
            if silent and await _answers_tls(addresses, plan):
                raise ProbeFailure(diag.proxy_not_http(ctx, b"\x16")) from e
            raise
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer


async def _proxy_handshake(  # noqa: PLR0917 - private; one call site
    ctx: Context,
    proxy: Proxy,
    plan: Plan,
    writer: asyncio.StreamWriter,
    addresses: list[Address],
    share: float,
) -> None:
    """TLS to an ``https://`` proxy; a plain-HTTP proxy just waits, so check for that."""
    limit = min(plan.proxy_tls_timeout, share)
    try:
        async with asyncio.timeout(limit):
            await writer.start_tls(plan.proxy_tls, server_hostname=proxy.host)
    except ssl.SSLError as e:
        failure = diag.tls(ctx, e, of_proxy=True)
        cause: BaseException = e
    except OSError as e:
        failure, cause = diag.reset(ctx, Stage.PROXY_TLS, e, of_proxy=True), e
    except TimeoutError as e:
        failure, cause = diag.timeout(ctx, Stage.PROXY_TLS, limit), e
    else:
        return
    # A proxy speaking plain HTTP waits for the rest of a "request" that is really a
    # ClientHello (proxy.py), or drops it: ask it in plain HTTP to name the mistake.
    if failure.retryable and await _answers_http(addresses, ctx, share):
        failure = diag.proxy_not_tls(ctx)
    raise ProbeFailure(failure) from cause


async def _answers_http(addresses: list[Address], ctx: Context, share: float) -> bool:
    """Does the endpoint answer a plain ``CONNECT`` with HTTP?"""
    try:
        async with asyncio.timeout(min(_SIDE_CHECK, share * 0.9)):
            sock = await connect(addresses)
            reader, writer = await asyncio.open_connection(sock=sock)
            try:
                writer.write(
                    f"CONNECT {ctx.target} HTTP/1.1\r\nHost: {ctx.target}\r\n\r\n".encode()
                )
                await writer.drain()
                return (await reader.read(5)) == b"HTTP/"
            finally:
                writer.transport.abort()
    except (OSError, TimeoutError):
        return False


async def _answers_tls(addresses: list[Address], plan: Plan) -> bool:
    """Does the endpoint complete a TLS handshake (certificate not checked)?"""
    try:
        async with asyncio.timeout(_SIDE_CHECK):
            sock = await connect(addresses)
            _, writer = await asyncio.open_connection(sock=sock)
            try:
                await writer.start_tls(plan.insecure, server_hostname=None)
            finally:
                writer.transport.abort()
    except (OSError, TimeoutError):
        return False
    return True


async def _connect_request(
    ctx: Context, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> str | None:
    """Open the tunnel; return the route corpnet's gateway took, when it says (else None)."""
    lines = [f"CONNECT {ctx.target} HTTP/1.1", f"Host: {ctx.target}", "User-Agent: corpnet"]
    authorization = proxy.authorization()
    if authorization:
        lines.append(f"Proxy-Authorization: {authorization}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial and not e.partial.startswith(b"HTTP/"):
            raise ProbeFailure(diag.proxy_not_http(ctx, e.partial)) from e
        raise ProbeFailure(diag.reset(ctx, Stage.PROXY_CONNECT, None, of_proxy=True)) from e
    except asyncio.LimitOverrunError as e:
        raise ProbeFailure(diag.proxy_not_http(ctx, b"")) from e
    except OSError as e:
        raise ProbeFailure(diag.reset(ctx, Stage.PROXY_CONNECT, e, of_proxy=True)) from e
    status, reason, headers = _parse_head(head)
    if status is None:
        raise ProbeFailure(diag.proxy_not_http(ctx, head))
    if not 200 <= status < 300:
        raise ProbeFailure(
            diag.proxy_status(
                ctx,
                status,
                reason,
                challenges=[v for k, v in headers if k == "proxy-authenticate"],
                squid_error=next((v for k, v in headers if k == "x-squid-error"), None),
            )
        )
    route = next((v for k, v in headers if k == "x-corpnet-route"), None)
    login = next((v for k, v in headers if k == "x-corpnet-auth"), None)
    if route is None:
        return None
    return f"{route} ({login} login)" if login else route


def _parse_head(head: bytes) -> tuple[int | None, str, list[tuple[str, str]]]:
    """Parse an HTTP response head: (status or None when not HTTP, reason, headers)."""
    text = head.decode("latin-1")
    status_line, *header_lines = text.split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None, "", []
    headers = []
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def _settle(ctx: Context, tls: TLSStream, handshake: float) -> None:
    """Catch a TLS 1.3 server's verdict on the client certificate.

    In TLS 1.3 the client's handshake is complete before the server has checked
    the client certificate (RFC 8446 4.4.2): a refusal, or "certificate required"
    when none was sent, arrives as an alert right after. A server that accepts
    sends its session tickets instead (OpenSSL's default), which ends the wait
    early; otherwise wait about one more handshake's time (``handshake``, which
    took one or two round trips). The wait sleeps on the socket: each chunk that
    arrives is looked at once, so a hundred hosts settling cost no more CPU than one.
    """
    if tls.sslobj.version() != "TLSv1.3":
        return  # TLS 1.2 refuses the certificate inside the handshake
    try:
        await tls.settle(min(_SETTLE_MAX, max(_SETTLE_MIN, 2 * handshake)))
    except ssl.SSLError as e:
        raise ProbeFailure(diag.tls(ctx, e)) from e
    except OSError as e:
        raise ProbeFailure(diag.reset(ctx, Stage.CLIENT_CERT, e, of_proxy=False)) from e


async def _http(ctx: Context, tls: TLSStream) -> None:
    host = ctx.target if ctx.port != 443 else ctx.target.rsplit(":", 1)[0]
    request = (
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: corpnet\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n"
    )
    try:
        await tls.write(request.encode("latin-1"))
        line = await tls.readline()
    except ssl.SSLError as e:
        raise ProbeFailure(diag.tls(ctx, e)) from e
    except OSError as e:
        raise ProbeFailure(diag.reset(ctx, Stage.HTTP, e, of_proxy=False)) from e
    if not line:
        raise ProbeFailure(diag.reset(ctx, Stage.HTTP, None, of_proxy=False))
    status, reason, _ = _parse_head(line.rstrip(b"\r\n"))
    if status is None:
        raise ProbeFailure(diag.http_bad(ctx, line))
    if status >= 500:
        raise ProbeFailure(diag.http_status(ctx, status, reason))


def _is_verify(error: ssl.SSLError) -> bool:
    return isinstance(error, ssl.SSLCertVerificationError)


async def _describe_peer(ctx: Context, proxy: Proxy | None, plan: Plan) -> str | None:
    """Fetch, without verifying, the certificate that failed, to name it in the message."""
    if not plan.describe_peer:
        return None
    try:
        # Bounded on its own: a slow second handshake must not turn the real
        # diagnosis into a timeout.
        async with asyncio.timeout(_SIDE_CHECK):
            reader, writer = await _tunnel(ctx, proxy, plan, Tracker())
            try:
                tls = TLSStream(reader, writer, plan.insecure, ctx.host)
                await tls.handshake()
                der = tls.sslobj.getpeercert(binary_form=True)
            finally:
                writer.transport.abort()
    except (OSError, ProbeFailure, TimeoutError):
        return None
    return describe_certificate(der) if der else None


def describe_certificate(der: bytes) -> str | None:
    """``a certificate for NAMES issued by ISSUER`` from a DER certificate."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    subject = ", ".join(names[:4]) or cert.subject.rfc4514_string() or "no name"
    return f"a certificate for {subject} issued by {cert.issuer.rfc4514_string()!r}"


async def proxy_tls(proxy: Proxy, plan: Plan, budget: float) -> diag.Diagnosis | None:
    """Does the ``https://`` proxy answer a TLS handshake with a trusted certificate?"""
    ctx = Context(proxy.host, proxy.port, proxy=proxy.redacted())
    try:
        addresses = await plan.resolver(proxy.host, proxy.port)
    except socket.gaierror as e:
        return diag.dns(ctx, e, name=proxy.host, of_proxy=True)
    try:
        sock = await connect(addresses)
    except OSError as e:
        return diag.connect(ctx, e, endpoint=ctx.target, of_proxy=True)
    _, writer = await asyncio.open_connection(sock=sock)
    try:
        await _proxy_handshake(ctx, proxy, plan, writer, addresses, budget / 2)
    except ProbeFailure as e:
        return e.diagnosis
    finally:
        writer.transport.abort()
    return None
