"""Upstream proxy authentication: Basic, NTLM and Negotiate (Kerberos) through pyspnego.

One :class:`Login` per upstream connection: NTLM authenticates a connection,
not a request, so its three legs must use one socket, and a tunnel's
connection is spent once the CONNECT succeeds. The scheme is chosen from the
407's ``Proxy-Authenticate`` offers, strongest first (Negotiate, NTLM, Basic),
unless ``CORPNET_PROXY_AUTH`` names one.

Negotiate is asked for as Kerberos (pyspnego ``protocol="kerberos"``), not as
SPNEGO: SPNEGO falls back to NTLM without a word when the Kerberos login
fails, which would turn "wrong password" or "KDC unreachable" into an opaque
407 (docs/dev/gateway-lockdown-feasibility.md). MIT Kerberos tokens are
accepted where a SPNEGO token is (Squid's negotiate_kerberos_auth, IIS).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

AuthMode = Literal["auto", "basic", "negotiate", "ntlm"]
Scheme = Literal["Basic", "NTLM", "Negotiate"]
_STRENGTH: tuple[Scheme, ...] = ("Negotiate", "NTLM", "Basic")


class AuthError(Exception):
    """The upstream proxy refused our login, or none could be made; the message says why."""

    def __init__(self, message: str, *, scheme: str | None = None) -> None:
        super().__init__(message)
        self.scheme = scheme


@dataclass(frozen=True)
class Credentials:
    """Who the gateway logs in as. ``password`` is called for each login (a rotated file)."""

    user: str | None = None
    password: Callable[[], str | None] = field(default=lambda: None, repr=False)
    keytab: Path | None = None
    mode: AuthMode = "auto"

    @property
    def any(self) -> bool:
        return self.user is not None or self.keytab is not None


def offered(challenges: Sequence[str]) -> dict[str, str | None]:
    """``Proxy-Authenticate`` values as {scheme: token or None}, scheme names canonical."""
    found: dict[str, str | None] = {}
    for value in challenges:
        name, _, rest = value.strip().partition(" ")
        canonical = {s.lower(): s for s in _STRENGTH}.get(name.lower())
        if canonical is None:
            continue
        token = rest.strip() if canonical != "Basic" and rest.strip() else None
        found[canonical] = token
    return found


def choose(offers: Sequence[str], creds: Credentials) -> Scheme:
    """The scheme to log in with, from what the proxy offers; raises :class:`AuthError`."""
    schemes = [s for s in _STRENGTH if s in offered(offers)]
    if not schemes:
        raise AuthError(
            "the upstream proxy asks for a login corpnet cannot do "
            f"({', '.join(offers) or 'no Proxy-Authenticate header'}): ask IT which scheme it "
            "uses, and whether Basic, NTLM or Kerberos is possible"
        )
    if not creds.any:
        raise AuthError(
            f"the upstream proxy requires a login ({', '.join(schemes)}): set "
            "CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE"
            + (" (or CORPNET_KRB5_KEYTAB for Kerberos)" if "Negotiate" in schemes else "")
        )
    if creds.mode != "auto":
        names: dict[str, Scheme] = {"basic": "Basic", "ntlm": "NTLM", "negotiate": "Negotiate"}
        wanted = names[creds.mode]
        if wanted not in schemes:
            raise AuthError(
                f"CORPNET_PROXY_AUTH={creds.mode} but the upstream proxy offers "
                f"{', '.join(schemes)}: set CORPNET_PROXY_AUTH=auto or to one of those"
            )
        return wanted
    if creds.user is None:  # a keytab alone can only do Kerberos
        if "Negotiate" in schemes:
            return "Negotiate"
        raise AuthError(
            f"the upstream proxy offers {', '.join(schemes)} and only a keytab is configured: "
            "set CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE"
        )
    if "Negotiate" in schemes and not _kerberos_capable(creds):
        schemes.remove("Negotiate")  # Negotiate without Kerberos is NTLM: say so plainly
    return schemes[0] if schemes else "NTLM"


def _kerberos_capable(creds: Credentials) -> bool:
    """A ``user@REALM`` name or a keytab: what a Kerberos login needs."""
    return creds.keytab is not None or (creds.user is not None and "@" in creds.user)


class Login:
    """One login on one upstream connection: call :meth:`respond` for each 407."""

    def __init__(self, creds: Credentials, proxy_host: str) -> None:
        self._creds = creds
        self._host = proxy_host
        self._ctx: Any = None
        self.scheme: Scheme | None = None
        self._sent_final = False

    def preemptive(self, scheme: Scheme | None) -> str | None:
        """A first ``Proxy-Authorization`` before any 407, for a scheme already learned."""
        if scheme is None or not self._creds.any:
            return None
        self.scheme = scheme
        return self._next(None)

    def respond(self, challenges: Sequence[str]) -> str:
        """The next ``Proxy-Authorization`` value after a 407; raises :class:`AuthError`."""
        offers = offered(challenges)
        if self.scheme is None:
            self.scheme = choose(challenges, self._creds)
        elif self._sent_final and not offers.get(self.scheme):
            raise AuthError(self._refused(), scheme=self.scheme)
        token = self._next(offers.get(self.scheme))
        if token is None:
            raise AuthError(self._refused(), scheme=self.scheme)
        return token

    def _refused(self) -> str:
        who = self._creds.user or "the keytab's principal (CORPNET_KRB5_KEYTAB)"
        if self.scheme == "Negotiate":
            # The KDC issued a ticket, so the login itself was good: a wrong password
            # never gets this far. The proxy cannot read tickets for its own name.
            return (
                f"the upstream proxy {self._host} refused a valid Kerberos ticket of {who}: "
                f"its keytab for HTTP/{self._host} does not match the KDC; ask IT to renew it"
            )
        return (
            f"the upstream proxy {self._host} refused the {self.scheme} login of {who}: check "
            "CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE"
        )

    def _next(self, challenge: str | None) -> str | None:
        if self.scheme == "Basic":
            if self._sent_final:
                return None
            self._sent_final = True
            raw = f"{self._creds.user or ''}:{self._creds.password() or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        if self._ctx is None:
            self._ctx = self._context()
        elif challenge is None:
            return None
        try:
            out = self._ctx.step(base64.b64decode(challenge) if challenge else None)
        except Exception as e:
            raise AuthError(_explain(e, self._creds, self.scheme), scheme=self.scheme) from e
        if out is None:
            return None
        # NTLM's third leg, or Kerberos' one: the next 407 means the login was refused.
        self._sent_final = self.scheme == "Negotiate" or challenge is not None
        return f"{self.scheme} {base64.b64encode(out).decode('ascii')}"

    def _context(self) -> Any:
        try:
            import spnego
        except ImportError as e:
            raise AuthError(
                "NTLM and Kerberos need the pyspnego package, which this install lacks: "
                "use the corpnet-base image, or pip install 'corpnet[gateway]'",
                scheme=self.scheme,
            ) from e
        protocol = "kerberos" if self.scheme == "Negotiate" else "ntlm"
        user, password = self._creds.user, self._creds.password()
        try:
            if protocol == "kerberos" and self._creds.keytab is not None and password is None:
                # principal None: pyspnego takes the keytab's first entry.
                principal: Any = spnego.KerberosKeytab(
                    keytab=f"FILE:{self._creds.keytab}", principal=user
                )
                return spnego.client(
                    principal, hostname=self._host, service="HTTP", protocol=protocol
                )
            return spnego.client(
                user, password, hostname=self._host, service="HTTP", protocol=protocol
            )
        except Exception as e:
            raise AuthError(_explain(e, self._creds, self.scheme), scheme=self.scheme) from e


# MIT Kerberos error codes (krb5_err.h) whose meaning a user can act on.
_KRB5_HINTS = {
    # KRB5KRB_AP_ERR_BAD_INTEGRITY
    -1765328353: "wrong password (or the keytab's key is out of date)",
    -1765328360: "wrong password",  # KRB5KDC_ERR_PREAUTH_FAILED
    -1765328378: "unknown user principal",  # KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN
    -1765328377: "the proxy's HTTP/ service principal is unknown to the KDC",  # S_PRINCIPAL_UNKNOWN
    -1765328228: "no KDC answered",
    -1765328236: "clock skew too great between this container and the KDC",  # KRB5_KDCREP_SKEW
    -1765328347: "clock skew too great between this container and the KDC",  # KRB5KRB_AP_ERR_SKEW
}


def _explain(error: BaseException, creds: Credentials, scheme: str | None) -> str:
    """One line for a failed NTLM/Kerberos login: what went wrong and what to do."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 6:
        chain.append(current)
        base = getattr(current, "base_error", None)
        current = (
            current.__cause__
            or current.__context__
            or (base if isinstance(base, BaseException) and base not in chain else None)
        )
    who = creds.user or "the keytab's principal"
    fix = "check CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE (or CORPNET_KRB5_KEYTAB)"
    codes: list[int] = []
    for e in chain:
        code = getattr(e, "err_code", None)
        if isinstance(code, int):
            codes.append(code)
    text = " ".join(str(e) for e in chain)
    # GSSAPI reports the Kerberos minor code unsigned: -1765328377 arrives as 2529638919.
    codes += [
        int(n) - (1 << 32) if int(n) >= 1 << 31 else -int(n)
        for n in re.findall(r"\b\d{9,10}\b", text)
    ]
    codes += [int(n) for n in re.findall(r"-\d{9,10}\b", text)]
    for code in codes:
        if code in _KRB5_HINTS:
            return f"Kerberos login of {who} failed ({_KRB5_HINTS[code]}): {_fix(code, fix)}"
    minor = re.search(r"Minor \(\d+\): ([^,]+)", text) or re.search(
        r"Minor \(\d+\) - ([^,)]+)", text
    )
    said = minor.group(1).strip() if minor else (text.splitlines()[0] if text else "")
    said = said.replace(": ", " - ")[:160] or error.__class__.__name__
    return f"{scheme or 'proxy'} login of {who} failed ({said}): {fix}"


def _fix(code: int, default: str) -> str:
    if code == -1765328228:
        return "check the realm's kdc in /etc/krb5.conf (or KRB5_CONFIG) and that it answers"
    if code in {-1765328236, -1765328347}:
        return "synchronise this machine's clock with the KDC's (NTP)"
    if code == -1765328377:
        return "ask IT for the HTTP/<proxy host> principal, or check the proxy's name"
    return default
