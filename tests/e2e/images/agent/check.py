"""Fetch a URL with urllib or requests, configured only by corpnet's variables."""

import os
import ssl
import sys
import urllib.request

tool, url = sys.argv[1], sys.argv[2]
cert = os.environ.get("CLAUDE_CODE_CLIENT_CERT")
key = os.environ.get("CLAUDE_CODE_CLIENT_KEY")
passphrase = os.environ.get("CLAUDE_CODE_CLIENT_KEY_PASSPHRASE")
if tool == "urllib":
    # The default context reads SSL_CERT_FILE; the proxy comes from https_proxy.
    context = ssl.create_default_context()
    if cert:
        context.load_cert_chain(cert, key, passphrase)
    with urllib.request.urlopen(url, context=context, timeout=15) as response:
        print(response.read().decode().strip())
else:
    import requests  # REQUESTS_CA_BUNDLE and HTTPS_PROXY from the environment

    response = requests.get(url, cert=(cert, key) if cert else None, timeout=15)
    response.raise_for_status()
    print(response.text.strip())
