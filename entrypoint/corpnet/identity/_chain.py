"""Chain verification of a client certificate with ``cryptography.x509.verification``.

The client verifier's default end-entity policy is the Web PKI one: it requires
a subjectAltName and an authorityKeyIdentifier. Corporate client certificates
(issued by AD CS, an HSM script, an old OpenSSL CA) often have neither, and a
TLS server does not require them either, so both are relaxed to "may be
present" (``ExtensionPolicy``, cryptography 44+), and a critical extended key
usage is accepted. The EKU rule itself stays: when present it must include
clientAuth (or anyExtendedKeyUsage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)


@dataclass(frozen=True)
class Outcome:
    """Did the chain verify; what to tell the user."""

    ok: bool
    detail: str
    hint: str = ""


def _client_eku(
    _policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    if eku is None:
        return
    usages = list(eku)
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages and (
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages
    ):
        raise ValueError("extended key usage without clientAuth")


def _ee_policy() -> ExtensionPolicy:
    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        # The Web PKI wants a non-critical EKU; RFC 5280 allows either, and some
        # CAs (trustme, several corporate ones) mark it critical.
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _client_eku)
    )


def _reason(error: VerificationError) -> str:
    # cryptography appends "(encountered processing <Certificate(...)>)": noise for a user.
    text = str(error).split(" (encountered processing", 1)[0]
    return text.removeprefix("validation failed: ")


def verify(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[tuple[str, list[x509.Certificate]]],
    *,
    now: datetime,
) -> Outcome:
    """Verify ``leaf`` against each labelled anchor set in turn; the first success wins."""
    reasons: list[str] = []
    for label, certs in anchors:
        verifier = (
            PolicyBuilder()
            .store(Store(certs))
            .time(now)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_ee_policy()
            )
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, intermediates)
        except VerificationError as e:
            reasons.append(f"{label}: {_reason(e)}")
            continue
        root = verified.chain[-1].subject.rfc4514_string()
        return Outcome(True, f"verified to {root} ({label})")
    missing = _missing_issuer(leaf, intermediates, anchors)
    if missing is not None:
        return missing
    return Outcome(
        False,
        "; ".join(reasons),
        hint="check that ca.crt or the CA directory holds the CA that issued this certificate",
    )


def _missing_issuer(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[tuple[str, list[x509.Certificate]]],
) -> Outcome | None:
    """Name the CA that is missing, when the chain breaks for lack of one (the usual case)."""
    by_subject = {c.subject: c for c in intermediates}
    trusted = {c.subject for _, certs in anchors for c in certs}
    where = " or ".join(label for label, _ in anchors)
    cert = leaf
    for _ in range(len(intermediates)):  # follow issuer names up through the file
        parent = by_subject.get(cert.issuer)
        if parent is None or parent is cert or cert.issuer in trusted:
            break
        cert = parent
    if cert.issuer in trusted:
        return None
    issuer = cert.issuer.rfc4514_string()
    if cert is leaf:
        return Outcome(
            False,
            f"its issuer {issuer} is not in the file, nor in {where}",
            hint="append the intermediate CA certificate after the client certificate, or mount "
            "the issuing CA as /etc/corpnet/client/ca.crt",
        )
    return Outcome(
        False,
        f"the chain in the file ends at {issuer}, which is not in {where}",
        hint="mount that CA as /etc/corpnet/client/ca.crt or add it to the CA directory "
        "(/etc/corpnet/ca.d)",
    )
