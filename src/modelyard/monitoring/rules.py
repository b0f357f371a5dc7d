"""A monitor's rules spec (YAML), and the rules evaluated on a window's observations.

The spec (see the room's contract and the README)::

    window: 1h
    rules:
      - name: input drift
        drift_share: {above: 0.3}
      - name: mae floor north
        metric: {name: mae, above: 12, slice: "region=north", min_count: 50}
        for: 2
        severity: critical
        trigger: retrain-demand
    notify:
      - webhook: http://127.0.0.1:9000/hook
        secret_env: MODELYARD_WEBHOOK_SECRET
      - log: true

Each rule names one kind (``drift_share``, ``feature_drift``, ``prediction_drift``,
``metric``, ``latency_p99_ms``, ``error_rate``, ``feedback_coverage``, ``requests``)
and its bounds: ``above: x`` breaches when the value is greater than ``x``, ``below: x``
when it is less (both: outside the band). Drift rules without bounds follow each
column's own method and threshold (``drifted``). A metric's ``slice`` is
``"column=value"`` for one slice, ``"column=*"`` for each value of the column (one
outcome per slice), or absent for the whole window.

A rule is evaluated per set of labels (variant, version, slice, feature), one
``RuleOutcome`` each. ``breached`` is True, False, or None when it cannot be decided —
no such observation in the window, no feedback yet, too few rows for ``min_count`` — and
the detail then says why: a rule is never "ok" for lack of data.

>>> from modelyard.monitoring.observations import Observation
>>> spec = parse_rules("window: 1h\\nrules:\\n  - name: errors\\n    error_rate: {above: 0.01}")
>>> [o.detail for o in evaluate_rules(spec, [Observation("error_rate", 0.05, count=400)])]
['error_rate is 0.05, above 0.01 (400 rows)']
>>> [o.detail for o in evaluate_rules(spec, [])]
['unknown: no error_rate observation in the window']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter
from modelyard.monitoring.observations import Observation
from modelyard.specs import Spec, parse_spec

__all__ = [
    "RULE_KINDS",
    "SEVERITIES",
    "MonitorSpec",
    "NotifySpec",
    "RuleOutcome",
    "RuleSpec",
    "evaluate_rules",
    "parse_rules",
]

SEVERITIES = ("info", "warning", "critical")
RULE_KINDS = (
    "drift_share",
    "feature_drift",
    "prediction_drift",
    "metric",
    "latency_p99_ms",
    "error_rate",
    "feedback_coverage",
    "requests",
)
#: Labels that describe how a value was computed, not what it is about: they may change
#: from one window to the next (the method follows the sample size), so they never split
#: outcomes or alerts.
NOT_IDENTITY = frozenset({"method", "drifted"})
#: Drift methods whose score is a p-value: drifted when the score is *below* threshold
#: (``comparison.PVALUE_METHODS``, restated so that reading a spec imports no NumPy; a
#: test keeps the two equal).
P_VALUE_METHODS = frozenset({"ks", "chi2"})
MAX_NAME = 256


def _finite(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter(f"{field} must be a number, got {value!r}", field=field)
    if not math.isfinite(value):
        raise InvalidParameter(f"{field} must be a finite number, got {value!r}", field=field)
    return float(value)


class Bounds(Spec):
    """``above`` and/or ``below``: the value breaches when it is beyond either."""

    above: float | None = None
    below: float | None = None

    @field_validator("above", "below", mode="before")
    @classmethod
    def _number(cls, value: Any, info: Any) -> float | None:
        return _finite(value, info.field_name)

    def bounded(self) -> bool:
        return self.above is not None or self.below is not None


class DriftShareRule(Bounds):
    """The share of drifted features, over all of them or over ``features``."""

    features: tuple[str, ...] | None = None


class FeatureDriftRule(Bounds):
    """Per feature: drifted by its own method and threshold, or its score beyond bounds.
    ``feature`` or ``features`` picks them; neither means every feature."""

    feature: str | None = None
    features: tuple[str, ...] | None = None


class PredictionDriftRule(Bounds):
    """The predictions' drift: by its own method and threshold, or beyond bounds."""


