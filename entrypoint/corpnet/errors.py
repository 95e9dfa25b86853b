"""The one error family of corpnet.

Every failure a user can cause is a :class:`CorpnetError` subclass that carries
the file, variable or host involved and the exit code to use. The CLI maps them
to exit codes in one place (``corpnet.cli``); nothing else calls ``sys.exit``.

Exit codes follow BSD ``sysexits.h``; the README's "Exit codes" table is the
one user-facing list (a test holds it to :class:`ExitCode`). Every subclass,
with the code it exits with (a test holds this list to the code):

- ``UsageError`` 64; ``DataError`` 65; ``UnreachableError`` 69;
  ``PermissionDeniedError`` 77; ``ConfigError`` 78; ``ConfigErrors`` 78, or the
  one code all of its errors share.
- ``corpnet.identity``: ``KeyPassphraseError`` 78, ``IdentityConfigError`` 78,
  ``ClientKeyPermissionError`` 77, ``ClientFileError`` 65.
- ``corpnet.trust``: ``CertificateFileError`` 65, ``TrustErrors`` 78 (as ``ConfigErrors``).
- ``corpnet.proxy``: ``ProxyConfigError`` 78.
- ``corpnet.reach``: ``ReachError`` 69, 78 or 65 (the worst host's diagnosis);
  ``Interrupted`` 130 (SIGINT) or 143 (SIGTERM).
- ``corpnet.run``: ``HookError`` the hook's own code (128+N when signal N killed it);
  ``CommandNotFoundError`` 127, or 126 when not executable.
- ``corpnet.build``: ``BuildError`` 1.
- ``corpnet.egress``: ``LockdownError`` 77 (no NET_ADMIN, rules refused), or 78 when the
  installed rules let traffic through.
"""

from __future__ import annotations

import enum
from pathlib import Path


class ExitCode(enum.IntEnum):
    """Documented process exit codes (``sysexits.h``)."""

    OK = 0
    FAILURE = 1  # checks ran and found problems (``corpnet doctor``)
    USAGE = 64  # EX_USAGE: wrong command-line usage
    DATA = 65  # EX_DATAERR: a mounted file is unusable (bad certificate, key, bundle)
    UNAVAILABLE = 69  # EX_UNAVAILABLE: required hosts unreachable before the deadline
    SOFTWARE = 70  # EX_SOFTWARE: a bug in corpnet (never expected)
    NOPERM = 77  # EX_NOPERM: a file cannot be read or written with our permissions
    CONFIG = 78  # EX_CONFIG: an environment variable is wrong or contradicts another
    NOT_EXECUTABLE = 126  # the agent command exists but cannot be executed (shell convention)
    NOT_FOUND = 127  # the agent command does not exist (shell convention)
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


class CorpnetError(Exception):
    """Base of every error corpnet reports to a user.

    The message says what is wrong; ``hint`` says what to do. Neither may hold
    a secret (proxy password, key passphrase): build them from redacted values.
    """

    # An int, not only ExitCode: a failing hook's own exit code is passed through.
    exit_code: int = ExitCode.SOFTWARE

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        path: Path | str | None = None,
        variable: str | None = None,
        host: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = Path(path) if path is not None else None
        self.variable = variable
        self.host = host

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class UsageError(CorpnetError):
    """The command line itself is wrong."""

    exit_code: int = ExitCode.USAGE


class DataError(CorpnetError):
    """A mounted file is present but unusable (unparseable, wrong kind, mismatched)."""

    exit_code: int = ExitCode.DATA


class PermissionDeniedError(CorpnetError):
    """A file cannot be read or written with the permissions we run with."""

    exit_code: int = ExitCode.NOPERM


class ConfigError(CorpnetError):
    """An environment variable is malformed or contradicts another."""

    exit_code: int = ExitCode.CONFIG


class UnreachableError(CorpnetError):
    """Required hosts did not answer before the deadline."""

    exit_code: int = ExitCode.UNAVAILABLE


class ConfigErrors(ConfigError):  # noqa: N818 - a list of ConfigError, named as such
    """Several configuration errors, all found before anything changed."""

    def __init__(self, errors: list[CorpnetError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))
        # The most specific exit code wins: a single kind keeps its own code.
        codes = {e.exit_code for e in errors}
        self.exit_code = codes.pop() if len(codes) == 1 else int(ExitCode.CONFIG)
