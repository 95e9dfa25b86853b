"""Start-up hooks in ``/etc/corpnet/entrypoint.d/``, the way nginx's image runs them.

Sorted by name. An executable ``*.sh`` is run; a ``*.envsh`` is sourced by
``sh`` and the variables it exports reach the agent (unlike nginx's loop, which
runs in a subshell and loses them). Anything else is ignored. A failing hook
stops the start, and corpnet exits with the hook's own exit code, as a
``set -e`` shell entrypoint would.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from corpnet import log as logmod
from corpnet.errors import CorpnetError, ExitCode

# Variables sh sets by itself; not something a hook exported.
_SHELL_NOISE = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
# Source the hook with its output on stderr (our stdout is the agent's), then
# print the resulting environment NUL-separated for us to read back.
_SOURCE = '. "$0" >&2 || exit $?; exec env -0'


class HookError(CorpnetError):
    """A hook exited non-zero; its exit code becomes corpnet's."""

    def __init__(self, path: Path, code: int) -> None:
        super().__init__(
            f"hook {path} failed with exit code {code}",
            hint="fix the hook or remove it from the entrypoint.d directory",
            path=path,
        )
        # Codes above 125 mean "not run" or "killed by a signal" to a shell.
        self.exit_code = code if 0 < code < 126 else int(ExitCode.SOFTWARE)
        self.code = code


def run_hooks(hooks_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Run every hook in ``hooks_dir`` in order; return ``env`` with what they exported."""
    result = dict(env)
    try:
        entries = sorted(hooks_dir.iterdir(), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError):
        return result
    log = logmod.get()
    for path in entries:
        if path.name.startswith("."):
            continue
        if path.name.endswith(".envsh"):
            log.info(f"hook: sourcing {path}")
            result = _source(path, result)
        elif path.name.endswith(".sh"):
            if not os.access(path, os.X_OK):
                log.warning(f"hook {path} is not executable, skipped: chmod +x it to run it")
                continue
            log.info(f"hook: running {path}")
            code = subprocess.run([str(path)], env=result, check=False).returncode
            if code != 0:
                raise HookError(path, code)
    return result


def _source(path: Path, env: Mapping[str, str]) -> dict[str, str]:
    done = subprocess.run(
        ["sh", "-c", _SOURCE, str(path)], env=dict(env), stdout=subprocess.PIPE, check=False
    )
    if done.returncode != 0:
        raise HookError(path, done.returncode)
    after: dict[str, str] = {}
    for item in done.stdout.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            after[os.fsdecode(name)] = os.fsdecode(value)
    return {k: v for k, v in after.items() if k not in _SHELL_NOISE or k in env}
