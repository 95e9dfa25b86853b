"""Which files make up the client identity, and reading them safely (the file edge).

Kubernetes mounts every secret key as a symlink into ``..data/``, so files are
checked with ``stat`` (following links), never ``lstat``. A private key must
be readable by the agent and closed to other users (``mode & 0o007 == 0``);
group-readable is fine: the kubelet gives 0440 or 0640 with ``fsGroup``, and
cert-manager's CSI driver writes ``tls.key`` as 0440.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from corpnet import inputs
from corpnet.config import IdentitySettings
from corpnet.identity._errors import ClientFileError, ClientKeyPermissionError, IdentityConfigError

Source = Literal["pem", "pkcs12"]

CERT_VAR = "CLAUDE_CODE_CLIENT_CERT"
KEY_VAR = "CLAUDE_CODE_CLIENT_KEY"
P12_VAR = "CORPNET_CLIENT_P12"


# --- which files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    source: Source
    cert: Path
    key: Path
    cert_variable: str | None  # the variable that named the file; None for a default path
    key_variable: str | None


def present(path: Path) -> bool:
    """Does ``path`` exist (a dangling symlink counts: it is a broken mount, not no mount)?"""
    try:
        path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError as e:
        raise ClientKeyPermissionError(
            f"cannot look into {path.parent} as uid {os.getuid()}",
            hint="make the directory searchable (mode 0755) or run as its owner",
            path=path.parent,
        ) from e
    return True


def resolve_inputs(s: IdentitySettings) -> Inputs | None:
    """Decide which files are the identity; None when nothing is configured."""
    explicit_pem = s.cert_explicit or s.key_explicit
    if s.p12_explicit:
        if explicit_pem:
            pem_var = CERT_VAR if s.cert_explicit else KEY_VAR
            raise IdentityConfigError(
                f"{P12_VAR} and {pem_var} are both set",
                hint=f"use either a PKCS#12 bundle ({P12_VAR}) or PEM files ({CERT_VAR} and "
                f"{KEY_VAR}), not both",
                variable=P12_VAR,
            )
        return Inputs("pkcs12", s.p12, s.p12, P12_VAR, P12_VAR)
    if explicit_pem:
        # One variable set, the other left to its default: fine if the default is mounted.
        for explicit, path, var, other in (
            (s.cert_explicit, s.key, KEY_VAR, CERT_VAR),
            (s.key_explicit, s.cert, CERT_VAR, KEY_VAR),
        ):
            if explicit and not (s.cert_explicit and s.key_explicit) and not present(path):
                raise IdentityConfigError(
                    f"{other} is set but {var} is not (and {path} is not mounted)",
                    hint=f"set {var} too (a combined PEM file may be named in both)",
                    variable=var,
                )
        return Inputs(
            "pem",
            s.cert,
            s.key,
            CERT_VAR if s.cert_explicit else None,
            KEY_VAR if s.key_explicit else None,
        )
    has_cert, has_key = present(s.cert), present(s.key)
    if has_cert and has_key:
        return Inputs("pem", s.cert, s.key, None, None)
    if has_cert or has_key:
        there, missing = (s.cert, s.key) if has_cert else (s.key, s.cert)
        raise IdentityConfigError(
            f"{there} is mounted but {missing} is not",
            hint=f"mount both {s.cert.name} and {s.key.name} (a Kubernetes TLS secret has both), "
            f"or set {CERT_VAR} and {KEY_VAR}",
            path=missing,
        )
    if present(s.p12):
        return Inputs("pkcs12", s.p12, s.p12, None, None)
    return None


@dataclass(frozen=True)
class MountedFile:
    path: Path
    data: bytes
    mode: int
    uid: int
    gid: int


def read(path: Path, *, role: str, variable: str | None) -> MountedFile:
    """Read a mounted file, turning every OS error into an instruction."""
    named = f"{variable} points at {path}, which" if variable else f"{role} {path}"
    try:
        st = path.stat()  # stat, not lstat: Kubernetes secret files are symlinks into ..data/
    except FileNotFoundError:
        if path.is_symlink():
            raise IdentityConfigError(
                f"{role} {path} is a symlink to {path.readlink()}, which does not exist",
                hint="the secret or volume behind it lacks this key: check its key names",
                path=path,
                variable=variable,
            ) from None
        raise IdentityConfigError(
            f"{named} does not exist" if variable else f"{role} {path} does not exist",
            hint=f"mount the file there or fix {variable}" if variable else "mount the file there",
            path=path,
            variable=variable,
        ) from None
    except NotADirectoryError:
        raise IdentityConfigError(
            f"{named} cannot exist: a parent of it is a file",
            hint=f"fix {variable}" if variable else "fix the mount",
            path=path,
            variable=variable,
        ) from None
    except PermissionError:
        raise ClientKeyPermissionError(
            f"cannot reach {role.lower()} {path} as uid {os.getuid()}: a parent directory is "
            "not searchable",
            hint="make the directories on the way searchable (mode 0755)",
            path=path,
            variable=variable,
        ) from None
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise IdentityConfigError(
            f"{named} is a symlink loop",
            hint=f"point {variable} at the file itself" if variable else "fix the mount",
            path=path,
            variable=variable,
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise IdentityConfigError(
            f"{named} is a directory, not a file"
            if variable
            else f"{role} {path} is a directory, not a file",
            hint="Docker creates a directory when a bind mount's host path does not exist: "
            "check the -v source path, or point the variable at the file inside",
            path=path,
            variable=variable,
        )
    try:
        # Regular files only, bounded: a FIFO must not block, /dev/zero not fill memory.
        data, st = inputs.read_regular(path, inputs.CLIENT_INPUT_LIMIT)
    except inputs.InputFileError as e:
        if e.too_large:
            raise ClientFileError(
                f"{named} {e.what}",
                hint="check that the right file is mounted",
                path=path,
            ) from None
        raise IdentityConfigError(
            f"{named} {e.what}",
            hint="mount the PEM or PKCS#12 file itself (not a FIFO, socket or device)",
            path=path,
            variable=variable,
        ) from None
    except PermissionError:
        raise ClientKeyPermissionError(
            f"{role} {path} is not readable by uid {os.getuid()} "
            f"(owner {st.st_uid}:{st.st_gid}, mode {stat.S_IMODE(st.st_mode):04o})",
            hint=_readable_hint(path),
            path=path,
            variable=variable,
        ) from None
    except OSError as e:
        raise ClientFileError(
            f"cannot read {role.lower()} {path} ({errno.errorcode.get(e.errno or 0, e)})",
            hint="check the mount",
            path=path,
        ) from e
    return MountedFile(path, data, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _readable_hint(path: Path) -> str:
    return (
        "in Kubernetes set the pod's securityContext.fsGroup and defaultMode: 0440 on the secret "
        f"volume; with Docker chown {path} to the agent's uid or make it group-readable (0640)"
    )


def canread(mode: int, owner: int, group: int, *, uid: int, gids: frozenset[int]) -> bool:
    """POSIX read permission of a file for ``uid``/``gids`` (ACLs aside).

    Only the first matching class counts: an owner without the owner read bit
    cannot read, whatever the group and other bits say.
    """
    if uid == 0:
        return True
    if owner == uid:
        return bool(mode & stat.S_IRUSR)
    if group in gids:
        return bool(mode & stat.S_IRGRP)
    return bool(mode & stat.S_IROTH)


def check_secret_mode(f: MountedFile, role: str) -> None:
    """A file holding a private key must not be open to other users (mode & 0o007 == 0)."""
    if f.mode & 0o007 == 0:
        return
    what = "readable" if f.mode & stat.S_IROTH else "writable"
    raise ClientKeyPermissionError(
        f"{role} {f.path} is {what} by every user (mode {f.mode:04o})",
        hint=f"chmod 0600 {f.path} (0640 or 0440 with a group are fine); in Kubernetes set "
        "defaultMode: 0440 on the secret volume and fsGroup on the pod",
        path=f.path,
    )


def check_agent_reads(f: MountedFile, role: str, *, uid: int, gids: frozenset[int]) -> None:
    if canread(f.mode, f.uid, f.gid, uid=uid, gids=gids):
        return
    raise ClientKeyPermissionError(
        f"{role} {f.path} is not readable by uid {uid}, the user the agent runs as "
        f"(owner {f.uid}:{f.gid}, mode {f.mode:04o})",
        hint=_readable_hint(f.path),
        path=f.path,
    )
