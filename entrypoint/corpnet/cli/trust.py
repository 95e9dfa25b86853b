"""``corpnet trust``: merge the mounted CA certificates into every trust store.

The work is in :func:`run`, which uses nothing from click: a start-up path that
wants to skip click's import (about 20 ms, a fifth of this command's budget, see
``bench/trust.py``) can call it with the parsed flags.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from corpnet.errors import ConfigErrors
    from corpnet.trust import TrustResult


@click.command()
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 65) on certificate warnings instead of trusting anyway (CORPNET_CA_STRICT=1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the per-file report as JSON.")
@click.option("--env", "as_env", is_flag=True, help="Print the CA variables as `export` lines.")
def trust(strict: bool, as_json: bool, as_env: bool) -> None:
    """Merge mounted CA certificates into one bundle, a hashed dir and a JVM store.

    Reads every file under /etc/corpnet/ca.d/ (CORPNET_CONFIG_DIR), then
    CORPNET_CA_FILES, CORPNET_CA_DIRS and NODE_EXTRA_CA_CERTS, as PEM or DER.
    Writes ca-bundle.pem (system + corporate CAs), certs/ and, when a JVM is
    installed, java-truststore.p12 into the runtime directory
    (CORPNET_RUNTIME_DIR, default /run/corpnet); as root also the system bundle
    in /etc (CORPNET_SYSTEM_STORE=off to prevent it). Exit codes: 0 ok
    (warnings included), 64 usage, 65 unusable CA file, 77 permissions,
    78 configuration.
    """
    run(strict=strict, as_json=as_json, as_env=as_env, environ=os.environ)


def run(*, strict: bool, as_json: bool, as_env: bool, environ: Mapping[str, str]) -> None:
    """``corpnet trust`` without click: load settings, apply, print.

    Raises:
        CorpnetError: the documented failures; the caller maps them to exit codes.
    """
    from dataclasses import replace

    from corpnet import config, files
    from corpnet import log as logmod
    from corpnet import trust as stage
    from corpnet.errors import UsageError

    if as_json and as_env:
        raise UsageError("--json and --env print different things", hint="choose one")
    settings = config.load(environ)
    if strict:
        settings = replace(settings, trust=replace(settings.trust, strict=True))
    runtime_dir = files.choose_runtime_dir(settings.runtime_dir)
    log = logmod.get()
    try:
        result = stage.apply(settings, runtime_dir=runtime_dir)
    except stage.TrustErrors as e:
        if as_json:
            _print_json({"files": [f.as_dict() for f in e.files], "errors": _messages(e)})
        raise
    for warning in result.warnings:
        log.warning(warning)
    log.info(summary(result))
    if as_json:
        _print_json(result.as_dict())
    elif as_env:
        _out(env_lines(result, environ))


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _messages(error: ConfigErrors) -> list[str]:
    return [str(e) for e in error.errors]


def _print_json(data: dict[str, object]) -> None:
    import json

    _out(json.dumps(data, indent=2) + "\n")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(result: TrustResult) -> str:
    """One line: what was added, from how many files, and where it went."""
    used = [f for f in result.files if f.found]
    duplicates = sum(f.duplicates for f in result.files)
    if not result.files:
        head = (
            "no corporate CA certificates mounted (ca.d, CORPNET_CA_FILES, CORPNET_CA_DIRS, "
            "NODE_EXTRA_CA_CERTS)"
        )
    else:
        head = (
            f"added {_plural(result.added, 'corporate CA certificate')} "
            f"from {_plural(len(used), 'file')}"
        )
        if duplicates:
            head += f" ({_plural(duplicates, 'duplicate')} skipped)"
    tail = f"{result.bundle} holds {result.certificates} ({result.system_certificates} system)"
    extras = []
    if result.truststore is not None:
        extras.append("JVM truststore written")
    if result.system_store_updated:
        extras.append("system store updated")
    if not result.written:
        extras.append("unchanged")
    return f"trust: {head}; {tail}" + (f"; {', '.join(extras)}" if extras else "")


def _quote(value: str) -> str:
    """POSIX single quotes: the one quoting every shell reads the same way."""
    return "'" + value.replace("'", "'\\''") + "'"


def env_lines(result: TrustResult, base: Mapping[str, str]) -> str:
    """``export NAME='value'`` for every CA variable, JAVA_TOOL_OPTIONS appended to."""
    from corpnet.environment import merge

    merged = merge(base, [result.exports])
    names = sorted(result.exports.env)
    if result.exports.java_options:
        names.append("JAVA_TOOL_OPTIONS")
    return "".join(f"export {name}={_quote(merged[name])}\n" for name in names)
