"""The proxy stage: one proxy configuration that every tool reads the same way.

Tools disagree about proxy variables: which case wins (curl and Python read the
lower-case name first, Go the upper-case one, undici takes a set-but-empty
lower-case value), how NO_PROXY is split (curl stops at a blank, undici splits on
whitespace too) and how its entries match (Node's core agent matches a bare
``example.com`` only exactly, httpx's ``.example.com`` only subdomains). This
module turns what the user gave into a normalised configuration, exported under
both names with identical values, and holds :func:`bypasses`: the one function
that decides whether a host goes around the proxy. The reachability probes ask
:meth:`ProxyConfig.proxy_for`, so they take the path the agent takes.

Everything here is pure: it takes :class:`~corpnet.config.ProxySettings` and
returns a :class:`ProxyConfig`; the edges log its notes and warnings.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from corpnet.config import HostPort, ProxySettings, Settings
from corpnet.environment import Exports
from corpnet.errors import ConfigErrors, CorpnetError
from corpnet.log import redact
from corpnet.proxy._no_proxy import (
    ALWAYS_DIRECT,
    HOST_RE,
    NoProxy,
    ProxyConfigError,
    bypasses,
    matching_entry,
    normalise_no_proxy,
)

__all__ = [
    "ALWAYS_DIRECT",
    "NoProxy",
    "ProxyConfig",
    "ProxyConfigError",
    "ProxyURL",
    "bypasses",
    "for_settings",
    "matching_entry",
    "normalise_no_proxy",
    "parse_proxy_url",
    "redact",
    "resolve",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SOCKS = ("socks", "socks4", "socks4a", "socks5", "socks5h")


@dataclass(frozen=True)
class ProxyURL:
    """One proxy: ``scheme://[user[:password]@]host:port`` with raw (decoded) credentials."""

    scheme: str  # "http" or "https" (TLS to the proxy itself)
    host: str  # lower-case; IPv6 without brackets
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def netloc(self) -> str:
        """``host:port``, IPv6 in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _userinfo(self, password: str | None) -> str:
        if self.username is None:
            return ""
        # safe="": '@ : / % # ?' and spaces are all encoded; every client we export
        # to percent-decodes the userinfo (Node decodeURIComponent, requests unquote).
        user = quote(self.username, safe="")
        if password is None:
            return f"{user}@"
        return f"{user}:{password}@"

    @property
    def url(self) -> str:
        """The full URL, credentials percent-encoded: what the variables hold."""
        pw = quote(self.password, safe="") if self.password is not None else None
        return f"{self.scheme}://{self._userinfo(pw)}{self.netloc}"

    def redacted(self) -> str:
        """The URL with the password replaced by ``***``: safe for any output."""
        pw = "***" if self.password is not None else None
        return f"{self.scheme}://{self._userinfo(pw)}{self.netloc}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header value for Basic auth, or None."""
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class ProxyConfig:
    """The resolved proxy configuration and the variables that carry it."""

    https: ProxyURL | None
    http: ProxyURL | None
    all: ProxyURL | None
    no_proxy: tuple[str, ...]
    exports: Exports
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def proxy_for(self, host: str, port: int = 443, scheme: str = "https") -> ProxyURL | None:
        """The proxy a request to ``scheme://host:port`` goes through; None: direct."""
        del port  # NO_PROXY entries carry no ports once normalised (see normalise_no_proxy)
        if bypasses(host, self.no_proxy):
            return None
        chosen = self.https if scheme == "https" else self.http
        return chosen if chosen is not None else self.all


# --- proxy URLs ------------------------------------------------------------------


