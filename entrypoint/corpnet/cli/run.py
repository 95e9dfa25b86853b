"""``corpnet run`` and ``corpnet init``: the container entrypoint."""

from __future__ import annotations

import os

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(command: tuple[str, ...]) -> None:
    """Prepare the container, then exec COMMAND as the agent.

    In order: configuration, trust, identity, proxy, persisted environment,
    hooks (/etc/corpnet/entrypoint.d), reachability wait, privilege drop
    (CORPNET_USER), exec. The agent replaces corpnet: its exit code is the
    container's. Use `--` before a command that has options of its own.
    """
    from corpnet.run import exec_agent

    exec_agent(command, os.environ)


@click.command()
def init() -> None:
    """Prepare the container like `corpnet run`, without exec.

    For devcontainers, whose tooling replaces the image entrypoint: the
    persisted environment (env.sh) is what terminals opened later pick up.
    """
    from corpnet.run import start

    start(os.environ)
