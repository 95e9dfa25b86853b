"""Parsing client certificates, private keys and PKCS#12 bundles (pure, bytes in).

Every function takes the file's bytes and the path it came from (for messages)
and raises a :mod:`corpnet.errors` subclass naming the file and the fix. The
format is sniffed from the PEM labels *before* cryptography is asked to load
anything, so that "needs a passphrase", "wrong passphrase" and "passphrase
given for a plain key" come out as three distinct errors, and an OpenSSH key
(which cryptography reads, but OpenSSL, Node and curl do not) is refused with
the command that converts it.

No message built here contains key material or a passphrase.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

from corpnet.identity._cert import ClientCert, from_pem_block, parse
from corpnet.identity._errors import (
    P12_PASSWORD_VARIABLES,
    PASSPHRASE_VARIABLES,
    ClientFileError,
    KeyPassphraseError,
)
from corpnet.trust._der import DerError

if TYPE_CHECKING:
    from cryptography import x509

_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class LoadedKey:
    """A parsed private key and how it was stored."""

    key: PrivateKeyTypes
    format: str  # "PKCS#1", "PKCS#8", "SEC1"
    encrypted: bool


@dataclass(frozen=True)
class LoadedP12:
    """What a PKCS#12 bundle held."""

    key: PrivateKeyTypes
    chain: list[ClientCert]  # leaf first, then the intermediates it carried
    password_protected: bool
    password_unneeded: bool  # a password was configured but the bundle has none


def pem_labels(data: bytes) -> list[str]:
    """The ``BEGIN`` labels of every PEM block in ``data``, in order."""
    return [m.group(1).decode("ascii") for m in _LABEL.finditer(data)]


def _empty(data: bytes) -> bool:
    return not data.strip()


def load_chain(data: bytes, path: Path, *, role: str = "Client certificate") -> list[ClientCert]:
    """Parse a PEM certificate chain, leaf first; raise :class:`ClientFileError`."""
    if _empty(data):
        raise ClientFileError(
            f"{role} {path} is empty",
            hint="mount the PEM certificate there (tls.crt of a Kubernetes TLS secret)",
            path=path,
        )
    labels = pem_labels(data)
    if "CERTIFICATE" not in labels:
        if any(label.endswith("PRIVATE KEY") for label in labels):
            raise ClientFileError(
                f"{role} {path} holds a private key, not a certificate",
                hint="point CLAUDE_CODE_CLIENT_CERT at the certificate and CLAUDE_CODE_CLIENT_KEY "
                "at the key (are they swapped?)",
                path=path,
            )
        if _looks_der(data):
            raise ClientFileError(
                f"{role} {path} is binary (DER or PKCS#12), not PEM",
                hint=f"convert it: openssl x509 -inform der -in {path} -out client.crt; "
                "a .p12/.pfx bundle goes in CORPNET_CLIENT_P12 instead",
                path=path,
            )
        raise ClientFileError(
            f"{role} {path} is not a PEM certificate",
            hint="expected a -----BEGIN CERTIFICATE----- block, the client certificate first, "
            "then its intermediates",
            path=path,
        )
    certs: list[ClientCert] = []
    for i, match in enumerate(_PEM_CERT.finditer(data)):
        try:
            certs.append(from_pem_block(match.group(0)))
        except (DerError, ValueError) as e:
            raise ClientFileError(
                f"{role} {path}: certificate #{i + 1} in the file is corrupt",
                hint="re-export the chain as PEM (openssl x509 -in FILE -out FILE.pem per block)",
                path=path,
            ) from e
    if not certs:
        raise ClientFileError(
            f"{role} {path} has a BEGIN CERTIFICATE line but no complete block",
            hint="the file is truncated: mount the whole PEM file",
            path=path,
        )
    return certs


def load_anchors(data: bytes) -> list[x509.Certificate]:
    """Every parseable certificate in a bundle; broken blocks are skipped (trust decides).

    Only the chain verification (``--strict``, ``corpnet identity``) needs these.
    """
    anchors = []
    for match in _PEM_CERT.finditer(data):
        try:
            anchors.append(_load_cert(match.group(0)))
        except ValueError:
            continue
    return anchors


def _load_cert(pem: bytes) -> x509.Certificate:
    # Some CAs still shipped in distro bundles have a non-positive serial number;
    # cryptography warns about each (CryptographyDeprecationWarning). Not the user's
    # problem here, and a warning on stderr at every start would be noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        from cryptography import x509

        return x509.load_pem_x509_certificate(pem)


