"""The client identity (mTLS) stage: validate the mounted certificate and key.

Inputs, in order of precedence (see docs/identity.md):

* ``CORPNET_CLIENT_P12`` (a PKCS#12 bundle), else
* ``CLAUDE_CODE_CLIENT_CERT`` / ``CLAUDE_CODE_CLIENT_KEY`` (the variables the
  Claude Code enterprise documentation tells users to set), else
* ``/etc/corpnet/client/tls.crt`` + ``tls.key``: the key names of a Kubernetes
  ``kubernetes.io/tls`` secret and of cert-manager, else
* ``/etc/corpnet/client/client.p12``.

Nothing configured is not an error: the stage is skipped. :func:`check` reads
the files and runs every check (raising the first error, collecting warnings);
:func:`apply` also writes the outputs (PEM from PKCS#12, the optional
decrypted key) and computes the variables every tool reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from corpnet import files as filesmod
from corpnet import log as logmod
from corpnet.config import IdentitySettings, Settings
from corpnet.environment import Exports
from corpnet.errors import CorpnetError
from corpnet.identity._errors import (
    ClientFileError,
    ClientKeyPermissionError,
    IdentityConfigError,
    KeyPassphraseError,
)
from corpnet.identity._files import (
    CERT_VAR,
    KEY_VAR,
    Inputs,
    check_agent_reads,
    check_secret_mode,
    present,
    read,
    resolve_inputs,
)

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from corpnet.identity._check import Check, Identity, IdentityReport
    from corpnet.identity._keys import LoadedKey

__all__ = [
    "Check",
    "ClientFileError",
    "ClientKeyPermissionError",
    "IdentityConfigError",
    "IdentityReport",
    "IdentityResult",
    "KeyPassphraseError",
    "apply",
    "check",
    "exports_for",
    "input_digest",
]

# The passphrase variable Claude Code reads (not a secret itself).
PASSPHRASE_VAR = "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"  # noqa: S105
# Files corpnet writes under <runtime dir>/client/ (corpnet.files: the layout).
OUT_CERT = filesmod.CLIENT_CERT
OUT_KEY = filesmod.CLIENT_KEY
OUT_COMBINED = filesmod.CLIENT_COMBINED
_OUTPUTS = (OUT_CERT, OUT_KEY, OUT_COMBINED)


@dataclass(frozen=True)
class IdentityResult:
    """The validated identity as the agent will see it."""

    cert: Path
    key: Path
    passphrase: str | None = field(repr=False)
    exports: Exports = field(repr=False)  # holds the passphrase too
    report: IdentityReport
    warnings: list[str]


def _load(
    s: IdentitySettings, inputs: Inputs, *, uid: int, gids: frozenset[int], checks: list[Check]
) -> Identity:
    """Read and parse the inputs, checking file kinds and permissions."""
    from corpnet.identity import _keys  # cryptography: not on a reused restart (run._reuse)
    from corpnet.identity._check import Check, Identity

    if inputs.source == "pkcs12":
        f = read(inputs.cert, role="PKCS#12 bundle", variable=inputs.cert_variable)
        check_secret_mode(f, "PKCS#12 bundle")
        checks.append(Check("permissions", "ok", f"{f.path} mode {f.mode:04o}"))
        p12 = _keys.load_p12(f.data, f.path, password=s.p12_password)
        if p12.password_unneeded:
            checks.append(
                Check(
                    "pkcs12",
                    "warning",
                    f"CORPNET_CLIENT_P12_PASSWORD is set but {f.path} has no password",
                )
            )
        return Identity(
            inputs,
            p12.chain,
            p12.key,
            "PKCS#12",
            p12.password_protected,
            s.p12_password if p12.password_protected else None,
        )
    cert_file = read(inputs.cert, role="Client certificate", variable=inputs.cert_variable)
    key_file = read(inputs.key, role="Client key", variable=inputs.key_variable)
    chain = _keys.load_chain(cert_file.data, cert_file.path)
    loaded: LoadedKey = _keys.load_key(
        key_file.data,
        key_file.path,
        passphrase=s.passphrase,
        passphrase_source=s.passphrase_source,
    )
    # After parsing: a swapped certificate (0644, rightly) gets the "swapped" message.
    check_secret_mode(key_file, "Client key")
    # The agent reads the certificate, and the key unless it gets a decrypted copy.
    check_agent_reads(cert_file, "Client certificate", uid=uid, gids=gids)
    if not (s.decrypt_key and loaded.encrypted):
        check_agent_reads(key_file, "Client key", uid=uid, gids=gids)
    checks.append(
        Check(
            "permissions", "ok", f"{key_file.path} mode {key_file.mode:04o}, readable by uid {uid}"
        )
    )
    return Identity(
        inputs,
        chain,
        loaded.key,
        loaded.format,
        loaded.encrypted,
        s.passphrase if loaded.encrypted else None,
    )


def _anchors(
    s: IdentitySettings, roots_pem: bytes | None, checks: list[Check]
) -> list[tuple[str, list[x509.Certificate]]]:
    from corpnet.identity import _keys
    from corpnet.identity._check import Check

    anchors: list[tuple[str, list[x509.Certificate]]] = []
    try:
        if present(s.ca):
            ca = read(s.ca, role="Client CA", variable=None)
            certs = _keys.load_chain(ca.data, ca.path, role="Client CA file")
            anchors.append((f"ca.crt {s.ca}", [c.x509() for c in certs]))
    except (ClientFileError, IdentityConfigError, ClientKeyPermissionError) as e:
        # Only the chain check needs it, and that check is advisory: say so, go on.
        checks.append(Check("ca", "warning", f"{e}; ignored"))
    if roots_pem:
        anchors.append(("the trust bundle", _keys.load_anchors(roots_pem)))
    return anchors


def _run(
    s: IdentitySettings,
    *,
    roots_pem: bytes | None,
    now: datetime,
    uid: int,
    gids: frozenset[int],
    verify_chain: bool,
) -> tuple[Identity, IdentityReport] | None:
    inputs = resolve_inputs(s)
    if inputs is None:
        return None
    from corpnet.identity._check import inspect

    checks: list[Check] = []
    ident = _load(s, inputs, uid=uid, gids=gids, checks=checks)

    def anchors() -> list[tuple[str, list[x509.Certificate]]]:
        return _anchors(s, roots_pem, checks)

    report = inspect(
        ident,
        anchors=anchors if verify_chain else None,
        now=now,
        warn_days=s.warn_days,
        strict=s.strict,
        checks=checks,
    )
    return ident, report


def check(
    settings: IdentitySettings,
    *,
    roots_pem: bytes | None,
    now: datetime,
    uid: int,
    gids: frozenset[int],
) -> IdentityReport | None:
    """Validate the configured client identity; None when none is configured.

    Args:
        settings: the identity settings from :func:`corpnet.config.load`.
        roots_pem: the merged trust bundle, used when ``ca.crt`` is absent or does not verify.
        now: the clock (validity window, chain verification).
        uid: the user the agent runs as; gids: its groups (readability of the files).

    Raises:
        ClientFileError (65), ClientKeyPermissionError (77), IdentityConfigError or
        KeyPassphraseError (78). Warnings are in the report.
    """
    done = _run(settings, roots_pem=roots_pem, now=now, uid=uid, gids=gids, verify_chain=True)
    return done[1] if done is not None else None


def agent_groups(uid: int, gid: int) -> frozenset[int]:
    """The groups ``uid`` will have: its account's groups plus the container's extra ones.

    Mirrors corpnet.run._privileges: supplementary groups the container was started
    with (``--group-add``, Kubernetes ``fsGroup``) are kept; root's group 0 is not.
    """
    groups = {gid}
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        pass
    else:
        with contextlib.suppress(OSError):
            groups |= set(os.getgrouplist(entry.pw_name, gid))
    if os.getuid() == uid:
        groups |= set(os.getgroups()) | {os.getgid()}
    else:
        groups |= set(os.getgroups()) - {0}
    return frozenset(groups)


def apply(
    settings: Settings,
    *,
    runtime_dir: Path,
    roots_pem: bytes | None,
    now: datetime,
    owner: tuple[int, int] | None = None,
    groups: Iterable[int] | None = None,
) -> IdentityResult | None:
    """Check the identity, write its outputs under ``runtime_dir/client``, compute the exports.

    ``owner`` is the (uid, gid) the agent runs as (None: this process); the
    outputs are chowned to it. ``groups`` overrides its supplementary groups.
    """
    s = settings.identity
    uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
    gids = frozenset(groups) | {gid} if groups is not None else agent_groups(uid, gid)
    # At a start the chain is verified only with --strict: a client CA that is not
    # a server CA is the usual case, and the server decides (`corpnet identity` says more).
    done = _run(s, roots_pem=roots_pem, now=now, uid=uid, gids=gids, verify_chain=s.strict)
    client_dir = runtime_dir / filesmod.CLIENT_DIR
    try:
        if done is None:
            _remove_stale(client_dir, keep=())
            return None
        ident, report = done
        cert, key, passphrase, combined = _write_outputs(s, ident, client_dir, owner)
    except OSError as e:
        raise ClientKeyPermissionError(
            f"cannot write the client identity outputs in {client_dir} ({e.strerror})",
            hint="mount a writable tmpfs or emptyDir (medium: Memory) at the runtime directory "
            "(CORPNET_RUNTIME_DIR)",
            path=client_dir,
            variable="CORPNET_RUNTIME_DIR",
        ) from e
    if s.decrypt_key and key.parent == client_dir and passphrase is None:
        logmod.get().info(
            f"wrote the decrypted client key to {key} (CORPNET_DECRYPT_KEY=1): mount a tmpfs "
            f"(emptyDir medium: Memory) at {runtime_dir} so it never reaches a disk"
        )
    exports = exports_for(cert, key, passphrase, combined)
    # When the exported path is our own copy (PKCS#12, CORPNET_DECRYPT_KEY), the
    # user's variable is overwritten for the agent: remember what it named, so a
    # later run in a shell that sourced env.sh (`docker exec … corpnet doctor`)
    # checks the real input instead of falling back to the default path.
    inputs = {
        INPUT_CERT_VAR: s.cert if s.cert_explicit and cert != s.cert else None,
        INPUT_KEY_VAR: s.key if s.key_explicit and key != s.key else None,
    }
    remembered = {name: str(path) for name, path in inputs.items() if path is not None}
    if remembered:
        exports = Exports(
            env={**exports.env, **remembered},
            java_options=exports.java_options,
            secret_names=exports.secret_names,
        )
    return IdentityResult(
        cert=cert,
        key=key,
        passphrase=passphrase,
        exports=exports,
        report=report,
        warnings=list(report.warnings),
    )


def _write_outputs(
    s: IdentitySettings, ident: Identity, client_dir: Path, owner: tuple[int, int] | None
) -> tuple[Path, Path, str | None, Path | None]:
    """Write what the agent needs under ``client_dir``; return (cert, key, passphrase, combined)."""
    from corpnet.identity import _keys  # cryptography: not on a reused restart (run._reuse)

    written: list[str] = []
    cert, key, passphrase = ident.inputs.cert, ident.inputs.key, ident.passphrase
    plain_key: PrivateKeyTypes | None = None if ident.encrypted else ident.key
    if ident.inputs.source == "pkcs12":
        # Claude Code, git and curl take PEM paths: convert. The key stays encrypted
        # (with the bundle's password) unless CORPNET_DECRYPT_KEY=1.
        _client_dir(client_dir, owner)
        passphrase = None if s.decrypt_key else ident.passphrase
        cert = _write(client_dir / OUT_CERT, _keys.pem_chain(ident.chain), owner)
        key = _write_key(client_dir / OUT_KEY, ident.key, passphrase, owner)
        plain_key = None if passphrase else ident.key
        written += [OUT_CERT, OUT_KEY]
    elif s.decrypt_key and ident.encrypted:
        _client_dir(client_dir, owner)
        key = _write_key(client_dir / OUT_KEY, ident.key, None, owner)
        passphrase, plain_key = None, ident.key
        written.append(OUT_KEY)
    combined: Path | None = None
    if plain_key is not None:
        _client_dir(client_dir, owner)
        data = _keys.pem_chain(ident.chain) + _keys.pem_key(plain_key, None)
        combined = _write(client_dir / OUT_COMBINED, data, owner)
        written.append(OUT_COMBINED)
    _remove_stale(client_dir, keep=written)
    return cert, key, passphrase, combined


# The user's own certificate and key paths, when the exported ones are copies.
INPUT_CERT_VAR = "CORPNET_INPUT_CLIENT_CERT"
INPUT_KEY_VAR = "CORPNET_INPUT_CLIENT_KEY"


def exports_for(cert: Path, key: Path, passphrase: str | None, combined: Path | None) -> Exports:
    """The variables each tool reads for a client certificate (table in docs/identity.md)."""
    env = {
        # Claude Code (Node): PEM paths plus the passphrase, as its enterprise docs say.
        CERT_VAR: str(cert),
        KEY_VAR: str(key),
        # git's http.sslCert / http.sslKey (libcurl underneath).
        "GIT_SSL_CERT": str(cert),
        "GIT_SSL_KEY": str(key),
    }
    secrets: set[str] = set()
    if passphrase:
        env[PASSPHRASE_VAR] = passphrase
        secrets.add(PASSPHRASE_VAR)
        # git asks for the passphrase itself (credential helper or terminal) instead of
        # letting OpenSSL prompt once per connection.
        env["GIT_SSL_CERT_PASSWORD_PROTECTED"] = "1"  # noqa: S105 - a flag
    if combined is not None:
        # pip and uv load one PEM file with the certificate and an unencrypted key.
        env["PIP_CLIENT_CERT"] = str(combined)
        env["SSL_CLIENT_CERT"] = str(combined)
    return Exports(env=env, secret_names=frozenset(secrets))


def _client_dir(path: Path, owner: tuple[int, int] | None) -> None:
    # Root's runtime directory only holds root's entries (files.secure_root_dir):
    # no link planted by an earlier agent is followed here.
    shared = _shared(owner)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o750 if shared else 0o700)
    _chown(path, owner)


def _shared(owner: tuple[int, int] | None) -> bool:
    """Does root write for another user, who reads through its group?"""
    return owner is not None and os.geteuid() == 0 and owner[0] != 0


def _chown(path: Path, owner: tuple[int, int] | None) -> None:
    # The file stays root's (the agent cannot rewrite it); only its group is the agent's.
    if owner is not None and _shared(owner):
        os.chown(path, 0, owner[1], follow_symlinks=False)


def _write(path: Path, data: bytes, owner: tuple[int, int] | None) -> Path:
    filesmod.write_atomic(path, data, mode=0o640 if _shared(owner) else 0o600)
    _chown(path, owner)
    return path


def _write_key(
    path: Path, key: PrivateKeyTypes, passphrase: str | None, owner: tuple[int, int] | None
) -> Path:
    """Write ``key`` as PKCS#8; an encrypted one is rewritten only when the key changed."""
    from corpnet.identity import _keys  # cryptography: not on a reused restart (run._reuse)

    if passphrase and _same_key_on_disk(path, key, passphrase):
        # Encryption salts are random: re-encrypting would change the file on every start.
        _chown(path, owner)
        return path
    return _write(path, _keys.pem_key(key, passphrase), owner)


