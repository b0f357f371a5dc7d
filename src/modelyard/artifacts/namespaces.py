"""The top-level folders of the artifact store that modelyard itself writes.

Runs' files live under ``<experiment id>/<run id>/artifacts`` and MLflow 3 logged models'
under ``<experiment id>/models/<model id>/artifacts``: clients write those through the
artifact proxy. Everything below is written by modelyard's own code and read back as
evidence — a registered version's frozen files, a dataset version, the prediction log a
drift check reads, a gate's report — so the proxy refuses client writes and deletes
there (``server/control/artifacts_api.py``). Each room names its folder from here, so the list
the proxy guards cannot fall behind a new room.
"""

from __future__ import annotations

REGISTRY = "registry"  #: frozen copies of registered versions' files
DATASETS = "datasets"  #: dataset versions' files
FEATURES = "features"  #: feature-source snapshots
SERVING = "serving"  #: compiled models
VALIDATION = "validation"  #: quality-gate reports
PREDICTIONS = "predictions"  #: the prediction log
MONITORING = "monitoring"  #: reference profiles and monitor reports

SYSTEM_FOLDERS = frozenset(
    {REGISTRY, DATASETS, FEATURES, SERVING, VALIDATION, PREDICTIONS, MONITORING}
)


def system_folder_of(path: str) -> str | None:
    """The system folder ``path`` lies in (or is), or None for a client's path."""
    head = path.split("/", 1)[0]
    return head if head in SYSTEM_FOLDERS else None
