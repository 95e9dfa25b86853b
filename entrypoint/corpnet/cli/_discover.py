"""``corpnet trust --discover``: hand over the CA a host presents, for the user to check and mount.

Off the start path (click parses it; ``corpnet.reach`` does the network part).
The chain is fetched through the route the agent takes (the proxy, with its
login, or corpnet's gateway) without trusting it; the CA certificate is
written where ``--out`` says and its SHA-256 fingerprint printed, to compare
with the one the IT department (or the server's owners) publish. Nothing is
added to any trust store: the user mounts the file under ``ca.d``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corpnet.reach._chain import Cert
    from corpnet.reach._discover import Discovery


def run(target: str, out: Path, *, as_json: bool, environ: Mapping[str, str]) -> None:
    """Fetch ``target``'s chain, write its CA to ``out``, print what was written.

    Raises:
        CorpnetError: 64 bad HOST[:PORT] or --out, 65 the host sent no CA
            certificate, 69/78 the route failed (the wait's diagnosis), 77 --out
            not writable.
    """
    from corpnet import config, files, reach
    from corpnet import log as logmod
    from corpnet import proxy as proxymod
    from corpnet.errors import DataError, PermissionDeniedError, UsageError
    from corpnet.reach import _inputs

    try:
        where = config.parse_hostport(target)
    except ValueError as e:
        raise UsageError(
            f"--discover {target!r} is not HOST or HOST:PORT", hint="e.g. api.anthropic.com:443"
        ) from e
    settings = config.load(environ)
    log = logmod.get()
    for secret in settings.secrets():
        log.add_secret(secret)
    route = proxymod.for_settings(settings).proxy_for
    bundle = _inputs.bundle(settings)
    found = reach.discover(where.host, where.port, route=route, ca_pem=bundle.pem)
    ca = found.handover
    if ca is None:
        leaf = found.presented.leaf
        raise DataError(
            f"{where} presented only its own certificate, issued by {leaf.issuer!r}; the CA "
            "certificate itself was not sent, so nothing was written",
            hint="ask your IT department (or the server's owners) for the CA certificate of "
            "that name and mount it under /etc/corpnet/ca.d",
            host=where.host,
        )
    try:
        files.write_atomic(out, ca.pem(), mode=0o644)
    except PermissionError as e:
        raise PermissionDeniedError(
            f"cannot write {out}: permission denied", hint="choose a --out you can write", path=out
        ) from e
    except OSError as e:
        raise UsageError(
            f"cannot write {out} ({e.strerror or e})", hint="choose a --out in an existing folder"
        ) from e
    if as_json:
        sys.stdout.write(json.dumps(as_dict(found, str(where), out), indent=2) + "\n")
    else:
        sys.stdout.write(text(found, ca, str(where), out))
    sys.stdout.flush()


def text(found: Discovery, ca: Cert, target: str, out: Path) -> str:
    """What a person reads: the chain, ``ca`` written to ``out``, and what to do with it."""
    p = found.presented
    via = "direct" if found.route == "direct" else f"via proxy {found.route}"
    lines = [f"{target} ({via}) presented:"]
    first: dict[str, int] = {}
    for i, c in enumerate(p.certs, 1):
        # Squid's ssl_bump sends its CA twice when the CA file also lists it as chain.
        seen = first.setdefault(c.fingerprint, i)
        lines.append(f"  {i}. " + (_line(c) if seen == i else f"the same certificate as {seen}."))
    if not p.complete:
        lines.append("  (only the first certificate could be read: the host speaks only TLS 1.3)")
    lines += [
        f"wrote {out}: {ca.subject}",
        f"  SHA-256  {ca.fingerprint}",
        f"  {ca.role}, {ca.validity()}",
    ]
    if found.intermediate_missing:
        lines.append(
            "the server sends an incomplete chain: this is the intermediate its certificate "
            "names (AIA), signed by a CA already trusted; mounting it works around the server's "
            "mistake, which its owners should fix"
        )
    elif found.root_missing:
        lines.append(
            f"this is an intermediate: its root {found.root_missing!r} was not sent; ask for it "
            "and mount both"
        )
    if found.trusted:
        lines.append("note: this chain already verifies with the trust bundle; no mount is needed")
    lines.append(
        "compare the fingerprint with the one your IT department (or the server's owners) "
        "publish; if it matches, mount the file under /etc/corpnet/ca.d (corpnet trusts "
        "nothing by itself)"
    )
    return "\n".join(lines) + "\n"


def _line(c: Cert) -> str:
    kind = "root" if c.self_signed else ("CA" if c.ca else "server")
    return f"{c.subject} ({kind}; issued by {c.issuer!r}; {c.validity()})"


def as_dict(found: Discovery, target: str, out: Path) -> dict[str, object]:
    """The ``--json`` form."""
    from corpnet.reach._model import cert_json

    ca = found.handover
    return {
        "target": target,
        "route": found.route,
        "chain": [cert_json(c) for c in found.presented.certs],
        "chain_complete": found.presented.complete,
        "written": str(out),
        "ca": cert_json(ca) if ca is not None else None,
        "root_missing": found.root_missing,
        "intermediate_missing": found.intermediate_missing,
        "already_trusted": found.trusted,
    }
