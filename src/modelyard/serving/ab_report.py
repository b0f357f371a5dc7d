"""The A/B report: did variant ``b`` do better than ``a``, by how much, how sure are we —
overall and in every slice, so a gain in one product category cannot hide a loss in another.

Outcomes come from feedback (``POST /feedback``) joined to the prediction log by request
id (and row). The metric is the mean outcome ``value`` (conversion, revenue) or the
``accuracy`` of predictions against feedback labels.

For each group: the mean with a 95 % confidence interval (Wilson's for proportions, which
stays inside [0, 1] on small samples; Student's t otherwise); for the difference b − a,
Welch's t-test (unequal variances) or, for proportions, the two-proportion z-test, with
the difference's confidence interval (Welch's t; Wald's for proportions). Slice p-values
are adjusted with Holm's method (many slices make a "significant" one likely by chance),
and a slice whose significant effect has the opposite sign of the overall effect is
reported as a warning.

The t and normal distributions come from SciPy (the ``serving`` extra): ``scipy.special``'s
``stdtr``/``stdtrit``/``ndtr``/``ndtri``, the functions ``scipy.stats.t`` and
``scipy.stats.norm`` evaluate — scipy.stats itself takes ~0.6 s to import, scipy.special
~0.15 s. The statistics are the ones SciPy's tests compute, and the tests hold them to
``scipy.stats.ttest_ind(equal_var=False)`` (p-value and interval), ``chi2_contingency``
without correction (the same p-value as the two-proportion z-test) and
``binomtest(...).proportion_ci(method="wilson")``.

Outcomes of one sticky key are correlated (one customer, many requests); the tests treat
feedback items as independent, which understates uncertainty when a few keys dominate.

>>> report = ab_report(predictions, feedback, metric="value", slice_by="category")  # doctest: +SKIP
>>> print(report.render())                                                          # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import InvalidParameter, MissingExtra

METRICS = ("value", "accuracy")


@dataclass(frozen=True, slots=True)
class GroupStats:
    n: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """``treatment`` against ``control`` in one slice (or overall, ``slice`` None)."""

    slice: str | None
    control: GroupStats
    treatment: GroupStats
    difference: float
    ci_low: float
    ci_high: float
    relative: float | None
    p_value: float
    p_adjusted: float
    significant: bool
    test: str


@dataclass
class ABReport:
    deployment: str
    metric: str
    control: str
    treatment: str
    alpha: float
    overall: Comparison | None
    slices: list[Comparison] = field(default_factory=list)
    slice_by: str | None = None
    warnings: list[str] = field(default_factory=list)
    unmatched_feedback: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [
            f"A/B report for {self.deployment}: {self.treatment} vs {self.control}, metric "
            f"{self.metric}, alpha {self.alpha:g}"
        ]
        rows = ([self.overall] if self.overall else []) + self.slices
        for c in rows:
            where = "overall" if c.slice is None else f"{self.slice_by}={c.slice}"
            verdict = "significant" if c.significant else "not significant"
            rel = f" ({c.relative:+.1%})" if c.relative is not None else ""
            lines.append(
                f"  {where}: {self.control} {c.control.mean:.4g} (n={c.control.n}) → "
                f"{self.treatment} {c.treatment.mean:.4g} (n={c.treatment.n}); "
                f"Δ {c.difference:+.4g}{rel}, 95% CI [{c.ci_low:+.4g}, {c.ci_high:+.4g}], "
                f"p={c.p_adjusted:.3g} ({c.test}), {verdict}"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.unmatched_feedback:
            lines.append(f"  {self.unmatched_feedback} feedback items matched no logged prediction")
        return "\n".join(lines)


def _special() -> Any:
    try:
        from scipy import special
    except ImportError as exc:
        raise MissingExtra("scipy", "serving", "The A/B report") from exc
    return special


@functools.cache
def _z(q: float = 0.975) -> float:
    """The standard normal quantile (``scipy.stats.norm.ppf``)."""
    return float(_special().ndtri(q))


def _t_quantile(df: float, q: float = 0.975) -> float:
    """Student's t quantile (``scipy.stats.t.ppf``)."""
    return float(_special().stdtrit(df, q))


