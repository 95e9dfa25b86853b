"""proxy.py (from PyPI, in the test venv) as a real CONNECT proxy on loopback."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trustme

from support.env import host_environ


@contextlib.contextmanager
def proxypy(*flags: str) -> Iterator[int]:
    """Run ``proxy`` with ``flags`` on 127.0.0.1; yield its port."""
    binary = Path(sys.executable).parent / "proxy"
    assert binary.exists(), f"{binary} is missing: pip install proxy.py (in .[test])"
    with tempfile.TemporaryDirectory(prefix="corpnet-proxypy-") as tmp:
        work = Path(tmp)
        port_file = work / "port"
        proc = subprocess.Popen(
            [str(binary), "--hostname", "127.0.0.1", "--port", "0", "--port-file",
             str(port_file), "--num-workers", "1", "--num-acceptors", "1",
             "--data-dir", str(work), *flags],
            env={**host_environ(), "HOME": str(work)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while not (port_file.exists() and port_file.read_text().strip()):
                assert proc.poll() is None, "proxy.py exited at start"
                assert time.monotonic() < deadline, "proxy.py did not start within 20 s"
                time.sleep(0.05)
            yield int(port_file.read_text())
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def inspecting_proxy(inspection_ca: trustme.CA, upstream_ca: trustme.CA) -> Iterator[int]:
    """proxy.py intercepting TLS: it re-signs every site with ``inspection_ca``.

    ``upstream_ca`` is what the proxy itself trusts towards the origins. Both CAs
    must have RSA keys (proxy.py signs with the openssl command).
    """
    with tempfile.TemporaryDirectory(prefix="corpnet-inspect-") as tmp:
        work = Path(tmp)
        inspection_ca.cert_pem.write_to_path(str(work / "ca.pem"))
        inspection_ca.private_key_pem.write_to_path(str(work / "ca.key"))
        upstream_ca.cert_pem.write_to_path(str(work / "upstream.pem"))
        (work / "certs").mkdir()
        with proxypy(
            "--ca-key-file", str(work / "ca.key"),
            "--ca-cert-file", str(work / "ca.pem"),
            "--ca-signing-key-file", str(work / "ca.key"),
            "--ca-file", str(work / "upstream.pem"),
            "--ca-cert-dir", str(work / "certs"),
        ) as port:  # fmt: skip
            yield port
