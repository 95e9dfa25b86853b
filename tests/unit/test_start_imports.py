"""A start imports only what its configuration needs (issue 14).

The whole start (`corpnet init`'s stages, in a fresh interpreter) with 20 CA
files and an encrypted client key, the wait off: no reachability code
(asyncio, ssl, tenacity), no ``cryptography.x509`` (corpnet's DER parser reads
the certificates), no gateway, no subprocess without a hook to run: each cost
2-60 ms per start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.client_pki import cert_pem, key_pem, make_ca, make_leaf, private_key

FORBIDDEN = ("asyncio", "ssl", "tenacity", "concurrent", "cryptography.x509", "corpnet.reach",
             "corpnet.gateway", "corpnet.egress", "click", "docker", "subprocess")  # fmt: skip

CODE = """
import json, os, sys
from corpnet.run import start
env = start(json.loads(sys.argv[1]))
assert env["CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"] == "pw"
print(json.dumps(sorted(m for m in sys.modules)))
"""


def _start_modules(env: dict[str, str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", CODE, json.dumps(env)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


def test_a_start_with_the_wait_off_imports_no_probe_x509_or_gateway(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca.d"
    ca_dir.mkdir()
    for i in range(20):
        (ca_dir / f"ca{i}.crt").write_bytes(make_ca(f"Corp CA {i}", n=i).pem)
    key = private_key("ec")
    (tmp_path / "tls.crt").write_bytes(cert_pem(make_leaf(make_ca("Client CA", n=99), key=key)))
    (tmp_path / "tls.key").write_bytes(key_pem(key, passphrase="pw"))
    (tmp_path / "tls.key").chmod(0o600)
    env = {
        "PATH": "/usr/bin:/bin",
        "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
        "CORPNET_CA_DIRS": str(ca_dir),
        "CORPNET_SYSTEM_STORE": "off",
        "CORPNET_WAIT": "off",
        "CLAUDE_CODE_CLIENT_CERT": str(tmp_path / "tls.crt"),
        "CLAUDE_CODE_CLIENT_KEY": str(tmp_path / "tls.key"),
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "pw",
    }
    loaded = _start_modules(env)
    assert "corpnet.identity" in loaded  # the stage ran
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN))
    assert bad == []
    # With the wait on, the same start loads the probe code (a closed loopback port, 1 s).
    waiting = {**env, "CORPNET_WAIT": "warn", "CORPNET_WAIT_TIMEOUT": "1",
               "CORPNET_ALLOWLIST": "127.0.0.1:9"}  # fmt: skip
    assert "corpnet.reach" in _start_modules(waiting)
