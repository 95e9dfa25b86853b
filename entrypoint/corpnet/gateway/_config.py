"""The gateway's variables, read into one frozen settings object (pure).

``CORPNET_GATEWAY`` (auto|on|off), ``CORPNET_GATEWAY_LISTEN``, ``CORPNET_EGRESS``
(open|allowlist|lockdown), ``CORPNET_EGRESS_ALLOW``, ``CORPNET_PAC_URL``,
``CORPNET_PROXY_AUTH`` (auto|basic|negotiate|ntlm), ``CORPNET_KRB5_KEYTAB``.
Every malformed value is collected, and all are raised together as
:class:`~corpnet.errors.ConfigErrors` (78), as the rest of the configuration is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from corpnet.errors import ConfigError, ConfigErrors, CorpnetError
from corpnet.gateway._auth import AuthMode
from corpnet.gateway._listen import Listen
from corpnet.gateway._policy import AllowEntry, Egress, parse_allow

GatewayMode = Literal["auto", "on", "off"]
DEFAULT_PORT = 3128
DEFAULT_LISTEN = (Listen("127.0.0.1", DEFAULT_PORT), Listen("::1", DEFAULT_PORT))
DEFAULT_KEYTAB = Path("/etc/corpnet/kerberos/krb5.keytab")
# The client key's secrets are the agent's, not the gateway's: its processes never read them.
AGENT_SECRETS = frozenset(
    {
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE",
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE",
        "CORPNET_CLIENT_KEY_PASSPHRASE_FILE",
        "CORPNET_CLIENT_P12_PASSWORD",
        "CORPNET_CLIENT_P12_PASSWORD_FILE",
    }
)


@dataclass(frozen=True)
class GatewaySettings:
    """What the gateway variables say; ``mode`` auto is resolved by the run stage."""

    mode: GatewayMode = "auto"
    listen: tuple[Listen, ...] = DEFAULT_LISTEN
    egress: Egress = "open"
    allow: tuple[AllowEntry, ...] = ()
    pac_url: str | None = None
    auth: AuthMode = "auto"
    keytab: Path | None = None

    @property
    def capture(self) -> tuple[Listen, ...]:
        """The transparent listener under lockdown: the explicit port + 1, same addresses."""
        return tuple(Listen(a.host, a.port + 1) for a in self.listen)

    @property
    def proxy_url(self) -> str:
        """What the agent's proxy variables hold when the gateway is on."""
        first = self.listen[0]
        return f"http://{first}"

    def wanted(self) -> str | None:
        """Why ``auto`` turns the gateway on, from the variables alone (None: not from them)."""
        if self.mode == "on":
            return "CORPNET_GATEWAY=on"
        if self.mode == "off":
            return None
        if self.pac_url:
            return "CORPNET_PAC_URL is set"
        if self.egress != "open":
            return f"CORPNET_EGRESS={self.egress}"
        if self.auth in {"negotiate", "ntlm"}:
            return f"CORPNET_PROXY_AUTH={self.auth}"
        return None


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(
            f"{name}={value!r} is not a valid value: use one of {', '.join(allowed)}",
            variable=name,
        )
    return value


def load(env: Mapping[str, str], *, config_dir: Path | None = None) -> GatewaySettings:
    """Read the gateway variables; raise :class:`ConfigErrors` listing every bad one."""
    errors: list[CorpnetError] = []
    values: dict[str, object] = {}
    for name, key, allowed, default in (
        ("CORPNET_GATEWAY", "mode", ("auto", "on", "off"), "auto"),
        ("CORPNET_EGRESS", "egress", ("open", "allowlist", "lockdown"), "open"),
        ("CORPNET_PROXY_AUTH", "auth", ("auto", "basic", "negotiate", "ntlm"), "auto"),
    ):
        try:
            values[key] = _choice(env, name, allowed, default)
        except ConfigError as e:
            errors.append(e)
    listen: tuple[Listen, ...] = DEFAULT_LISTEN
    if env.get("CORPNET_GATEWAY_LISTEN", "").strip():
        try:
            listen = tuple(
                _listen(t) for t in env["CORPNET_GATEWAY_LISTEN"].split(",") if t.strip()
            )
        except ValueError as e:
            errors.append(
                ConfigError(
                    f"CORPNET_GATEWAY_LISTEN: {e}",
                    hint="use loopback addresses with ports: 127.0.0.1:3128,[::1]:3128",
                    variable="CORPNET_GATEWAY_LISTEN",
                )
            )
    allow: list[AllowEntry] = []
    for token in (env.get("CORPNET_EGRESS_ALLOW") or "").replace(" ", ",").split(","):
        if not token.strip():
            continue
        try:
            allow.append(parse_allow(token))
        except ValueError as e:
            errors.append(
                ConfigError(
                    f"CORPNET_EGRESS_ALLOW: {e}",
                    hint="entries are host, .domain or host:port, separated by commas",
                    variable="CORPNET_EGRESS_ALLOW",
                )
            )
    pac_url = (env.get("CORPNET_PAC_URL") or "").strip() or None
    if (
        pac_url
        and pac_url.lower() != "wpad"
        and not pac_url.lower().startswith(("http://", "https://", "file://"))
    ):
        errors.append(
            ConfigError(
                f"CORPNET_PAC_URL={pac_url!r} is not a PAC location",
                hint="use http(s)://…/proxy.pac, file:///path/proxy.pac, or wpad",
                variable="CORPNET_PAC_URL",
            )
        )
    keytab: Path | None = None
    if env.get("CORPNET_KRB5_KEYTAB", "").strip():
        keytab = Path(env["CORPNET_KRB5_KEYTAB"].strip())
    else:
        fallback = (config_dir / "kerberos" / "krb5.keytab") if config_dir else DEFAULT_KEYTAB
        if fallback.exists():
            keytab = fallback
    if errors:
        raise ConfigErrors(errors)
    return GatewaySettings(
        mode=cast("GatewayMode", values["mode"]),
        listen=listen,
        egress=cast("Egress", values["egress"]),
        allow=tuple(allow),
        pac_url=pac_url,
        auth=cast("AuthMode", values["auth"]),
        keytab=keytab,
    )


def _listen(text: str) -> Listen:
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} has no valid port")
    if host not in {"127.0.0.1", "::1", "localhost"} and not host.startswith("127."):
        raise ValueError(f"{text!r} is not a loopback address: the gateway holds credentials")
    return Listen("127.0.0.1" if host == "localhost" else host, int(port_text))
