"""Behavioural tests (CheckList-style): what a model must do, not only how well it scores.

* ``Invariance``: a perturbation that should not matter (noise on a store code, a
  reformatted name) must not move a prediction by more than ``epsilon`` (a classifier's
  label must not change);
* ``Directional``: a change with a known effect (raising the price) must move predictions
  the expected way (demand must not increase), within ``tolerance``;
* ``MinimumFunctionality``: hand-written cases with their expected output or bounds.

A change is ``{add: x}``, ``{multiply: x}``, ``{set: value}``, ``{replace: {old: new}}``,
or a function ``DataFrame -> DataFrame``. The same tests can be declared in a gate policy
(``from_spec``). Tests run on at most ``max_rows`` sampled rows.

>>> import pandas as pd
>>> X = pd.DataFrame({"price": [1.0, 2.0, 3.0]})
>>> def demand(X):  # falls as the price rises
...     return 10 - X["price"]
>>> test = Directional("price_up", "price", {"multiply": 1.1}, expect="not_increase")
>>> [(result.name, result.passed) for result in run_tests([test], demand, X, "regression")]
[('price_up', True)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.errors import InvalidParameter

Change = Mapping[str, Any] | Callable[[Any], Any]
EXPECTATIONS = ("increase", "decrease", "not_increase", "not_decrease")
_CHANGES = ("add", "multiply", "set", "replace")


@dataclass(frozen=True)
class Invariance:
    name: str
    column: str
    change: Change
    epsilon: float = 0.0
    kind: str = field(default="invariance", init=False)


@dataclass(frozen=True)
class Directional:
    name: str
    column: str
    change: Change
    expect: Literal["increase", "decrease", "not_increase", "not_decrease"] = "not_increase"
    tolerance: float = 0.0
    kind: str = field(default="directional", init=False)

    def __post_init__(self) -> None:
        if self.expect not in EXPECTATIONS:
            raise InvalidParameter(
                f"behavioural test {self.name!r}: expect must be one of "
                f"{', '.join(EXPECTATIONS)}, got {self.expect!r}",
                field="expect",
            )


@dataclass(frozen=True)
class MinimumFunctionality:
    """Cases (rows of features) whose predictions must equal ``expected`` (within
    ``tolerance``) or lie within [``min``, ``max``]."""

    name: str
    cases: Any  # a DataFrame or a list of dicts
    expected: Any = None
    min: float | None = None
    max: float | None = None
    tolerance: float = 0.0
    kind: str = field(default="minimum_functionality", init=False)


BehaviouralTest = Invariance | Directional | MinimumFunctionality


@dataclass(frozen=True, slots=True)
class BehaviourResult:
    name: str
    kind: str
    passed: bool
    failed_rows: int
    total_rows: int
    detail: str
    sample: tuple[dict[str, Any], ...] = ()


def from_spec(spec: Mapping[str, Any], where: str = "behaviour") -> BehaviouralTest:
    """A test from its YAML form: ``{name, kind, column, change, epsilon | expect, ...}``."""
    if not isinstance(spec, Mapping):
        raise InvalidParameter(f"{where} must be a mapping, got {spec!r}", field=where)
    kind = spec.get("kind")
    name = spec.get("name") or f"{kind}:{spec.get('column', '')}"
    allowed = {
        "invariance": {"name", "kind", "column", "change", "epsilon"},
        "directional": {"name", "kind", "column", "change", "expect", "tolerance"},
        "minimum_functionality": {"name", "kind", "cases", "expected", "min", "max", "tolerance"},
    }
    if kind not in allowed:
        raise InvalidParameter(
            f"{where}.kind must be one of {', '.join(allowed)}, got {kind!r}", field=f"{where}.kind"
        )
    unknown = set(spec) - allowed[kind]
    if unknown:
        raise InvalidParameter(
            f"{where}: unknown key(s) {sorted(unknown)} for a {kind} test", field=where
        )
    try:
        if kind == "invariance":
            return Invariance(
                name, spec["column"], _change(spec["change"], where), float(spec.get("epsilon", 0))
            )
        if kind == "directional":
            return Directional(
                name,
                spec["column"],
                _change(spec["change"], where),
                spec.get("expect", "not_increase"),
                float(spec.get("tolerance", 0)),
            )
        return MinimumFunctionality(
            name,
            spec["cases"],
            spec.get("expected"),
            spec.get("min"),
            spec.get("max"),
            float(spec.get("tolerance", 0)),
        )
    except KeyError as exc:
        raise InvalidParameter(f"{where} lacks {exc.args[0]!r}", field=where) from None


def _change(change: Any, where: str) -> Change:
    if callable(change):
        return change
    if not isinstance(change, Mapping) or len(change) != 1 or next(iter(change)) not in _CHANGES:
        raise InvalidParameter(
            f"{where}.change must be one of {{add: x}}, {{multiply: x}}, {{set: v}}, "
            f"{{replace: {{old: new}}}}, got {change!r}",
            field=f"{where}.change",
        )
    return change


def apply_change(frame: Any, column: str, change: Change) -> Any:
    """A copy of ``frame`` with ``change`` applied to ``column``."""
    if callable(change):
        return change(frame.copy())
    if column not in frame.columns:
        raise InvalidParameter(
            f"behavioural test column {column!r} is not in the data", field="column"
        )
    out = frame.copy()
    ((op, value),) = change.items()
    if op == "add":
        out[column] = out[column] + value
    elif op == "multiply":
        out[column] = out[column] * value
    elif op == "set":
        out[column] = value
    else:
        out[column] = out[column].replace(value)
    return out


def run_tests(
    tests: list[BehaviouralTest],
    predict: Callable[[Any], Any],
    X: Any,
    task: str,
    *,
    max_rows: int = 1_000,
    seed: int = 0,
) -> list[BehaviourResult]:
    """Run every test against ``predict`` (features in, one prediction per row out)."""
    base = X.sample(n=max_rows, random_state=seed) if len(X) > max_rows else X
    baseline = None
    results = []
    for test in tests:
        if isinstance(test, MinimumFunctionality):
            results.append(_minimum(test, predict, X, task))
            continue
        if baseline is None:
            baseline = _values(predict(base))
        changed = _values(predict(apply_change(base, test.column, test.change)))
        results.append(_compare(test, base, baseline, changed, task))
    return results


def _values(pred: Any) -> Any:
    import numpy as np

    return np.asarray(pred).reshape(len(pred), -1)[:, 0] if np.ndim(pred) > 1 else np.asarray(pred)


def _compare(test: Any, base: Any, before: Any, after: Any, task: str) -> BehaviourResult:
    import numpy as np

    if isinstance(test, Invariance):
        if task == "classification" or before.dtype.kind not in "fiu":
            bad = before != after
            detail = "label changed"
        else:
            bad = np.abs(after.astype(float) - before.astype(float)) > test.epsilon
            detail = f"|Δ| > {test.epsilon:g}"
    else:
        delta = after.astype(float) - before.astype(float)
        tol = test.tolerance
        bad = {
            "increase": delta <= tol,
            "decrease": delta >= -tol,
            "not_increase": delta > tol,
            "not_decrease": delta < -tol,
        }[test.expect]
        detail = f"expected {test.expect.replace('_', ' ')} (tolerance {tol:g})"
    positions = np.flatnonzero(bad)
    sample = tuple(
        {"row": _plain(base.index[i]), "before": _plain(before[i]), "after": _plain(after[i])}
        for i in positions[:5]
    )
    count = len(positions)
    return BehaviourResult(test.name, test.kind, count == 0, count, len(before), detail, sample)


def _minimum(
    test: MinimumFunctionality, predict: Callable[[Any], Any], X: Any, task: str
) -> BehaviourResult:
    import numpy as np
    import pandas as pd

    cases = test.cases if isinstance(test.cases, pd.DataFrame) else pd.DataFrame(list(test.cases))
    missing = [c for c in X.columns if c not in cases.columns]
    if missing:
        raise InvalidParameter(
            f"minimum-functionality test {test.name!r}: cases lack feature(s) {missing}",
            field="cases",
        )
    cases = cases[list(X.columns)].astype(X.dtypes.to_dict(), errors="ignore")
    got = _values(predict(cases))
    bad = np.zeros(len(cases), dtype=bool)
    if test.expected is not None:
        expected = np.asarray(
            test.expected if isinstance(test.expected, list) else [test.expected] * len(cases)
        )
        if task == "classification" or expected.dtype.kind not in "fiu":
            bad |= got != expected
        else:
            bad |= np.abs(got.astype(float) - expected.astype(float)) > test.tolerance
    if test.min is not None:
        bad |= got.astype(float) < test.min - test.tolerance
    if test.max is not None:
        bad |= got.astype(float) > test.max + test.tolerance
    sample = tuple({"case": int(i), "prediction": _plain(got[i])} for i in np.flatnonzero(bad)[:5])
    count = int(bad.sum())
    return BehaviourResult(
        test.name, test.kind, count == 0, count, len(cases), "cases with unexpected output", sample
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
