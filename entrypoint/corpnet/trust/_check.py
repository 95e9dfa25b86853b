"""Say what strict verifiers will dislike about a corporate CA certificate.

Each finding is a warning, not an error: the certificate is still trusted,
because a slightly wrong corporate CA that works today beats a container that
does not start. ``--strict`` (``CORPNET_CA_STRICT=1``) turns them into failures.

Only certificates from the mounts pass through here. The system bundle is the
distribution's own and is trusted as is.
"""

from __future__ import annotations

from corpnet.trust import _der

MIN_RSA_BITS = 2048  # rustls, uv and OpenSSL at security level 2 (Debian's default)


def describe(cert: _der.Certificate) -> str:
    """A short name for messages: the subject's CN, else its hash."""
    cn = _der.common_name(cert.subject)
    if cn:
        return f"'{cn}'"
    from corpnet.trust._hash import name_hash

    return f"with subject hash {name_hash(cert.subject)}"


def _date(generalized: bytes) -> str:
    text = generalized.decode()
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}"


def warnings(cert: _der.Certificate, now: bytes) -> list[str]:
    """What is wrong with ``cert`` as a trust anchor at ``now`` (b"YYYYMMDDHHMMSSZ")."""
    found: list[str] = []
    if now > cert.not_after:
        found.append(
            f"expired on {_date(cert.not_after)}: clients reject what it signs; "
            "mount the renewed CA certificate"
        )
    elif now < cert.not_before:
        found.append(
            f"is not valid before {_date(cert.not_before)}: check the container's clock, "
            "or mount the current CA certificate"
        )
    if not cert.is_ca:
        found.append(
            "is not a CA certificate (basicConstraints CA:TRUE missing): strict verifiers "
            "(Python 3.13+, rustls) ignore it; mount the issuing root CA instead"
        )
    weak = _der.WEAK_SIGNATURES.get(cert.signature)
    if weak is not None:
        found.append(
            f"is signed with {weak}: rustls-based tools (uv, Codex) reject it; "
            "ask for a CA signed with SHA-256 or better"
        )
    if cert.rsa_bits is not None and cert.rsa_bits < MIN_RSA_BITS:
        found.append(
            f"has a {cert.rsa_bits}-bit RSA key: OpenSSL (security level 2) and rustls "
            f"reject keys under {MIN_RSA_BITS} bits; ask for a stronger CA"
        )
    return found
