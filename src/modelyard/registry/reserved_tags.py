"""The ``modelyard.*`` tag namespace on registry objects belongs to modelyard.

modelyard writes tags there that other parts act on — ``modelyard.gate.*`` (what the gate
found, shown to people), ``modelyard.compiled.path`` (which compiled file serving loads) —
so a client that could write them could steer those parts. Requests that reach the
registry through a server (``RegistryClient.for_clients``) may therefore neither set nor
delete a ``modelyard.*`` tag, on any path (set-tag, create, delete-tag, logged models):
403 naming the key. modelyard's own code writes them through its local client.

Compared case-insensitively: ``Modelyard.gate.status`` is refused too, so no spelling of
the namespace slips past a reader that lower-cases.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.errors import PermissionDenied

SYSTEM_TAG_PREFIX = "modelyard."

#: Set by modelyard on a version whose files hold no saved model (accepted through the
#: MLflow API only); its value says how to fix it, and serving refuses the version at once.
UNLOADABLE_TAG = "modelyard.unloadable"


def is_system_tag(key: object) -> bool:
    return isinstance(key, str) and key.strip().casefold().startswith(SYSTEM_TAG_PREFIX)


def refuse_system_tags(keys: Iterable[object], entity: str) -> None:
    """Raise PermissionDenied (403) naming the first reserved key in ``keys``."""
    for key in keys:
        if is_system_tag(key):
            raise PermissionDenied(
                f"tag {key!r} on a {entity} is reserved: keys starting with "
                f"'{SYSTEM_TAG_PREFIX}' are written by modelyard itself (the quality gate, "
                "the compiler) and cannot be set or deleted by a client; use another prefix",
                field="tags",
            )