class MetricRule(Bounds):
    """A live metric from feedback (``mae``, ``accuracy``, ...)."""

    name: str
    slice: str | None = None
    variant: str | None = None
    min_count: int | None = Field(default=None, ge=1)

    @field_validator("slice")
    @classmethod
    def _slice(cls, value: str | None) -> str | None:
        if value is not None:
            column, eq, rest = value.partition("=")
            if not eq or not column.strip() or not rest.strip():
                raise InvalidParameter(
                    f"metric.slice {value!r} must be 'column=value' or 'column=*'",
                    field="metric.slice",
                )
        return value


class RuleSpec(Spec):
    """One rule: a name, exactly one kind with its bounds, and how it alerts."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    drift_share: DriftShareRule | None = None
    feature_drift: FeatureDriftRule | None = None
    prediction_drift: PredictionDriftRule | None = None
    metric: MetricRule | None = None
    latency_p99_ms: Bounds | None = None
    error_rate: Bounds | None = None
    feedback_coverage: Bounds | None = None
    requests: Bounds | None = None
    #: Consecutive breaching evaluations before pending becomes firing.
    for_: int = Field(default=1, alias="for", ge=1, le=1000)
    severity: Literal["info", "warning", "critical"] = "warning"
    #: A pipeline an alert of this rule names (stored on the alert; the pipelines room runs it).
    trigger: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    description: str | None = None

    @property
    def kind(self) -> str:
        return next(k for k in RULE_KINDS if getattr(self, k) is not None)

    @property
    def condition(self) -> Bounds:
        found: Bounds = getattr(self, self.kind)
        return found


class NotifySpec(Spec):
    """Where alerts go: ``webhook: URL`` (signed with the secret in env var
    ``secret_env``), or ``log: true``."""

    webhook: str | None = None
    secret_env: str | None = None
    timeout: timedelta = timedelta(seconds=10)
    retries: int = Field(default=4, ge=0, le=10)
    log: bool | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> timedelta:
        delta = parse_duration(value, "notify.timeout")
        if not delta:
            raise InvalidParameter("notify.timeout must be longer than 0s", field="timeout")
        return delta

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidParameter(
                    f"notify.webhook {value!r} must be an http:// or https:// URL",
                    field="webhook",
                )
        return value


class MonitorSpec(Spec):
    """A monitor's whole rules file."""

    window: timedelta = timedelta(hours=1)
    rules: tuple[RuleSpec, ...]
    notify: tuple[NotifySpec, ...] = ()

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        delta = parse_duration(value, "window")
        if delta < timedelta(minutes=1):
            raise InvalidParameter(f"window must be at least 1m, got {value!r}", field="window")
        return delta

    @model_validator(mode="after")
    def _whole(self) -> MonitorSpec:
        if not self.rules:
            raise InvalidParameter("rules: give at least one rule", field="rules")
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            kinds = [k for k in RULE_KINDS if getattr(rule, k) is not None]
            if len(kinds) != 1:
                got = f"got {', '.join(kinds)}" if kinds else "got none"
                raise InvalidParameter(
                    f"rules[{i}] ({rule.name!r}) needs exactly one of {', '.join(RULE_KINDS)}; "
                    f"{got}",
                    field=f"rules[{i}]",
                )
            _check_condition(rule, f"rules[{i}].{kinds[0]}")
            if rule.name in seen:
                raise InvalidParameter(
                    f"rules[{i}]: the name {rule.name!r} is used twice; rule names identify "
                    "alerts, so each must be unique",
                    field=f"rules[{i}].name",
                )
            seen.add(rule.name)
        for i, target in enumerate(self.notify):
            if (target.webhook is None) == (not target.log):
                raise InvalidParameter(
                    f"notify[{i}] needs exactly one of webhook: URL or log: true",
                    field=f"notify[{i}]",
                )
            if target.secret_env is not None and target.webhook is None:
                raise InvalidParameter(
                    f"notify[{i}]: secret_env signs webhooks; this target has none",
                    field=f"notify[{i}].secret_env",
                )
        return self

    def slice_columns(self) -> tuple[str, ...]:
        """The input columns metric rules slice by (what the window must group on)."""
        found = {
            r.metric.slice.partition("=")[0].strip()
            for r in self.rules
            if r.metric is not None and r.metric.slice is not None
        }
        return tuple(sorted(found)) if found else ()

    def metric_names(self) -> tuple[str, ...]:
        """The live metrics the rules read."""
        return tuple(sorted({r.metric.name for r in self.rules if r.metric}))


