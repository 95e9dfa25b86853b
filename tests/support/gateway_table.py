"""Run inside a fresh network namespace: one gateway, every client, every URL; print the audit.

    unshare --net -- python gateway_table.py SPEC.json

The namespace has only loopback, so nothing a client or the gateway tries can
leave the machine: DIRECT names fail at DNS, PROXY routes point at a closed
loopback port. What matters is the gateway's decision, which it logs before
it connects. SPEC: {"no_proxy": ..., "urls": [...], "node": path, "audit": dir}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.gateway import running_gateway

CLIENTS = {
    "curl": ["curl", "-s", "-o", "/dev/null", "--max-time", "5"],
    "urllib": [
        sys.executable,
        "-c",
        "import sys, urllib.request\ntry: urllib.request.urlopen(sys.argv[1], timeout=5)\n"
        "except Exception: pass",
    ],
    "requests": [
        sys.executable,
        "-c",
        "import sys, requests\ntry: requests.get(sys.argv[1], timeout=5)\nexcept Exception: pass",
    ],
    "git": ["git", "-c", "http.lowSpeedTime=5", "ls-remote"],
}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {
        "CORPNET_GATEWAY": "on",
        "CORPNET_WAIT": "off",
        "CORPNET_SYSTEM_STORE": "off",
        "HTTPS_PROXY": "http://127.0.0.1:9",  # the upstream: nothing listens
        "NO_PROXY": spec["no_proxy"],
    }
    clients = dict(CLIENTS)
    clients["node"] = [spec["node"], "-e", "fetch(process.argv[1]).catch(() => {})"]
    audit = Path(spec["audit"])
    audit.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, object]] = []
    with running_gateway(env, audit) as gw:
        client_env = {
            "PATH": os.environ["PATH"],
            "HOME": spec["home"],
            "HTTPS_PROXY": gw.url,
            "https_proxy": gw.url,
            "NO_PROXY": "localhost,127.0.0.1,::1",
            "no_proxy": "localhost,127.0.0.1,::1",
            "NODE_USE_ENV_PROXY": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "LANG": "C.UTF-8",  # IDN names need a UTF-8 locale (curl, git)
        }
        for name, argv in clients.items():
            for url in spec["urls"]:
                before = len(gw.records())
                subprocess.run(
                    [*argv, url],
                    env=client_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
                new = gw.records(before + 1, timeout=0.5)[before:]
                runs.append({"client": name, "url": url, "records": new})
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
