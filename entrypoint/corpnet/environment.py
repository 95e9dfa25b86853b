"""The computed environment: what each stage exports, merged, rendered and persisted.

Each stage returns an :class:`Exports`; :func:`merge` lays them over the
starting environment in pipeline order. ``JAVA_TOOL_OPTIONS`` is the one
variable several stages add to (trust store, proxy properties), so options are
collected separately and appended to whatever the user already had.

Processes that do not descend from the entrypoint (``docker exec``, ``kubectl
exec``, IDE terminals) get the same variables from ``env.sh`` in the runtime
directory (:func:`persist`), which ``/etc/profile.d/corpnet.sh`` and the bash
hook source; :func:`render` prints the same variables for ``corpnet env``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from corpnet.errors import PermissionDeniedError, UsageError
from corpnet.files import ENV_FILE, write_atomic

Format = Literal["sh", "dotenv", "json"]
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = (
    "# Written by corpnet at container start: the environment the agent got.\n"
    "# Sourced by /etc/profile.d/corpnet.sh and /etc/corpnet/bashrc.sh; do not edit.\n"
)


@dataclass(frozen=True)
class Exports:
    """Variables one stage wants the agent to see."""

    env: Mapping[str, str] = field(default_factory=dict)
    # Appended, in order, to JAVA_TOOL_OPTIONS (a JVM reads it at start).
    java_options: tuple[str, ...] = ()
    # Names in ``env`` whose values are secrets: redacted in every output but sh/dotenv.
    secret_names: frozenset[str] = frozenset()


def merge(base: Mapping[str, str], exports: Iterable[Exports]) -> dict[str, str]:
    """Return ``base`` overlaid with every export, later stages winning."""
    result = dict(base)
    java: list[str] = []
    for e in exports:
        result.update(e.env)
        java.extend(e.java_options)
    if java:
        existing = base.get("JAVA_TOOL_OPTIONS", "").split()
        # Idempotent: a restart that sourced the persisted file must not double them.
        kept = [o for o in existing if not any(_same_property(o, j) for j in java)]
        result["JAVA_TOOL_OPTIONS"] = " ".join([*kept, *java])
    return result


def _same_property(a: str, b: str) -> bool:
    """Do two ``-Dname=value`` options set the same property?"""
    if not (a.startswith("-D") and b.startswith("-D")):
        return a == b
    return a.split("=", 1)[0] == b.split("=", 1)[0]


def render(env: Mapping[str, str], fmt: Format, *, secret_names: frozenset[str]) -> str:
    """Render ``env`` as ``sh`` (for eval), ``dotenv`` (docker/compose) or ``json``.

    Only ``sh`` and ``dotenv`` carry real secret values (their purpose is to be
    evaluated); ``json`` is for reading and shows secrets as ``***``.
    Raises :class:`~corpnet.errors.UsageError` for a value ``dotenv`` cannot hold.
    """
    for name in env:
        if not _NAME_RE.match(name):
            raise UsageError(f"{name!r} is not a valid environment variable name")
    if fmt == "sh":
        return "".join(f"export {k}={_sh_quote(v)}\n" for k, v in env.items())
    if fmt == "dotenv":
        return "".join(f"{k}={_dotenv_value(k, v)}\n" for k, v in env.items())
    from corpnet.log import redact

    shown = {
        k: "***" if k in secret_names and "://" not in v else redact(v) for k, v in env.items()
    }
    return json.dumps(shown, indent=2, sort_keys=True) + "\n"


def _sh_quote(value: str) -> str:
    """Single-quote for POSIX sh: nothing is special inside '...' except ' itself."""
    return "'" + value.replace("'", "'\\''") + "'"


def _dotenv_value(name: str, value: str) -> str:
    """A value docker ``--env-file`` and compose ``env_file`` both read back unchanged.

    docker takes everything after the first '=' literally (quotes included) and
    has no multi-line values; compose strips quotes, cuts an unquoted value at
    '#', trims blanks around it and expands '$'. So the value is written
    unquoted and must avoid all of those.
    """
    bad = [c for c in ("\n", "\r", "#", "$") if c in value]
    if value != value.strip() or value[:1] in {"'", '"'}:
        bad.append("a leading/trailing blank or quote")
    if bad:
        raise UsageError(
            f"{name} cannot be written as dotenv (it contains {', '.join(map(repr, bad))}), "
            "which docker --env-file and compose env_file read differently",
            hint="use --format sh or --format json",
            variable=name,
        )
    return value


def persist(
    runtime_dir: Path, env: Mapping[str, str], *, owner: tuple[int, int] | None = None
) -> Path:
    """Write ``env`` to ``runtime_dir/env.sh`` atomically; return its path.

    The file may hold a proxy password, so it is 0600; when root writes it for
    the agent ``owner`` (uid, gid), it stays root's, 0640 with the agent's
    group: the agent reads it, and cannot put a command in it that a root shell
    would run (the shell hooks source only a file of root's or their own user's).
    """
    path = runtime_dir / ENV_FILE
    data = (_HEADER + render(env, "sh", secret_names=frozenset())).encode()
    shared = owner is not None and os.geteuid() == 0 and owner[0] != 0
    try:
        write_atomic(path, data, mode=0o640 if shared else 0o600)
        if shared and owner is not None:
            os.chown(path, 0, owner[1], follow_symlinks=False)
    except OSError as e:
        raise PermissionDeniedError(
            f"cannot write {path} ({e.strerror})",
            hint=f"mount a writable tmpfs at {runtime_dir} (CORPNET_RUNTIME_DIR)",
            path=path,
        ) from e
    return path


# One `export NAME='...'` statement as render() writes it; '...' may span lines.
_EXPORT_RE = re.compile(r"^export ([A-Za-z_][A-Za-z0-9_]*)=((?:'[^']*'|\\')*)$", re.MULTILINE)


def read_persisted(runtime_dir: Path) -> dict[str, str] | None:
    """The variables of ``runtime_dir/env.sh``; None when it is absent or unreadable."""
    try:
        text = (runtime_dir / ENV_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return {m[1]: _sh_unquote(m[2]) for m in _EXPORT_RE.finditer(text)}


def _sh_unquote(quoted: str) -> str:
    return "".join(
        "'" if part == "\\'" else part[1:-1] for part in re.findall(r"'[^']*'|\\'", quoted)
    )
