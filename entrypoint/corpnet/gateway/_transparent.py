"""Transparent capture: connections the lockdown redirected here, decided like explicit ones.

Under ``CORPNET_EGRESS=lockdown`` TCP to ports 80 and 443 from any process but
the gateway is redirected to this listener (corpnet.egress). The original
destination comes from ``SO_ORIGINAL_DST``; the name from the TLS ClientHello's
server_name, or the HTTP ``Host`` header, read without consuming them. The
connection then takes the same policy and route as an explicit request and
goes out through the upstream proxy by name, so a client with no proxy
variables at all (``env -i curl https://api.example.com/``) reaches an allowed
host, and a refused one gets a 403 (HTTP) or a closed connection (TLS), both
in the audit log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from corpnet.gateway._audit import Audit, Record
from corpnet.gateway._http import simple_response
from corpnet.gateway._policy import Decision, normalise_host
from corpnet.gateway._upstream import RouteError, Upstream, splice

SO_ORIGINAL_DST = 80  # <linux/netfilter_ipv4.h>; IP6T_SO_ORIGINAL_DST is the same number
FIRST_BYTES_TIMEOUT = 10.0
MAX_FIRST = 16 * 1024  # a ClientHello or a request head


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """Where the client meant to connect before the nat rule redirected it."""
    if sock.family == socket.AF_INET6:
        raw = sock.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)  # sockaddr_in6
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)  # sockaddr_in
    port = struct.unpack_from("!H", raw, 2)[0]
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port


def server_name(hello: bytes) -> str | None:
    """The SNI host name of a TLS ClientHello record, or None (not TLS, no SNI, truncated)."""
    try:
        if hello[0] != 0x16 or hello[5] != 0x01:  # handshake record, ClientHello
            return None
        pos = 9 + 2 + 32  # record header 5, handshake header 4, version 2, random 32
        pos += 1 + hello[pos]  # session id
        pos += 2 + struct.unpack_from("!H", hello, pos)[0]  # cipher suites
        pos += 1 + hello[pos]  # compression methods
        end = pos + 2 + struct.unpack_from("!H", hello, pos)[0]
        pos += 2
        while pos + 4 <= end:
            kind, length = struct.unpack_from("!HH", hello, pos)
            pos += 4
            if kind == 0:  # server_name: list length, type 0 (host_name), name length, name
                name_length = struct.unpack_from("!H", hello, pos + 3)[0]
                return hello[pos + 5 : pos + 5 + name_length].decode("ascii").lower()
            pos += length
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None


def host_header(head: bytes) -> str | None:
    """The host of an HTTP request's ``Host`` header (port removed), or None."""
    for line in head.split(b"\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            text = value.strip().decode("latin-1")
            if text.startswith("["):
                return text[1:].partition("]")[0]
            return text.rpartition(":")[0] if text.count(":") == 1 else text
    return None


async def _first_bytes(reader: asyncio.StreamReader) -> bytes:
    """What the client sends first: enough of a ClientHello or a request head."""
    data = b""
    while len(data) < MAX_FIRST:
        chunk = await reader.read(MAX_FIRST - len(data))
        if not chunk:
            break
        data += chunk
        if data[:1] == b"\x16" and len(data) >= 5:
            if len(data) >= 5 + struct.unpack_from("!H", data, 3)[0]:
                break  # the whole first record
        elif b"\r\n\r\n" in data:
            break
    return data


class _Gateway(Protocol):
    """What a captured connection needs of the gateway (corpnet.gateway._server.Gateway)."""

    decide: Callable[[str, int, str, str], Awaitable[Decision]]
    upstream: Upstream
    audit: Audit


async def handle(
    gateway: _Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve one captured connection."""
    started = time.monotonic()
    peer = writer.get_extra_info("peername")
    client = f"{peer[0]}:{peer[1]}" if peer else "?"
    try:
        sock = writer.get_extra_info("socket")
        address, port = original_destination(sock)
        first = await asyncio.wait_for(_first_bytes(reader), FIRST_BYTES_TIMEOUT)
        tls = first[:1] == b"\x16"
        name = server_name(first) if tls else host_header(first)
        host = normalise_host(name) if name else address
        with_name = host != address
        scheme = "https" if tls else "http"
        decision = await gateway.decide(host, port, scheme, client)
        record = Record(client, "capture", host, port, "allow", decision.reason, started=started)
        record.route = " | ".join(r.describe() for r in decision.routes)
        if not decision.allowed or not decision.routes:
            record.decision = "deny" if not decision.allowed else "allow"
            record.status = 403 if not decision.allowed else 502
            record.error = None if not decision.allowed else decision.reason
            if not tls:
                writer.write(simple_response(record.status, "Forbidden", decision.reason))
            gateway.audit.write(record, monotonic_now=time.monotonic())
            return
        if not with_name and not _is_ip(address):
            record.error = "no name in the connection"
        try:
            opened = await gateway.upstream.open_route(decision.routes, host, port)
        except RouteError as e:
            record.status, record.error = e.status, e.line
            if not tls:
                writer.write(simple_response(e.status, "Bad Gateway", e.line))
            gateway.audit.write(record, monotonic_now=time.monotonic())
            return
        record.route, record.auth, record.status = opened.route.describe(), opened.scheme, 200
        opened.writer.write(first)
        try:
            up, record.down = await splice(reader, writer, opened)
            record.up = up + len(first)
        finally:
            gateway.audit.write(record, monotonic_now=time.monotonic())
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