def _same_key_on_disk(path: Path, key: PrivateKeyTypes, passphrase: str) -> bool:
    from cryptography.hazmat.primitives import serialization

    from corpnet.identity import _keys

    try:
        old = serialization.load_pem_private_key(path.read_bytes(), passphrase.encode("utf-8"))
    except (OSError, ValueError, TypeError):
        return False
    return _keys.pem_key(old, None) == _keys.pem_key(key, None)


def _remove_stale(client_dir: Path, keep: Iterable[str]) -> None:
    """Delete outputs of an earlier start (a decrypted key must not outlive its mount)."""
    kept = set(keep)
    for name in _OUTPUTS:
        if name not in kept:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                (client_dir / name).unlink()


def input_digest(s: IdentitySettings, *, update: Callable[[bytes], object]) -> bool:
    """Feed what :func:`apply` reads and checks to ``update``; False when it cannot tell.

    The key of an unchanged restart (corpnet.run._reuse): which files are the
    identity, their bytes, their mode and owner (the permission checks), and
    the passphrase and PKCS#12 password themselves (a wrong one must fail again).
    """
    try:
        found = resolve_inputs(s)
    except CorpnetError:
        return False
    if found is None:
        update(b"identity\0none")
        return True
    paths = [found.cert, found.key]
    if s.strict and present(s.ca):
        paths.append(s.ca)
    for path in dict.fromkeys(paths):
        try:
            f = read(path, role="Client file", variable=None)
        except CorpnetError:
            return False
        update(f"\0identity\0{path}\0{f.mode:o}\0{f.uid}\0{f.gid}\0".encode())
        update(hashlib.sha256(f.data).digest())
    for secret in (s.passphrase, s.p12_password):
        update(b"\0secret\0" + (secret.encode() if secret is not None else b"\xff"))
    return True


def __getattr__(name: str) -> object:
    # Check and IdentityReport (dataclasses, ~5 ms to define) load with the checks,
    # not with the package: a restart that reuses its outputs needs neither.
    if name in {"Check", "IdentityReport"}:
        from corpnet.identity import _check

        return getattr(_check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
