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

The core (:func:`merge`, in :mod:`corpnet.trust._merge`) is pure: file contents and
``now`` in, a bundle and a report out. :func:`read_inputs`,
:func:`merged_bundle_pem` and :func:`apply` are the edges. A second run on the
same input rewrites nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corpnet import files, inputs
from corpnet.config import Settings, TrustSettings
from corpnet.environment import Exports
from corpnet.errors import ConfigError, PermissionDeniedError
from corpnet.trust import _system
from corpnet.trust._inputs import InputFile, iter_inputs, read_inputs
from corpnet.trust._merge import (
    CertificateFileError,
    FileReport,
    Merged,
    TrustErrors,
    bundle_names,
    file_warnings,
    hashed_names,
    merge,
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
    "input_digest",
    "merge",
    "merged_bundle_pem",
    "read_inputs",
    "system_store_files",
]

BUNDLE_NAME = files.BUNDLE
CERT_DIR_NAME = files.CERT_DIR
TRUSTSTORE_NAME = files.JAVA_TRUSTSTORE

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


def exports(bundle: Path, cert_dir: Path, truststore: Path | None) -> Exports:
    """The CA variables every tool reads, all pointing at the merged outputs."""
    env = dict.fromkeys(CA_FILE_VARIABLES, str(bundle))
    env["SSL_CERT_DIR"] = str(cert_dir)  # OpenSSL, Go, rustls-native-certs: replaces /etc/ssl/certs
    java: tuple[str, ...] = ()
    if truststore is not None:
        from corpnet.trust._java import java_options

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
) -> tuple[Merged, _system.Source]:
    source = _system.find_source(
        trust.system_bundle,
        own_dirs=own_dirs,
        pristine=pristine or _system.PRISTINE,
        candidates=candidates if candidates is not None else _system.DISTRO_BUNDLES,
    )
    try:
        # Bounded and regular-only like every CA input: CORPNET_SYSTEM_BUNDLE may name anything.
        system_pem = inputs.read_regular(source.path, inputs.CA_INPUT_LIMIT).data
    except inputs.InputFileError as e:
        raise ConfigError(
            f"the system CA bundle {source.path} {e.what}",
            hint="set CORPNET_SYSTEM_BUNDLE to a PEM bundle file",
            path=source.path,
            variable="CORPNET_SYSTEM_BUNDLE" if trust.system_bundle else None,
        ) from e
    except OSError as e:
        raise ConfigError(
            f"cannot read the system CA bundle {source.path} ({os.strerror(e.errno or 0)})",
            hint="set CORPNET_SYSTEM_BUNDLE to a readable PEM bundle",
            path=source.path,
            variable="CORPNET_SYSTEM_BUNDLE" if trust.system_bundle else None,
        ) from e
    merged = merge(
        system_pem,
        iter_inputs(trust),
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
    source: _system.Source,
    *,
    runtime_dir: Path,
    own: Sequence[Path],
    env: Mapping[str, str],
    euid: int,
    pristine: Path | None,
    candidates: Sequence[Path] | None,
) -> TrustResult:
    # The bundle stays in pieces, one PEM block each, never joined: for ten
    # thousand certificates each copy is ~12 MB (bench/trust.py bounds the peak).
    pems = merged.pems
    bundle = runtime_dir / BUNDLE_NAME
    written: list[Path] = []
    try:
        unchanged = files.holds(bundle, pems)
    except OSError:
        unchanged = False
    digest = hashlib.sha256()
    for block in pems:
        digest.update(block)
    cert_dir = runtime_dir / CERT_DIR_NAME
    names: list[str | None] = []

    def file_names() -> list[str | None]:  # hashing every subject is costly: once, lazily
        if not names:
            names.extend(bundle_names(merged))
        return names

    from corpnet.trust import _certdir, _shm

    # On a container's writable layer, the hashed directory's thousand files go to /dev/shm.
    home = _shm.home(runtime_dir, euid=euid)
    try:
        changed = _certdir.write(cert_dir, pems, file_names, digest.hexdigest(), home=home)
    except OSError:
        if home is None:
            raise
        # /dev/shm full (Docker gives it 64 MB): the runtime directory, slower but there.
        changed = _certdir.write(cert_dir, pems, file_names, digest.hexdigest())
    if changed:
        written.append(cert_dir)
    truststore: Path | None = None
    if jvm_present(env):
        from corpnet.trust import _java  # hmac: only paid for with a JVM
        from corpnet.trust._pem import pem_decode

        truststore = runtime_dir / TRUSTSTORE_NAME
        # Written before the bundle: an unchanged bundle then proves the store is
        # current, and a restart skips building it.
        if not (unchanged and truststore.is_file()):
            aliases = [name or f"corpnet-{i}" for i, name in enumerate(file_names())]
            with files.replacing(truststore) as out:
                _java.write(out, lambda: map(pem_decode, pems), aliases)
            written.append(truststore)
    if files.write_atomic(bundle, pems):
        written.append(bundle)
    warnings = file_warnings(merged.files)
    system_updated = False
    if euid == 0 and settings.trust.system_store == "auto":
        update = _system.update(
            pems,
            own_dirs=own,
            pristine=pristine or _system.PRISTINE,
            candidates=candidates if candidates is not None else _system.DISTRO_BUNDLES,
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
        certificates=len(pems),
        system_certificates=merged.system_count,
        system_source=source.path,
        written=tuple(written),
    )


def jvm_present(env: Mapping[str, str]) -> bool:
    """Is a JVM installed: ``$JAVA_HOME/bin/java``, or ``java`` on ``PATH``?

    By hand rather than ``shutil.which``: importing shutil costs ~3 ms on
    every container start, with or without a JVM.
    """

    def is_file(path: Path) -> bool:
        # An entry we may not search (/root/.local/bin in an image whose USER is
        # not root) holds no java for us; Path.is_file raises PermissionError
        # there on Python 3.11, which is not a reason to fail the trust stage.
        try:
            return path.is_file()
        except OSError:
            return False

    java_home = env.get("JAVA_HOME")
    if java_home and is_file(Path(java_home) / "bin" / "java"):
        return True
    for directory in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = Path(directory or ".") / "java"
        if is_file(candidate) and os.access(candidate, os.X_OK):
            return True
    return False


def input_digest(
    settings: TrustSettings, *, own_dirs: Sequence[Path], update: Callable[[bytes], object]
) -> bool:
    """Feed every byte :func:`apply` would read to ``update``; False when an input is bad.

    The key of an unchanged restart (corpnet.run._reuse): the CA inputs in the
    order the merge reads them, and the system bundle it starts from. A file
    that cannot be read makes the key unusable (the merge then says why).
    """
    source = _system.find_source(settings.system_bundle, own_dirs=own_dirs)
    try:
        update(b"system\0" + str(source.path).encode() + b"\0")
        update(inputs.read_regular(source.path, inputs.CA_INPUT_LIMIT).data)
    except (OSError, inputs.InputFileError):
        return False
    for f in iter_inputs(settings):  # one file's bytes at a time, as the merge reads them
        if f.data is None:
            return False
        update(b"\0file\0" + str(f.path).encode() + b"\0" + f.source.encode() + b"\0")
        update(hashlib.sha256(f.data).digest())
    return True


def system_store_files() -> list[Path]:
    """The distribution bundles a root start rewrites (resolved), and the pristine copy."""
    found = [p.resolve() for p in _system.DISTRO_BUNDLES if p.is_file()]
    return [*dict.fromkeys(found), _system.PRISTINE]