def _check_condition(rule: RuleSpec, field: str) -> None:
    condition = rule.condition
    kind = rule.kind
    needs_bounds = kind not in ("feature_drift", "prediction_drift")
    if needs_bounds and not condition.bounded():
        raise InvalidParameter(
            f"{field} ({rule.name!r}) needs a bound: above: x or below: x", field=field
        )
    above, below = condition.above, condition.below
    if above is not None and below is not None and below >= above:
        raise InvalidParameter(
            f"{field}: below ({below}) must be less than above ({above}): the rule "
            "breaches outside the band between them",
            field=field,
        )
    if isinstance(condition, FeatureDriftRule) and condition.feature and condition.features:
        raise InvalidParameter(f"{field}: give feature or features, not both", field=field)
    if kind in ("drift_share", "error_rate", "feedback_coverage"):
        for bound in (condition.above, condition.below):
            if bound is not None and not 0 <= bound <= 1:
                raise InvalidParameter(
                    f"{field}: {kind} is a share from 0 to 1; the bound {bound} never decides",
                    field=field,
                )


def parse_rules(source: str | bytes | Mapping[str, Any], *, label: str = "rules") -> MonitorSpec:
    """A rules spec from YAML (or JSON) text or an already parsed mapping; a bad one
    raises ``InvalidParameter`` naming the key (with a did-you-mean for a misspelt key)."""
    body: Any = source
    if isinstance(source, bytes | str):
        import yaml

        text = source.decode("utf-8") if isinstance(source, bytes) else source
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"{label} is not valid YAML: {exc}", field="rules") from None
    return parse_spec(MonitorSpec, body, label=label)


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule on one set of labels in one window."""

    rule: RuleSpec
    labels: tuple[tuple[str, str], ...]
    breached: bool | None  # None: unknown, ``detail`` says why
    value: float | None
    threshold: float | None
    detail: str

    @property
    def name(self) -> str:
        return self.rule.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, as stored with the evaluation."""
        return {
            "rule": self.rule.name,
            "kind": self.rule.kind,
            "labels": dict(self.labels),
            "breached": self.breached,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
            "severity": self.rule.severity,
        }


def evaluate_rules(
    spec: MonitorSpec | Sequence[RuleSpec], observations: Iterable[Observation]
) -> list[RuleOutcome]:
    """Every rule of ``spec`` on ``observations`` (one window's), in rule order."""
    rules = spec.rules if isinstance(spec, MonitorSpec) else tuple(spec)
    by_name: dict[str, list[Observation]] = {}
    for obs in observations:
        by_name.setdefault(obs.name, []).append(obs)
    out: list[RuleOutcome] = []
    for rule in rules:
        out.extend(_EVALUATORS[rule.kind](rule, by_name))
    return out


# -- one function per kind -------------------------------------------------------------

Found = dict[str, list[Observation]]


def _identity(obs: Observation, *drop: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in obs.labels if k not in NOT_IDENTITY and k not in drop)


def _unknown(
    rule: RuleSpec, labels: tuple[tuple[str, str], ...], why: str, value: float | None = None
) -> RuleOutcome:
    return RuleOutcome(rule, labels, None, value, None, f"unknown: {why}")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _rows(obs: Observation) -> str:
    return "" if obs.count is None else f" ({obs.count} rows)"


def _against_bounds(
    rule: RuleSpec, obs: Observation, subject: str, labels: tuple[tuple[str, str], ...]
) -> RuleOutcome:
    """``obs.value`` against the rule's above/below (the value is known)."""
    bounds = rule.condition
    value = obs.value
    assert value is not None
    if bounds.above is not None and value > bounds.above:
        detail = f"{subject} is {_fmt(value)}, above {_fmt(bounds.above)}{_rows(obs)}"
        return RuleOutcome(rule, labels, True, value, bounds.above, detail)
    if bounds.below is not None and value < bounds.below:
        detail = f"{subject} is {_fmt(value)}, below {_fmt(bounds.below)}{_rows(obs)}"
        return RuleOutcome(rule, labels, True, value, bounds.below, detail)
    limits = []
    if bounds.below is not None:
        limits.append(f">= {_fmt(bounds.below)}")
    if bounds.above is not None:
        limits.append(f"<= {_fmt(bounds.above)}")
    threshold = bounds.above if bounds.above is not None else bounds.below
    detail = f"{subject} is {_fmt(value)}, within {' and '.join(limits)}{_rows(obs)}"
    return RuleOutcome(rule, labels, False, value, threshold, detail)