def _looks_der(data: bytes) -> bool:
    # DER (a certificate, a key, a PKCS#12 PFX) starts with an ASN.1 SEQUENCE tag.
    return data[:1] == b"\x30"


def _sniff_key(data: bytes) -> tuple[str, bool]:  # noqa: PLR0911 - one return per format
    """(format, encrypted) from the PEM labels and headers of a key file."""
    labels = pem_labels(data)
    if "OPENSSH PRIVATE KEY" in labels:
        return "OpenSSH", False
    if "ENCRYPTED PRIVATE KEY" in labels:
        return "PKCS#8", True
    if "PRIVATE KEY" in labels:
        return "PKCS#8", False
    for label, name in (("RSA PRIVATE KEY", "PKCS#1"), ("EC PRIVATE KEY", "SEC1")):
        if label in labels:
            # The traditional OpenSSL encryption lives in a PEM header.
            return name, b"Proc-Type: 4,ENCRYPTED" in data
    if "DSA PRIVATE KEY" in labels:
        return "DSA", b"Proc-Type: 4,ENCRYPTED" in data
    if "CERTIFICATE" in labels:
        return "certificate", False
    if any("PUBLIC KEY" in label for label in labels):
        return "public key", False
    return "unknown", False


def load_key(
    data: bytes,
    path: Path,
    *,
    passphrase: str | None,
    passphrase_source: str | None,
) -> LoadedKey:
    """Parse a PEM private key (PKCS#1, PKCS#8 or SEC1, encrypted or not)."""
    source = passphrase_source or "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"
    if _empty(data):
        raise ClientFileError(
            f"Client key {path} is empty",
            hint="mount the PEM private key there (tls.key of a Kubernetes TLS secret)",
            path=path,
        )
    fmt, encrypted = _sniff_key(data)
    if fmt == "OpenSSH":
        raise ClientFileError(
            f"Client key {path} is in OpenSSH format, which TLS clients (OpenSSL, Node, curl) "
            "cannot read",
            hint=f"convert a copy to PEM: cp {path} client.key && "
            "ssh-keygen -p -m PEM -f client.key (ssh-keygen rewrites the copy in place), "
            "then mount client.key",
            path=path,
        )
    if fmt == "certificate":
        raise ClientFileError(
            f"Client key {path} holds a certificate, not a private key",
            hint="point CLAUDE_CODE_CLIENT_KEY at the key file (are CLAUDE_CODE_CLIENT_CERT and "
            "CLAUDE_CODE_CLIENT_KEY swapped?)",
            path=path,
        )
    if fmt == "public key":
        raise ClientFileError(
            f"Client key {path} is a public key",
            hint="mount the private key the certificate was issued for",
            path=path,
        )
    if fmt == "unknown":
        hint = (
            f"convert it: openssl pkey -inform der -in {path} -out client.key"
            if _looks_der(data)
            else "expected a PEM block labelled PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) "
            "or EC PRIVATE KEY (SEC1)"
        )
        raise ClientFileError(f"Client key {path} is not a PEM private key", hint=hint, path=path)
    if encrypted and passphrase is None:
        raise KeyPassphraseError(
            f"Client key {path} is encrypted",
            hint=f"set {PASSPHRASE_VARIABLES}",
            path=path,
            variable="CLAUDE_CODE_CLIENT_KEY_PASSPHRASE",
        )
    if not encrypted and passphrase is not None:
        raise KeyPassphraseError(
            f"{source} is set but client key {path} is not encrypted",
            hint=f"unset {source}, or mount the encrypted key it belongs to",
            path=path,
            variable=source,
        )
    password = passphrase.encode("utf-8") if passphrase is not None else None
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as e:  # the sniffing and cryptography disagree: trust cryptography
        needs = "Password was not given" in str(e)
        raise KeyPassphraseError(
            f"Client key {path} is encrypted"
            if needs
            else f"{source} is set but client key {path} is not encrypted",
            hint=f"set {PASSPHRASE_VARIABLES}" if needs else f"unset {source}",
            path=path,
            variable=source,
        ) from None
    except UnsupportedAlgorithm as e:
        raise ClientFileError(
            f"Client key {path} uses an encryption or key algorithm this OpenSSL cannot read",
            hint=f"re-encrypt it: openssl pkey -in {path} -aes256 -out client.key",
            path=path,
        ) from e
    except ValueError as e:
        if encrypted:
            raise KeyPassphraseError(
                f"The passphrase from {source} does not decrypt client key {path}",
                hint="check the passphrase (one trailing newline of a _FILE is dropped, "
                "nothing else is)",
                path=path,
                variable=source,
            ) from None
        raise ClientFileError(
            f"Client key {path} is corrupt ({fmt} block that does not parse)",
            hint="re-export the key as PEM (openssl pkey -in OLD -out client.key)",
            path=path,
        ) from e
    return LoadedKey(key=key, format=fmt, encrypted=encrypted)


