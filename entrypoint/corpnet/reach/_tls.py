"""TLS to the probed host, driven by hand over an asyncio stream.

asyncio's own TLS (``StreamWriter.start_tls``) consumes whatever a TLS 1.3
server sends after the handshake inside its protocol: session tickets wake no
reader, so the probe could only learn that the server accepted by polling
``SSLObject.session`` (a costly read: CPython copies the session out of OpenSSL
each time). Here every chunk the peer sends passes through :meth:`TLSStream.settle`,
which looks for the verdict exactly when one can have arrived and otherwise
waits on the socket (the ``ssl`` module's documented memory-BIO interface, the
one asyncio itself is built on).
"""

from __future__ import annotations

import asyncio
import ssl

_CHUNK = 64 * 1024
_LINE_LIMIT = 64 * 1024  # an HTTP status line longer than this is not HTTP


class TLSStream:
    """One TLS connection over ``reader``/``writer`` (TCP, a proxy tunnel, or TLS to a proxy)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ssl.SSLContext,
        server_hostname: str | None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._data = bytearray()  # application data decrypted and not yet consumed
        self._closed = False  # the peer closed the connection (close_notify or TCP)

    async def handshake(self) -> None:
        """Complete the handshake.

        A failed handshake closes the connection at once, as asyncio's TLS does:
        a peer still waiting for the rest of it is freed before the probe connects
        again to describe the certificate (proxy.py, inspecting TLS, holds the
        next connection back until then).

        Raises:
            ssl.SSLError: OpenSSL refused it (certificate, alert, not TLS).
            ConnectionResetError: the peer closed the connection first (as asyncio's TLS says).
            OSError: the connection failed.
        """
        try:
            while True:
                try:
                    self.sslobj.do_handshake()
                except ssl.SSLWantReadError:
                    await self._flush()
                    if not await self._receive():
                        raise ConnectionResetError from None
                else:
                    await self._flush()  # the client Finished, which the server answers
                    return
        except (ssl.SSLError, OSError):
            self._writer.transport.abort()
            raise

    async def settle(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a TLS 1.3 server's verdict on the client certificate.

        Returns when a session ticket or application data arrives, when the peer
        closes without an alert, or when ``seconds`` pass.

        Raises:
            ssl.SSLError: the server sent an alert (a refused or missing certificate).
            OSError: the connection was reset.
        """
        try:
            async with asyncio.timeout(seconds):
                while True:
                    # What came with the server's Finished first: a server that asks
                    # for no certificate may send its tickets in that same flight.
                    if self._incoming.pending and self._verdict():
                        return
                    if not await self._receive():
                        return
        except TimeoutError:
            return

    def _verdict(self) -> bool:
        """Has what arrived so far settled it? An alert raises ``ssl.SSLError``."""
        try:
            data = self.sslobj.read(_CHUNK)
        except ssl.SSLWantReadError:
            # Only post-handshake messages so far: the server accepted once it sent a
            # ticket (OpenSSL sends two by default, right after the client's Finished).
            session = self.sslobj.session
            return session is not None and session.has_ticket
        if data:
            self._data += data  # the server spoke first: it accepted
        else:
            self._closed = True  # close_notify
        return True

    async def write(self, data: bytes) -> None:
        """Send ``data`` as application data."""
        self.sslobj.write(data)
        await self._flush()

    async def readline(self) -> bytes:
        """Application data up to and including ``\\n``; less at EOF or past the line limit.

        Raises:
            ssl.SSLError: the server sent an alert.
            OSError: the connection was reset.
        """
        while b"\n" not in self._data and not self._closed and len(self._data) < _LINE_LIMIT:
            try:
                data = self.sslobj.read(_CHUNK)
            except ssl.SSLWantReadError:
                if not await self._receive():
                    self._closed = True  # TCP closed without close_notify: EOF all the same
                continue
            if data:
                self._data += data
            else:
                self._closed = True
        end = self._data.find(b"\n") + 1 or len(self._data)
        line = bytes(self._data[:end])
        del self._data[:end]
        return line

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _receive(self) -> bool:
        """Feed the next chunk from the peer to OpenSSL; False at end of stream."""
        data = await self._reader.read(_CHUNK)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True
