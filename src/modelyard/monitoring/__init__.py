"""Monitoring: input and prediction drift, live performance from feedback, monitors and alerts.

Public entry points (import them from their defining modules inside modelyard):
``drift`` (``monitoring.drift``), ``ReferenceProfile`` (``monitoring.profiles``),
``DriftReport`` and ``ColumnDrift`` (``monitoring.results``).
"""

from modelyard.monitoring.results import ColumnDrift, DriftReport, Histogram

__all__ = ["ColumnDrift", "DriftReport", "Histogram"]