def _two_sided_normal(z: float) -> float:
    """P(|Z| ≥ |z|) for a standard normal Z (``2 * scipy.stats.norm.sf(|z|)``)."""
    return 2.0 * float(_special().ndtr(-abs(z)))


def _two_sided_t(t: float, df: float) -> float:
    """P(|T| ≥ |t|) for Student's T with ``df`` degrees of freedom."""
    return 2.0 * float(_special().stdtr(df, -abs(t)))


def _is_binary(values: np.ndarray) -> bool:
    return bool(values.size) and bool(np.all((values == 0) | (values == 1)))


def group_stats(values: np.ndarray) -> GroupStats:
    n = int(values.size)
    if n == 0:
        return GroupStats(0, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if _is_binary(values):  # Wilson score interval
        z = _z()
        centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return GroupStats(n, mean, centre - half, centre + half)
    if n < 2:
        return GroupStats(n, mean, math.nan, math.nan)
    half = _t_quantile(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return GroupStats(n, mean, mean - half, mean + half)


def compare(control: np.ndarray, treatment: np.ndarray, label: str | None = None) -> Comparison:
    """Treatment minus control: difference, its 95 % CI and a two-sided p-value."""
    a, b = group_stats(control), group_stats(treatment)
    diff = b.mean - a.mean
    relative = diff / a.mean if a.n and a.mean not in (0.0,) and math.isfinite(a.mean) else None
    if a.n < 2 or b.n < 2:
        return Comparison(label, a, b, diff, math.nan, math.nan, relative, 1.0, 1.0, False, "n<2")
    if _is_binary(control) and _is_binary(treatment):
        pooled = (control.sum() + treatment.sum()) / (a.n + b.n)
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n))
        p = _two_sided_normal(diff / se0) if se0 > 0 else (1.0 if diff == 0 else 0.0)
        se = math.sqrt(a.mean * (1 - a.mean) / a.n + b.mean * (1 - b.mean) / b.n)
        half = _z() * se
        test = "two-proportion z"
    else:
        va, vb = float(control.var(ddof=1)) / a.n, float(treatment.var(ddof=1)) / b.n
        se = math.sqrt(va + vb)
        if se == 0:
            p, half = (1.0 if diff == 0 else 0.0), 0.0
        else:
            df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
            p = _two_sided_t(diff / se, df)
            half = _t_quantile(df) * se
        test = "Welch t"
    p = float(min(1.0, max(0.0, p)))
    return Comparison(label, a, b, diff, diff - half, diff + half, relative, p, p, False, test)


def _holm(comparisons: list[Comparison], alpha: float) -> list[Comparison]:
    order = sorted(range(len(comparisons)), key=lambda i: comparisons[i].p_value)
    m = len(comparisons)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * comparisons[i].p_value))
        adjusted[i] = running
    return [
        _with(c, p_adjusted=adjusted[i], significant=adjusted[i] < alpha)
        for i, c in enumerate(comparisons)
    ]


def _with(c: Comparison, **changes: Any) -> Comparison:
    from dataclasses import replace

    return replace(c, **changes)


