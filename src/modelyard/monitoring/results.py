"""What a drift check answers: one ``ColumnDrift`` per column inside a ``DriftReport``.

These are plain frozen values, shared by the drift core (``profiles``, ``drift``), the
windows over the prediction log, the monitors and the reports: nothing here computes.
``DriftReport.to_dict`` is the JSON shape ``modelyard drift --json`` prints and monitors
store; it holds no NaN or infinity (those become ``None``), so any JSON reader takes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

NUMERICAL = "numerical"
CATEGORICAL = "categorical"


def _finite(value: float | None) -> float | None:
    """``value`` as a JSON-safe float: NaN and infinities read as ``None`` (unknown)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Histogram:
    """Reference against current on the same bins: what reports draw.

    ``labels`` are bin labels (``"[0.1, 0.5)"``) or category names, with ``"(other)"``
    (reference categories past the profile's top-K) and ``"(unseen)"`` (current values the
    reference never had). ``edges`` has ``len(labels) + 1`` numerical bin edges, ``None`` for
    a categorical column. ``reference`` and ``current`` are shares of the non-missing rows.
    """

    kind: str
    labels: tuple[str, ...]
    edges: tuple[float, ...] | None
    reference: tuple[float, ...]
    current: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "labels": list(self.labels),
            "edges": None if self.edges is None else [_finite(e) for e in self.edges],
            "reference": [_finite(v) for v in self.reference],
            "current": [_finite(v) for v in self.current],
        }


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's verdict.

    ``method`` is the deciding method (``ks``, ``wasserstein``, ``psi``, ``jensen_shannon``,
    ``chi2``) and ``score`` its value: a p-value for ``ks``/``chi2`` (drifted below the
    threshold), a distance otherwise (drifted at or above it). ``drifted`` is
    ``values_drifted or missing_drifted``: a column whose values kept their shape while a
    share of them went missing has drifted. ``scores`` holds every statistic computed
    (``ks_statistic``, ``ks_pvalue``, ``wasserstein_norm``, ``psi``, ``jensen_shannon``,
    ``chi2_pvalue``, ``unseen_share``, ``missing_pvalue``, ...). ``verdict`` is one plain
    sentence a person reads first.
    """

    column: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    values_drifted: bool
    missing_drifted: bool
    reference_rows: int
    current_rows: int
    reference_missing: float
    current_missing: float
    scores: dict[str, float]
    verdict: str
    histogram: Histogram | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "method": self.method,
            "score": _finite(self.score),
            "threshold": _finite(self.threshold),
            "kind": self.kind,
            "values_drifted": self.values_drifted,
            "missing_drifted": self.missing_drifted,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_missing": _finite(self.reference_missing),
            "current_missing": _finite(self.current_missing),
            "scores": {name: _finite(value) for name, value in self.scores.items()},
            "verdict": self.verdict,
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Every column's verdict and the dataset's.

    ``errors`` maps a column that could not be compared (missing from the current data, a
    changed type) to the reason; such a column counts as drifted in ``share_drifted``
    (the denominator is ``len(columns) + len(errors)``), so a broken input never reads as
    "no drift". ``dataset_drifted`` is ``share_drifted >= share_threshold``.
    """

    columns: dict[str, ColumnDrift]
    share_drifted: float
    dataset_drifted: bool
    share_threshold: float
    reference_rows: int
    current_rows: int
    errors: dict[str, str]

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns that drifted, errors included (they count as drifted)."""
        return [name for name, col in self.columns.items() if col.drifted] + list(self.errors)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe shape ``drift --json`` prints (no NaN: unknown numbers are ``None``)."""
        return {
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
            "share_drifted": _finite(self.share_drifted),
            "dataset_drifted": self.dataset_drifted,
            "share_threshold": _finite(self.share_threshold),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "errors": dict(self.errors),
        }
