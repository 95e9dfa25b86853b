"""``corpnet trust``: merge the mounted CA certificates into every trust store.

The click command only parses flags; the work is in :mod:`corpnet.cli._trust`,
which imports no click, so the container start path can skip click's import
(``corpnet.cli.main``'s fast path).
"""

from __future__ import annotations

import os

import click

from corpnet.cli._trust import run


@click.command()
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 65) on certificate warnings instead of trusting anyway (CORPNET_CA_STRICT=1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the per-file report as JSON.")
@click.option("--env", "as_env", is_flag=True, help="Print the CA variables as `export` lines.")
def trust(strict: bool, as_json: bool, as_env: bool) -> None:
    """Merge mounted CA certificates into one bundle, a hashed dir and a JVM store.

    Reads every file under /etc/corpnet/ca.d/ (CORPNET_CONFIG_DIR), then
    CORPNET_CA_FILES, CORPNET_CA_DIRS and NODE_EXTRA_CA_CERTS, as PEM or DER.
    Writes ca-bundle.pem (system + corporate CAs), certs/ and, when a JVM is
    installed, java-truststore.p12 into the runtime directory
    (CORPNET_RUNTIME_DIR, default /run/corpnet); as root also the system bundle
    in /etc (CORPNET_SYSTEM_STORE=off to prevent it). Exit codes: 0 ok
    (warnings included), 64 usage, 65 unusable CA file, 77 permissions,
    78 configuration.
    """
    run(strict=strict, as_json=as_json, as_env=as_env, environ=os.environ)
