"""The ``corpnet`` command: a thin click layer over the stages.

Each command lives in its own module under ``corpnet.cli`` and is imported only
when invoked, so ``corpnet run`` never pays for the host-side docker SDK and
``corpnet trust`` never imports the reachability code.

The commands on the container start path (``run``, ``init``, ``trust``) in
their plain forms skip click altogether (:func:`fast_path`): click's import is
about a fifth of a start. Anything else, ``--help`` and every mistake included,
goes through click, which owns the grammar and the messages.

Errors are mapped to exit codes here, in one place: a :class:`CorpnetError`
becomes one ``corpnet: error:`` line and its documented code. A Python
traceback reaching a user is a bug; ``CORPNET_DEBUG=1`` shows it anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from corpnet import log as logmod
from corpnet.errors import ConfigErrors, CorpnetError, ExitCode

if TYPE_CHECKING:
    import click

_TRUST_FLAGS = {"--strict": "strict", "--json": "as_json", "--env": "as_env"}


def fast_path(argv: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """The command and parameters click would parse, for the plain start-path forms.

    ``run -- CMD…``, ``run CMD…`` (CMD not an option), ``init``, and ``trust``
    with distinct known flags; None for anything else (click decides).
    """
    if not argv:
        return None
    name, rest = argv[0], list(argv[1:])
    if name == "run":
        command = rest[1:] if rest[:1] == ["--"] else rest
        if not command or (command[0].startswith("-") and rest[:1] != ["--"]):
            return None
        return "run", {"command": tuple(command)}
    if name == "init" and not rest:
        return "init", {}
    if name == "trust" and len(set(rest)) == len(rest) and set(rest) <= set(_TRUST_FLAGS):
        params: dict[str, Any] = dict.fromkeys(_TRUST_FLAGS.values(), False)
        params.update({_TRUST_FLAGS[flag]: True for flag in rest})
        params.update(discover=None, out=None)  # click's defaults: --discover goes to click
        return "trust", params
    return None


def _run_fast(name: str, params: dict[str, Any]) -> None:
    if name == "run":
        from corpnet.run import exec_agent

        exec_agent(params["command"], os.environ)
    elif name == "init":
        from corpnet.run import start

        start(os.environ)
    else:
        from corpnet.cli._trust import run

        flags = {name: params[name] for name in _TRUST_FLAGS.values()}
        run(**flags, environ=os.environ)


def __getattr__(name: str) -> Any:
    # ``corpnet.cli.cli`` and ``COMMANDS`` stay importable, without importing
    # click for the fast path.
    if name in {"cli", "COMMANDS", "LazyGroup"}:
        from corpnet.cli import _group

        return getattr(_group, name)
    raise AttributeError(name)


def report(error: CorpnetError) -> None:
    """Print ``error`` as ``corpnet: error:`` lines, one per problem."""
    log = logmod.get()
    errors = error.errors if isinstance(error, ConfigErrors) else [error]
    for e in errors:
        log.error(str(e))


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI and map errors to exit codes."""
    logmod.configure(os.environ)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        fast = fast_path(args)
        if fast is not None:
            _run_fast(*fast)
            return
        from corpnet.cli._group import cli

        _click_main(cli, args)
    except CorpnetError as e:
        report(e)
        sys.exit(int(e.exit_code))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        # Output piped into `head`: not an error worth a traceback.
        sys.exit(int(ExitCode.OK))
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("CORPNET_DEBUG"):
            import traceback

            traceback.print_exc()
        logmod.get().error(
            f"internal error ({e.__class__.__name__}); this is a bug in corpnet, "
            "please report it (CORPNET_DEBUG=1 shows the traceback)"
        )
        sys.exit(int(ExitCode.SOFTWARE))


def _click_main(group: click.Group, args: list[str]) -> None:
    import click

    try:
        group.main(args=args, prog_name="corpnet", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(int(ExitCode.USAGE))
