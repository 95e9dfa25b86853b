"""One frozen, typed settings object built from the environment.

Everything a user can set is read here and only here, so that every
configuration error is found before anything changes (the entrypoint reports
them all at once). ``_FILE`` twins of secrets (a Kubernetes or compose secret
mount) are resolved here too; a variable and its ``_FILE`` twin both set is an
error, as in the official postgres image's ``file_env``.

What the values *mean* (NO_PROXY rules, proxy URL schemes, certificate checks)
is each stage's business; this module only parses and reconciles.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from corpnet import inputs
from corpnet.errors import ConfigError, ConfigErrors, CorpnetError, PermissionDeniedError

DEFAULT_CONFIG_DIR = Path("/etc/corpnet")
DEFAULT_RUNTIME_DIR = Path("/run/corpnet")
# The hosts the Claude Code enterprise network documentation lists as required.
DEFAULT_ALLOWLIST = ("api.anthropic.com", "claude.ai", "platform.claude.com")
DEFAULT_WAIT_TIMEOUT = 60.0
# A day: a container that waits longer for its network is stuck, and a finite
# cap keeps every deadline computable (inf or 1e300 would never end a wait).
MAX_WAIT_TIMEOUT = 86400.0
DEFAULT_CERT_WARN_DAYS = 14
MAX_CERT_WARN_DAYS = 3650  # ten years: longer than any client certificate lives

# Variables read here, or passed on (JAVA_TOOL_OPTIONS is appended to), whose
# values end up in URLs, files and env.sh, all UTF-8. Python hands undecodable
# bytes of the environment over as lone surrogates (PEP 383), which no encoder
# takes: they are refused here, as a _FILE twin holding the same bytes is.
_TEXT_PREFIXES = ("CORPNET_", "CLAUDE_CODE_")
_TEXT_NAMES = frozenset(
    {
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "NODE_EXTRA_CA_CERTS",
        "JAVA_TOOL_OPTIONS",
        "KUBERNETES_SERVICE_HOST",
    }
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

WaitMode = Literal["required", "warn", "off"]
ProbeMode = Literal["tls", "http"]
SystemStoreMode = Literal["auto", "off"]
ReadFile = Callable[[Path], str]


@dataclass(frozen=True)
class HostPort:
    """A host and port to probe; ``host`` is lower-case, IPv6 without brackets."""

    host: str
    port: int = 443

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class TrustSettings:
    """Inputs of the trust stage."""

    ca_dir: Path
    ca_files: tuple[Path, ...] = ()
    ca_dirs: tuple[Path, ...] = ()
    # NODE_EXTRA_CA_CERTS as the user set it; None when unset or when it points
    # at a bundle corpnet itself wrote (a restart, or a shell that sourced env.sh).
    node_extra_ca_certs: Path | None = None
    strict: bool = False
    system_bundle: Path | None = None  # CORPNET_SYSTEM_BUNDLE; None: auto-detect
    system_store: SystemStoreMode = "auto"


@dataclass(frozen=True)
class IdentitySettings:
    """Inputs of the identity (client certificate) stage."""

    cert: Path
    key: Path
    ca: Path
    p12: Path
    # True when the user named the files; False when they are the defaults
    # under /etc/corpnet/client/, which may simply not be mounted.
    cert_explicit: bool = False
    key_explicit: bool = False
    p12_explicit: bool = False
    passphrase: str | None = field(default=None, repr=False)
    passphrase_source: str | None = None  # the variable it came from, for messages
    p12_password: str | None = field(default=None, repr=False)
    warn_days: int = DEFAULT_CERT_WARN_DAYS
    decrypt_key: bool = False
    strict: bool = False


@dataclass(frozen=True)
class ProxySettings:
    """Raw proxy inputs, upper and lower case already reconciled."""

    https_proxy: str | None = None
    http_proxy: str | None = None
    all_proxy: str | None = None
    no_proxy: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    # Inside Kubernetes, NO_PROXY also gets the cluster's own names and API server.
    kubernetes_host: str | None = None


@dataclass(frozen=True)
class ReachSettings:
    """Inputs of the reachability stage."""

    allowlist: tuple[HostPort, ...] = tuple(HostPort(h) for h in DEFAULT_ALLOWLIST)
    optional: tuple[HostPort, ...] = ()
    wait: WaitMode = "required"
    timeout: float = DEFAULT_WAIT_TIMEOUT
    mtls_hosts: tuple[str, ...] | None = None  # None: every host, when an identity exists
    probe: ProbeMode = "tls"


@dataclass(frozen=True)
class RunSettings:
    """Inputs of the entrypoint itself."""

    hooks_dir: Path
    user: str | None = None  # CORPNET_USER: name or uid[:gid] to drop to
    quiet: bool = False
    log_json: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything corpnet reads from the environment."""

    config_dir: Path
    runtime_dir: Path
    runtime_dir_explicit: bool
    trust: TrustSettings
    identity: IdentitySettings
    proxy: ProxySettings
    reach: ReachSettings
    run: RunSettings
    strict: bool = False
    # CORPNET_MISSING_FILES=warn: the named files that were not there, and the
    # value each of their variables has without them ("" for unset). The start
    # hands these values on (env.sh, the agent, the gateway), so that no tool is
    # pointed at a file that does not exist.
    missing_files: tuple[inputs.MissingFile, ...] = ()
    without_missing: Mapping[str, str] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every secret value, for the logger to scrub."""
        values = [self.identity.passphrase, self.identity.p12_password, self.proxy.password]
        values += [_userinfo_password(v) for v in self._proxy_urls()]
        return [v for v in values if v]

    def _proxy_urls(self) -> list[str | None]:
        p = self.proxy
        return [p.https_proxy, p.http_proxy, p.all_proxy]


def _userinfo_password(url: str | None) -> str | None:
    # Parsed by hand: urlsplit rejects some malformed URLs we still must not leak.
    if not url or "@" not in url:
        return None
    rest = url.split("://", 1)[-1]
    userinfo = rest.rsplit("@", 1)[0]
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


def split_list(value: str, separators: str = ",\\s") -> list[str]:
    """Split ``value`` on any of ``separators`` (a regex character class body)."""
    return [part for part in re.split(f"[{separators}]+", value.strip()) if part]


def read_secret_file(path: Path) -> str:
    """Read a mounted secret; one trailing newline (from ``echo`` or an editor) is dropped.

    Only a regular file is read (:func:`corpnet.inputs.read_regular`), so a FIFO
    or ``/dev/zero`` named by a ``_FILE`` variable neither blocks nor fills memory.
    """
    text = inputs.read_regular(path, inputs.SECRET_INPUT_LIMIT).data.decode("utf-8")
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


class _Reader:
    """Reads typed values from ``env``, collecting errors instead of raising."""

    def __init__(self, env: Mapping[str, str], read_file: ReadFile) -> None:
        self.env = env
        self.read_file = read_file
        self.errors: list[CorpnetError] = []

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        return value if value else None  # set-but-empty counts as unset

    def flag(self, name: str) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw in _TRUE:
            return True
        if raw not in _FALSE:
            self.errors.append(
                ConfigError(
                    f"{name}={raw!r} is not a yes/no value", hint="use 1 or 0", variable=name
                )
            )
        return False

    def number(
        self, name: str, default: float, *, unit: str, maximum: float, minimum: float = 0
    ) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            problem = "is not a number"
        else:
            if minimum <= value <= maximum:  # NaN fails both
                return value
            problem = "is out of range"
        self.errors.append(
            ConfigError(
                f"{name}={raw!r} {problem}",
                hint=f"use a number of {unit} from {minimum:g} to {maximum:g}, "
                f"e.g. {name}={default:g}",
                variable=name,
            )
        )
        return default

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        raw = (self.get(name) or default).strip().lower()
        if raw not in choices:
            self.errors.append(
                ConfigError(
                    f"{name}={raw!r} is not a valid value",
                    hint=f"use one of: {', '.join(choices)}",
                    variable=name,
                )
            )
            return default
        return raw

    def paths(self, name: str) -> tuple[Path, ...]:
        raw = self.get(name)
        return tuple(Path(p) for p in split_list(raw, ":,")) if raw else ()

    def secret(self, name: str, file_names: tuple[str, ...]) -> tuple[str | None, str | None]:
        """Resolve ``name`` or one of its ``_FILE`` twins; returns (value, source)."""
        given = [n for n in (name, *file_names) if self.get(n) is not None]
        if len(given) > 1:
            self.errors.append(
                ConfigError(
                    f"{' and '.join(given)} are both set",
                    hint="set only one of them",
                    variable=given[0],
                )
            )
            return None, None
        if not given:
            return None, None
        source = given[0]
        if source == name:
            return self.env[name], name
        path = Path(self.env[source])
        try:
            return self.read_file(path), source
        except FileNotFoundError:
            self.errors.append(
                ConfigError(
                    f"{source} points at {path}, which does not exist",
                    hint="mount the secret there or fix the path",
                    path=path,
                    variable=source,
                )
            )
        except inputs.InputFileError as e:
            self.errors.append(
                ConfigError(
                    f"{source} points at {path}, which {e.what}",
                    hint="point it at the file that holds the secret",
                    path=path,
                    variable=source,
                )
            )
        except PermissionError:
            self.errors.append(
                PermissionDeniedError(
                    f"{source} points at {path}, which uid {os.getuid()} cannot read",
                    hint="make it group-readable (fsGroup) or run as its owner",
                    path=path,
                    variable=source,
                )
            )
        except UnicodeDecodeError:
            self.errors.append(
                ConfigError(
                    f"{source} points at {path}, which is not UTF-8 text",
                    hint="write the secret there as UTF-8",
                    path=path,
                    variable=source,
                )
            )
        except OSError as e:
            self.errors.append(
                ConfigError(
                    f"{source}: cannot read {path} ({e.__class__.__name__})",
                    hint="mount a UTF-8 text file there",
                    path=path,
                    variable=source,
                )
            )
        return None, source

    def cased(self, upper: str) -> str | None:
        """Reconcile ``UPPER`` and ``upper``: equal, one of them, or an error."""
        lower = upper.lower()
        u, low = self.get(upper), self.get(lower)
        if u is not None and low is not None and _comparable(upper, u) != _comparable(upper, low):
            self.errors.append(
                ConfigError(
                    f"{upper} and {lower} are both set and differ",
                    hint=f"tools disagree on which wins: set only {upper}, or both to one value",
                    variable=upper,
                )
            )
        value = u if u is not None else low
        return value.strip() if value is not None else None

    def text(self) -> None:
        """Refuse values that are not UTF-8 (see ``_TEXT_NAMES``), naming never the value."""
        for name in sorted(self.env):
            if not (name.startswith(_TEXT_PREFIXES) or name.upper() in _TEXT_NAMES):
                continue
            try:
                self.env[name].encode("utf-8")
            except UnicodeEncodeError:
                self.errors.append(
                    ConfigError(
                        f"{name} is not valid UTF-8",
                        hint=f"set {name} to UTF-8 text (percent-encode other bytes in a URL)",
                        variable=name,
                    )
                )

    def hostports(self, name: str, default: tuple[str, ...]) -> tuple[HostPort, ...]:
        raw = self.env.get(name)
        items = split_list(raw) if raw is not None else list(default)
        result: list[HostPort] = []
        for item in items:
            try:
                result.append(parse_hostport(item))
            except ValueError:
                self.errors.append(
                    ConfigError(
                        f"{name}: {item!r} is not host[:port]",
                        hint="list hosts like api.example.com or proxy.corp:8443, "
                        "separated by commas or spaces",
                        variable=name,
                    )
                )
        return tuple(result)


def _comparable(upper: str, value: str) -> str | frozenset[str]:
    """What must agree between ``UPPER`` and ``upper``: NO_PROXY is a set of entries."""
    if upper == "NO_PROXY":
        # Order, case, blanks and trailing dots mean nothing to any client.
        return frozenset(e.rstrip(".") for e in split_list(value.lower()))
    return value.strip()


_HOST_RE = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")


def parse_hostport(item: str, default_port: int = 443) -> HostPort:
    """Parse ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; raise ValueError."""
    item = item.strip().lower().rstrip(".")
    if "://" in item:
        item = item.split("://", 1)[1].split("/", 1)[0]
    port = default_port
    if item.startswith("["):
        host, closed, rest = item[1:].partition("]")
        if not closed:  # "[::1:443" would otherwise pass as the address ::1:443
            raise ValueError(item)
        if rest:
            if not rest.startswith(":"):
                raise ValueError(item)
            port = int(rest[1:])
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
        port = int(port_text)
    else:
        host = item
    host = host.rstrip(".")
    if ":" in host:  # bare IPv6
        import ipaddress

        ipaddress.IPv6Address(host)
    elif not _HOST_RE.match(host):
        raise ValueError(item)
    if not 0 < port < 65536:
        raise ValueError(item)
    return HostPort(host, port)


def _own_output(path: Path, runtime_dir: Path) -> bool:
    """Is ``path`` a file corpnet wrote itself (so not a user input)?"""
    try:
        return path.resolve().is_relative_to(runtime_dir.resolve())
    except OSError:
        return False


def load(env: Mapping[str, str], *, read_file: ReadFile = read_secret_file) -> Settings:
    """Build :class:`Settings` from ``env``; raise :class:`ConfigErrors` listing every problem."""
    r = _Reader(env, read_file)
    r.text()
    missing_files: tuple[inputs.MissingFile, ...] = ()
    if r.choice("CORPNET_MISSING_FILES", ("error", "warn"), "error") == "warn":
        r.env, missing_files = inputs.drop_missing(env)
    config_dir = Path(r.get("CORPNET_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    runtime_raw = r.get("CORPNET_RUNTIME_DIR")
    runtime_dir = Path(runtime_raw) if runtime_raw else DEFAULT_RUNTIME_DIR
    strict = r.flag("CORPNET_STRICT")

    node_extra = r.get("NODE_EXTRA_CA_CERTS")
    node_extra_path = Path(node_extra) if node_extra else None
    if node_extra_path is not None and _own_output(node_extra_path, runtime_dir):
        node_extra_path = None
    system_bundle = r.get("CORPNET_SYSTEM_BUNDLE")
    trust = TrustSettings(
        ca_dir=config_dir / "ca.d",
        ca_files=r.paths("CORPNET_CA_FILES"),
        ca_dirs=r.paths("CORPNET_CA_DIRS"),
        node_extra_ca_certs=node_extra_path,
        strict=r.flag("CORPNET_CA_STRICT") or strict,
        system_bundle=Path(system_bundle) if system_bundle else None,
        system_store=r.choice("CORPNET_SYSTEM_STORE", ("auto", "off"), "auto"),  # type: ignore[arg-type]
    )

    client_dir = config_dir / "client"
    cert = r.get("CLAUDE_CODE_CLIENT_CERT")
    key = r.get("CLAUDE_CODE_CLIENT_KEY")
    p12 = r.get("CORPNET_CLIENT_P12")
    passphrase, passphrase_source = r.secret(
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE",
        ("CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE", "CORPNET_CLIENT_KEY_PASSPHRASE_FILE"),
    )
    p12_password, _ = r.secret("CORPNET_CLIENT_P12_PASSWORD", ("CORPNET_CLIENT_P12_PASSWORD_FILE",))
    # Our own PKCS#12 conversion or decrypted copy, seen again on a restart or in
    # a shell that sourced env.sh, is output, not input: fall back to the mounts.
    if cert and _own_output(Path(cert), runtime_dir):
        cert = r.get("CORPNET_INPUT_CLIENT_CERT")  # what the user had named, if anything
    if key and _own_output(Path(key), runtime_dir):
        key = r.get("CORPNET_INPUT_CLIENT_KEY")
    identity = IdentitySettings(
        cert=Path(cert) if cert else client_dir / "tls.crt",
        key=Path(key) if key else client_dir / "tls.key",
        ca=client_dir / "ca.crt",
        p12=Path(p12) if p12 else client_dir / "client.p12",
        cert_explicit=cert is not None,
        key_explicit=key is not None,
        p12_explicit=p12 is not None,
        passphrase=passphrase,
        passphrase_source=passphrase_source,
        p12_password=p12_password,
        warn_days=int(
            r.number(
                "CORPNET_CERT_WARN_DAYS",
                DEFAULT_CERT_WARN_DAYS,
                unit="days",
                maximum=MAX_CERT_WARN_DAYS,
            )
        ),
        decrypt_key=r.flag("CORPNET_DECRYPT_KEY"),
        strict=strict,
    )

    password, _ = r.secret("CORPNET_PROXY_PASSWORD", ("CORPNET_PROXY_PASSWORD_FILE",))
    proxy = ProxySettings(
        https_proxy=r.cased("HTTPS_PROXY"),
        http_proxy=r.cased("HTTP_PROXY"),
        all_proxy=r.cased("ALL_PROXY"),
        no_proxy=r.cased("NO_PROXY"),
        user=r.get("CORPNET_PROXY_USER"),
        password=password,
        kubernetes_host=r.get("KUBERNETES_SERVICE_HOST"),
    )
    if password is not None and proxy.user is None:
        r.errors.append(
            ConfigError(
                "CORPNET_PROXY_PASSWORD is set but CORPNET_PROXY_USER is not",
                hint="set CORPNET_PROXY_USER to the proxy account name",
                variable="CORPNET_PROXY_USER",
            )
        )

    mtls_raw = r.env.get("CORPNET_MTLS_HOSTS")
    reach = ReachSettings(
        allowlist=r.hostports("CORPNET_ALLOWLIST", DEFAULT_ALLOWLIST),
        optional=r.hostports("CORPNET_ALLOWLIST_OPTIONAL", ()),
        wait=r.choice("CORPNET_WAIT", ("required", "warn", "off"), "required"),  # type: ignore[arg-type]
        timeout=r.number(
            "CORPNET_WAIT_TIMEOUT", DEFAULT_WAIT_TIMEOUT, unit="seconds", maximum=MAX_WAIT_TIMEOUT
        ),
        mtls_hosts=(
            tuple(h.lower().rstrip(".") for h in split_list(mtls_raw))
            if mtls_raw is not None
            else None
        ),
        probe=r.choice("CORPNET_PROBE", ("tls", "http"), "tls"),  # type: ignore[arg-type]
    )

    run = RunSettings(
        hooks_dir=config_dir / "entrypoint.d",
        user=r.get("CORPNET_USER"),
        quiet=r.flag("CORPNET_QUIET"),
        log_json=r.choice("CORPNET_LOG", ("text", "json"), "text") == "json",
    )

    if r.errors:
        raise ConfigErrors(r.errors)
    return Settings(
        config_dir=config_dir,
        runtime_dir=runtime_dir,
        runtime_dir_explicit=runtime_raw is not None,
        trust=trust,
        identity=identity,
        proxy=proxy,
        reach=reach,
        run=run,
        strict=strict,
        missing_files=missing_files,
        without_missing={m.variable: r.env[m.variable] for m in missing_files},
    )