def ab_report(
    predictions: Any,
    feedback: Any,
    *,
    deployment: str = "",
    metric: str = "value",
    slice_by: str | None = None,
    control: str = "a",
    treatment: str = "b",
    alpha: float = 0.05,
    min_slice: int = 10,
) -> ABReport:
    """The report from prediction-log rows and feedback rows (DataFrames)."""
    import pandas as pd

    if metric not in METRICS:
        raise InvalidParameter(f"metric must be one of {METRICS}, got {metric!r}", field="metric")
    served = predictions[(predictions["role"] == "primary") & (predictions["status"] == "ok")]
    served = served[served["variant"].isin([control, treatment])]
    served = served.drop_duplicates("request_id", keep="last")
    fb = feedback[feedback["value" if metric == "value" else "label"].notna()].copy()
    joined = fb.merge(
        served[["request_id", "variant", "inputs", "outputs"]],
        on="request_id",
        how="left",
        suffixes=("_fb", ""),
    )
    if "variant_fb" in joined:  # the receiving data plane knew the variant: use it
        joined["variant"] = joined["variant"].fillna(joined["variant_fb"])
    unmatched = int(joined["variant"].isna().sum())
    joined = joined[joined["variant"].notna()]
    if metric == "value":
        joined["outcome"] = joined["value"].astype(float)
    else:
        predicted = [
            _cell(o, int(r)) for o, r in zip(joined["outputs"], joined["row"], strict=True)
        ]
        joined["outcome"] = [
            float(str(_label(p)) == str(label)) if p is not None else np.nan
            for p, label in zip(predicted, joined["label"], strict=True)
        ]
        joined = joined[joined["outcome"].notna()]
    if slice_by is not None:
        joined["slice"] = [
            _field(i, int(r), slice_by)
            for i, r in zip(joined["inputs"], joined["row"], strict=True)
        ]
    report = ABReport(deployment, metric, control, treatment, alpha, None, slice_by=slice_by,
                      unmatched_feedback=unmatched)  # fmt: skip
    a = joined.loc[joined["variant"] == control, "outcome"].to_numpy(dtype=float)
    b = joined.loc[joined["variant"] == treatment, "outcome"].to_numpy(dtype=float)
    overall = compare(a, b)
    report.overall = _with(overall, significant=overall.p_value < alpha)
    if slice_by is None:
        return report
    slices = []
    for value, group in joined.groupby("slice", dropna=False, sort=True):
        sa = group.loc[group["variant"] == control, "outcome"].to_numpy(dtype=float)
        sb = group.loc[group["variant"] == treatment, "outcome"].to_numpy(dtype=float)
        if min(sa.size, sb.size) < min_slice:
            report.warnings.append(
                f"{slice_by}={value}: too few outcomes to compare ({sa.size} vs {sb.size}, "
                f"need {min_slice} each)"
            )
            continue
        slices.append(compare(sa, sb, str(value) if not pd.isna(value) else "<missing>"))
    report.slices = _holm(slices, alpha)
    direction = np.sign(report.overall.difference)
    for c in report.slices:
        if c.significant and np.sign(c.difference) != direction and direction != 0:
            gain = "gain" if direction > 0 else "loss"
            report.warnings.append(
                f"the overall {gain} hides a significant "
                f"{'loss' if c.difference < 0 else 'gain'} in {slice_by}={c.slice} "
                f"(Δ {c.difference:+.4g}, p={c.p_adjusted:.3g})"
            )
    return report


def _cell(outputs: Any, row: int) -> Any:
    if outputs is None or (isinstance(outputs, float) and math.isnan(outputs)):
        return None
    values = json.loads(outputs) if isinstance(outputs, str) else outputs
    return values[row] if isinstance(values, list) and row < len(values) else None


def _label(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _field(inputs: Any, row: int, name: str) -> Any:
    """Column ``name`` of row ``row`` of logged inputs (columnar ``{name: [...]}``, or a
    list of records)."""
    if not isinstance(inputs, str):
        return None
    logged = json.loads(inputs)
    if isinstance(logged, dict):
        values = logged.get(name)
        if not isinstance(values, list) or not values:
            return None
        return values[row] if row < len(values) else values[0]
    if not isinstance(logged, list) or not logged:
        return None
    record = logged[row] if row < len(logged) else logged[0]
    return record.get(name) if isinstance(record, dict) else None


def ab_report_for(
    artifacts: Any,
    feedback_store: Any,
    deployment: str,
    *,
    since_ms: int | None = None,
    **options: Any,
) -> ABReport:
    """The report for a deployment, from its prediction log and stored feedback."""
    from modelyard.serving.prediction_log import read_predictions

    predictions = read_predictions(artifacts, deployment, since_ms=since_ms)
    feedback = feedback_store.frame(deployment, since_ms)
    if predictions.empty or feedback.empty:
        raise InvalidParameter(
            f"deployment {deployment!r} has no logged predictions with feedback yet "
            f"({len(predictions)} predictions, {len(feedback)} feedback items)",
            field="deployment",
        )
    return ab_report(predictions, feedback, deployment=deployment, **options)
