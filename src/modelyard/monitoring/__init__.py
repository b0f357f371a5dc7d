"""Monitoring: input and prediction drift, live performance from feedback, monitors and alerts.

The public face of the drift core, imported on first use so that importing a monitoring
module (rules, alerts) does not load NumPy: ``drift`` (``monitoring.drift``),
``ReferenceProfile``, ``CurrentSummary`` and ``compare`` (``monitoring.profiles`` /
``monitoring.summaries``), ``DriftReport``, ``ColumnDrift`` and ``Histogram``
(``monitoring.results``). Code inside modelyard imports from the defining modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "drift": "modelyard.monitoring.drift",
    "ReferenceProfile": "modelyard.monitoring.profiles",
    "compare": "modelyard.monitoring.profiles",
    "CurrentSummary": "modelyard.monitoring.summaries",
    "DriftReport": "modelyard.monitoring.results",
    "ColumnDrift": "modelyard.monitoring.results",
    "Histogram": "modelyard.monitoring.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from modelyard.monitoring.drift import drift as drift
    from modelyard.monitoring.profiles import ReferenceProfile as ReferenceProfile
    from modelyard.monitoring.profiles import compare as compare
    from modelyard.monitoring.results import ColumnDrift as ColumnDrift
    from modelyard.monitoring.results import DriftReport as DriftReport
    from modelyard.monitoring.results import Histogram as Histogram
    from modelyard.monitoring.summaries import CurrentSummary as CurrentSummary