def _simple(rule: RuleSpec, found: Found) -> list[RuleOutcome]:
    """latency_p99_ms, error_rate, feedback_coverage, requests: one outcome per labels."""
    kind = rule.kind
    matching = found.get(kind, [])
    if not matching:
        return [_unknown(rule, (), f"no {kind} observation in the window")]
    out = []
    for obs in matching:
        labels = _identity(obs)
        if obs.value is None:
            out.append(_unknown(rule, labels, _reason(obs, kind)))
        else:
            out.append(_against_bounds(rule, obs, _subject(kind, labels), labels))
    return out


def _reason(obs: Observation, subject: str) -> str:
    if obs.reason:
        return obs.reason
    if obs.count == 0:
        return f"{subject}: no rows in the window"
    return f"{subject} could not be computed"


def _subject(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return name
    return f"{name}{{{', '.join(f'{k}={v}' for k, v in labels)}}}"


def _drifted(obs: Observation) -> bool | None:
    """A drift observation's own verdict: its ``drifted`` label when it has one (the
    column's verdict, which also counts a drifted missing rate), else its score against
    its method's threshold as ``comparison.py`` judges it (a p-value below, a distance at
    or above)."""
    flag = obs.label("drifted")
    if flag is not None:
        return flag.lower() in ("true", "1", "yes")
    if obs.value is None or obs.threshold is None:
        return None
    if obs.label("method") in P_VALUE_METHODS:
        return obs.value < obs.threshold
    return obs.value >= obs.threshold


def _drift_verdict(
    rule: RuleSpec, obs: Observation, subject: str, labels: tuple[tuple[str, str], ...]
) -> RuleOutcome:
    bounded = rule.condition.bounded()
    if obs.value is None and (bounded or obs.label("drifted") is None):
        return _unknown(rule, labels, _reason(obs, subject))
    if bounded:
        return _against_bounds(rule, obs, f"{subject} score", labels)
    drifted = _drifted(obs)
    method = obs.label("method") or "its method"
    if drifted is None:
        return _unknown(rule, labels, f"{subject} has no threshold to judge by", obs.value)
    word = "drifted" if drifted else "did not drift"
    score = "no score" if obs.value is None else f"{method} score {_fmt(obs.value)}"
    against = "" if obs.threshold is None else f" vs threshold {_fmt(obs.threshold)}"
    why = f" ({obs.reason})" if obs.reason else ""
    detail = f"{subject} {word}: {score}{against}{why}{_rows(obs)}"
    return RuleOutcome(rule, labels, drifted, obs.value, obs.threshold, detail)


def _feature_drift(rule: RuleSpec, found: Found) -> list[RuleOutcome]:
    condition = rule.feature_drift
    assert condition is not None
    wanted = (condition.feature,) if condition.feature else condition.features
    observed = found.get("feature_drift", [])
    out = []
    seen = set()
    for obs in observed:
        feature = obs.label("feature")
        if wanted is not None and feature not in wanted:
            continue
        seen.add(feature)
        out.append(_drift_verdict(rule, obs, f"feature {feature!r}", _identity(obs)))
    for feature in wanted or ():
        if feature not in seen:
            why = f"feature {feature!r} is not in the window's drift results"
            out.append(_unknown(rule, (("feature", feature),), why))
    if not out:
        out.append(_unknown(rule, (), "no feature drift in the window (no reference profile?)"))
    return out


def _prediction_drift(rule: RuleSpec, found: Found) -> list[RuleOutcome]:
    observed = found.get("prediction_drift", [])
    if not observed:
        why = "no prediction drift in the window (no reference profile of the predictions?)"
        return [_unknown(rule, (), why)]
    return [_drift_verdict(rule, obs, "predictions", _identity(obs)) for obs in observed]


def _drift_share(rule: RuleSpec, found: Found) -> list[RuleOutcome]:
    condition = rule.drift_share
    assert condition is not None
    if condition.features is None:
        observed = found.get("drift_share", [])
        if not observed:
            why = "no drift_share observation in the window (no reference profile?)"
            return [_unknown(rule, (), why)]
        out = []
        for obs in observed:
            labels = _identity(obs)
            if obs.value is None:
                out.append(_unknown(rule, labels, _reason(obs, "drift_share")))
            else:
                out.append(_against_bounds(rule, obs, _subject("drift_share", labels), labels))
        return out
    # The share among the named features, per group of the other labels (variant, ...).
    groups: dict[tuple[tuple[str, str], ...], dict[str, Observation]] = {}
    for obs in found.get("feature_drift", []):
        feature = obs.label("feature")
        if feature in condition.features:
            groups.setdefault(_identity(obs, "feature"), {})[str(feature)] = obs
    if not groups:
        groups[()] = {}
    out = []
    for labels, by_feature in groups.items():
        missing = [f for f in condition.features if f not in by_feature]
        verdicts = {f: _drifted(o) for f, o in by_feature.items()}
        undecided = sorted(f for f, v in verdicts.items() if v is None)
        if missing or undecided:
            parts = []
            if missing:
                parts.append(f"not in the window's drift results: {', '.join(missing)}")
            if undecided:
                parts.append(f"no verdict for: {', '.join(undecided)}")
            out.append(_unknown(rule, labels, "; ".join(parts)))
            continue
        drifted = sorted(f for f, v in verdicts.items() if v)
        share = len(drifted) / len(condition.features)
        obs = Observation("drift_share", share, labels)
        outcome = _against_bounds(rule, obs, _subject("drift_share", labels), labels)
        named = f" (drifted: {', '.join(drifted)})" if drifted else ""
        out.append(
            RuleOutcome(
                rule,
                labels,
                outcome.breached,
                share,
                outcome.threshold,
                f"{outcome.detail}, {len(drifted)} of {len(condition.features)}{named}",
            )
        )
    return out


def _metric(rule: RuleSpec, found: Found) -> list[RuleOutcome]:
    condition = rule.metric
    assert condition is not None
    where = "" if condition.slice is None else f" for slice {condition.slice}"
    out = []
    for obs in found.get("metric", []):
        if obs.label("metric") != condition.name or not _slice_matches(condition, obs):
            continue
        if condition.variant is not None and obs.label("variant") != condition.variant:
            continue
        labels = _identity(obs)
        subject = _subject(condition.name, tuple((k, v) for k, v in labels if k != "metric"))
        if obs.value is None:
            out.append(_unknown(rule, labels, _reason(obs, subject)))
        elif (
            condition.min_count is not None
            and obs.count is not None
            and obs.count < condition.min_count
        ):
            why = (
                f"{subject} rests on {obs.count} rows with feedback, fewer than "
                f"min_count {condition.min_count}"
            )
            out.append(_unknown(rule, labels, why, obs.value))
        else:
            out.append(_against_bounds(rule, obs, subject, labels))
    if not out:
        expected: tuple[tuple[str, str], ...] = (("metric", condition.name),)
        if condition.slice is not None and not condition.slice.endswith("*"):
            expected = (*expected, ("slice", _normal_slice(condition.slice)))
        why = f"no observation of metric {condition.name!r}{where} in the window"
        out.append(_unknown(rule, expected, why))
    return out


def _slice_matches(condition: MetricRule, obs: Observation) -> bool:
    found = obs.label("slice")
    wanted = condition.slice
    if wanted is None:
        return found is None
    if found is None:
        return False
    column, _, value = wanted.partition("=")
    if value.strip() == "*":
        return found.partition("=")[0].strip() == column.strip()
    return _normal_slice(found) == _normal_slice(wanted)


def _normal_slice(text: str) -> str:
    column, _, value = text.partition("=")
    return f"{column.strip()}={value.strip()}"


_EVALUATORS: dict[str, Any] = {
    "drift_share": _drift_share,
    "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift,
    "metric": _metric,
    "latency_p99_ms": _simple,
    "error_rate": _simple,
    "feedback_coverage": _simple,
    "requests": _simple,
}
