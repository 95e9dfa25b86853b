"""Start-up hooks in ``/etc/corpnet/entrypoint.d/``, the way nginx's image runs them.

Sorted by name. An executable ``*.sh`` is run; a ``*.envsh`` is sourced by
``sh`` and the variables it exports reach the agent (unlike nginx's loop, which
runs in a subshell and loses them). Anything else is ignored. A failing hook
stops the start, and corpnet exits with the hook's own exit code, as a
``set -e`` shell entrypoint would (128+N when signal N killed it). A hook that
cannot run at all (a directory, a missing interpreter) is a configuration
error (78) naming it; a script without ``#!`` runs under ``sh``, as a shell
runs it.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from corpnet import log as logmod
from corpnet.errors import ConfigError, CorpnetError

# Variables sh sets by itself; not something a hook exported.
_SHELL_NOISE = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
# Source the hook with its output on stderr (our stdout is the agent's), then
# print the resulting environment NUL-separated for us to read back.
_SOURCE = '. "$0" >&2 || exit $?; exec env -0'


class HookError(CorpnetError):
    """A hook exited non-zero; its exit code becomes corpnet's."""

    def __init__(self, path: Path, code: int) -> None:
        if code < 0:  # subprocess's way of saying "killed by signal -code"
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            what = f"was killed by {name}"
            code = 128 - code  # what a shell reports: 137 for SIGKILL
        else:
            what = f"failed with exit code {code}"
        super().__init__(
            f"hook {path} {what}",
            hint="fix the hook or remove it from the entrypoint.d directory",
            path=path,
        )
        self.exit_code = code if 0 < code < 256 else 1
        self.code = code


def _unrunnable(path: Path, why: str, fix: str) -> ConfigError:
    return ConfigError(
        f"hook {path} cannot run: {why}",
        hint=f"{fix}, or remove it from the entrypoint.d directory",
        path=path,
    )


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
            if path.is_dir():
                raise _unrunnable(path, "it is a directory", "rename it")
            if not os.access(path, os.X_OK):
                log.warning(f"hook {path} is not executable, skipped: chmod +x it to run it")
                continue
            log.info(f"hook: running {path}")
            code = _run(path, result)
            if code != 0:
                raise HookError(path, code)
    return result


def _run(path: Path, env: dict[str, str]) -> int:
    import subprocess  # only with hooks: a start without them never imports it

    try:
        return subprocess.run([str(path)], env=env, check=False).returncode
    except OSError as e:
        if e.errno == errno.ENOEXEC:  # no "#!" line: a shell runs such a script with sh
            return subprocess.run(["sh", str(path)], env=env, check=False).returncode
        if e.errno == errno.ENOENT:
            raise _unrunnable(
                path, f"its interpreter ({_shebang(path)}) does not exist", "fix its #! line"
            ) from e
        raise _unrunnable(path, e.strerror or str(e), "check the file") from e


def _shebang(path: Path) -> str:
    try:
        with path.open("rb") as f:
            first = f.readline(256)
    except OSError:
        return "unknown"
    return first[2:].decode(errors="replace").strip() if first.startswith(b"#!") else "none"


def _source(path: Path, env: Mapping[str, str]) -> dict[str, str]:
    import subprocess

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
