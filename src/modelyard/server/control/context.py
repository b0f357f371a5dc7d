"""What every request handler is given: the settings, the tracking client and the limits.

One ``ServerContext`` is built by ``create_app`` and passed to each API's ``routes``; no
handler reaches for a global. ``client_as`` is where a request's identity enters the
domain (today the ``user_id`` an MLflow client sends; with authentication, the token's
user).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.config import Settings
from modelyard.server.control.run_json_cache import RunJsonCache
from modelyard.server.http.auth_middleware import current_principal
from modelyard.tracking.client import TrackingClient

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Request size limits, in bytes. Too large a body is a 400 naming the limit (never a
    413/429, which the MLflow client would retry for minutes)."""

    #: JSON API bodies; MLflow documents 1 MB for ``log-batch``.
    max_json_bytes: int = 1 * MIB
    #: One artifact file uploaded through the proxy (``None``: unlimited).
    max_artifact_bytes: int | None = 5 * 1024 * MIB


@dataclass(frozen=True, slots=True)
class ServerContext:
    settings: Settings
    client: TrackingClient
    limits: ServerLimits = field(default_factory=ServerLimits)
    #: Whether short writes may run on the event loop (``mlflow_api.MlflowEndpoint``):
    #: true for SQLite, whose small transactions take tens of microseconds; never for a
    #: database over the network.
    inline_writes: bool = False
    #: Runs rendered as MLflow JSON by earlier searches, kept while their revision holds.
    run_json: RunJsonCache = field(default_factory=RunJsonCache)

    def client_as(self, user: str | None) -> TrackingClient:
        """The tracking client acting for ``user`` (runs it creates are recorded as theirs).

        With authentication on, the token's user acts, whatever ``user`` the client claims.
        """
        principal = current_principal()
        if principal is not None:
            user = principal.user
        if not user or user == self.client.settings.user:
            return self.client
        settings = self.client.settings.model_copy(update={"user": user})
        return TrackingClient(self.client.store, self.client.artifacts, settings, system=False)
