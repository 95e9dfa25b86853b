"""Messages to stderr, prefixed ``corpnet:``, with secrets scrubbed.

Stages are pure and return their warnings; the edges (CLI, pipeline) hand them
to a :class:`Log`. ``CORPNET_QUIET=1`` keeps only warnings and errors;
``CORPNET_LOG=json`` writes one JSON object per line for log collectors.

Every line passes through :meth:`Log.scrub`, which replaces each registered
secret (proxy passwords, key passphrases, in raw and percent-encoded form) with
``***``: a second line of defence behind building messages from redacted values.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Literal, TextIO
from urllib.parse import quote

Level = Literal["debug", "info", "warning", "error"]
_ORDER: dict[Level, int] = {"debug": 0, "info": 1, "warning": 2, "error": 3}
# scheme://user:password@ inside any text; the password runs to the last '@' of the
# token, so a raw '@' in it (as users type it) is redacted whole.
_CREDENTIALS_RE = re.compile(r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:@/\s]*):\S*@")


def redact(text: str) -> str:
    """Replace the password of every ``scheme://user:password@`` in ``text`` with ``***``."""
    return _CREDENTIALS_RE.sub(r"\g<prefix>:***@", text)


class Log:
    """A small structured logger; one instance per process, see :func:`get`."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        quiet: bool = False,
        as_json: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream
        self.quiet = quiet
        self.as_json = as_json
        self._clock = clock
        self._secrets: set[str] = set()
        self._kept: list[str] | None = None

    def keep(self) -> list[str]:
        """From now on, also keep every warning and error line (as text) in the list returned."""
        if self._kept is None:
            self._kept = []
        return self._kept

    @property
    def stream(self) -> TextIO:
        # Resolved late so click's CliRunner, which swaps sys.stderr, sees our lines.
        return self._stream if self._stream is not None else sys.stderr

    def add_secret(self, secret: str | None) -> None:
        """Never print ``secret``, nor its percent-encoded form, from now on."""
        if not secret or len(secret) < 2:
            return
        self._secrets.add(secret)
        self._secrets.add(quote(secret, safe=""))

    def scrub(self, text: str) -> str:
        """Replace every registered secret in ``text`` with ``***``."""
        # Longest first, so a secret that contains another is replaced whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def emit(self, level: Level, message: str, **fields: object) -> None:
        """Write one line at ``level``; quiet mode drops debug and info."""
        minimum: Level = "warning" if self.quiet else "info"
        if _ORDER[level] < _ORDER[minimum]:
            return
        message = self.scrub(message)
        if self._kept is not None and level in {"warning", "error"}:
            self._kept.append(f"corpnet: {level}: {message}")
        if self.as_json:
            import json

            record: dict[str, object] = {
                "ts": round(self._clock(), 3),
                "level": level,
                "msg": message,
            }
            record.update({k: self._scrub_value(v) for k, v in fields.items()})
            line = json.dumps(record, sort_keys=False, default=str)
        else:
            prefix = "corpnet: " if level == "info" else f"corpnet: {level}: "
            line = prefix + message
        self.stream.write(line + "\n")
        self.stream.flush()

    def _scrub_value(self, value: object) -> object:
        return self.scrub(value) if isinstance(value, str) else value

    def info(self, message: str, **fields: object) -> None:
        """Progress a user may want to see."""
        self.emit("info", message, **fields)

    def warning(self, message: str, **fields: object) -> None:
        """Something works but should be fixed."""
        self.emit("warning", message, **fields)

    def error(self, message: str, **fields: object) -> None:
        """Something failed; the caller decides the exit code."""
        self.emit("error", message, **fields)


_log = Log()


def get() -> Log:
    """The process-wide logger."""
    return _log


def configure(env: Mapping[str, str], *, stream: TextIO | None = None) -> Log:
    """Set the process-wide logger up from ``CORPNET_QUIET`` and ``CORPNET_LOG``."""
    global _log  # noqa: PLW0603 - one logger per process, configured once at start
    secrets = _log._secrets
    _log = Log(
        stream=stream,
        quiet=env.get("CORPNET_QUIET", "").strip().lower() in {"1", "true", "yes", "on"},
        as_json=env.get("CORPNET_LOG", "").strip().lower() == "json",
    )
    _log._secrets = secrets
    return _log
