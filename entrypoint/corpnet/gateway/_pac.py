"""PAC files and WPAD: where the proxy for a URL comes from in most large networks.

``CORPNET_PAC_URL`` is ``http(s)://…``, ``file://…`` or ``wpad``: DNS discovery
tries ``wpad.<domain>/wpad.dat`` for each search domain in /etc/resolv.conf,
walking up one label at a time and stopping above the organisation (never
``wpad.<tld>``, the classic WPAD hijack name). The file is evaluated by
pacparser (a real JavaScript engine, as px uses), never by a JavaScript
engine of our own. pacparser keeps one global state and blocking DNS calls
(``dnsResolve``), so every call runs on one worker thread, and the C
library's ``JSERROR`` lines on stderr are kept out of the container's log.

A PAC answer ``PROXY a:3128; PROXY b:3128; DIRECT`` becomes three routes
tried in order (fail-over); ``HTTPS h:p`` is a TLS proxy; ``SOCKS`` entries
are skipped, as corpnet supports no SOCKS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from corpnet.gateway._policy import DIRECT, Route
from corpnet.proxy import ProxyURL

REFRESH = 600.0  # seconds before the PAC file is fetched again
MAX_PAC = 1024 * 1024  # bytes; real PAC files are a few kB


class PacError(Exception):
    """The PAC file cannot be fetched or evaluated; the message says which and why."""


def wpad_candidates(resolv_conf: str) -> list[str]:
    """``http://wpad.<domain>/wpad.dat`` for each search domain, walking up, never to a TLD."""
    domains: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if words and words[0] in {"search", "domain"}:
            domains += [w.rstrip(".").lower() for w in words[1:]]
    urls: list[str] = []
    for domain in domains:
        labels = domain.split(".")
        while len(labels) >= 2:  # wpad.corp.example, never wpad.example
            url = f"http://wpad.{'.'.join(labels)}/wpad.dat"
            if url not in urls:
                urls.append(url)
            labels = labels[1:]
    return urls


def parse_answer(answer: str) -> tuple[list[Route], list[str]]:
    """``PROXY a:1; HTTPS b:2; DIRECT`` as routes, and notes about what was skipped."""
    routes: list[Route] = []
    notes: list[str] = []
    for part in answer.split(";"):
        words = part.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT":
            routes.append(DIRECT)
        elif kind in {"PROXY", "HTTP", "HTTPS"} and len(words) == 2:
            host, _, port = words[1].rpartition(":")
            if not port.isdigit() or not host:
                notes.append(f"PAC entry {part.strip()!r} has no host:port")
                continue
            scheme = "https" if kind == "HTTPS" else "http"
            routes.append(Route("proxy", ProxyURL(scheme, host.strip("[]").lower(), int(port))))
        else:
            notes.append(f"PAC entry {part.strip()!r} skipped (corpnet speaks no SOCKS)")
    return routes, notes


class Pac:
    """A PAC file, fetched lazily and refreshed; evaluated on one worker thread."""

    def __init__(self, location: str, *, resolv_conf: Path = Path("/etc/resolv.conf")) -> None:
        self.location = location
        self._resolv_conf = resolv_conf
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="corpnet-pac")
        self._loaded_at = -REFRESH
        self.source: str | None = None  # the URL the script came from
        self.notes: list[str] = []

    async def routes(self, url: str, host: str) -> list[Route]:
        """The routes the PAC file gives for ``url``; raises :class:`PacError`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._routes, url, host)

    def load(self) -> str:
        """Fetch and parse the PAC file now (the start's check); return where it came from."""
        return self._worker.submit(self._load).result()

    def _routes(self, url: str, host: str) -> list[Route]:
        if time.monotonic() - self._loaded_at > REFRESH:
            self._load()
        import pacparser

        try:
            with _quiet_stderr():
                answer = pacparser.find_proxy(url, host)
        except Exception as e:
            raise PacError(
                f"the PAC file {self.source} failed for {host} ({e}): "
                "ask its owners to fix FindProxyForURL, or set CORPNET_PAC_URL to another file"
            ) from e
        routes, notes = parse_answer(answer or "DIRECT")
        self.notes = notes
        if not routes:
            raise PacError(
                f"the PAC file {self.source} answered {answer!r} for {host}, with no route "
                "corpnet can use (SOCKS is not supported)"
            )
        return routes

    def _load(self) -> str:
        text, source = self._fetch()
        try:
            import pacparser
        except ImportError as e:
            raise PacError(
                "CORPNET_PAC_URL needs the pacparser package, which this install lacks: use "
                "the corpnet-base image, or pip install 'corpnet[gateway]'"
            ) from e
        try:
            with _quiet_stderr():
                with contextlib.suppress(Exception):
                    pacparser.cleanup()
                pacparser.init()
                pacparser.parse_pac_string(text)
        except Exception as e:
            raise PacError(
                f"the PAC file {source} is not valid JavaScript ({e}): check CORPNET_PAC_URL"
            ) from e
        self.source = source
        self._loaded_at = time.monotonic()
        return source

    def _fetch(self) -> tuple[str, str]:
        if self.location.lower() == "wpad":
            try:
                resolv = self._resolv_conf.read_text(encoding="utf-8", errors="replace")
            except OSError:
                resolv = ""
            tried = []
            for candidate in wpad_candidates(resolv):
                try:
                    return _get(candidate), candidate
                except PacError as e:
                    tried.append(str(e))
            raise PacError(
                "WPAD found no PAC file (tried "
                + (", ".join(wpad_candidates(resolv)) or "nothing: no search domain")
                + "): set CORPNET_PAC_URL to the PAC file's URL"
            )
        return _get(self.location), self.location


def _get(url: str) -> str:
    """The PAC file at ``url``, fetched directly (a PAC server is never behind the proxy)."""
    if url.lower().startswith("file://"):
        path = Path(url[len("file://") :])
        try:
            with path.open("rb") as f:
                data = f.read(MAX_PAC + 1)
        except OSError as e:
            raise PacError(
                f"cannot read the PAC file {path} ({e.strerror}): check CORPNET_PAC_URL"
            ) from e
    else:
        import urllib.request  # only with a PAC URL: http.client and email are megabytes

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=10) as response:
                data = response.read(MAX_PAC + 1)
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise PacError(
                f"cannot fetch the PAC file {url} ({reason}): check CORPNET_PAC_URL"
            ) from e
    if len(data) > MAX_PAC:
        raise PacError(f"the PAC file {url} is larger than {MAX_PAC} bytes: check CORPNET_PAC_URL")
    return data.decode("utf-8", errors="replace")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null while pacparser's C code prints JSERROR lines."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
