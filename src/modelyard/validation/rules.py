"""Gate rules: the one-line conditions of a policy, parsed once.

``rmse <= 12`` (absolute), ``rmse <= champion * 1.02`` (relative: ``*``, ``+`` or ``-``
a number, or plain ``champion``), ``slice rmse <= champion * 1.05`` / ``slice mae <= 4``
(every slice), ``fairness demographic_parity_difference <= 0.1`` (also ``dpd``, ``eod``),
``contract passed``, ``behaviour passed``, ``latency p95_ms <= 5``. A rule may also be
``{rule: "...", severity: warning}``: reported, never blocking.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.validation import metrics as m

FAIRNESS_METRICS = {
    "demographic_parity_difference": "demographic_parity_difference",
    "dpd": "demographic_parity_difference",
    "equalized_odds_difference": "equalized_odds_difference",
    "equalised_odds_difference": "equalized_odds_difference",
    "eod": "equalized_odds_difference",
}
LATENCY_METRICS = ("p50_ms", "p95_ms", "p99_ms", "batch_ms_per_row")
OPS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
        ">": lambda a, b: a > b, "==": lambda a, b: a == b}  # fmt: skip
_METRIC_RULE = re.compile(
    r"^(?P<slice>slices?\s+)?(?P<metric>[a-z][a-z0-9_]*)\s*(?P<op><=|>=|==|<|>)\s*"
    r"(?:(?P<champion>champion)(?:\s*(?P<cop>[*+-])\s*(?P<factor>\d+(?:\.\d+)?))?|"
    r"(?P<number>-?\d+(?:\.\d+)?(?:e-?\d+)?))\s*$"
)
_FAIRNESS_RULE = re.compile(
    r"^fairness\s+(?P<metric>[a-z_]+)\s*(?P<op><=|<)\s*(?P<number>\d+(?:\.\d+)?)\s*$"
)
_LATENCY_RULE = re.compile(
    r"^latency\s+(?P<metric>p50|p95|p99|p50_ms|p95_ms|p99_ms|batch_ms_per_row)\s*"
    r"(?P<op><=|<)\s*(?P<number>\d+(?:\.\d+)?)\s*(?:ms)?\s*$"
)


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    #: absolute, relative, slice, slice_relative, fairness, contract, behaviour, latency
    kind: str
    metric: str = ""
    op: str = "<="
    number: float | None = None
    champion_op: str | None = None  # "*", "+", "-" or None (plain "champion")
    factor: float | None = None
    severity: str = "error"


def parse_rule(item: Any, where: str = "rule") -> Rule:
    """One rule from its text (``rmse <= champion * 1.02``) or ``{rule, severity}``."""
    severity = "error"
    if isinstance(item, Mapping):
        unknown = set(item) - {"rule", "severity"}
        if unknown or "rule" not in item:
            raise InvalidParameter(
                f"{where} must be a rule string or {{rule, severity}}", field=where
            )
        severity = item.get("severity", "error")
        if severity not in ("error", "warning"):
            raise InvalidParameter(f"{where}.severity must be 'error' or 'warning'", field=where)
        item = item["rule"]
    if not isinstance(item, str) or not item.strip():
        raise InvalidParameter(
            f"{where} must be a rule such as 'rmse <= 12', got {item!r}", field=where
        )
    text = " ".join(item.split())
    lowered = text.lower()
    if lowered == "contract passed":
        return Rule(text, "contract", severity=severity)
    if lowered in (
        "behaviour passed",
        "behavioural passed",
        "behavior passed",
        "behavioral passed",
    ):
        return Rule(text, "behaviour", severity=severity)
    if match := _FAIRNESS_RULE.match(lowered):
        metric = FAIRNESS_METRICS.get(match["metric"])
        if metric is None:
            raise InvalidParameter(
                f"{where} {text!r}: unknown fairness metric {match['metric']!r}; use "
                "demographic_parity_difference or equalized_odds_difference",
                field=where,
            )
        return Rule(
            text, "fairness", metric, match["op"], float(match["number"]), severity=severity
        )
    if match := _LATENCY_RULE.match(lowered):
        metric = (
            match["metric"]
            if match["metric"].endswith(("_ms", "_row"))
            else f"{match['metric']}_ms"
        )
        return Rule(text, "latency", metric, match["op"], float(match["number"]), severity=severity)
    match = _METRIC_RULE.match(lowered)
    if match is None:
        raise InvalidParameter(
            f"{where} {text!r} is not a rule; write e.g. 'rmse <= 12', 'rmse <= champion * 1.02', "
            "'slice rmse <= champion * 1.05', 'fairness dpd <= 0.1', 'contract passed', "
            "'behaviour passed' or 'latency p95_ms <= 5'",
            field=where,
        )
    metric = match["metric"]
    if metric not in m.KNOWN:
        hint = difflib.get_close_matches(metric, m.KNOWN, n=1)
        also = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(m.KNOWN)})"
        raise InvalidParameter(f"{where} {text!r}: unknown metric {metric!r}{also}", field=where)
    sliced = bool(match["slice"])
    if match["champion"]:
        factor = float(match["factor"]) if match["factor"] else None
        kind = "slice_relative" if sliced else "relative"
        return Rule(text, kind, metric, match["op"], None, match["cop"], factor, severity)
    return Rule(
        text,
        "slice" if sliced else "absolute",
        metric,
        match["op"],
        float(match["number"]),
        severity=severity,
    )
