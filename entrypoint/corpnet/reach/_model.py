"""The reachability stage's data: what to probe, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from corpnet.config import HostPort
from corpnet.errors import ExitCode
from corpnet.reach._diagnose import Diagnosis, Stage

if TYPE_CHECKING:  # _chain imports cryptography: only a failed chain needs it
    from corpnet.reach._chain import Cert, Finding

# ready: the probe passed. failed: an error waiting cannot fix. timeout: still
# failing (retryably) at the deadline. skipped: an optional host still being
# probed when the required ones were done. stopped: abandoned because another
# required host failed for good.
Status = Literal["ready", "failed", "timeout", "skipped", "stopped", "probing"]


@dataclass(frozen=True)
class Target:
    """One host to probe."""

    host: str
    port: int = 443
    required: bool = True
    mtls: bool = False  # send the client certificate to this host

    def __str__(self) -> str:
        return str(HostPort(self.host, self.port))


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate, as ``SSLContext.load_cert_chain`` takes it."""

    cert: Path
    key: Path
    passphrase: str | None = field(default=None, repr=False)


@dataclass
class HostResult:
    """The outcome (so far) of probing one target."""

    target: Target
    route: str  # "direct" or the redacted proxy URL
    status: Status = "probing"
    stage: Stage | None = None  # last stage passed (ready) or the stage that failed
    attempts: int = 0
    elapsed: float = 0.0
    diagnosis: Diagnosis | None = None  # the last failure

    @property
    def ok(self) -> bool:
        return self.status == "ready"

    @property
    def problem(self) -> bool:
        """Does this result stop a required wait (or deserve a warning when optional)?"""
        return self.status in ("failed", "timeout")


@dataclass(frozen=True)
class Report:
    """Every host's result, and what the wait as a whole comes to."""

    results: tuple[HostResult, ...]
    elapsed: float
    timeout: float
    probe: str = "tls"
    # The chains behind certificate failures, explained (``_discover.refine``).
    discovered: tuple[Finding, ...] = ()

    @property
    def required(self) -> tuple[HostResult, ...]:
        return tuple(r for r in self.results if r.target.required)

    @property
    def ok(self) -> bool:
        """Every required host is ready."""
        return all(r.ok for r in self.required)

    @property
    def exit_code(self) -> ExitCode:
        """0; else the code of the most telling required failure (78, 65, then 69)."""
        if self.ok:
            return ExitCode.OK
        codes = {
            r.diagnosis.exit_code
            for r in self.required
            if r.status == "failed" and r.diagnosis is not None
        }
        for code in (ExitCode.CONFIG, ExitCode.DATA):
            if code in codes:
                return code
        return ExitCode.UNAVAILABLE

    def to_json(self) -> dict[str, object]:
        """The report as ``--json`` prints it."""
        return {
            "ok": self.ok,
            "exit_code": int(self.exit_code),
            "elapsed": round(self.elapsed, 3),
            "timeout": self.timeout,
            "probe": self.probe,
            "hosts": [_result_json(r) for r in self.results],
            "discovered": [finding_json(f) for f in self.discovered],
        }


def _result_json(r: HostResult) -> dict[str, object]:
    d = r.diagnosis if r.status != "ready" else None
    return {
        "host": r.target.host,
        "port": r.target.port,
        "required": r.target.required,
        "mtls": r.target.mtls,
        "route": r.route,
        "status": r.status,
        "stage": r.stage.value if r.stage else None,
        "attempts": r.attempts,
        "elapsed": round(r.elapsed, 3),
        "error": None
        if d is None
        else {
            "class": d.kind,
            "message": d.message,
            "fix": d.fix,
            "retryable": d.retryable,
            "exit_code": int(d.exit_code),
        },
    }


def cert_json(c: Cert) -> dict[str, object]:
    """One certificate as ``--json`` shows it."""
    return {
        "subject": c.subject,
        "issuer": c.issuer,
        "sha256": c.fingerprint,
        "not_before": c.not_before.isoformat(),
        "not_after": c.not_after.isoformat(),
        "ca": c.ca,
        "root": c.self_signed,
    }


def finding_json(f: Finding) -> dict[str, object]:
    """One explained chain as ``--json`` shows it."""
    return {
        "host": f.presented.host,
        "port": f.presented.port,
        "verdict": f.verdict,
        "ca_subject": f.ca_name,
        "ca": cert_json(f.ca) if f.ca is not None else None,
        "root_missing": f.ca.issuer if f.needs_root and f.ca is not None else None,
        "also_signs": list(f.also),
        "chain": [cert_json(c) for c in f.presented.certs],
        "chain_complete": f.presented.complete,
    }
