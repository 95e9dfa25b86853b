"""The ``corpnet`` command: a thin click layer over the stages.

Each command lives in its own module under ``corpnet.cli`` and is imported only
when invoked, so ``corpnet run`` never pays for the host-side docker SDK and
``corpnet trust`` never imports the reachability code.

Errors are mapped to exit codes here, in one place: a :class:`CorpnetError`
becomes one ``corpnet: error:`` line and its documented code. A Python
traceback reaching a user is a bug; ``CORPNET_DEBUG=1`` shows it anyway.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

from corpnet import __version__
from corpnet import log as logmod
from corpnet.errors import ConfigErrors, CorpnetError, ExitCode

# command name -> "module:attribute", imported lazily.
COMMANDS: dict[str, str] = {
    "trust": "corpnet.cli.trust:trust",
    "identity": "corpnet.cli.identity:identity",
    "env": "corpnet.cli.env:env",
    "wait": "corpnet.cli.reach:wait",
    "doctor": "corpnet.cli.reach:doctor",
    "run": "corpnet.cli.run:run",
    "init": "corpnet.cli.run:init",
    "build": "corpnet.cli.build:build",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            return None  # not built yet in this version
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(target)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corpnet")
def cli() -> None:
    """Make a container work inside a corporate network.

    At container start corpnet merges mounted CA certificates into every trust
    store, validates the client certificate and key, exports one consistent
    proxy configuration, waits until the required hosts answer, then execs the
    agent. Every command reads the same environment variables; see the README.
    """


def report(error: CorpnetError) -> None:
    """Print ``error`` as ``corpnet: error:`` lines, one per problem."""
    log = logmod.get()
    errors = error.errors if isinstance(error, ConfigErrors) else [error]
    for e in errors:
        log.error(str(e))


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI and map errors to exit codes."""
    logmod.configure(os.environ)
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except CorpnetError as e:
        report(e)
        sys.exit(int(e.exit_code))
    except click.exceptions.Abort:
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(int(ExitCode.USAGE))
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
