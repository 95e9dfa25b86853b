"""``corpnet trust`` without click: load settings, apply the stage, print."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corpnet.errors import ConfigErrors
    from corpnet.trust import TrustResult


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
        with files.lock(runtime_dir):
            files.clean_leftovers(runtime_dir)
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


def env_lines(result: TrustResult, base: Mapping[str, str]) -> str:
    """``export NAME='value'`` for every CA variable, JAVA_TOOL_OPTIONS appended to."""
    from corpnet.environment import merge, render

    merged = merge(base, [result.exports])
    names = sorted(result.exports.env)
    if result.exports.java_options:
        names.append("JAVA_TOOL_OPTIONS")
    return render({name: merged[name] for name in names}, "sh", secret_names=frozenset())
