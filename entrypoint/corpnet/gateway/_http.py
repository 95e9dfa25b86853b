"""Just enough HTTP/1.1 for a forward proxy: heads, bodies, and their limits.

The gateway reads request heads from clients and response heads from upstream
proxies and origins. Bodies are relayed, never buffered whole: a body is
framed by ``Content-Length``, by chunked encoding (relayed chunk by chunk,
trailers included), or, for a response, by the connection's close
(RFC 9112 section 6.3). Heads are bounded (``MAX_HEAD``): a client that sends
an endless header block gets a 431, not our memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024  # bytes of request line + headers; nginx's default large buffers total 32k
CHUNK = 64 * 1024  # relay buffer: large enough for loopback throughput, small per tunnel

# Hop-by-hop headers (RFC 9110 section 7.6.1): never forwarded as received.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class HttpError(Exception):
    """A malformed or oversized message; ``status`` is what to answer a client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Head:
    """A request or response head: the start line's three parts and the headers."""

    first: str  # method, or HTTP version for a response
    second: str  # target, or status code
    third: str  # HTTP version, or reason phrase
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def tokens(self, name: str) -> set[str]:
        """The comma-separated tokens of every ``name`` header, lower-case."""
        return {t.strip().lower() for v in self.get_all(name) for t in v.split(",") if t.strip()}

    @property
    def status(self) -> int:
        return int(self.second)

    def encode(self) -> bytes:
        lines = [f"{self.first} {self.second} {self.third}".rstrip()]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_head(reader: asyncio.StreamReader, *, response: bool = False) -> Head | None:
    """Read one head; None at a clean end of stream before any byte of it."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HttpError(400, "truncated message head") from e
    except asyncio.LimitOverrunError as e:
        raise HttpError(431, "message head too large") from e
    if len(raw) > MAX_HEAD:
        raise HttpError(431, "message head too large")
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    while lines and not lines[0]:  # tolerate a stray CRLF between keep-alive requests
        lines.pop(0)
    if not lines:
        return None
    parts = lines[0].split(" ", 2)
    if len(parts) < (2 if response else 3):
        raise HttpError(400, f"malformed start line {lines[0][:80]!r}")
    head = Head(parts[0], parts[1], parts[2] if len(parts) > 2 else "")
    if response and not parts[1].isdigit():
        raise HttpError(502, f"malformed status line {lines[0][:80]!r}")
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        head.headers.append((name, value.strip()))
    return head


def body_length(head: Head, *, response: bool, request_method: str = "GET") -> int | None:
    """Bytes of body that follow ``head``: a count, -1 for chunked, None until close."""
    if response:
        code = head.status
        if request_method == "HEAD" or code in {204, 304} or 100 <= code < 200:
            return 0
    if "chunked" in head.tokens("transfer-encoding"):
        return -1
    length = head.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HttpError(400, f"bad Content-Length {length[:40]!r}")
        return int(length)
    return None if response else 0


async def relay_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, length: int | None
) -> int:
    """Copy one body (framed as :func:`body_length` says); ``writer`` None drains it."""
    moved = 0
    if length is None:  # until the peer closes
        while chunk := await reader.read(CHUNK):
            moved += await _put(writer, chunk)
        return moved
    if length >= 0:
        remaining = length
        while remaining:
            chunk = await reader.read(min(CHUNK, remaining))
            if not chunk:
                raise HttpError(502, "connection closed inside a body")
            remaining -= len(chunk)
            moved += await _put(writer, chunk)
        return moved
    while True:  # chunked: size line, data, CRLF; a 0 size ends it, then trailers
        line = await reader.readuntil(b"\r\n")
        moved += await _put(writer, line)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as e:
            raise HttpError(502, "malformed chunk size") from e
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                moved += await _put(writer, trailer)
            moved += await _put(writer, b"\r\n")
            return moved
        moved += await _put(writer, await reader.readexactly(size + 2))


async def _put(writer: asyncio.StreamWriter | None, data: bytes) -> int:
    if writer is not None:
        writer.write(data)
        await writer.drain()
    return len(data)


def keeps_alive(head: Head) -> bool:
    """Does the peer that sent ``head`` keep the connection open afterwards?"""
    connection = head.tokens("connection") | head.tokens("proxy-connection")
    version = head.first if head.first.startswith("HTTP/") else head.third
    if "close" in connection:
        return False
    return version == "HTTP/1.1" or "keep-alive" in connection


def simple_response(status: int, reason: str, body: str, *, close: bool = True) -> bytes:
    """A small text/plain response the gateway itself answers (403, 502, …).

    A ``corpnet: …`` body line is also the reason phrase: a CONNECT client never
    reads the body of a refused tunnel, but the reason phrase reaches curl's
    error, and corpnet's own wait turns it into its diagnosis.
    """
    data = (body.rstrip("\n") + "\n").encode()
    if body.startswith("corpnet: "):
        reason = " ".join(body.split())[:1000].encode("latin-1", "replace").decode("latin-1")
    head = Head("HTTP/1.1", str(status), reason)
    head.headers += [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(data))),
        ("Connection", "close" if close else "keep-alive"),
    ]
    return head.encode() + data
