"""API tokens for the data plane: ``modelyard serve --auth``.

The same tokens, users and middleware (``server.http.auth_middleware``) as the control
plane, read from the metadata store the served deployment lives in
(``MODELYARD_STORE_URI``): any active
user with the viewer role or above may predict, send feedback and read model metadata,
as ``Authorization: Bearer <token>`` or Basic with the token as password. Failed
attempts are rate-limited as on the control plane (per address and per token id, in each
process's memory; a 429 with ``Retry-After``).

Open without a token, because what probes and scrapers call carries no credentials:

* ``/v2/health/live``, ``/v2/health/ready``, and MLflow's ``/ping`` and ``/health``: they
  say only whether the process is up and a model loaded;
* ``/metrics``: request counts and latencies per deployment and variant (never inputs or
  predictions), for Prometheus, as on ``modelyard server --auth``. Keep the port off the
  internet, or put a proxy in front that guards it, if those names are secret.

>>> guard = inference_auth(settings)                                      # doctest: +SKIP
>>> app = create_inference_app(runtime, metrics, middleware=[guard])      # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.responses import Response

from modelyard.auth.lockout import FailureLockout
from modelyard.auth.roles import Role
from modelyard.auth.service import AuthService
from modelyard.errors import ModelyardError
from modelyard.server.http.auth_middleware import (
    DEFAULT_CACHE_TTL_S,
    AuthMiddleware,
    error_response,
)

if TYPE_CHECKING:
    from modelyard.config import Settings

OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"})
#: The role a caller needs for everything else.
REQUIRED_ROLE = Role.VIEWER


def data_plane_error(exc: ModelyardError) -> Response:
    """A refusal both kinds of client read: the Open Inference Protocol's ``error`` (what
    tritonclient shows) beside MLflow's ``error_code`` and ``message`` (what MLflow scoring
    clients read), with the same status and headers (``Retry-After``, ``WWW-Authenticate``)."""
    response = error_response(exc)
    response.body = json.dumps({"error": exc.message, **exc.to_dict()}).encode()
    response.headers["content-length"] = str(len(response.body))
    return response


def inference_auth(
    settings: Settings,
    *,
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
    lockout: FailureLockout | None = None,
) -> Middleware:
    """The middleware over the users and tokens in the settings' metadata store
    (``lockout``: where failures are counted; default, a new one for this app)."""
    from modelyard.tracking.backends import database_for

    service = AuthService(database_for(settings), cache_ttl_s=cache_ttl_s)
    return Middleware(
        AuthMiddleware,
        service=service,
        open_paths=OPEN_PATHS,
        role=REQUIRED_ROLE,
        lockout=lockout,
        render=data_plane_error,
    )
