"""Traffic policies: what a deployment revision says about who answers which request.

A policy is plain data, stored as JSON on the revision and read by every data plane:

* ``variants``: the versions that answer users, each with a ``weight`` in percent (they
  sum to 100). A variant at weight 0 is a *standby*: it stays loaded, so a blue-green
  switch back is instant;
* ``sticky_key``: when set (A/B), a variant is chosen by a hash of that request field, so
  a customer always sees the same variant; otherwise choice is random by weight;
* ``canary``: a stepped schedule for the candidate's weight (5 → 25 → 50 → 100 % every
  ``interval_s``) and the rules that roll it back automatically;
* ``shadows``: versions that receive a copy of ``percent`` % of requests; their answers
  are logged and never returned;
* ``contract``: a data contract every request must meet (``reject``) or is checked
  against (``flag``: served, with the violation logged).

>>> p = TrafficPolicy.single("churn", 3)
>>> p.variants[0].weight
100.0
>>> TrafficPolicy.from_dict(p.to_dict()) == p
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.specs import check_keys

DEFAULT_CANARY_STEPS = (5.0, 25.0, 50.0, 100.0)
DEFAULT_CANARY_INTERVAL_S = 600.0
CONTRACT_MODES = ("reject", "flag")
FEEDBACK_METRICS = ("accuracy", "mean")


def _number(value: object, where: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameter(f"{where} must be a number, got {value!r}", field=where)
    if not low <= float(value) <= high:
        raise InvalidParameter(
            f"{where} must be between {low:g} and {high:g}, got {value!r}", field=where
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class Variant:
    """One model version behind a deployment, and its share of user traffic in percent."""

    name: str
    model: str
    version: int
    weight: float = 100.0

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    @classmethod
    def from_dict(cls, body: Mapping[str, Any], where: str) -> Variant:
        name, model, version = body.get("name"), body.get("model"), body.get("version")
        if not isinstance(name, str) or not name:
            raise InvalidParameter(f"{where}.name must be a non-empty string", field=where)
        if not isinstance(model, str) or not model:
            raise InvalidParameter(f"{where}.model must be a model name", field=where)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidParameter(f"{where}.version must be a positive integer", field=where)
        weight = _number(body.get("weight", 100.0), f"{where}.weight", high=100.0)
        return cls(name, model, version, weight)


@dataclass(frozen=True, slots=True)
class Shadow:
    """A version that gets a mirrored copy of ``percent`` % of requests, never answering."""

    name: str
    model: str
    version: int
    percent: float = 100.0

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True, slots=True)
class RollbackRules:
    """When a canary is rolled back automatically. Compared over the last ``window_s``
    seconds, once both sides have ``min_requests`` requests:

    * the canary's error rate exceeds the primary's by more than ``max_error_rate_increase``
      (an absolute difference: 0.02 = two percentage points);
    * its p95 latency exceeds ``max_p95_ratio`` × the primary's (and the primary's plus
      ``min_p95_increase_ms``, so that sub-millisecond noise never triggers a rollback);
    * with ``feedback_metric`` set, the live metric from feedback (``accuracy``: label
      equals prediction; ``mean``: mean outcome value) falls below the primary's by more
      than ``max_feedback_drop``, once each side has ``min_feedback`` outcomes.
    """

    max_error_rate_increase: float = 0.02
    max_p95_ratio: float = 1.5
    min_p95_increase_ms: float = 5.0
    min_requests: int = 50
    window_s: float = 300.0
    feedback_metric: str | None = None
    max_feedback_drop: float = 0.05
    min_feedback: int = 30

    @classmethod
    def from_dict(cls, body: Mapping[str, Any] | None) -> RollbackRules:
        body = dict(body or {})
        check_keys(
            body,
            tuple(cls.__dataclass_fields__),
            label="rules",
            prefix="rules.",
            noun="rollback rule",
        )
        metric = body.get("feedback_metric")
        if metric is not None and metric not in FEEDBACK_METRICS:
            raise InvalidParameter(
                f"feedback_metric must be one of {FEEDBACK_METRICS}, got {metric!r}",
                field="rules.feedback_metric",
            )
        rules = cls(**body)
        for name in ("max_error_rate_increase", "max_feedback_drop"):
            _number(getattr(rules, name), f"rules.{name}", high=1.0)
        _number(rules.max_p95_ratio, "rules.max_p95_ratio", low=1.0)
        _number(rules.min_p95_increase_ms, "rules.min_p95_increase_ms")
        _number(rules.window_s, "rules.window_s", low=1.0)
        _number(rules.min_requests, "rules.min_requests", low=1)
        _number(rules.min_feedback, "rules.min_feedback", low=1)
        return rules


@dataclass(frozen=True, slots=True)
class CanarySchedule:
    """The candidate's weight over time: ``steps[i]`` % from ``started_at_ms + i·interval``."""

    primary: str
    candidate: str
    steps: tuple[float, ...] = DEFAULT_CANARY_STEPS
    interval_s: float = DEFAULT_CANARY_INTERVAL_S
    started_at_ms: int = 0
    rules: RollbackRules = field(default_factory=RollbackRules)
    auto_promote: bool = False

    def step_at(self, now_ms: int) -> int:
        """The index of the step in force at ``now_ms`` (the last one stays)."""
        elapsed = max(0.0, (now_ms - self.started_at_ms) / 1000.0)
        return min(len(self.steps) - 1, int(elapsed // self.interval_s))

    def weight_at(self, now_ms: int) -> float:
        return self.steps[self.step_at(now_ms)]

    def finished_at_ms(self) -> int:
        """When the last step starts (the candidate then takes its final share)."""
        return self.started_at_ms + int((len(self.steps) - 1) * self.interval_s * 1000)


@dataclass(frozen=True, slots=True)
class ContractHook:
    """A data contract applied to requests: ``reject`` answers 400, ``flag`` serves and
    records the violation in the prediction log."""

    spec: dict[str, Any]
    mode: str = "reject"


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    variants: tuple[Variant, ...]
    kind: str = "single"  # single | blue_green | canary | ab (what the last change made)
    sticky_key: str | None = None
    salt: str = ""
    canary: CanarySchedule | None = None
    shadows: tuple[Shadow, ...] = ()
    contract: ContractHook | None = None

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants] + [s.name for s in self.shadows]
        if not self.variants:
            raise InvalidParameter("a traffic policy needs at least one variant", field="variants")
        if len(set(names)) != len(names):
            raise InvalidParameter(f"variant names must be unique, got {names}", field="variants")
        total = sum(v.weight for v in self.variants)
        if abs(total - 100.0) > 1e-6:
            raise InvalidParameter(
                f"variant weights must sum to 100, got {total:g} "
                f"({', '.join(f'{v.name}={v.weight:g}' for v in self.variants)})",
                field="variants",
            )
        if self.canary is not None:
            for role in (self.canary.primary, self.canary.candidate):
                if role not in names:
                    raise InvalidParameter(
                        f"canary names variant {role!r}, which the policy lacks", field="canary"
                    )
        if self.contract is not None and self.contract.mode not in CONTRACT_MODES:
            raise InvalidParameter(
                f"contract mode must be one of {CONTRACT_MODES}, got {self.contract.mode!r}",
                field="contract.mode",
            )

    # -- building -----------------------------------------------------------------------

    @classmethod
    def single(cls, model: str, version: int, name: str = "primary") -> TrafficPolicy:
        return cls((Variant(name, model, version, 100.0),))

    def with_changes(self, **changes: Any) -> TrafficPolicy:
        return replace(self, **changes)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise InvalidParameter(
            f"no variant {name!r}; this deployment has {[v.name for v in self.variants]}",
            field="variant",
        )

    @property
    def serving(self) -> tuple[Variant, ...]:
        """Variants that get user traffic now (weight > 0, or a running canary)."""
        live = {self.canary.primary, self.canary.candidate} if self.canary else set()
        return tuple(v for v in self.variants if v.weight > 0 or v.name in live)

    def versions(self) -> list[tuple[str, int]]:
        """Every (model, version) a data plane must load, variants and shadows."""
        found = [(v.model, v.version) for v in self.variants]
        found += [(s.model, s.version) for s in self.shadows]
        return list(dict.fromkeys(found))

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "variants": [asdict(v) for v in self.variants],
            "shadows": [asdict(s) for s in self.shadows],
            "sticky_key": self.sticky_key,
            "salt": self.salt,
            "canary": None,
            "contract": None,
        }
        if self.canary is not None:
            canary = asdict(self.canary)
            canary["steps"] = list(self.canary.steps)
            body["canary"] = canary
        if self.contract is not None:
            body["contract"] = {"spec": self.contract.spec, "mode": self.contract.mode}
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> TrafficPolicy:
        if not isinstance(body, Mapping):
            raise InvalidParameter("a traffic policy must be a JSON object", field="policy")
        variants = tuple(
            Variant.from_dict(v, f"variants[{i}]") for i, v in enumerate(body.get("variants", ()))
        )
        shadows = tuple(_shadow(s, f"shadows[{i}]") for i, s in enumerate(body.get("shadows", ())))
        canary = body.get("canary")
        contract = body.get("contract")
        return cls(
            variants=variants,
            kind=str(body.get("kind", "single")),
            sticky_key=body.get("sticky_key"),
            salt=str(body.get("salt", "")),
            canary=None if canary is None else _canary(canary),
            shadows=shadows,
            contract=None
            if contract is None
            else ContractHook(dict(contract["spec"]), str(contract.get("mode", "reject"))),
        )


def _shadow(body: Mapping[str, Any], where: str) -> Shadow:
    base = Variant.from_dict({**body, "weight": 0}, where)
    return Shadow(
        base.name, base.model, base.version, _number(body.get("percent", 100), where, high=100)
    )


def _canary(body: Mapping[str, Any]) -> CanarySchedule:
    steps = check_steps(body.get("steps", DEFAULT_CANARY_STEPS))
    return CanarySchedule(
        primary=str(body["primary"]),
        candidate=str(body["candidate"]),
        steps=steps,
        interval_s=_number(body.get("interval_s", DEFAULT_CANARY_INTERVAL_S), "interval_s"),
        started_at_ms=int(body.get("started_at_ms", 0)),
        rules=RollbackRules.from_dict(body.get("rules")),
        auto_promote=bool(body.get("auto_promote", False)),
    )


def check_steps(steps: Sequence[object]) -> tuple[float, ...]:
    """Canary steps: increasing percentages in (0, 100]."""
    values = tuple(_number(s, "steps", high=100.0) for s in steps)
    if not values or values[0] <= 0 or any(b <= a for a, b in pairwise(values)):
        raise InvalidParameter(
            f"canary steps must be increasing percentages above 0, got {list(steps)}",
            field="steps",
        )
    return values
