"""``corpnet doctor``: every stage's checks, in memory, then reachability.

Nothing is written: the trust bundle is merged in memory, the identity is
checked (not applied), the proxy configuration is resolved, an ``https://``
proxy is asked for a TLS handshake, and every host (optional ones included) is
probed until ready, failed for good, or the deadline. The result is one report
with a line per finding; anything at level ``error`` makes the command exit 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from corpnet.config import Settings
from corpnet.errors import ConfigErrors, CorpnetError
from corpnet.reach import _report
from corpnet.reach._model import ClientIdentity, Report

if TYPE_CHECKING:
    from corpnet.reach._chain import Finding as ChainFinding

Level = Literal["ok", "info", "warning", "error"]
DEFAULT_TIMEOUT = 15.0  # doctor answers now; the entrypoint's wait uses CORPNET_WAIT_TIMEOUT
_MARK = {"ok": "ok  ", "info": "note", "warning": "WARN", "error": "FAIL"}


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    section: str
    level: Level
    message: str


@dataclass
class DoctorResult:
    """Everything the doctor found."""

    findings: list[Finding] = field(default_factory=list)
    report: Report | None = None

    def add(self, section: str, level: Level, message: str) -> None:
        self.findings.append(Finding(section, level, message))

    def errors(self, section: str, error: CorpnetError) -> None:
        for e in error.errors if isinstance(error, ConfigErrors) else [error]:
            self.add(section, "error", str(e))

    @property
    def ok(self) -> bool:
        bad = any(f.level == "error" for f in self.findings)
        return not bad and (self.report is None or self.report.ok)

    def render(self) -> str:
        """The text report: findings by section, then the reachability table."""
        lines: list[str] = []
        section = None
        for f in self.findings:
            if f.section != section:
                section = f.section
                lines.append(f"{section}:")
            lines.append(f"  {_MARK[f.level]}  {f.message}")
        if self.report is not None:
            if section != "reachability":
                lines.append("reachability:")
            lines.extend("  " + line for line in _report.table(self.report).splitlines())
            lines.append("  " + _report.summary_line(self.report))
        lines.append("corpnet doctor: " + ("all good" if self.ok else "problems found (see above)"))
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "ok": self.ok,
            "findings": [
                {"section": f.section, "level": f.level, "message": f.message}
                for f in self.findings
            ],
            "reachability": self.report.to_json() if self.report is not None else None,
        }


def run(env: Mapping[str, str], *, timeout: float | None = None) -> DoctorResult:
    """Run every check against ``env``; never raises a :class:`CorpnetError`."""
    from corpnet import config
    from corpnet import log as logmod

    result = DoctorResult()
    try:
        settings = config.load(env)
    except ConfigErrors as e:
        result.errors("configuration", e)
        return result
    log = logmod.get()
    for secret in settings.secrets():
        log.add_secret(secret)
    result.add("configuration", "ok", "every variable parses")
    roots = _trust(settings, result)
    with contextlib.ExitStack() as stack:
        identity = _identity(settings, roots, result, stack)
        route = _proxy(settings, roots, result)
        if route is None:
            result.add("reachability", "info", "not probed: fix the proxy configuration first")
        else:
            if roots is None:
                result.add(
                    "reachability",
                    "info",
                    "probing with the default trust store: the merged bundle could not be built",
                )
            _reach(settings, route, roots, identity, result, timeout)
    return result


def _trust(settings: Settings, result: DoctorResult) -> bytes | None:
    from corpnet import trust

    section = "trust"
    try:
        pem = trust.merged_bundle_pem(settings.trust, runtime_dir=settings.runtime_dir)
    except CorpnetError as e:
        result.errors(section, e)
        for f in getattr(e, "files", ()):
            _file_report(result, f)
        return None
    count = pem.count(b"-----BEGIN CERTIFICATE-----")
    result.add(section, "ok", f"merged bundle (in memory): {count} certificates")
    try:
        merged = trust.merge(b"", trust.read_inputs(settings.trust), now=dt.datetime.now(dt.UTC))
    except CorpnetError:
        return pem
    for f in merged.files:
        _file_report(result, f)
    if not merged.files:
        result.add(
            section,
            "info",
            f"no corporate CA mounted under {settings.trust.ca_dir}: only the system store "
            "is trusted (a TLS-inspecting proxy needs its CA there)",
        )
    return pem


def _file_report(result: DoctorResult, f: object) -> None:
    path, refused = getattr(f, "path", "?"), getattr(f, "refused", None)
    if refused:
        result.add("trust", "error", f"{path}: {refused}")
        return
    result.add("trust", "ok", f"{path}: {getattr(f, 'found', 0)} certificate(s)")
    for w in getattr(f, "warnings", ()):
        result.add("trust", "warning", f"{path}: {w}")


def _identity(
    settings: Settings, roots: bytes | None, result: DoctorResult, stack: contextlib.ExitStack
) -> ClientIdentity | None:
    from corpnet.reach import _inputs

    section = "identity"
    try:
        identity = _inputs.identity(settings, roots, stack)
    except CorpnetError as e:
        result.errors(section, e)
        return None
    if identity is None:
        result.add(section, "info", "no client certificate configured: mTLS is off")
        return None
    from corpnet import identity as stage

    with contextlib.suppress(CorpnetError):
        report = stage.check(
            settings.identity,
            roots_pem=roots,
            now=dt.datetime.now(dt.UTC),
            uid=_uid(),
            gids=stage.agent_groups(_uid(), _gid()),
        )
        if report is not None:
            result.add(
                section,
                "ok",
                f"{report.subject} from {report.cert_path}, valid until "
                f"{report.not_after:%Y-%m-%d} ({report.days_left} days)",
            )
            for w in report.warnings:
                result.add(section, "warning", w)
    return identity


def _uid() -> int:
    import os

    return os.getuid()


def _gid() -> int:
    import os

    return os.getgid()


def _proxy(settings: Settings, roots: bytes | None, result: DoctorResult) -> object | None:
    from corpnet import proxy as proxymod
    from corpnet import reach

    section = "proxy"
    try:
        config = proxymod.for_settings(settings)
    except CorpnetError as e:
        result.errors(section, e)
        return None
    for note in config.notes:
        result.add(section, "info", note)
    for warning in config.warnings:
        result.add(section, "warning", warning)
    seen: set[str] = set()
    for url in (config.https, config.http, config.all):
        if url is None or url.redacted() in seen:
            continue
        seen.add(url.redacted())
        if url.scheme != "https":
            result.add(section, "ok", f"{url.redacted()} (plain HTTP to the proxy)")
            continue
        try:
            problem = reach.proxy_speaks_tls(url, ca_pem=roots)
        except CorpnetError as e:
            result.errors(section, e)
            continue
        if problem is None:
            result.add(section, "ok", f"{url.redacted()} speaks TLS, certificate trusted")
        else:
            result.add(section, "error", problem.line())
    return config.proxy_for


def _reach(  # noqa: PLR0917 - private helper of run()
    settings: Settings,
    route: object,
    roots: bytes | None,
    identity: ClientIdentity | None,
    result: DoctorResult,
    timeout: float | None,
) -> None:
    from corpnet import reach

    s = settings.reach
    targets = reach.targets_for(s, identity=identity is not None)
    if not targets:
        result.add("reachability", "info", "no hosts to probe (CORPNET_ALLOWLIST is empty)")
        return
    try:
        result.report = reach.check(
            targets,
            route=route,
            ca_pem=roots,
            identity=identity,
            probe=s.probe,
            timeout=timeout if timeout is not None else min(s.timeout, DEFAULT_TIMEOUT),
            wait_optional=True,
            fail_fast=False,
        )
    except reach.Interrupted:
        raise
    except CorpnetError as e:
        result.errors("reachability", e)
        return
    _discovery(result, result.report.discovered)


_WHAT = {
    "inspection": "a TLS-inspecting proxy re-signs",
    "server-ca": "a private CA corpnet does not trust signs",
    "intermediate-missing": "an intermediate CA is missing from the chain of",
}


def _discovery(result: DoctorResult, findings: Sequence[ChainFinding]) -> None:
    """One block per untrusted issuer: who it signs, its fingerprint, how to get it."""
    groups: dict[tuple[str, str], list[ChainFinding]] = {}
    for f in findings:
        groups.setdefault((f.verdict, f.ca_name), []).append(f)
    section = "discovery"
    for (verdict, name), group in groups.items():
        hosts = ", ".join(f.presented.target for f in group)
        result.add(section, "error", f"{_WHAT[verdict]} {hosts}: CA {name!r}")
        ca, first = group[0].ca, group[0].presented.target
        if ca is None:
            result.add(section, "info", "the host did not send it: ask for it by that name")
            continue
        role = ca.role + (f" (its root {ca.issuer!r} was not sent)" if group[0].needs_root else "")
        result.add(section, "info", f"SHA-256 {ca.fingerprint}")
        result.add(section, "info", f"{role}, {ca.validity()}")
        result.add(
            section,
            "info",
            f"corpnet trust --discover {first} --out FILE writes it; compare the fingerprint, "
            "then mount FILE under /etc/corpnet/ca.d",
        )
