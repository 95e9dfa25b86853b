"""NO_PROXY: normalised so every client reads it alike, and the one bypass decision.

Split out of :mod:`corpnet.proxy`, which re-exports everything public here.
What each client does with NO_PROXY (read in their sources, proven by
tests/net/test_proxy_consistency.py):

- curl/git (libcurl 7.88): commas; stops at a blank; ``.d`` and ``d`` both match
  d and below; IPv4 CIDR; IPv6 addresses, but no IPv6 ranges.
- Python urllib: commas; suffix match; no CIDR; never matches an IPv6 address
  (it compares ``[::1]`` with ``::1``).
- requests: like urllib plus IPv4 CIDR and IPv6 addresses.
- httpx: ``.d`` matches only below d; no CIDR; an IPv6 range or a bracketed
  IPv6 entry makes *every* request fail (InvalidURL).
- Node core agent (NODE_USE_ENV_PROXY): a bare ``d`` matches only d itself;
  ``a-b`` IPv4 ranges but no CIDR.
- undici (Node fetch, Claude Code's npm build): splits on commas and blanks; no
  CIDR; a bare IPv6 entry is misread as ``host:port``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from corpnet.errors import ConfigError

# Never proxied, whatever the user wrote: a proxy cannot reach our own loopback.
ALWAYS_DIRECT = ("localhost", "127.0.0.1", "::1")
# Inside Kubernetes: in-cluster service names (Service DNS is <svc>.<ns>.svc.cluster.local).
KUBERNETES_DOMAINS = ("svc", "cluster.local")
HOST_RE = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")


class ProxyConfigError(ConfigError):
    """A proxy variable is malformed or asks for something no agent supports."""


@dataclass(frozen=True)
class NoProxy:
    """A normalised NO_PROXY list and what normalising it said."""

    entries: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)


def normalise_no_proxy(raw: str | None, *, kubernetes_host: str | None = None) -> NoProxy:
    """Normalise NO_PROXY as every client we export to can read it.

    Split on commas and blanks (the two documented forms); lower-case; trailing
    dots stripped; each domain emitted as ``d`` and ``.d`` (Node's core agent
    matches bare names only exactly, httpx and Go match ``.d`` only below it);
    IPv4/IPv6 addresses and IPv4 ranges kept, IPv6 unbracketed; IPv6 ranges
    dropped (they break httpx); ``:port`` dropped (curl never matches an entry
    with a port); loopback always added. Every lossy step adds a warning.
    Raise :class:`ProxyConfigError` when ``*`` is mixed with other entries.
    """
    tokens = [t for t in re.split(r"[,\s]+", (raw or "").strip().lower()) if t]
    if "*" in tokens:
        if len(tokens) > 1:
            raise ProxyConfigError(
                "NO_PROXY mixes * with other entries",
                hint="* is honoured only as the whole value: set NO_PROXY=* to bypass the "
                "proxy for every host, or remove the *",
                variable="NO_PROXY",
            )
        return NoProxy(("*",))
    entries: list[str] = []
    warnings: list[str] = []
    ported: list[str] = []
    extra = [*ALWAYS_DIRECT]
    if kubernetes_host:
        extra += [*KUBERNETES_DOMAINS, kubernetes_host.lower()]
    for token in [*tokens, *extra]:
        kind, value, had_port = _classify(token)
        if had_port:
            ported.append(token)
        if kind == "bad":
            warnings.append(
                f"NO_PROXY entry {token!r} is neither a host name, an IP address nor a "
                "CIDR range: it is ignored; remove it"
            )
            continue
        forms = [value, f".{value}"] if kind == "domain" else [value]
        if kind == "domain" and not value.isascii():
            # Node and requests compare the punycode form, curl and urllib what the URL
            # says: list both, so a name reads alike either way.
            puny = value.encode("idna").decode("ascii")
            forms += [puny, f".{puny}"]
            warnings.append(
                f"NO_PROXY entry {token!r} is an internationalised name: exported as "
                f"{value} and {puny} too, since clients compare one form or the other"
            )
        if kind == "ip" and "%" in value:
            warnings.append(
                f"NO_PROXY entry {token!r} has an IPv6 zone id, which only curl reads: the "
                "other clients send that address through the proxy; list it without %zone"
            )
        entries.extend(f for f in forms if f not in entries)
    if ported:
        warnings.append(
            f"NO_PROXY entries {', '.join(ported)} have a port, which curl never matches: "
            "the port is dropped, so every port of those hosts goes direct"
        )
    warnings.extend(_client_gaps(entries, user=[_classify(x)[1] for x in tokens]))
    # httpx turns an IPv6 range into the pattern all://[fd00::/64], which it cannot
    # parse: every request fails (InvalidURL). No other client here matches one.
    entries = [e for e in entries if not ("/" in e and ":" in e)]
    return NoProxy(tuple(entries), warnings)


def _client_gaps(entries: list[str], *, user: Sequence[str] = ()) -> list[str]:
    """Warnings for entries some clients cannot follow (see the module docstring)."""
    warnings = []
    v6_ranges = [e for e in entries if "/" in e and ":" in e]
    v4_ranges = [e for e in entries if "/" in e and ":" not in e]
    # ::1 is always added and matches nothing for Node fetch or urllib, but only a
    # user who wrote it expects it to: then it is named with the others.
    v6_addresses = [e for e in entries if ":" in e and "/" not in e and e not in ALWAYS_DIRECT]
    v6_addresses += [e for e in user if e == "::1"]
    if v6_ranges:
        warnings.append(
            f"NO_PROXY IPv6 ranges {', '.join(v6_ranges)} are dropped: httpx fails every "
            "request while one is listed, and no other client matches them; list the "
            "addresses or host names that must go direct"
        )
    if v4_ranges:
        warnings.append(
            f"NO_PROXY CIDR ranges {', '.join(v4_ranges)} are ignored by Claude Code (Bun, "
            "undici), Node, Python urllib and httpx, which send those addresses through the "
            "proxy (curl, git and requests honour them): list the addresses or host names "
            "that must go direct"
        )
    if v6_addresses:
        warnings.append(
            f"NO_PROXY IPv6 addresses {', '.join(v6_addresses)} are not matched by Node "
            "fetch (undici, Claude Code's npm build) nor Python urllib, which use the proxy "
            "for them: prefer a host name"
        )
    return warnings


def _classify(token: str) -> tuple[str, str, bool]:
    """Return (kind, normalised value, had_port); kind: domain|ip|cidr|bad."""
    if "://" in token:
        token = token.split("://", 1)[1].split("/", 1)[0]
    host, had_port = _strip_port(token.rstrip("."))
    try:
        return "ip", str(ipaddress.ip_address(host)), had_port
    except ValueError:
        pass
    try:
        return "cidr", str(ipaddress.ip_network(host, strict=False)), had_port
    except ValueError:
        pass
    domain = host.removeprefix("*.").lstrip(".").rstrip(".")
    if not domain.isascii():
        try:
            puny = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return "bad", domain, had_port
        return ("domain" if HOST_RE.match(puny) else "bad"), domain, had_port
    return ("domain" if HOST_RE.match(domain) else "bad"), domain, had_port


def _strip_port(token: str) -> tuple[str, bool]:
    """``[v6]:port``, ``[v6]``, ``host:port`` -> host; a bare IPv6 keeps its colons."""
    if token.startswith("["):
        host, _, after = token[1:].partition("]")
        return host, after.startswith(":")
    if token.count(":") == 1:
        host, _, port = token.partition(":")
        if port.isdigit():
            return host, True
    return token, False


def matching_entry(host: str, no_proxy: Sequence[str]) -> str | None:
    """The NO_PROXY entry that sends ``host`` around the proxy, or None.

    Names: curl's rule (label boundaries; a leading ``.`` or ``*.`` ignored, so
    ``.d`` matches ``d`` too; ``*`` alone matches all), which every client follows
    once :func:`normalise_no_proxy` has emitted both ``d`` and ``.d``. Addresses:
    equal addresses match. CIDR ranges never match: Claude Code's runtimes (Bun,
    and undici in the npm build) ignore them, as do Node's core agent, Python
    urllib and httpx, so the agent sends such addresses through the proxy, and
    the probes must too. (curl, git and requests do honour IPv4 ranges.)
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy:
        if entry == "*":
            return entry
        if address is not None:
            if _address_matches(address, entry):
                return entry
            continue
        domain = entry.removeprefix("*.").lstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return entry
    return None


def _address_matches(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return address == ipaddress.ip_address(entry.strip("[]"))
    except ValueError:
        return False  # a name, or a CIDR range (see matching_entry)


def bypasses(host: str, no_proxy: Sequence[str]) -> bool:
    """Does a request to ``host`` go around the proxy? THE decision; probes use it too."""
    return matching_entry(host, no_proxy) is not None