def parse_proxy_url(value: str, variable: str) -> tuple[ProxyURL, list[str]]:
    """Parse one proxy variable; return the URL and notes. Raise :class:`ProxyConfigError`."""
    notes: list[str] = []
    shown = redact(value)
    if any(c.isspace() or not c.isprintable() for c in value):
        # Node throws ERR_PROXY_INVALID_CONFIG quoting the whole URL (password included).
        # Not shown: redact() cannot find where a password with a blank ends.
        raise ProxyConfigError(
            f"{variable} contains a blank or control character",
            hint="remove it; percent-encode a blank in the password as %20 "
            "or use CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD",
            variable=variable,
        )
    if "://" in value:
        scheme, rest = value.split("://", 1)
        scheme = scheme.lower()
    else:
        scheme, rest = "http", value
        notes.append(f"{variable} has no scheme: using {redact('http://' + rest)}")
    if scheme in _SOCKS:
        raise ProxyConfigError(
            f"{variable} is a SOCKS proxy ({shown}), which Claude Code does not support",
            hint="point it at an HTTP proxy (http://host:port), or run an HTTP-to-SOCKS "
            "gateway or an LLM gateway and point it there",
            variable=variable,
        )
    if scheme not in _DEFAULT_PORTS:
        raise ProxyConfigError(
            f"{variable} has the scheme {scheme}:// ({shown})",
            hint="use http://host:port (or https:// for a proxy that itself speaks TLS)",
            variable=variable,
        )
    username = password = None
    if "@" in rest:
        # The last '@' ends the userinfo: users type raw '@' in passwords.
        userinfo, rest = rest.rsplit("@", 1)
        user, sep, pw = userinfo.partition(":")
        if not user and pw:
            # Basic auth needs an account name: the password would be dropped silently.
            raise ProxyConfigError(
                f"{variable} has a password but no user name ({shown})",
                hint="put the proxy account before the colon (http://user:password@host:port), "
                "or use CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD",
                variable=variable,
            )
        username = unquote(user)
        password = unquote(pw) if sep else None
    hostport = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host, port = _split_hostport(hostport, variable, shown)
    if port is None:
        port = _DEFAULT_PORTS[scheme]
        # curl alone defaults a port-less proxy to 1080; an explicit port makes all agree.
        notes.append(f"{variable} has no port: using {port}, the {scheme}:// default")
    return ProxyURL(scheme, host, port, username or None, password), notes


