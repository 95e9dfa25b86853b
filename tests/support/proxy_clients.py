"""Fetch URLs with one Python HTTP client, configured only by the environment.

    python proxy_clients.py urllib|requests|httpx URL...

Prints a JSON list of ``{"url", "ok", "detail"}``. Each library reads the proxy
variables itself (that is what is under test); the CA comes from
SSL_CERT_FILE (urllib, httpx) or REQUESTS_CA_BUNDLE (requests).
"""

from __future__ import annotations

import json
import sys
import urllib.request


def fetch(lib: str, url: str) -> None:
    if lib == "urllib":
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
    elif lib == "requests":
        import requests

        requests.get(url, timeout=10).raise_for_status()
    elif lib == "httpx":
        import httpx

        httpx.get(url, timeout=10).raise_for_status()
    else:
        raise SystemExit(f"unknown client {lib}")


def main() -> None:
    lib, *urls = sys.argv[1:]
    results = []
    for url in urls:
        try:
            fetch(lib, url)
            results.append({"url": url, "ok": True, "detail": ""})
        except Exception as e:  # noqa: BLE001 - every failure is a result to report
            results.append({"url": url, "ok": False, "detail": f"{type(e).__name__}: {e}"})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
