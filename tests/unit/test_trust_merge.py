"""The pure core of the trust stage: every input quirk, refusals, dedupe, warnings."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from corpnet import trust
from corpnet.errors import DataError, ExitCode
from support.pki import NOW, der, ders_in, make_cert, pem, private_key_pem, rsa_key, system_bundle

SYSTEM_PEM, SYSTEM = system_bundle()
CORP_A = make_cert("Corp Root A", serial=1)
CORP_B = make_cert("Corp Root B", serial=2)


def merge(*files: tuple[str, bytes], now: dt.datetime = NOW) -> trust.Merged:
    inputs = [trust.InputFile(Path(p), "ca.d", data) for p, data in files]
    return trust.merge(SYSTEM_PEM, inputs, now=now)


def corporate(m: trust.Merged) -> list[bytes]:
    return list(m.ders[m.system_count :])


@dataclass(frozen=True)
class Quirk:
    id: str
    data: bytes


_A, _B = pem(CORP_A).decode(), pem(CORP_B).decode()
QUIRKS = [
    Quirk("plain", (_A + _B).encode()),
    Quirk("crlf", (_A + _B).replace("\n", "\r\n").encode()),
    Quirk("utf8-bom", b"\xef\xbb\xbf" + (_A + _B).encode()),
    Quirk("no-final-newline", (_A + _B).rstrip("\n").encode()),
    Quirk(
        "text-between-blocks", f"Corp root A\n{_A}\nsubject=B, issued 2024\n{_B}trailer".encode()
    ),
    Quirk("no-newline-between-end-and-begin", (_A.rstrip("\n") + _B).encode()),
    Quirk("legacy-x509-label", (_A.replace("CERTIFICATE", "X509 CERTIFICATE") + _B).encode()),
    Quirk("crlf-bom-no-newlines", b"\xef\xbb\xbf" + (_A.rstrip() + _B.rstrip()).encode()),
]


@pytest.mark.parametrize("quirk", QUIRKS, ids=lambda q: q.id)
def test_pem_quirks_all_yield_both_certificates(quirk: Quirk) -> None:
    m = merge(("corp.pem", quirk.data))
    assert not m.errors
    assert corporate(m) == [der(CORP_A), der(CORP_B)]
    assert m.files[0].found == 2
    assert m.files[0].added == 2
    # The output is normalised: LF only, 64 columns, what every tool reads.
    assert b"\r" not in m.pem
    assert ders_in(m.pem)[-2:] == [der(CORP_A), der(CORP_B)]


def test_der_file_is_accepted_whatever_its_name() -> None:
    m = merge(("corp-root.pem", der(CORP_A)), ("other.txt", der(CORP_B) + b"\n"))
    assert not m.errors
    assert corporate(m) == [der(CORP_A), der(CORP_B)]


def test_concatenated_der_certificates() -> None:
    m = merge(("two.der", der(CORP_A) + der(CORP_B)))
    assert corporate(m) == [der(CORP_A), der(CORP_B)]


def test_private_key_refuses_the_whole_file_naming_it() -> None:
    m = merge(("mixed.pem", pem(CORP_A) + private_key_pem()), ("good.pem", pem(CORP_B)))
    assert corporate(m) == [der(CORP_B)]  # nothing from the refused file
    assert b"PRIVATE KEY" not in m.pem
    (error,) = m.errors
    assert error.exit_code == ExitCode.DATA
    assert "mixed.pem" in str(error)
    assert "PRIVATE KEY" in str(error)
    assert m.files[0].refused is not None
    assert "key material" in m.files[0].refused
    with pytest.raises(trust.TrustErrors) as raised:
        m.check(strict=False)
    assert raised.value.exit_code == ExitCode.DATA


def test_a_key_after_a_broken_certificate_is_what_the_refusal_names() -> None:
    """Certificates are read as the file is split; a key anywhere still decides the message."""
    broken = pem(CORP_A).replace(b"MII", b"MIJ", 1)
    m = merge(("mixed.pem", broken + pem(CORP_B) + private_key_pem()))
    (error,) = m.errors
    assert "PRIVATE KEY" in str(error)
    assert not corporate(m)


def test_inputs_are_consumed_once_in_order_and_ders_match_the_blocks() -> None:
    read: list[str] = []

    def inputs() -> Iterator[trust.InputFile]:
        for name, data in (("a.pem", pem(CORP_A)), ("b.der", der(CORP_B))):
            read.append(name)
            yield trust.InputFile(Path(name), "ca.d", data)

    m = trust.merge(SYSTEM_PEM, inputs(), now=NOW)
    assert read == ["a.pem", "b.der"]
    assert corporate(m) == [der(CORP_A), der(CORP_B)]
    assert m.pem == b"".join(m.pems)
    assert ders_in(m.pem) == list(m.ders)


def test_private_key_first_is_refused_too() -> None:
    m = merge(("key-first.pem", private_key_pem() + pem(CORP_A)))
    assert not corporate(m)
    assert m.errors


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, this is not a certificate\n", "neither PEM blocks nor DER"),
        (pem(CORP_A)[:-30], "no END line"),
        (pem(CORP_A).replace(b"MII", b"MIJ", 1), "not a valid X.509 certificate"),
        (der(CORP_A)[:-10], "DER"),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "certificate block"),
    ],
    ids=["text", "truncated-pem", "corrupt-base64", "truncated-der", "garbage-body"],
)
def test_unparseable_material_fails_naming_the_file(data: bytes, reason: str) -> None:
    m = merge(("broken.crt", data))
    (error,) = m.errors
    assert "broken.crt" in str(error)
    assert reason in str(error)
    assert "openssl x509" in error.hint  # what to do
    assert error.exit_code == ExitCode.DATA


def test_empty_file_is_nothing_not_an_error() -> None:
    m = merge(("empty.pem", b""), ("blank.pem", b"\n\n"))
    assert not m.errors
    assert [f.found for f in m.files] == [0, 0]
    assert m.ders == tuple(der(c) for c in SYSTEM)


def test_non_certificate_blocks_are_ignored_with_a_warning() -> None:
    crl = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    m = merge(("with-crl.pem", crl + pem(CORP_A)))
    assert corporate(m) == [der(CORP_A)]
    assert any("X509 CRL" in w for w in m.files[0].warnings)


def test_dedupe_by_der_within_across_files_and_against_the_system() -> None:
    m = merge(
        ("a.pem", pem(CORP_A, CORP_A)),
        ("a-again.der", der(CORP_A)),
        ("has-system.pem", pem(SYSTEM[0], CORP_B)),
    )
    assert corporate(m) == [der(CORP_A), der(CORP_B)]
    assert [(f.found, f.added, f.duplicates) for f in m.files] == [(2, 1, 1), (1, 0, 1), (2, 1, 1)]
    assert len(ders_in(m.pem)) == len(SYSTEM) + 2


def test_duplicates_in_the_system_bundle_are_dropped() -> None:
    m = trust.merge(SYSTEM_PEM + SYSTEM_PEM, [], now=NOW)
    assert m.system_count == len(SYSTEM)


def with_signature(oid: bytes) -> x509.Certificate:
    """An RSA CA whose signature algorithm OID (both copies) is swapped for ``oid``.

    OpenSSL 3 refuses to sign with SHA-1 or MD5 now; the stage reads only the
    OID (it never verifies a self-signature), so same-length OID surgery is enough.
    """
    sha256_rsa = bytes.fromhex("2a864886f70d01010b")
    data = der(make_cert("Weak Sig", key=rsa_key(2048)))
    assert data.count(sha256_rsa) == 2
    return x509.load_der_x509_certificate(data.replace(sha256_rsa, oid))


@dataclass(frozen=True)
class Warned:
    id: str
    cert: object
    text: str


WARNED = [
    Warned("expired", make_cert("Old", not_after=NOW - dt.timedelta(days=1)), "expired on"),
    Warned(
        "not-yet-valid",
        make_cert("Future", not_before=NOW + dt.timedelta(days=2)),
        "is not valid before",
    ),
    Warned("leaf", make_cert("Leaf", ca=False), "is not a CA certificate"),
    Warned("no-basic-constraints", make_cert("Bare", ca=None), "is not a CA certificate"),
    Warned("sha1", with_signature(bytes.fromhex("2a864886f70d010105")), "SHA-1"),
    Warned("md5", with_signature(bytes.fromhex("2a864886f70d010104")), "MD5"),
    Warned("rsa-1024", make_cert("Small", key=rsa_key(1024)), "1024-bit RSA key"),
]


@pytest.mark.parametrize("case", WARNED, ids=lambda c: c.id)
def test_warnings_still_trust_unless_strict(case: Warned) -> None:
    cert = case.cert
    m = merge(("corp.pem", pem(cert)))  # type: ignore[arg-type]
    assert not m.errors
    assert corporate(m) == [der(cert)]  # type: ignore[arg-type]
    (warning,) = m.warnings
    assert warning.startswith("corp.pem: certificate '")
    assert case.text in warning
    m.check(strict=False)
    with pytest.raises(trust.TrustErrors) as raised:
        m.check(strict=True)
    assert raised.value.exit_code == ExitCode.DATA
    assert case.text in str(raised.value)


def test_a_good_ca_has_no_warning() -> None:
    m = merge(("corp.pem", pem(CORP_A)), ("rsa.pem", pem(make_cert("RSA", key=rsa_key(2048)))))
    assert m.warnings == ()
    m.check(strict=True)


def test_unreadable_input_is_reported_with_its_own_error() -> None:
    from corpnet.errors import PermissionDeniedError

    error = PermissionDeniedError("cannot read CA file /x", path="/x")
    m = trust.merge(SYSTEM_PEM, [trust.InputFile(Path("/x"), "ca.d", error=error)], now=NOW)
    assert m.errors == (error,)
    assert m.files[0].refused == "cannot read CA file /x"


def test_bad_system_bundle_is_a_data_error() -> None:
    with pytest.raises(DataError) as raised:
        trust.merge(b"-----BEGIN CERTIFICATE-----\nAAAA", [], now=NOW, system_name="/sys.pem")
    assert "/sys.pem" in str(raised.value)
    assert "CORPNET_SYSTEM_BUNDLE" in str(raised.value)


def test_hashed_names_number_collisions_in_bundle_order() -> None:
    renewed = make_cert("Corp Root A", serial=99)  # same subject, new certificate
    names = trust.hashed_names([der(CORP_A), der(CORP_B), der(renewed)])
    assert names[0].endswith(".0")
    assert names[2] == names[0][:-1] + "1"
    assert names[1].endswith(".0")
    assert names[0][:8] != names[1][:8]


def test_exports_point_every_variable_at_the_merged_outputs() -> None:
    e = trust.exports(Path("/run/corpnet/ca-bundle.pem"), Path("/run/corpnet/certs"), None)
    issue_variables = {
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE",
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "HTTPLIB2_CA_CERTS", "NIX_SSL_CERT_FILE", "CARGO_HTTP_CAINFO", "DENO_CERT",
        "BUNDLE_SSL_CA_CERT", "HEX_CACERTS_PATH", "COMPOSER_CAFILE",
    }  # fmt: skip
    assert set(e.env) == issue_variables
    assert {v for k, v in e.env.items() if k != "SSL_CERT_DIR"} == {"/run/corpnet/ca-bundle.pem"}
    assert e.env["SSL_CERT_DIR"] == "/run/corpnet/certs"
    assert e.java_options == ()
    j = trust.exports(Path("/b.pem"), Path("/c"), Path("/run/corpnet/java-truststore.p12"))
    assert j.java_options == (
        "-Djavax.net.ssl.trustStore=/run/corpnet/java-truststore.p12",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
        "-Djavax.net.ssl.trustStorePassword=changeit",
    )


def test_a_certificate_openssl_cannot_read_refuses_its_file() -> None:
    """A bundle holding it would make every OpenSSL client reject the whole bundle."""
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    visible = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Visible", _type=_ASN1Type.VisibleString)]
    )
    m = merge(("odd.pem", pem(make_cert(visible))), ("good.pem", pem(CORP_A)))
    assert corporate(m) == [der(CORP_A)]
    (error,) = m.errors
    assert "odd.pem" in str(error)
    assert "OpenSSL cannot read" in str(error)


def test_an_intermediate_with_an_unreadable_issuer_is_refused() -> None:
    """Issuer names are checked too when they differ from the subject."""
    from cryptography.hazmat.primitives.asymmetric import ec as _ec
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    from support.pki import ec_key

    issuer = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Odd Issuer", _type=_ASN1Type.VisibleString)]
    )
    key = ec_key()
    assert isinstance(key, _ec.EllipticCurvePrivateKey)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    m = merge(("intermediate.pem", pem(cert)))
    (error,) = m.errors
    assert "OpenSSL cannot read" in str(error)


def test_file_warnings_are_one_line_per_file_and_capped() -> None:
    leaves = [make_cert(f"Leaf {i}", ca=False, serial=300 + i) for i in range(5)]
    m = merge(("leaves.pem", pem(*leaves)), ("good.pem", pem(CORP_A)))
    assert len(m.warnings) == 5  # each one fatal under --strict
    (line,) = trust.file_warnings(m.files)
    assert line.startswith("leaves.pem: certificate 'Leaf 0' is not a CA")
    assert line.count("is not a CA") == 3
    assert line.endswith("and 2 more (`corpnet trust --json` lists them)")


def test_split_drops_every_certificate_of_a_file_with_a_key() -> None:
    from corpnet.trust import _pem

    split = _pem.split(pem(CORP_A) + private_key_pem() + pem(CORP_B))
    assert split.private_key == "PRIVATE KEY"
    assert split.ders == []
    assert split.pems == []


def test_canonical_input_blocks_are_reused_and_others_rewritten() -> None:
    from corpnet.trust import _pem

    canonical = pem(CORP_A)
    assert _pem.split(canonical).pems == [canonical]
    wrapped76 = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(der(CORP_A))  # 76 columns, as MIME tools write
        + b"-----END CERTIFICATE-----\n"
    )
    assert _pem.split(wrapped76).pems == [canonical]


def test_a_system_certificate_that_cannot_be_hashed_is_left_out_of_the_dir() -> None:
    """It stays in the bundle (the system's own), only the hashed directory skips it."""
    names = trust.hashed_names([der(CORP_A), b"\x30\x03\x02\x01\x00", der(CORP_B)])
    assert names[1] is None
    assert names[0] is not None
    assert names[2] is not None
