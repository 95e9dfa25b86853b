"""corpnet's DER reading of client certificates agrees with cryptography's (issue 14)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from corpnet.identity import _cert
from corpnet.trust._der import DerError
from support.client_pki import make_ca, make_leaf, private_key

EKUS: list[tuple[x509.ObjectIdentifier, ...] | None] = [
    None,
    (ExtendedKeyUsageOID.CLIENT_AUTH,),
    (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING),
    (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,),
    (x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"), x509.ObjectIdentifier("2.999.1234567")),
]


@pytest.mark.parametrize("eku", EKUS)
@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_fields_match_cryptography(
    eku: tuple[x509.ObjectIdentifier, ...] | None, kind: str
) -> None:
    ca = make_ca("Corp Root CA")
    leaf = make_leaf(ca, key=private_key(kind), eku=eku)  # type: ignore[arg-type]
    der = leaf.public_bytes(serialization.Encoding.DER)
    got = _cert.parse(der)
    assert got.subject == leaf.subject.public_bytes()
    assert got.issuer == leaf.issuer.public_bytes()
    assert (got.not_before, got.not_after) == (leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert got.spki == spki
    assert got.eku == (None if eku is None else tuple(o.dotted_string for o in eku))
    assert got.fingerprint == leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    assert got.pem == leaf.public_bytes(serialization.Encoding.PEM)
    assert _cert.from_pem_block(got.pem) == got
    assert got.x509() == leaf


@pytest.mark.parametrize(("signature", "expected"), [(True, True), (False, False)])
def test_key_usage_digital_signature(signature: bool, expected: bool) -> None:
    ca = make_ca("Corp Root CA")
    key = private_key("ec")
    usage = x509.KeyUsage(
        digital_signature=signature, content_commitment=False, key_encipherment=True,
        data_encipherment=False, key_agreement=not signature, key_cert_sign=False,
        crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bob")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(7)
        .not_valid_before(ca.cert.not_valid_before_utc)
        .not_valid_after(ca.cert.not_valid_after_utc)
        .add_extension(usage, critical=True)
        .sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    assert _cert.parse(cert.public_bytes(serialization.Encoding.DER)).digital_signature is expected


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_truncated_certificates_are_der_errors(cut: int) -> None:
    der = make_leaf(make_ca("Corp Root CA")).public_bytes(serialization.Encoding.DER)
    with pytest.raises(DerError):
        _cert.parse(der[:-cut])
