"""The identity stage's errors (no cryptography here: a restart that reuses
the last start's outputs imports none of it, see corpnet.run._reuse)."""

from __future__ import annotations

from corpnet.errors import ConfigError, DataError, PermissionDeniedError

# Names of the variables, for messages (not secrets).
PASSPHRASE_VARIABLES = "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE or CORPNET_CLIENT_KEY_PASSPHRASE_FILE"  # noqa: S105
P12_PASSWORD_VARIABLES = "CORPNET_CLIENT_P12_PASSWORD or CORPNET_CLIENT_P12_PASSWORD_FILE"  # noqa: S105


class KeyPassphraseError(ConfigError):
    """The key passphrase variable is missing, wrong, or set for a plain key."""


class IdentityConfigError(ConfigError):
    """The identity inputs are missing, half-mounted or contradict each other."""


class ClientKeyPermissionError(PermissionDeniedError):
    """A client file is unreadable by the agent, or readable by everyone."""


class ClientFileError(DataError):
    """A client certificate, key or PKCS#12 file is unusable."""
