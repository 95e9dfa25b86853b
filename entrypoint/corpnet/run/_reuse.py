"""An unchanged restart reuses what the last start wrote (issue 14).

A container restart (``docker restart``, a Kubernetes container restart with
the same emptyDir, a ``corpnet init`` run again by a devcontainer) usually
sees the same mounts and variables as the start before: the merged bundle, the
hashed directory, the checked key and env.sh would come out byte for byte the
same. The last start leaves a record, ``<runtime dir>/.reuse``, holding:

- the **key**: SHA-256 over corpnet's version and installed modules, the whole
  environment (less the shell's ``_``, ``PWD``, ``OLDPWD`` and ``SHLVL``), the
  uid, the agent's account, the clock's hour (validity
  warnings move with time), whether a JVM is present, and every byte the trust
  and identity stages read, with the identity files' modes and owners (see
  :func:`corpnet.trust.input_digest` and :func:`corpnet.identity.input_digest`);
- **what it wrote**: every output's identity from ``lstat`` (inode, size,
  mode, owner, mtime and ctime), the hashed directory's entries included;
- **what the agent needs**: the computed variables, their secret names, the
  bundle and client paths, and the warnings to say again.

A start whose key matches and whose outputs still have exactly those
identities repeats the warnings and returns the variables: nothing is parsed
or written. Anything else is a first start.

Poisoning (docs/security.md): the record is believed only when it is a regular
file (opened with O_NOFOLLOW) owned by the uid starting now and readable by
nobody else; a root start therefore believes only root's record, which the
agent can neither write nor replace (root's runtime directory is root's, see
corpnet.files.secure_root_dir). An output changed after the record is noticed
without reading it: any write, chmod, chown or rename into place changes its
ctime or inode, and no user can set a ctime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import corpnet
from corpnet import config, files

_FORMAT = 1
# Set by shells per command or directory; no stage reads them.
_SHELL_NOISE = frozenset({"_", "PWD", "OLDPWD", "SHLVL"})


@dataclass(frozen=True)
class Record:
    """What a reused start hands on."""

    env: dict[str, str]
    secret_names: frozenset[str]
    warnings: tuple[str, ...]
    bundle: Path
    client: tuple[Path, Path, str | None] | None  # cert, key, passphrase


def key(
    settings: config.Settings,
    environ: Mapping[str, str],
    *,
    runtime_dir: Path,
    euid: int,
    owner: tuple[int, int] | None,
    groups: Sequence[int] | None,
    now: datetime,
) -> str | None:
    """The key of this start's inputs; None when an input cannot be read (no reuse)."""
    from corpnet import identity, trust

    digest = hashlib.sha256()
    update = digest.update
    update(f"corpnet {corpnet.__version__} format {_FORMAT}\0".encode())
    for module in (corpnet, trust, identity):
        st = Path(str(module.__file__)).stat()
        update(f"{module.__name__} {st.st_ino} {st.st_size} {st.st_mtime_ns}\0".encode())
    env = {k: v for k, v in environ.items() if k not in _SHELL_NOISE}
    update(json.dumps(sorted(env.items())).encode())
    update(f"\0{euid} {owner} {sorted(groups) if groups is not None else None}\0".encode())
    update(now.strftime("%Y%m%d%H").encode())
    update(b"jvm" if trust.jvm_present(environ) else b"no jvm")
    own = [runtime_dir, settings.runtime_dir]
    if not trust.input_digest(settings.trust, own_dirs=own, update=update):
        return None
    if not identity.input_digest(settings.identity, update=update):
        return None
    return digest.hexdigest()


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_size,
            st.st_mtime_ns, st.st_ctime_ns]  # fmt: skip


def _snapshot(paths: Iterable[Path | str]) -> dict[str, list[int]] | None:
    """``lstat`` identities of ``paths``, of symlink targets and of directory entries."""
    seen: dict[str, list[int]] = {}
    todo = [str(p) for p in paths]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            seen[path] = []  # absent, and must stay absent
            continue
        except OSError:
            return None
        seen[path] = _identity(st)
        if stat.S_ISLNK(st.st_mode):
            todo.append(str(Path(path).parent / Path(path).readlink()))  # links are few
        elif stat.S_ISDIR(st.st_mode):
            try:
                todo.extend(e.path for e in os.scandir(path))
            except OSError:
                return None
    return seen


def _unchanged(recorded: Mapping[str, list[int]]) -> bool:
    return _snapshot(recorded) == dict(recorded)


def load(runtime_dir: Path, wanted: str | None, *, euid: int) -> Record | None:
    """The record of the last start if it matches ``wanted`` and nothing it wrote changed."""
    raw = _read_own(runtime_dir / files.REUSE, euid=euid) if wanted is not None else None
    try:
        if raw is None or raw.get("key") != wanted or raw.get("format") != _FORMAT:
            return None
        if not _unchanged(raw["outputs"]):
            return None
        client = raw["client"]
        return Record(
            env={str(k): str(v) for k, v in raw["env"].items()},
            secret_names=frozenset(raw["secret_names"]),
            warnings=tuple(raw["warnings"]),
            bundle=Path(raw["bundle"]),
            client=(Path(client[0]), Path(client[1]), client[2]) if client else None,
        )
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _read_own(path: Path, *, euid: int) -> dict[str, Any] | None:
    """The JSON in ``path`` if it is a regular file of ``euid``'s that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        mine = stat.S_ISREG(st.st_mode) and st.st_uid == euid and not st.st_mode & 0o077
        data = os.read(fd, 1 << 20) if mine and st.st_size <= 1 << 20 else b""
    finally:
        os.close(fd)
    try:
        raw = json.loads(data) if data else None
    except ValueError:
        return None
    return raw if isinstance(raw, dict) else None


def save(runtime_dir: Path, wanted: str | None, record: Record, outputs: Iterable[Path]) -> None:
    """Record this start for the next one (after everything is written); best effort."""
    path = runtime_dir / files.REUSE
    snapshot = _snapshot(outputs) if wanted is not None else None
    if wanted is None or snapshot is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    client = record.client
    data = {
        "format": _FORMAT,
        "key": wanted,
        "outputs": snapshot,
        "env": record.env,
        "secret_names": sorted(record.secret_names),
        "warnings": list(record.warnings),
        "bundle": str(record.bundle),
        "client": [str(client[0]), str(client[1]), client[2]] if client else None,
    }
    with contextlib.suppress(OSError):
        files.write_atomic(path, json.dumps(data).encode(), mode=0o600)
