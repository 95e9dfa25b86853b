"""``corpnet build``: the host-side command (docker SDK); see :mod:`corpnet.build`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from corpnet.errors import UsageError

_DEFAULT_BASE = "debian:bookworm-slim"


def _buildargs(values: tuple[str, ...]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--build-arg {item!r} is not NAME=VALUE", hint="e.g. VERSION=1.2")
        result[name] = value
    return result


@click.command()
@click.argument(
    "context",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option("-t", "--tag", help="Name (and tag) of the image to build.")
@click.option(
    "-f",
    "--file",
    "dockerfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The Dockerfile (default: CONTEXT/Dockerfile).",
)
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE")
@click.option(
    "--ca-file",
    "ca_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Extra PEM CA certificates the build must trust (repeatable).",
)
@click.option(
    "--no-host-ca",
    is_flag=True,
    help="Hand only the --ca-file certificates to the build, not the host's bundle.",
)
@click.option("--network", help="Network for RUN steps, e.g. host for a proxy on loopback.")
@click.option("--no-cache", is_flag=True, help="Do not use Docker's layer cache.")
@click.option(
    "--keep-cache",
    is_flag=True,
    help="Keep the build-time images (they hold the host's CA bundle) on this host, "
    "so the next build reuses Docker's layer cache.",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not echo the build output.")
@click.option(
    "--bootstrap-base",
    is_flag=True,
    help=f"Create the base image ({_DEFAULT_BASE}, or --base-tag) with debootstrap when it "
    "is missing.",
)
@click.option("--base-tag", default=_DEFAULT_BASE, show_default=True)
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite to bootstrap.")
@click.option(
    "--mirror",
    help="Debian mirror URL for --bootstrap-base (default: from this machine's apt sources).",
)
def build(  # noqa: PLR0917 - click passes one parameter per option
    context: Path | None,
    tag: str | None,
    dockerfile: Path | None,
    build_args: tuple[str, ...],
    ca_files: tuple[Path, ...],
    no_host_ca: bool,
    network: str | None,
    no_cache: bool,
    keep_cache: bool,
    quiet: bool,
    bootstrap_base: bool,
    base_tag: str,
    suite: str,
    mirror: str | None,
) -> None:
    """Build CONTEXT with the host's CA certificates and proxy, for the build only.

    RUN steps trust the host's CA bundle (plus --ca-file) and use its
    HTTP(S)_PROXY/NO_PROXY; the image that comes out holds neither: not in its
    files, its configuration nor its history. Prints the image id on stdout.

    With --bootstrap-base and no registry to pull from, the Debian base image
    is first created with debootstrap from the Debian mirror this machine's apt
    uses (or --mirror).
    """
    from corpnet import build as b
    from corpnet import log as logmod

    if context is None and not bootstrap_base:
        raise UsageError("no build context given", hint="corpnet build --tag NAME DIRECTORY")
    if context is not None and not tag:
        raise UsageError(
            "--tag is required", hint="name the image, e.g. corpnet build --tag my-agent ."
        )
    try:
        args = _buildargs(build_args)
        client = b.connect()
        if bootstrap_base:
            if b.image_exists(client, base_tag):
                logmod.get().info(f"{base_tag} exists; not bootstrapping it again")
            else:
                b.bootstrap_base(client, tag=base_tag, suite=suite, mirror=mirror)
        if context is None:
            return
        inputs = b.host_inputs(os.environ, ca_files=list(ca_files), host_bundle=not no_host_ca)
        image_id = b.build(
            client,
            context,
            tag=tag,
            inputs=inputs,
            dockerfile=dockerfile,
            buildargs=args,
            network=network,
            nocache=no_cache,
            quiet=quiet,
            keep_cache=keep_cache,
        )
        click.echo(image_id)
    except Exception as e:
        # The docker SDK's own errors (a refused load, an API error) are the
        # engine's answer, not a bug in corpnet: one line, exit 1.
        if not type(e).__module__.startswith("docker."):
            raise
        raise b.BuildError(
            f"the Docker engine refused: {e}", hint="see the engine's message; fix and retry"
        ) from e