def load_p12(data: bytes, path: Path, *, password: str | None) -> LoadedP12:
    """Parse a PKCS#12 bundle (key, leaf, intermediates)."""
    if _empty(data):
        raise ClientFileError(
            f"PKCS#12 bundle {path} is empty",
            hint="mount the .p12/.pfx file there",
            path=path,
        )
    if not _looks_der(data):
        raise ClientFileError(
            f"{path} is not a PKCS#12 bundle",
            hint="PEM files go in CLAUDE_CODE_CLIENT_CERT and CLAUDE_CODE_CLIENT_KEY; make a "
            "bundle with openssl pkcs12 -export -in tls.crt -inkey tls.key -out client.p12",
            path=path,
        )
    from cryptography.hazmat.primitives.serialization import pkcs12  # imports x509: only here

    unneeded = False
    try:
        bundle = pkcs12.load_pkcs12(data, password.encode("utf-8") if password else None)
    except UnsupportedAlgorithm as e:
        raise ClientFileError(
            f"PKCS#12 bundle {path} uses a legacy cipher (RC2/3DES) OpenSSL 3 no longer reads",
            hint="re-export it: openssl pkcs12 -legacy -in OLD.p12 -nodes | "
            "openssl pkcs12 -export -out client.p12",
            path=path,
        ) from e
    except ValueError as e:
        if "Could not deserialize" in str(e):
            raise ClientFileError(
                f"{path} is not a PKCS#12 bundle",
                hint="export one with openssl pkcs12 -export -in tls.crt -inkey tls.key "
                "-out client.p12",
                path=path,
            ) from e
        if password is None:
            raise KeyPassphraseError(
                f"PKCS#12 bundle {path} is password-protected",
                hint=f"set {P12_PASSWORD_VARIABLES}",
                path=path,
                variable="CORPNET_CLIENT_P12_PASSWORD",
            ) from None
        try:
            bundle = pkcs12.load_pkcs12(data, None)
        except ValueError:
            raise KeyPassphraseError(
                f"The password from CORPNET_CLIENT_P12_PASSWORD(_FILE) does not open {path}",
                hint="check the password (one trailing newline of a _FILE is dropped)",
                path=path,
                variable="CORPNET_CLIENT_P12_PASSWORD",
            ) from None
        unneeded = True
    if bundle.key is None or bundle.cert is None:
        missing = "private key" if bundle.key is None else "certificate"
        raise ClientFileError(
            f"PKCS#12 bundle {path} has no {missing}",
            hint="export the certificate and its key together: openssl pkcs12 -export "
            "-in tls.crt -inkey tls.key -out client.p12",
            path=path,
        )
    try:
        leaf, *extra = (
            parse(c.public_bytes(serialization.Encoding.DER))
            for c in [bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)]
        )
    except DerError as e:
        raise ClientFileError(
            f"PKCS#12 bundle {path} holds a certificate OpenSSL cannot read ({e})",
            hint="re-export the bundle from the certificate and key as PEM files",
            path=path,
        ) from e
    # Roots carried in the bundle are not sent in a handshake (the server has its own).
    chain = [leaf, *(c for c in extra if not c.self_issued)]
    return LoadedP12(
        key=bundle.key,
        chain=chain,
        password_protected=bool(password) and not unneeded,
        password_unneeded=unneeded,
    )


def is_self_issued(cert: ClientCert) -> bool:
    """Is ``cert`` a root (issuer == subject)?"""
    return cert.self_issued


def spki(key: PrivateKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a private key's public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def cert_spki(cert: ClientCert) -> bytes:
    """The DER SubjectPublicKeyInfo of a certificate."""
    return cert.spki


def describe_key(key: PrivateKeyTypes) -> tuple[str, int]:
    """(type name, size in bits) for the report."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PrivateKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPrivateKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def fingerprint(cert: ClientCert) -> str:
    """SHA-256 fingerprint, colon-separated upper-case hex (as openssl prints it)."""
    return cert.fingerprint


def pem_chain(chain: list[ClientCert]) -> bytes:
    """The chain as PEM, leaf first."""
    return b"".join(c.pem for c in chain)


def pem_key(key: PrivateKeyTypes, passphrase: str | None) -> bytes:
    """PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
