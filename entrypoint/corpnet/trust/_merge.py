"""The pure core of the trust stage: file contents and ``now`` in, bundle and report out.

:func:`merge` splits every input (see :mod:`corpnet.trust._pem`), drops duplicates by
the SHA-256 of the DER (within a file, across files, against the system
bundle), reads each new certificate's outline (:mod:`corpnet.trust._der`), hashes its
subject for the hashed directory (:mod:`corpnet.trust._hash`, which validates it
too) and collects warnings (:mod:`corpnet.trust._check`). Nothing here reads a
file or the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from corpnet.errors import ConfigErrors, CorpnetError, DataError
from corpnet.trust import _check, _der, _pem
from corpnet.trust._hash import name_hash, subject_hash
from corpnet.trust._inputs import InputFile


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

    # One normalised PEM block per certificate. The DER is not kept beside it:
    # ten thousand certificates would hold ~9 MB twice (see ``ders``).
    pems: tuple[bytes, ...]
    # Subject hashes already computed (to validate corporate subjects); None: not yet.
    subject_hashes: tuple[str | None, ...]
    system_count: int
    files: tuple[FileReport, ...]
    warnings: tuple[str, ...]  # "path: certificate 'X' ...", each strict-mode fatal
    errors: tuple[CorpnetError, ...]

    @property
    def ders(self) -> tuple[bytes, ...]:
        """The certificates as DER, decoded anew on every call."""
        return tuple(map(_pem.pem_decode, self.pems))

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


def merge(
    system_pem: bytes,
    inputs: Iterable[InputFile],
    *,
    now: dt.datetime,
    system_name: str = "the system bundle",
) -> Merged:
    """Merge ``inputs`` after the system bundle: dedupe, parse, warn; no I/O.

    ``inputs`` is consumed once, in order: a generator (see
    :func:`corpnet.trust._inputs.iter_inputs`) keeps one file's bytes in memory
    at a time.

    Raises:
        DataError: the system bundle itself is not PEM (a wrong CORPNET_SYSTEM_BUNDLE).
    """
    seen: set[bytes] = set()
    pems: list[bytes] = []
    found = _pem.Found()
    try:
        for der, block in _pem.certificates(system_pem, found):
            digest = hashlib.sha256(der).digest()
            if digest not in seen:
                seen.add(digest)
                pems.append(block)
    except _pem.PemError as e:
        raise DataError(
            f"{system_name} is not a PEM bundle ({e})",
            hint="point CORPNET_SYSTEM_BUNDLE at a PEM file of CA certificates",
            path=system_name,
        ) from e
    if found.private_key is not None:  # as for any file: none of it is used
        seen.clear()
        pems.clear()
    system_count = len(pems)
    hashes: list[str | None] = [None] * system_count
    reports: list[FileReport] = []
    warnings: list[str] = []
    errors: list[CorpnetError] = []
    when = _der.generalized(now)
    for item in inputs:
        report, blocks, subject_hashes, error = _merge_file(item, seen, when)
        reports.append(report)
        if error is not None:
            errors.append(error)
            continue
        pems += blocks
        hashes += subject_hashes
        if report.warnings:
            warnings += [f"{item.path}: {w}" for w in report.warnings]
    return Merged(
        pems=tuple(pems),
        subject_hashes=tuple(hashes),
        system_count=system_count,
        files=tuple(reports),
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


_Contribution = tuple[FileReport, list[bytes], list[str | None], CorpnetError | None]


def _merge_file(item: InputFile, seen: set[bytes], now: bytes) -> _Contribution:
    """One file's report, new PEM blocks and their subject hashes, or its error.

    ``seen`` is updated only when the file is accepted. ``now`` is
    b"YYYYMMDDHHMMSSZ" (see :func:`corpnet.trust._der.generalized`).
    """
    if item.error is not None or item.data is None:
        error = item.error or DataError(f"{item.path}: not read", path=item.path)
        return FileReport(item.path, item.source, refused=error.message), [], [], error
    found = _pem.Found()
    blocks: list[bytes] = []
    hashes: list[str | None] = []
    digests: set[bytes] = set()
    notes: list[str] = []
    count = duplicates = 0
    invalid: str | None = None  # the first certificate that is not X.509
    try:
        for der, block in _pem.certificates(item.data, found):
            count += 1
            if invalid is not None:
                continue  # the file is refused; only a PEM error or a key would say more
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
                where = "the DER certificate" if found.der_input else f"certificate block {count}"
                invalid = f"{where} is not a valid X.509 certificate ({e})"
                continue
            found_warnings = _check.warnings(cert, now)
            if found_warnings:
                name = _check.describe(cert)
                notes += [f"certificate {name} {w}" for w in found_warnings]
            blocks.append(block)
            hashes.append(subject_hash)
            digests.add(digest)
    except _pem.PemError as e:
        return _refuse(item, 0, f"is not a PEM or DER certificate file ({e})", _CONVERT_HINT)
    if found.private_key is not None:
        return _refuse(
            item,
            0,
            f"holds a {found.private_key} block; refusing the whole file so that key "
            "material never reaches a world-readable bundle",
            "keep only CA certificates in CA files (a client key belongs in "
            "CLAUDE_CODE_CLIENT_KEY or /etc/corpnet/client/)",
        )
    if invalid is not None:
        return _refuse(item, count, invalid, _CONVERT_HINT)
    if found.ignored:
        notes.insert(
            0,
            f"ignored {len(found.ignored)} block(s) that are not certificates "
            f"({', '.join(sorted(set(found.ignored)))})",
        )
    seen.update(digests)
    report = FileReport(
        item.path,
        item.source,
        found=count,
        added=len(digests),
        duplicates=duplicates,
        warnings=tuple(notes),
    )
    return report, blocks, hashes, None


_CONVERT_HINT = (
    "mount X.509 CA certificates as PEM or DER (convert with "
    "`openssl x509 -in FILE -out FILE.pem`), or remove the file from the CA inputs"
)


def _refuse(item: InputFile, found: int, reason: str, hint: str) -> _Contribution:
    error = CertificateFileError(f"CA file {item.path} {reason}", hint=hint, path=item.path)
    return FileReport(item.path, item.source, found=found, refused=reason), [], [], error


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
    return _numbered(known if known is not None else [None] * len(ders), ders.__getitem__)


def bundle_names(merged: Merged) -> list[str | None]:
    """:func:`hashed_names` of ``merged``, decoding only the blocks not yet hashed."""
    return _numbered(merged.subject_hashes, lambda i: _pem.pem_decode(merged.pems[i]))


def _numbered(known: Sequence[str | None], der_at: Callable[[int], bytes]) -> list[str | None]:
    counts: dict[str, int] = {}
    names: list[str | None] = []
    for i, known_hash in enumerate(known):
        h = known_hash
        if h is None:
            try:
                h = subject_hash(der_at(i))
            except _der.DerError:
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
