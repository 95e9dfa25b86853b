"""The gateway's one decision per connection: allowed or not, and which way out.

Pure: a host, a port and the settings in, a :class:`Decision` out. Because the
gateway decides for every client, NO_PROXY means the same thing to curl,
Python, Node and git: names are normalised once (lower case, trailing dot
stripped, IDN to punycode, IPv6 brackets and zone ids removed) before they
are matched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from corpnet.proxy import ProxyURL, matching_entry

Egress = Literal["open", "allowlist", "lockdown"]
RouteKind = Literal["direct", "proxy"]


@dataclass(frozen=True)
class Route:
    """One way out: straight to the destination, or through an upstream proxy."""

    kind: RouteKind
    proxy: ProxyURL | None = None

    def describe(self) -> str:
        return "DIRECT" if self.proxy is None else f"PROXY {self.proxy.netloc}"


DIRECT = Route("direct")


@dataclass(frozen=True)
class AllowEntry:
    """``host``, ``.domain`` (the domain and every name below it), either with ``:port``."""

    name: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name.startswith("."):
            return host == self.name[1:] or host.endswith(self.name)
        return host == self.name


@dataclass(frozen=True)
class Decision:
    """Whether a connection may go out, the routes to try in order, and why."""

    allowed: bool
    routes: tuple[Route, ...]
    reason: str  # for the audit log; for a refusal, the line the client gets


def normalise_host(host: str) -> str:
    """The form every comparison uses: lower case, no trailing dot, punycode, bare IPv6."""
    host = host.strip().strip("[]").split("%", 1)[0].rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host  # no valid punycode form: compared as written, matches nothing odd
    return host


def parse_allow(text: str) -> AllowEntry:
    """One ``CORPNET_EGRESS_ALLOW`` entry; raises ValueError with what is wrong."""
    text = text.strip()
    port: int | None = None
    if text.startswith("["):  # [v6]:port
        addr, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
        name = addr
    elif text.count(":") == 1:
        name, _, port_text = text.partition(":")
        port = _port(port_text)
    else:
        name = text
    dot = name.startswith(".")
    name = normalise_host(name.lstrip("."))
    if not name:
        raise ValueError(f"{text!r} names no host")
    return AllowEntry(("." if dot else "") + name, port)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def decide(
    host: str,
    port: int,
    *,
    scheme: str,
    egress: Egress,
    allow: Sequence[AllowEntry],
    no_proxy: Sequence[str],
    upstream: Sequence[Route],
    pac_routes: Sequence[Route] | None = None,
) -> Decision:
    """Decide one connection to ``host:port`` (``scheme`` "https" for CONNECT, "http").

    ``upstream`` is the static route list (the user's proxy for that scheme,
    or DIRECT without one); ``pac_routes``, when a PAC file answered, replaces
    it. The user's NO_PROXY sends a host DIRECT either way.
    """
    host = normalise_host(host)
    if egress != "open" and not any(e.matches(host, port) for e in allow):
        return Decision(
            allowed=False,
            routes=(),
            reason=(
                f"corpnet: {_netloc(host, port)} is not allowed by the egress policy "
                f"(CORPNET_EGRESS={egress}): add it to CORPNET_EGRESS_ALLOW "
                "(host, .domain or host:port) if the agent needs it"
            ),
        )
    entry = no_proxy_entry(host, no_proxy)
    if entry is not None:
        return Decision(True, (DIRECT,), f"NO_PROXY {entry}")
    if pac_routes is not None:
        return Decision(True, tuple(pac_routes) or (DIRECT,), "PAC")
    del scheme  # the caller chose ``upstream`` for it
    return Decision(True, tuple(upstream) or (DIRECT,), "proxy" if upstream else "no proxy")


def no_proxy_entry(host: str, no_proxy: Sequence[str]) -> str | None:
    """The NO_PROXY entry that sends ``host`` DIRECT, or None.

    corpnet's own rule (:func:`corpnet.proxy.matching_entry`, what clients
    agree on) plus address ranges: a client may ignore a CIDR entry, but the
    gateway decides for all of them, so the range the user wrote applies.
    """
    found = matching_entry(host, no_proxy)
    if found is not None:
        return found
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    for entry in no_proxy:
        if "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return entry
            except ValueError:
                continue
    return None


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
