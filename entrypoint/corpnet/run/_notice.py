"""The notice: what ``corpnet init`` said, kept for the terminals opened later.

Devcontainer tooling runs ``corpnet init`` as the container's entrypoint, whose
stderr only ``docker logs`` shows. So its warnings and errors also go to
``$CORPNET_RUNTIME_DIR/notice``, which the shell hook prints in interactive
shells (``/etc/profile.d/corpnet.sh``): a user who is missing a CA or a password
file reads it in the terminal they open, with what to do. The file is written
once the environment is (a terminal opened during the wait sees the warnings so
far) and again at the end; it is empty when nothing went wrong. Messages are
scrubbed like every line corpnet prints, so the file (0644) holds no secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from corpnet import config, files
from corpnet import log as logmod
from corpnet.errors import ConfigErrors, CorpnetError


class Notice:
    """Keeps the log's warnings and errors from now on; writes them to the runtime directory."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._log = logmod.get()
        self._lines = self._log.keep()
        self._environ = environ
        self.runtime_dir: Path | None = None  # known once the stages have chosen it

    def write(self, error: CorpnetError | None = None) -> None:
        """Write what was said so far, and ``error`` (about to be reported) if any."""
        lines = list(self._lines)
        if error is not None:
            errors = error.errors if isinstance(error, ConfigErrors) else [error]
            lines += [self._log.scrub(f"corpnet: error: {e}") for e in errors]
        # Best effort: the notice must never turn a start into a failure.
        with contextlib.suppress(OSError, CorpnetError):
            runtime_dir = self.runtime_dir or self._runtime_dir()
            data = "".join(f"{line}\n" for line in lines).encode()
            files.write_atomic(runtime_dir / files.NOTICE, data, mode=0o644)

    def _runtime_dir(self) -> Path:
        """The directory a start that failed early would have used (checked as a start does)."""
        preferred = self._environ.get("CORPNET_RUNTIME_DIR") or config.DEFAULT_RUNTIME_DIR
        return files.choose_runtime_dir(Path(preferred))
