"""corpnet: make containers work inside corporate networks.

The public surface is small: the settings loader and the error family. The
stages (``corpnet.trust``, ``corpnet.identity``, ``corpnet.proxy``,
``corpnet.environment``, ``corpnet.reach``) and the pipeline (``corpnet.run``)
are importable for tests and embedding, but the CLI is the supported interface.
"""

from corpnet.errors import CorpnetError, ExitCode

__version__ = "0.1.0"

__all__ = ["CorpnetError", "ExitCode", "__version__"]
