"""The trust stage: merge mounted CA certificates into every trust store.

Inputs, in order: every file under ``<config dir>/ca.d/`` (recursive, symlinks
followed, ``..*`` names skipped: Kubernetes volumes link each key into
``..data/``), ``CORPNET_CA_FILES``, ``CORPNET_CA_DIRS``, and
``NODE_EXTRA_CA_CERTS`` as the user set it (the Claude Code documentation tells
enterprise users to set it, so its CA must reach every tool, not only Node).

Outputs, in the runtime directory: ``ca-bundle.pem`` (system CAs + corporate
CAs, deduplicated by the SHA-256 of the DER), ``certs/`` (an OpenSSL hashed
directory), ``java-truststore.p12`` when a JVM is installed, and as root the
system bundle in ``/etc`` itself. Most CA variables *replace* a tool's default
store, so every one of them points at the merged bundle, never at the
corporate CAs alone.

The core (:func:`merge`) is pure: file contents and ``now`` in, a bundle and a
report out. :func:`read_inputs`, :func:`merged_bundle_pem` and :func:`apply`
are the edges. A second run on the same input rewrites nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from corpnet import _der, _pem, _sysstore, files
from corpnet._cainputs import InputFile, read_inputs
from corpnet.config import Settings, TrustSettings
from corpnet.environment import Exports
from corpnet.errors import (
    ConfigError,
    ConfigErrors,
    CorpnetError,
    DataError,
    PermissionDeniedError,
)

__all__ = [
    "BUNDLE_NAME",
    "CA_FILE_VARIABLES",
    "CERT_DIR_NAME",
    "TRUSTSTORE_NAME",
    "CertificateFileError",
    "FileReport",
    "InputFile",
    "Merged",
    "TrustErrors",
    "TrustResult",
    "apply",
    "exports",
    "file_warnings",
    "hashed_names",
    "merge",
    "merged_bundle_pem",
    "read_inputs",
]

BUNDLE_NAME = "ca-bundle.pem"
CERT_DIR_NAME = "certs"
TRUSTSTORE_NAME = "java-truststore.p12"

# Variables that name a CA *file*; all point at the merged bundle. Which tool
# reads each, and whether it replaces or adds to the default store: docs/trust.md.
CA_FILE_VARIABLES = (
    "SSL_CERT_FILE",  # OpenSSL (Python ssl, Ruby, .NET), Go, httpx, rustls-native-certs, uv
    "REQUESTS_CA_BUNDLE",  # requests (ignores SSL_CERT_FILE)
    "CURL_CA_BUNDLE",  # curl CLI (Debian's ignores SSL_CERT_FILE); requests' fallback
    "NODE_EXTRA_CA_CERTS",  # Node, Bun, Claude Code: *added* to the built-in store
    "GIT_SSL_CAINFO",  # git over https (libcurl; ignores SSL_CERT_FILE)
    "PIP_CERT",  # pip
    "AWS_CA_BUNDLE",  # AWS CLI and SDKs
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",  # gcloud (ignores SSL_CERT_FILE)
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",  # gRPC C-core (Python, Ruby, PHP, C++ clients)
    "HTTPLIB2_CA_CERTS",  # httplib2 (older Google API clients)
    "NIX_SSL_CERT_FILE",  # Nix
    "CARGO_HTTP_CAINFO",  # cargo
    "DENO_CERT",  # Deno
    "BUNDLE_SSL_CA_CERT",  # Ruby Bundler
    "HEX_CACERTS_PATH",  # Elixir Hex
    "COMPOSER_CAFILE",  # PHP Composer
)


class CertificateFileError(DataError):
    """A mounted CA file is unusable: unparseable, or holding a private key."""


class TrustErrors(ConfigErrors):
    """Every problem the trust stage found, with the per-file report for ``--json``."""

    def __init__(self, errors: list[CorpnetError], report: Sequence[FileReport]) -> None:
        super().__init__(errors)
        self.files = list(report)


@dataclass(frozen=True)
class FileReport:
    """What one input file contributed."""

    path: Path
    source: str
    found: int = 0  # certificates in the file
    added: int = 0  # new to the bundle
    duplicates: int = 0  # already in the system bundle or an earlier input
    warnings: tuple[str, ...] = ()
    refused: str | None = None  # why nothing from this file was used

    def as_dict(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "path": str(self.path),
            "source": self.source,
            "found": self.found,
            "added": self.added,
            "duplicates": self.duplicates,
            "warnings": list(self.warnings),
            "refused": self.refused,
        }


class Merged(NamedTuple):
    """The pure result: the bundle's certificates in order, and the report."""

    ders: tuple[bytes, ...]
    pems: tuple[bytes, ...]  # one normalised PEM block per certificate, same order
    # Subject hashes already computed (to validate corporate subjects); None: not yet.
    subject_hashes: tuple[str | None, ...]
    system_count: int
    files: tuple[FileReport, ...]
    warnings: tuple[str, ...]  # "path: certificate 'X' ...", each strict-mode fatal
    errors: tuple[CorpnetError, ...]

    @property
    def pem(self) -> bytes:
        """The merged bundle file."""
        return b"".join(self.pems)

    def check(self, *, strict: bool) -> None:
        """Raise every error (and in strict mode every warning) at once."""
        errors = list(self.errors)
        if strict:
            errors += [
                DataError(w, hint="fix the certificate or unset --strict/CORPNET_CA_STRICT")
                for w in self.warnings
            ]
        if errors:
            raise TrustErrors(errors, self.files)


