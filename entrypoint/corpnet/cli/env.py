"""``corpnet env``: print the environment corpnet computes for the agent."""

from __future__ import annotations

import os
from typing import cast

import click


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["sh", "dotenv", "json"]),
    default="sh",
    show_default=True,
    help="sh: `export NAME='value'` lines for eval; dotenv: NAME=value for "
    "docker --env-file and compose env_file; json: for reading (secrets as ***).",
)
def env(fmt: str) -> None:
    """Print the computed environment: trust, identity and proxy variables.

    Runs the same stages as the entrypoint (and rewrites env.sh), so the output
    is what the agent gets. Use it in a shell that did not source
    /etc/profile.d/corpnet.sh:

        eval "$(corpnet env)"

    sh and dotenv print real values, proxy passwords included: they exist to be
    evaluated. json shows every proxy URL as user:***@host.
    """
    from corpnet.environment import Format, render
    from corpnet.run import prepare

    prepared = prepare(os.environ)
    text = render(prepared.env, cast(Format, fmt), secret_names=prepared.secret_names)
    click.echo(text, nl=False)
