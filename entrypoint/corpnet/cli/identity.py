"""``corpnet identity``: show and check the client certificate (mTLS)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import click

from corpnet.config import Settings
from corpnet.identity import IdentityReport


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 65) when the chain does not verify, instead of warning (CORPNET_STRICT=1).",
)
def identity(as_json: bool, strict: bool) -> None:
    """Check the client certificate and key the agent will use for mTLS.

    Reads CLAUDE_CODE_CLIENT_CERT / CLAUDE_CODE_CLIENT_KEY (else
    /etc/corpnet/client/tls.crt and tls.key, else a PKCS#12 bundle from
    CORPNET_CLIENT_P12 or /etc/corpnet/client/client.p12) and prints the
    subject, issuer, SANs, serial, validity, key type and fingerprint, with
    the result of every check. The chain is verified against
    /etc/corpnet/client/ca.crt, else the merged trust bundle. Readability is
    checked for CORPNET_USER when running as root, else for the current
    user. Never prints key
    material or a passphrase. Exit codes: 0 ok (warnings included), 65 unusable
    file, 77 permissions, 78 configuration.
    """
    from dataclasses import replace

    from corpnet import config
    from corpnet import identity as stage
    from corpnet import log as logmod

    settings = config.load(os.environ)
    log = logmod.get()
    for secret in settings.secrets():
        log.add_secret(secret)
    ident = settings.identity
    if strict:
        ident = replace(ident, strict=True)
    uid, gids = _agent(settings)
    report = stage.check(
        ident, roots_pem=_roots(settings), now=datetime.now(UTC), uid=uid, gids=gids
    )
    if as_json:
        data: dict[str, object] = {"configured": report is not None}
        if report is not None:
            data.update(report.to_dict())
        click.echo(json.dumps(data, indent=2))
        return
    if report is None:
        click.echo(
            "no client certificate configured (CLAUDE_CODE_CLIENT_CERT, /etc/corpnet/client/"
            "tls.crt, CORPNET_CLIENT_P12): mTLS is off"
        )
        return
    click.echo(render(report))


def _agent(settings: Settings) -> tuple[int, frozenset[int]]:
    """Who must be able to read the files: CORPNET_USER when root will drop to it, else us."""
    from corpnet.identity import agent_groups
    from corpnet.run._privileges import resolve_account

    euid = os.geteuid()
    account = resolve_account(settings.run.user, euid=euid) if euid == 0 else None
    if account is not None:
        return account.uid, frozenset(account.groups) | {account.gid}
    return os.getuid(), agent_groups(os.getuid(), os.getgid())


def _roots(settings: Settings) -> bytes | None:
    """The merged trust bundle, or None when the trust stage cannot produce one."""
    from corpnet import log as logmod
    from corpnet.errors import CorpnetError

    try:
        # Imported here: the trust module is a sibling stage, loaded only when needed.
        from corpnet.trust import merged_bundle_pem
    except ImportError:
        return None
    try:
        return merged_bundle_pem(settings.trust)
    except CorpnetError as e:
        logmod.get().warning(f"trust bundle unavailable for the chain check: {e}")
        return None


def render(report: IdentityReport) -> str:
    """The human-readable report: facts first, then one line per check."""
    sans = ", ".join(report.sans) if report.sans else "(none)"
    key = f"{report.key_type} {report.key_bits}, {report.key_format}"
    if report.encrypted:
        key += ", encrypted"
    rows = [
        ("certificate", str(report.cert_path)),
        ("key", f"{report.key_path} ({key})"),
        ("subject", report.subject),
        ("issuer", report.issuer),
        ("SANs", sans),
        ("serial", report.serial),
        ("not before", report.not_before.strftime("%Y-%m-%d %H:%M:%SZ")),
        ("not after", report.not_after.strftime("%Y-%m-%d %H:%M:%SZ")),
        ("days left", str(report.days_left)),
        ("sha256", report.fingerprint_sha256),
    ]
    lines = [f"{name:<12} {value}" for name, value in rows]
    lines.append("checks")
    lines += [f"  {c.status:<8} {c.name:<12} {c.detail}" for c in report.checks]
    return "\n".join(lines)
