"""Does the upstream proxy need the gateway? One CONNECT at start, without asyncio.

``CORPNET_GATEWAY=auto`` turns the gateway on when the proxy's 407 offers only
NTLM or Negotiate: no client in the container could log in with Basic. The
question costs one round trip to the proxy, only when a proxy is configured
and no variable already decided.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence

from corpnet.config import HostPort
from corpnet.proxy import ProxyConfig

TIMEOUT = 3.0


def only_gateway_schemes(upstream: ProxyConfig, allowlist: Sequence[HostPort]) -> str | None:
    """Why the gateway must run (the proxy's offers), or None (Basic works, or no answer)."""
    proxy = upstream.https or upstream.all or upstream.http
    if proxy is None or not allowlist:
        return None
    target = allowlist[0]
    try:
        head = _connect_head(proxy.host, proxy.port, proxy.scheme == "https", str(target))
    except (OSError, ValueError):
        return None  # the wait will say what is wrong with the proxy
    lines = head.split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "407":
        return None
    offers = {
        line.split(":", 1)[1].strip().split(" ", 1)[0].lower()
        for line in lines[1:]
        if line.lower().startswith("proxy-authenticate:")
    }
    if offers and "basic" not in offers and offers & {"ntlm", "negotiate"}:
        names = ", ".join(sorted(o.upper() if o == "ntlm" else o.title() for o in offers))
        return f"the proxy {proxy.netloc} offers only {names}"
    return None


def _connect_head(host: str, port: int, tls: bool, target: str) -> str:
    with socket.create_connection((host, port), TIMEOUT) as raw:
        sock: socket.socket = raw
        if tls:
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        sock.settimeout(TIMEOUT)
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
