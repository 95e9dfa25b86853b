"""``corpnet trust``: merge the mounted CA certificates into every trust store.

The click command only parses flags; the work is in :mod:`corpnet.cli._trust`,
which imports no click, so the container start path can skip click's import
(``corpnet.cli.main``'s fast path).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from corpnet.cli._trust import run
from corpnet.errors import UsageError


@click.command()
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 65) on certificate warnings instead of trusting anyway (CORPNET_CA_STRICT=1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the per-file report as JSON.")
@click.option("--env", "as_env", is_flag=True, help="Print the CA variables as `export` lines.")
@click.option(
    "--discover",
    metavar="HOST[:PORT]",
    help="Fetch the chain HOST presents along the agent's route, without trusting it, and "
    "write its CA certificate to --out; prints the SHA-256 fingerprint to check.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --discover: the PEM file to write (mount it under ca.d once checked).",
)
def trust(
    strict: bool, as_json: bool, as_env: bool, discover: str | None, out: Path | None
) -> None:
    """Merge mounted CA certificates into one bundle, a hashed dir and a JVM store.

    Reads every file under /etc/corpnet/ca.d/ (CORPNET_CONFIG_DIR), then
    CORPNET_CA_FILES, CORPNET_CA_DIRS and NODE_EXTRA_CA_CERTS, as PEM or DER.
    Writes ca-bundle.pem (system + corporate CAs), certs/ and, when a JVM is
    installed, java-truststore.p12 into the runtime directory
    (CORPNET_RUNTIME_DIR, default /run/corpnet); as root also the system bundle
    in /etc (CORPNET_SYSTEM_STORE=off to prevent it). Exit codes: 0 ok
    (warnings included), 64 usage, 65 unusable CA file, 77 permissions,
    78 configuration.

    With --discover HOST[:PORT] --out FILE it merges nothing: it writes the CA
    certificate HOST presents (its root, or the top of the chain sent) to FILE
    and prints its fingerprint; the user checks it and mounts the file. Exit
    codes: 0 written, 64 usage, 65 no CA certificate sent, 69 or 78 the host
    cannot be reached (the line says why), 77 FILE not writable.
    """
    if discover is not None:
        if strict or as_env:
            raise UsageError("--discover takes only --out and --json", hint="drop --strict/--env")
        if out is None:
            raise UsageError(
                "--discover needs --out FILE", hint="corpnet trust --discover HOST --out ca.pem"
            )
        from corpnet.cli._discover import run as discover_run

        discover_run(discover, out, as_json=as_json, environ=os.environ)
        return
    if out is not None:
        raise UsageError("--out goes with --discover", hint="corpnet trust --discover HOST --out F")
    run(strict=strict, as_json=as_json, as_env=as_env, environ=os.environ)