def _split_hostport(hostport: str, variable: str, shown: str) -> tuple[str, int | None]:
    def bad(what: str) -> ProxyConfigError:
        return ProxyConfigError(
            f"{variable} has {what} ({shown})",
            hint="use http://host:port, e.g. http://proxy.corp.example:3128",
            variable=variable,
        )

    port_text: str | None = None
    if hostport.startswith("["):
        host, closed, after = hostport[1:].partition("]")
        if not closed:  # "[::1:3128" is a valid address, ::1:3128, without its port
            raise bad("an IPv6 address without its closing ]")
        if after:
            if not after.startswith(":"):
                raise bad("a malformed IPv6 address")
            port_text = after[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad("a malformed IPv6 address") from None
    else:
        host, sep, port_text_ = hostport.partition(":")
        port_text = port_text_ if sep else None
        host = host.lower().rstrip(".")
        if not HOST_RE.match(host):
            raise bad("no valid host name")
    if port_text is None:
        return host.lower(), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise bad(f"the port {port_text!r}, which is not a number from 1 to 65535")
    return host.lower(), int(port_text)


def _with_credentials(
    url: ProxyURL, user: str | None, password: str | None, variable: str
) -> ProxyURL:
    """Put CORPNET_PROXY_USER/PASSWORD into ``url``; the URL's own credentials must agree."""
    if user is None:
        return url
    if url.username is not None and (url.username, url.password) != (user, password):
        raise ProxyConfigError(
            f"{variable} has credentials for {url.username!r} and CORPNET_PROXY_USER is set",
            hint=f"remove the credentials from {variable} or unset CORPNET_PROXY_USER "
            "and CORPNET_PROXY_PASSWORD",
            variable=variable,
        )
    return ProxyURL(url.scheme, url.host, url.port, user, password)


# --- the stage ------------------------------------------------------------------------


def for_settings(settings: Settings) -> ProxyConfig:
    """The one routing decision that ``run``, ``wait`` and ``doctor`` share.

    Resolved against every host the agent is expected to reach (the required
    and the optional allowlist), so all three warn about the same NO_PROXY
    bypasses and probe the same route.
    """
    return resolve(settings.proxy, allowlist=[*settings.reach.allowlist, *settings.reach.optional])


def resolve(settings: ProxySettings, *, allowlist: Sequence[HostPort]) -> ProxyConfig:
    """Turn the user's proxy variables into one configuration; raise on what cannot work.

    Raises :class:`~corpnet.errors.ConfigErrors` listing every malformed variable.
    """
    errors: list[CorpnetError] = []
    notes: list[str] = []
    urls: dict[str, ProxyURL | None] = {}
    for variable, value in (
        ("HTTPS_PROXY", settings.https_proxy),
        ("HTTP_PROXY", settings.http_proxy),
        ("ALL_PROXY", settings.all_proxy),
    ):
        urls[variable] = None
        if not value:
            continue
        try:
            url, url_notes = parse_proxy_url(value, variable)
            urls[variable] = _with_credentials(url, settings.user, settings.password, variable)
            notes.extend(url_notes)
        except ProxyConfigError as e:
            errors.append(e)
    try:
        no_proxy = normalise_no_proxy(settings.no_proxy, kubernetes_host=settings.kubernetes_host)
    except ProxyConfigError as e:
        errors.append(e)
        no_proxy = NoProxy(())
    if errors:
        raise ConfigErrors(errors)

    https, http, all_ = urls["HTTPS_PROXY"], urls["HTTP_PROXY"], urls["ALL_PROXY"]
    if all_ is not None and (https is None or http is None):
        # Node's core agent, undici and Go never read ALL_PROXY; curl, requests and Bun
        # do. Copying it makes the scheme variables the single source every tool reads.
        missing = [n for n, u in (("HTTPS_PROXY", https), ("HTTP_PROXY", http)) if u is None]
        notes.append(f"ALL_PROXY also exported as {' and '.join(missing)}")
        https, http = https or all_, http or all_
    if settings.user is not None and https is None and http is None:
        notes.append("CORPNET_PROXY_USER is set but no proxy is: it is ignored")

    warnings = list(no_proxy.warnings)
    if any(_git_decodes_twice(u) for u in urls.values()):
        warnings.append(
            "the proxy password contains '%' followed by two hex digits, which git decodes "
            "a second time: git will fail proxy authentication (other clients are fine); "
            "change the password if git must use the proxy"
        )
    if https is not None or http is not None:
        warnings.extend(_allowlist_warnings(allowlist, no_proxy.entries))
    else:
        notes.append("no proxy configured (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY): direct access")
    exports = _exports(https, http, all_, no_proxy.entries, given_no_proxy=bool(settings.no_proxy))
    return ProxyConfig(
        https=https,
        http=http,
        all=all_,
        no_proxy=no_proxy.entries,
        exports=exports,
        notes=notes,
        warnings=warnings,
    )


def _git_decodes_twice(url: ProxyURL | None) -> bool:
    # Seen with git 2.39: a password `%41`, sent as `%2541`, reaches the proxy as `A`.
    return url is not None and re.search(r"%[0-9a-fA-F]{2}", url.password or "") is not None


def _allowlist_warnings(allowlist: Sequence[HostPort], no_proxy: Sequence[str]) -> list[str]:
    warnings = []
    for hp in allowlist:
        entry = matching_entry(hp.host, no_proxy)
        if entry is not None and entry not in ALWAYS_DIRECT:
            warnings.append(
                f"NO_PROXY entry {entry!r} sends the allowlisted host {hp.host} around the "
                f"proxy: remove it from NO_PROXY, or {hp.host} must be reachable directly"
            )
    return warnings


def _exports(
    https: ProxyURL | None,
    http: ProxyURL | None,
    all_: ProxyURL | None,
    no_proxy: tuple[str, ...],
    *,
    given_no_proxy: bool,
) -> Exports:
    env: dict[str, str] = {}
    secret: set[str] = set()
    for name, url in (("HTTPS_PROXY", https), ("HTTP_PROXY", http), ("ALL_PROXY", all_)):
        if url is None:
            continue
        # Both cases, identical: curl reads only lower-case http_proxy, Go prefers
        # upper case, undici takes a set-but-empty lower-case value over upper case.
        for n in (name, name.lower()):
            env[n] = url.url
            if url.password is not None:
                secret.add(n)
    proxied = https is not None or http is not None
    if proxied or given_no_proxy:
        joined = ",".join(no_proxy)  # commas, no blanks: curl stops at a blank
        env["NO_PROXY"] = env["no_proxy"] = joined
    java: list[str] = []
    if proxied:
        # Read at start-up by Node >= 22.21 / 24 for fetch and the http(s) agents;
        # setting it from inside the process is too late, so it must be exported.
        env["NODE_USE_ENV_PROXY"] = "1"
        java = _java_options(https, http, no_proxy)
    return Exports(env=env, java_options=tuple(java), secret_names=frozenset(secret))


def _java_options(
    https: ProxyURL | None, http: ProxyURL | None, no_proxy: tuple[str, ...]
) -> list[str]:
    """JVM system properties; the JVM reads no proxy variable, only these.

    Credentials are never put here: the JVM prints JAVA_TOOL_OPTIONS to stderr at
    every start ("Picked up JAVA_TOOL_OPTIONS: ...").
    """
    options: list[str] = []
    for prefix, url in (("https", https), ("http", http)):
        if url is not None:
            options += [f"-D{prefix}.proxyHost={url.host}", f"-D{prefix}.proxyPort={url.port}"]
    hosts: list[str] = []
    for entry in no_proxy:
        # http.nonProxyHosts: '|'-separated patterns, '*' only at either end; it
        # has no leading-dot suffix form and no CIDR (ranges are left out).
        if "/" in entry:
            continue
        pattern = f"*{entry}" if entry.startswith(".") else entry
        if pattern not in hosts:
            hosts.append(pattern)
    if hosts:
        options.append(f"-Dhttp.nonProxyHosts={'|'.join(hosts)}")
    return options
