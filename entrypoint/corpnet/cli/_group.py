"""The click group: ``corpnet --help`` and every command not on the fast path."""

from __future__ import annotations

import importlib

import click

from corpnet import __version__

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
    "gateway": "corpnet.cli.gateway:gateway",
    "lockdown": "corpnet.cli.lockdown:lockdown",
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
