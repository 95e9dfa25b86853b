"""The Python subject hash matches OpenSSL's on subjects that stress canonicalisation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from corpnet.trust import _hash, _pem
from support.pki import der, make_cert, pem

A = x509.NameAttribute
CN, ORG, OU, C, E = (
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COUNTRY_NAME,
    NameOID.EMAIL_ADDRESS,
)
RDN = x509.RelativeDistinguishedName

TRICKY: dict[str, x509.Name] = {
    "upper-and-lower-case": x509.Name([A(ORG, "ACME Corp"), A(CN, "MiXeD CaSe Root")]),
    "whitespace-runs-and-edges": x509.Name([A(CN, "  Lots   of\t\tspace  ")]),
    "newlines-and-tabs": x509.Name([A(ORG, "Line\nBreak\r\nCorp"), A(CN, "a\tb\x0bc\x0cd")]),
    "printable-vs-utf8": x509.Name(
        [A(ORG, "Same Name", _type=_ASN1Type.PrintableString), A(CN, "Same Name")]
    ),
    "multi-valued-rdn": x509.Name(
        [
            RDN([A(CN, "Zulu"), A(ORG, "Alpha Org"), A(OU, "Mid")]),
            x509.RelativeDistinguishedName([A(C, "DE")]),
        ]
    ),
    "non-ascii-utf8": x509.Name([A(ORG, "Ünïcödé GmbH"), A(CN, "ÄÖÜ Root ÉÈ")]),
    "bmpstring": x509.Name([A(CN, "BMP Root Ω", _type=_ASN1Type.BMPString)]),
    "universalstring": x509.Name([A(CN, "Universal 😀 Root", _type=_ASN1Type.UniversalString)]),
    "ia5-email": x509.Name([A(E, "PKI@Example.COM"), A(CN, "Mail Root")]),
    "t61string": x509.Name([A(CN, "T61 Root", _type=_ASN1Type.T61String)]),
    "long-subject": x509.Name([A(OU, f"Unit {i} " + "x" * 60) for i in range(6)]),
    "empty-subject": x509.Name([]),
}


def openssl_hashes(certs: dict[str, bytes], tmp: Path) -> dict[str, str]:
    """Hashes from `openssl rehash`: one process for all the files."""
    for label, data in certs.items():
        (tmp / f"{label}.pem").write_bytes(data)
    subprocess.run(["openssl", "rehash", str(tmp)], check=True, capture_output=True)
    result = {}
    for link in tmp.iterdir():
        if link.is_symlink():
            result[link.readlink().name.removesuffix(".pem")] = link.name[:8]
    return result


def test_tricky_subjects_hash_like_openssl(tmp_path: Path) -> None:
    certs = {
        label: make_cert(subject, serial=i + 1) for i, (label, subject) in enumerate(TRICKY.items())
    }
    expected = openssl_hashes({k: pem(c) for k, c in certs.items()}, tmp_path)
    assert set(expected) == set(TRICKY)
    ours = {label: _hash.subject_hash(der(c)) for label, c in certs.items()}
    assert ours == expected


def test_case_and_space_variants_share_a_hash_like_in_openssl() -> None:
    a = make_cert(x509.Name([A(CN, "Corp  Root")]))
    b = make_cert(x509.Name([A(CN, " corp root ", _type=_ASN1Type.PrintableString)]))
    assert _hash.subject_hash(der(a)) == _hash.subject_hash(der(b))


def test_system_bundle_hashes_like_openssl_x509(tmp_path: Path) -> None:
    """Every real root of this machine, through `openssl x509 -subject_hash` itself."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    assert bundle.is_file(), "install Debian's ca-certificates package"
    ders = _pem.split(bundle.read_bytes()).ders[:40]
    joined = b"".join(_pem.pem_encode(d) for d in ders)
    # `openssl x509` reads one certificate per call; a shell loop keeps it to one spawn.
    (tmp_path / "b.pem").write_bytes(joined)
    script = 'while openssl x509 -subject_hash -noout 2>/dev/null; do :; done < "$1"'
    out = subprocess.run(
        ["sh", "-c", script, "sh", str(tmp_path / "b.pem")],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert out == [_hash.subject_hash(d) for d in ders]


@pytest.mark.parametrize("bad", [b"", b"\x30\x03\x02\x01", b"\x30\x82\xff\xff\x00"])
def test_malformed_der_raises_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError, match=r"DER|expected"):
        _hash.subject_hash(bad)


def test_a_name_type_openssl_cannot_read_is_refused(tmp_path: Path) -> None:
    """OpenSSL refuses a VisibleString in a Name; such a CA would break the whole bundle."""
    cert = make_cert(x509.Name([A(CN, "Visible Root", _type=_ASN1Type.VisibleString)]))
    (tmp_path / "v.pem").write_bytes(pem(cert))
    openssl = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "v.pem"), "-noout"],
        capture_output=True,
        check=False,
    )
    assert openssl.returncode != 0  # the premise
    with pytest.raises(ValueError, match="OpenSSL cannot read"):
        _hash.subject_hash(der(cert))
