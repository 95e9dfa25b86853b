"""What the tests share: servers, proxies, PKI and container helpers.

Kept apart from the tests, the way urllib3 keeps ``dummyserver/`` apart from
its tests, and out of conftest.py (pytest registers every conftest under the
module name ``conftest``, so importing from one picks whichever loaded last).
``tests/`` is on ``sys.path`` (pytest's rootdir conftest), so tests import
``from support.pki import ...``.

- ``env``: the host environment for subprocesses, the in-process CLI runner.
- ``pki``, ``client_pki``: certificates generated per test (trustme, cryptography).
- ``servers``: TLS origins and scripted proxies on loopback.
- ``proxypy``, ``squid``: real proxies (proxy.py, Debian's Squid) for the tests.
- ``proxy_harness``, ``proxy_scenario``, ``proxy_plugin``, ``proxy_clients``
  (+ ``.mjs``): the NO_PROXY consistency table, run in a private namespace.
- ``containers``, ``world``: the e2e topology on internal Docker networks.
"""
