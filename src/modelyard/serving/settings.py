"""The data plane's settings are the ``serve_*`` fields of the one ``Settings`` object.

Read like every other setting (``MODELYARD_SERVE_TARGET=web``, ``.env``, arguments), which
is how ``modelyard serve --workers N`` hands its options to worker processes.
"""

from __future__ import annotations

from modelyard.config import Settings

ServingSettings = Settings

__all__ = ["ServingSettings"]