@dataclass(frozen=True)
class TrustResult:
    """What :func:`apply` wrote and what the agent's environment needs."""

    bundle: Path
    cert_dir: Path
    exports: Exports
    files: list[FileReport]
    warnings: list[str]  # one line per input file with warnings, then the system store's
    system_store_updated: bool
    truststore: Path | None = None
    certificates: int = 0  # in the merged bundle
    system_certificates: int = 0
    system_source: Path | None = None
    written: tuple[Path, ...] = ()  # outputs (re)written by this run; () on an unchanged restart

    @property
    def added(self) -> int:
        """Corporate certificates added to the system's."""
        return self.certificates - self.system_certificates

    def as_dict(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "bundle": str(self.bundle),
            "cert_dir": str(self.cert_dir),
            "truststore": str(self.truststore) if self.truststore else None,
            "certificates": self.certificates,
            "system_certificates": self.system_certificates,
            "system_source": str(self.system_source) if self.system_source else None,
            "system_store_updated": self.system_store_updated,
            "files": [f.as_dict() for f in self.files],
            "warnings": self.warnings,
            "errors": [],
        }


# --- pure core -----------------------------------------------------------------


def merge(
    system_pem: bytes,
    inputs: Sequence[InputFile],
    *,
    now: dt.datetime,
    system_name: str = "the system bundle",
) -> Merged:
    """Merge ``inputs`` after the system bundle: dedupe, parse, warn; no I/O.

    Raises:
        DataError: the system bundle itself is not PEM (a wrong CORPNET_SYSTEM_BUNDLE).
    """
    try:
        system = _pem.split(system_pem)
    except _pem.PemError as e:
        raise DataError(
            f"{system_name} is not a PEM bundle ({e})",
            hint="point CORPNET_SYSTEM_BUNDLE at a PEM file of CA certificates",
            path=system_name,
        ) from e
    seen: set[bytes] = set()
    ders: list[bytes] = []
    pems: list[bytes] = []
    for der, block in zip(system.ders, system.pems, strict=True):
        digest = hashlib.sha256(der).digest()
        if digest not in seen:
            seen.add(digest)
            ders.append(der)
            pems.append(block)
    system_count = len(ders)
    hashes: list[str | None] = [None] * system_count
    reports: list[FileReport] = []
    warnings: list[str] = []
    errors: list[CorpnetError] = []
    when = _der.generalized(now)
    for item in inputs:
        report, new, error = _merge_file(item, seen, when)
        reports.append(report)
        if error is not None:
            errors.append(error)
            continue
        ders += [der for der, _, _ in new]
        pems += [block for _, block, _ in new]
        hashes += [h for _, _, h in new]
        warnings += [f"{item.path}: {w}" for w in report.warnings]
    return Merged(
        ders=tuple(ders),
        pems=tuple(pems),
        subject_hashes=tuple(hashes),
        system_count=system_count,
        files=tuple(reports),
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


def _merge_file(
    item: InputFile, seen: set[bytes], now: bytes
) -> tuple[FileReport, list[tuple[bytes, bytes, str]], CorpnetError | None]:
    """One file's contribution; ``seen`` is updated only when the file is accepted.

    ``now`` is b"YYYYMMDDHHMMSSZ" (see :func:`corpnet._der.generalized`).
    """
    from corpnet import _certcheck
    from corpnet._certhash import name_hash

    if item.error is not None or item.data is None:
        error = item.error or DataError(f"{item.path}: not read", path=item.path)
        return FileReport(item.path, item.source, refused=error.message), [], error
    try:
        split = _pem.split(item.data)
    except _pem.PemError as e:
        return _refuse(item, 0, f"is not a PEM or DER certificate file ({e})", _CONVERT_HINT)
    if split.private_key is not None:
        return _refuse(
            item,
            0,
            f"holds a {split.private_key} block; refusing the whole file so that key "
            "material never reaches a world-readable bundle",
            "keep only CA certificates in CA files (a client key belongs in "
            "CLAUDE_CODE_CLIENT_KEY or /etc/corpnet/client/)",
        )
    notes: list[str] = []
    if split.ignored:
        notes.append(
            f"ignored {len(split.ignored)} block(s) that are not certificates "
            f"({', '.join(sorted(set(split.ignored)))})"
        )
    new: list[tuple[bytes, bytes, str]] = []
    digests: set[bytes] = set()
    duplicates = 0
    for index, (der, block) in enumerate(zip(split.ders, split.pems, strict=True), 1):
        digest = hashlib.sha256(der).digest()
        if digest in seen or digest in digests:
            duplicates += 1
            continue
        try:
            cert = _der.read(der)
            # Hashing walks the subject in depth, so it validates it too; done
            # here, a bad subject refuses its file before anything is written.
            subject_hash = name_hash(cert.subject)
        except _der.DerError as e:
            where = "the DER certificate" if split.der_input else f"certificate block {index}"
            return _refuse(
                item,
                len(split.ders),
                f"{where} is not a valid X.509 certificate ({e})",
                _CONVERT_HINT,
            )
        found = _certcheck.warnings(cert, now)
        if found:
            name = _certcheck.describe(cert)
            notes += [f"certificate {name} {w}" for w in found]
        new.append((der, block, subject_hash))
        digests.add(digest)
    seen.update(digests)
    report = FileReport(
        item.path,
        item.source,
        found=len(split.ders),
        added=len(new),
        duplicates=duplicates,
        warnings=tuple(notes),
    )
    return report, new, None


_CONVERT_HINT = (
    "mount X.509 CA certificates as PEM or DER (convert with "
    "`openssl x509 -in FILE -out FILE.pem`), or remove the file from the CA inputs"
)


def _refuse(
    item: InputFile, found: int, reason: str, hint: str
) -> tuple[FileReport, list[tuple[bytes, bytes, str]], CorpnetError]:
    error = CertificateFileError(f"CA file {item.path} {reason}", hint=hint, path=item.path)
    return FileReport(item.path, item.source, found=found, refused=reason), [], error


def hashed_names(
    ders: Sequence[bytes], known: Sequence[str | None] | None = None
) -> list[str | None]:
    """``HHHHHHHH.N`` file names for an OpenSSL hashed directory, in bundle order.

    Subjects that hash alike (the same CA renewed, or a real collision) get
    ``.0``, ``.1``, ... as ``openssl rehash`` does; OpenSSL tries each in turn.
    ``known`` holds hashes already computed (None where not). A system
    certificate whose subject cannot be hashed gets None: it stays in the
    bundle and is left out of the directory (corporate ones were checked).
    """
    from corpnet._certhash import subject_hash
    from corpnet._der import DerError

    counts: dict[str, int] = {}
    names: list[str | None] = []
    for i, der in enumerate(ders):
        h = known[i] if known is not None else None
        if h is None:
            try:
                h = subject_hash(der)
            except DerError:
                names.append(None)
                continue
        n = counts.get(h, 0)
        counts[h] = n + 1
        names.append(f"{h}.{n}")
    return names


def file_warnings(reports: Sequence[FileReport], *, limit: int = 3) -> list[str]:
    """One line per input file with warnings: a start-up log stays readable."""
    lines = []
    for report in reports:
        if not report.warnings:
            continue
        shown = "; ".join(report.warnings[:limit])
        more = len(report.warnings) - limit
        if more > 0:
            shown += f"; and {more} more (`corpnet trust --json` lists them)"
        lines.append(f"{report.path}: {shown}")
    return lines


def exports(bundle: Path, cert_dir: Path, truststore: Path | None) -> Exports:
    """The CA variables every tool reads, all pointing at the merged outputs."""
    env = dict.fromkeys(CA_FILE_VARIABLES, str(bundle))
    env["SSL_CERT_DIR"] = str(cert_dir)  # OpenSSL, Go, rustls-native-certs: replaces /etc/ssl/certs
    java: tuple[str, ...] = ()
    if truststore is not None:
        from corpnet._javastore import java_options

        java = java_options(truststore)
    return Exports(env=env, java_options=java)


# --- edges ---------------------------------------------------------------------


def _own_dirs(*dirs: Path | None) -> tuple[Path, ...]:
    from corpnet.config import DEFAULT_RUNTIME_DIR

    return (*[d for d in dirs if d is not None], DEFAULT_RUNTIME_DIR, files.fallback_runtime_dir())


def _merge_settings(
    trust: TrustSettings,
    *,
    own_dirs: Sequence[Path],
    now: dt.datetime | None,
    pristine: Path | None,
    candidates: Sequence[Path] | None,
) -> tuple[Merged, _sysstore.Source]:
    source = _sysstore.find_source(
        trust.system_bundle,
        own_dirs=own_dirs,
        pristine=pristine or _sysstore.PRISTINE,
        candidates=candidates if candidates is not None else _sysstore.DISTRO_BUNDLES,
    )
    try:
        system_pem = source.path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read the system CA bundle {source.path} ({os.strerror(e.errno or 0)})",
            hint="set CORPNET_SYSTEM_BUNDLE to a readable PEM bundle",
            path=source.path,
            variable="CORPNET_SYSTEM_BUNDLE" if trust.system_bundle else None,
        ) from e
    merged = merge(
        system_pem,
        read_inputs(trust),
        now=now or dt.datetime.now(dt.UTC),
        system_name=str(source.path),
    )
    merged.check(strict=trust.strict)
    return merged, source


