"""One measured quantity of a monitoring window, as rules and reports read it.

A window over the prediction log produces a flat list of ``Observation``s: the share of
drifted features, each feature's drift score, prediction drift, every live metric per
variant, version and slice, latency, error rate, feedback coverage, request counts. Rules
pick observations by ``name`` and ``labels``; nothing downstream needs to know how a
value was computed.

``value`` is ``None`` when the quantity cannot be computed (an empty window, no feedback
yet, a column missing from the log); ``reason`` then says why, so a rule reports
"unknown: no feedback in the window" rather than a silent "ok".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidParameter

#: The names rules know (``monitoring.rules``); a window produces only these.
NAMES = (
    "drift_share",
    "feature_drift",
    "prediction_drift",
    "metric",
    "latency_p50_ms",
    "latency_p99_ms",
    "error_rate",
    "feedback_coverage",
    "requests",
    "rows",
)


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Observation:
    """A named value with its labels, count and 95 % confidence interval.

    ``labels`` are ``(key, value)`` pairs kept sorted by key, e.g. ``(("metric", "mae"),
    ("slice", "region=north"), ("variant", "blue"), ("version", "3"))``; construction
    sorts them and turns values into strings, so two observations of the same thing
    compare equal however they were built. ``threshold`` is the drift method's own
    threshold (drift rules default to it). ``reason`` explains a ``None`` value.

    >>> o = Observation("metric", 4.2, (("variant", "blue"), ("metric", "mae")), count=120)
    >>> o.labels
    (('metric', 'mae'), ('variant', 'blue'))
    >>> o.label("metric"), o.label("slice")
    ('mae', None)
    """

    name: str
    value: float | None
    labels: tuple[tuple[str, str], ...] = ()
    count: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    threshold: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        pairs = tuple(sorted((str(k), str(v)) for k, v in self.labels))
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise InvalidParameter(
                f"observation {self.name!r} has a label key twice: {keys}", field="labels"
            )
        object.__setattr__(self, "labels", pairs)
        if self.value is not None and not math.isfinite(float(self.value)):
            # NaN would compare false against every threshold: an unknown value says so.
            object.__setattr__(self, "value", None)
            if self.reason is None:
                object.__setattr__(self, "reason", "the value is not a finite number")

    def label(self, key: str) -> str | None:
        """The value of label ``key``, or ``None`` when the observation has no such label."""
        for k, v in self.labels:
            if k == key:
                return v
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (no NaN) shape, as evaluations are stored and reports read them."""
        return {
            "name": self.name,
            "value": _json_float(self.value),
            "labels": dict(self.labels),
            "count": self.count,
            "ci_low": _json_float(self.ci_low),
            "ci_high": _json_float(self.ci_high),
            "threshold": _json_float(self.threshold),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        """The inverse of ``to_dict`` (stored evaluations read back)."""
        return cls(
            name=str(data["name"]),
            value=data.get("value"),
            labels=tuple(dict(data.get("labels") or {}).items()),
            count=data.get("count"),
            ci_low=data.get("ci_low"),
            ci_high=data.get("ci_high"),
            threshold=data.get("threshold"),
            reason=data.get("reason"),
        )


def labels_of(**labels: object) -> tuple[tuple[str, str], ...]:
    """Sorted label pairs from keyword arguments, leaving out those that are ``None``."""
    return tuple(sorted((k, str(v)) for k, v in labels.items() if v is not None))
