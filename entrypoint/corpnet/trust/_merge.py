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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from corpnet.errors import ConfigErrors, CorpnetError, DataError
from corpnet.trust import _der, _pem
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

    ``now`` is b"YYYYMMDDHHMMSSZ" (see :func:`corpnet.trust._der.generalized`).
    """
    from corpnet.trust import _check
    from corpnet.trust._hash import name_hash

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
        found = _check.warnings(cert, now)
        if found:
            name = _check.describe(cert)
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
    from corpnet.trust._der import DerError
    from corpnet.trust._hash import subject_hash

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