def merged_bundle_pem(
    settings: TrustSettings,
    *,
    runtime_dir: Path | None = None,
    now: dt.datetime | None = None,
    pristine: Path | None = None,
    candidates: Sequence[Path] | None = None,
) -> bytes:
    """The merged bundle (system + corporate CAs), computed in memory; writes nothing.

    Raises:
        TrustErrors: an input is unusable (or, with ``strict``, has warnings).
    """
    merged, _ = _merge_settings(
        settings,
        own_dirs=_own_dirs(runtime_dir),
        now=now,
        pristine=pristine,
        candidates=candidates,
    )
    return merged.pem


def apply(
    settings: Settings,
    *,
    runtime_dir: Path,
    euid: int | None = None,
    env: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    pristine: Path | None = None,
    candidates: Sequence[Path] | None = None,
) -> TrustResult:
    """Write the bundle, the hashed directory, the JVM truststore and (as root) /etc.

    ``runtime_dir`` is writable (see :func:`corpnet.files.choose_runtime_dir`).
    ``env`` (default ``os.environ``) is only used to find a JVM; ``pristine``
    and ``candidates`` override the system paths (tests must never touch /etc).

    Raises:
        TrustErrors: an input is unusable, before anything is written.
    """
    env = os.environ if env is None else env
    own = _own_dirs(runtime_dir, settings.runtime_dir)
    merged, source = _merge_settings(
        settings.trust, own_dirs=own, now=now, pristine=pristine, candidates=candidates
    )
    euid = os.geteuid() if euid is None else euid
    try:
        return _write(
            settings,
            merged,
            source,
            runtime_dir=runtime_dir,
            own=own,
            env=env,
            euid=euid,
            pristine=pristine,
            candidates=candidates,
        )
    except OSError as e:
        # A full tmpfs, or a directory that turned read-only under us.
        where = Path(e.filename or runtime_dir)
        inside = where.is_relative_to(runtime_dir)
        raise PermissionDeniedError(
            f"cannot write {where} ({os.strerror(e.errno or 0)})",
            hint=f"mount a writable tmpfs with a few MB free at {runtime_dir} (CORPNET_RUNTIME_DIR)"
            if inside
            else "free space there, or set CORPNET_SYSTEM_STORE=off",
            path=where,
            variable="CORPNET_RUNTIME_DIR" if inside else "CORPNET_SYSTEM_STORE",
        ) from e


