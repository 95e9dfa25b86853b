"""A proxy.py plugin that records every request the proxy forwards.

proxy.py's own access log is written when a tunnel closes, and only as a log
line; this plugin appends ``<proxy port> <host> <port>`` to the file named by
``PROXY_TEST_LOG`` *before* the upstream connection opens, so the record is on
disk by the time the client returns. proxy.py runs its AuthPlugin first: a
request that failed basic auth never reaches this plugin, so each line also
proves the credentials were accepted.
"""

from __future__ import annotations

import os

from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin


class RecordRequests(HttpProxyBasePlugin):
    """Append one line per CONNECT (or absolute-URI request) to ``$PROXY_TEST_LOG``."""

    def before_upstream_connection(self, request: HttpParser) -> HttpParser | None:
        host = (request.host or b"").decode().strip("[]")
        # proxy.py 2.4 keeps the brackets of `CONNECT [fd98::8]:443` and then
        # cannot resolve "[fd98::8]" (502): hand it the bare address.
        request.host = host.encode()
        line = f"{self.flags.port} {host} {request.port}\n"
        with open(os.environ["PROXY_TEST_LOG"], "a", encoding="utf-8") as f:  # noqa: PTH123
            f.write(line)
        return request
