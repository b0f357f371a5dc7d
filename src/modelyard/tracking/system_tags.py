"""The ``modelyard.`` tag namespace belongs to modelyard, on every entity.

modelyard writes tags there that other parts act on — on model versions the gate's
summary and the compiled model serving loads, and whatever later rooms record on runs —
so a client that could write them could steer those parts. A request that reaches a
store through a server (``TrackingClient(system=False)``, ``RegistryClient.for_clients``)
may therefore neither set nor delete a ``modelyard.*`` tag, on any path (set-tag,
delete-tag, create, log-batch): PermissionDenied (403) naming the key.

One exception, on runs: the tags the modelyard client itself reports about where a run
ran (``run_context``: host, entry point, git commit, Python and package versions, user,
pid). They are the client's own word, as ``mlflow.source.*`` tags are in MLflow; no
decision rests on them, and a modelyard client talking to a server must be able to send
them.

Keys compare case-insensitively: ``Modelyard.Gate.Status`` is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.errors import PermissionDenied
from modelyard.tracking.run_context import (
    TAG_ENTRY_POINT,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_HOST,
    TAG_PACKAGES,
    TAG_PYTHON,
    TAG_USER,
)

SYSTEM_TAG_PREFIX = "modelyard."

#: Run tags a client reports about itself (``run_context.system_tags``): allowed from it.
CLIENT_REPORTED_RUN_TAGS = frozenset(
    {
        TAG_USER,
        TAG_HOST,
        TAG_ENTRY_POINT,
        TAG_GIT_COMMIT,
        TAG_GIT_DIRTY,
        TAG_PYTHON,
        TAG_PACKAGES,
        "modelyard.pid",
    }
)


def is_system_tag(key: object) -> bool:
    return isinstance(key, str) and key.strip().casefold().startswith(SYSTEM_TAG_PREFIX)


def refuse_system_tags(
    keys: Iterable[object], entity: str, *, allowed: frozenset[str] = frozenset()
) -> None:
    """Raise PermissionDenied (403) naming the first reserved key in ``keys`` that is not
    in ``allowed``."""
    for key in keys:
        if is_system_tag(key) and key not in allowed:
            raise PermissionDenied(
                f"tag {key!r} on a {entity} is reserved: keys starting with "
                f"'{SYSTEM_TAG_PREFIX}' are written by modelyard itself (the quality gate, "
                "the compiler) and cannot be set or deleted by a client; use another prefix",
                field="tags",
            )