def _write(
    settings: Settings,
    merged: Merged,
    source: _sysstore.Source,
    *,
    runtime_dir: Path,
    own: Sequence[Path],
    env: Mapping[str, str],
    euid: int,
    pristine: Path | None,
    candidates: Sequence[Path] | None,
) -> TrustResult:
    bundle_pem = merged.pem
    bundle = runtime_dir / BUNDLE_NAME
    written: list[Path] = []
    try:
        unchanged = bundle.read_bytes() == bundle_pem
    except OSError:
        unchanged = False
    cert_dir = runtime_dir / CERT_DIR_NAME
    names: list[str | None] = []

    def file_names() -> list[str | None]:  # hashing every subject is costly: once, lazily
        if not names:
            names.extend(hashed_names(merged.ders, merged.subject_hashes))
        return names

    from corpnet import _certdir

    if _certdir.write(cert_dir, merged.pems, file_names, bundle_pem):
        written.append(cert_dir)
    truststore: Path | None = None
    from corpnet import _javastore

    if _javastore.jvm_present(env):
        truststore = runtime_dir / TRUSTSTORE_NAME
        # Written before the bundle: an unchanged bundle then proves the store is
        # current, and a restart skips building it.
        if not (unchanged and truststore.is_file()):
            aliases = [name or f"corpnet-{i}" for i, name in enumerate(file_names())]
            if files.write_atomic(truststore, _javastore.truststore(merged.ders, aliases)):
                written.append(truststore)
    if files.write_atomic(bundle, bundle_pem):
        written.append(bundle)
    warnings = file_warnings(merged.files)
    system_updated = False
    if euid == 0 and settings.trust.system_store == "auto":
        update = _sysstore.update(
            bundle_pem,
            own_dirs=own,
            pristine=pristine or _sysstore.PRISTINE,
            candidates=candidates if candidates is not None else _sysstore.DISTRO_BUNDLES,
        )
        warnings += update.warnings
        system_updated = bool(update.updated)
    return TrustResult(
        bundle=bundle,
        cert_dir=cert_dir,
        exports=exports(bundle, cert_dir, truststore),
        files=list(merged.files),
        warnings=warnings,
        system_store_updated=system_updated,
        truststore=truststore,
        certificates=len(merged.ders),
        system_certificates=merged.system_count,
        system_source=source.path,
        written=tuple(written),
    )
