"""Column verdicts: a reference profile against a current summary, by the rule in
``modelyard.monitoring.drift``'s docstring (a test on small samples, an effect size on large
ones; the missing rate judged on its own).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from modelyard.errors import InvalidParameter
from modelyard.monitoring import statistics as st
from modelyard.monitoring.profiles import (
    COARSE_BINS,
    CategoricalProfile,
    NumericalProfile,
    ReferenceProfile,
)
from modelyard.monitoring.results import (
    CATEGORICAL,
    NUMERICAL,
    ColumnDrift,
    DriftReport,
    Histogram,
)
from modelyard.monitoring.summaries import CategoricalSummary, CurrentSummary, NumericalSummary

#: Below this many values on the smaller side a column is judged by a test, above by an
#: effect size (missing rates: by rows).
SMALL_SAMPLE = 5_000
#: A categorical effect size also needs this many values per category (beyond the first):
#: below it the Jensen–Shannon distance of two samples of one distribution exceeds ~0.05.
VALUES_PER_CATEGORY = 150
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chi2": 0.05,
    "wasserstein": 0.1,
    "jensen_shannon": 0.1,
    "psi": 0.2,
}
PVALUE_METHODS = frozenset({"ks", "chi2"})
METHODS = {
    NUMERICAL: ("ks", "wasserstein", "psi", "jensen_shannon"),
    CATEGORICAL: ("chi2", "psi", "jensen_shannon"),
}
SCORE_OF = {
    "ks": "ks_pvalue",
    "wasserstein": "wasserstein_norm",
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
    "chi2": "chi2_pvalue",
}
#: The missing rate: a two-proportion test below SMALL_SAMPLE rows, Cohen's h above.
MISSING_PVALUE = 0.05
MISSING_EFFECT = 0.2
#: Values needed on each side to compare distributions at all.
MIN_VALUES = 2
#: Categories a histogram shows by name (the largest on either side); the rest are "(other)".
HISTOGRAM_CATEGORIES = 30
LABEL_OTHER = "(other)"
LABEL_UNSEEN = "(unseen)"


def compare_summary(
    reference: ReferenceProfile,
    current: CurrentSummary,
    *,
    method: dict[str, str] | None = None,
    threshold: dict[str, float] | None = None,
    share: float = 0.5,
) -> DriftReport:
    """The ``DriftReport`` of ``current`` against ``reference`` (see ``profiles.compare``)."""
    if not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise InvalidParameter(f"share must be in (0, 1], not {share!r}", field="share")
    names = list(current.columns)
    methods = _check_methods(reference, names, method or {})
    thresholds = _check_thresholds(names, threshold or {})
    if current.rows == 0:
        raise InvalidParameter(
            "the current data has no rows: there is nothing to compare (an empty window?)",
            field="current",
        )
    columns: dict[str, ColumnDrift] = {}
    errors: dict[str, str] = {}
    for name in names:
        if name in current.errors:
            errors[name] = current.errors[name]
            continue
        summary = current.columns[name]
        outcome = _column(name, summary, methods.get(name), thresholds.get(name))
        if isinstance(outcome, str):
            errors[name] = outcome
        else:
            columns[name] = outcome
    total = len(columns) + len(errors)
    drifted = sum(col.drifted for col in columns.values()) + len(errors)
    share_drifted = drifted / total if total else 0.0
    return DriftReport(
        columns=columns,
        share_drifted=share_drifted,
        dataset_drifted=share_drifted >= share,
        share_threshold=float(share),
        reference_rows=reference.rows,
        current_rows=current.rows,
        errors=errors,
    )


def _check_methods(
    reference: ReferenceProfile, names: list[str], method: dict[str, str]
) -> dict[str, str]:
    if not isinstance(method, dict):
        raise InvalidParameter("method must map column names to methods", field="method")
    for name, chosen in method.items():
        if name not in names:
            raise InvalidParameter(
                f"method names column {name!r}, which is not compared", field=f"method.{name}"
            )
        kind = reference.columns[name].kind
        if chosen not in METHODS[kind]:
            raise InvalidParameter(
                f"method {chosen!r} for column {name!r} is not a {kind} method; use one of "
                f"{', '.join(METHODS[kind])}",
                field=f"method.{name}",
            )
    return method


def _check_thresholds(names: list[str], threshold: dict[str, float]) -> dict[str, float]:
    if not isinstance(threshold, dict):
        raise InvalidParameter("threshold must map column names to numbers", field="threshold")
    for name, value in threshold.items():
        if name not in names:
            raise InvalidParameter(
                f"threshold names column {name!r}, which is not compared",
                field=f"threshold.{name}",
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and value > 0)
        ):
            raise InvalidParameter(
                f"threshold for column {name!r} must be a positive number, not {value!r}",
                field=f"threshold.{name}",
            )
    return threshold


def _column(
    name: str,
    summary: NumericalSummary | CategoricalSummary,
    method: str | None,
    threshold: float | None,
) -> ColumnDrift | str:
    profile = summary.profile
    if profile.values < MIN_VALUES:
        return (
            f"column {name!r} has {profile.values} value(s) in the reference ({profile.rows} "
            f"rows): too few to compare against (at least {MIN_VALUES})"
        )
    missing = _missing(profile.missing, profile.rows, summary.missing, summary.rows)
    if summary.values < MIN_VALUES:
        if not missing["drifted"]:
            return (
                f"column {name!r} has {summary.values} value(s) in the current data "
                f"({summary.rows} rows): too few to compare (at least {MIN_VALUES})"
            )
        return _verdict(
            name,
            profile,
            summary,
            method or _default_method(profile, summary, 0),
            threshold,
            {"missing_pvalue": missing["pvalue"], "missing_effect": missing["effect"]},
            missing,
            None,
            values_known=False,
        )
    if isinstance(summary, NumericalSummary):
        assert isinstance(profile, NumericalProfile)
        scores, histogram = _numerical_scores(profile, summary)
    else:
        assert isinstance(profile, CategoricalProfile)
        scores, histogram = _categorical_scores(profile, summary)
    scores["missing_pvalue"] = missing["pvalue"]
    scores["missing_effect"] = missing["effect"]
    chosen = method or _default_method(profile, summary, int(scores.pop("_categories", 0)))
    return _verdict(name, profile, summary, chosen, threshold, scores, missing, histogram)


def _default_method(
    profile: NumericalProfile | CategoricalProfile,
    summary: NumericalSummary | CategoricalSummary,
    categories: int,
) -> str:
    n = min(profile.values, summary.values)
    if profile.kind == NUMERICAL:
        return "ks" if n < SMALL_SAMPLE else "wasserstein"
    if n < SMALL_SAMPLE or n < VALUES_PER_CATEGORY * max(categories - 1, 1):
        return "chi2"
    return "jensen_shannon"


def _missing(ref_missing: int, ref_rows: int, cur_missing: int, cur_rows: int) -> dict[str, Any]:
    ref_rate = ref_missing / ref_rows if ref_rows else 0.0
    cur_rate = cur_missing / cur_rows if cur_rows else 0.0
    pvalue = st.two_proportions(ref_missing, ref_rows, cur_missing, cur_rows)
    effect = st.cohens_h(ref_rate, cur_rate)
    if min(ref_rows, cur_rows) < SMALL_SAMPLE:
        drifted = pvalue < MISSING_PVALUE
    else:
        drifted = effect >= MISSING_EFFECT
    return {
        "reference": ref_rate,
        "current": cur_rate,
        "pvalue": pvalue,
        "effect": effect,
        "drifted": bool(drifted),
    }


def _numerical_scores(
    profile: NumericalProfile, summary: NumericalSummary
) -> tuple[dict[str, float], Histogram]:
    sigma = max(profile.std, 1e-9 * max(1.0, abs(profile.mean)))
    ks_statistic, ks_pvalue = st.ks_two_sample(profile.sample, np.sort(summary.sample))
    lows, highs = _slot_bounds(profile, summary)
    ref_points = _bin_means(profile.sums, profile.counts, lows, highs)
    cur_points = _bin_means(summary.sums, summary.counts, lows, highs)
    ref_used, cur_used = profile.counts > 0, summary.counts > 0
    distance = st.wasserstein(
        _in_sigmas(ref_points[ref_used], profile.mean, sigma),
        profile.counts[ref_used].astype(np.float64),
        _in_sigmas(cur_points[cur_used], profile.mean, sigma),
        summary.counts[cur_used].astype(np.float64),
    )
    starts = _coarse_starts(profile.counts)
    ref_coarse = np.add.reduceat(profile.counts, starts)
    cur_coarse = np.add.reduceat(summary.counts, starts)
    edges = [float(lows[s]) for s in starts] + [float(highs[-1])]
    labels = [f"[{lo:.4g}, {hi:.4g})" for lo, hi in itertools.pairwise(edges)]
    labels[-1] = labels[-1][:-1] + "]"  # the last bin holds its upper edge (the maximum)
    histogram = Histogram(
        kind=NUMERICAL,
        labels=tuple(labels),
        edges=tuple(edges),
        reference=tuple((ref_coarse / ref_coarse.sum()).tolist()),
        current=tuple((cur_coarse / cur_coarse.sum()).tolist()),
    )
    scores = {
        "ks_statistic": ks_statistic,
        "ks_pvalue": ks_pvalue,
        "wasserstein_norm": distance,
        "psi": st.psi(ref_coarse, cur_coarse),
        "jensen_shannon": st.jensen_shannon(ref_coarse, cur_coarse),
        "mean_shift": (summary.mean - profile.mean) / sigma,
        "std_ratio": summary.std / profile.std if profile.std > 0 else math.nan,
    }
    return scores, histogram


def _in_sigmas(points: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """Points in reference standard deviations from its mean, capped at ±1e300 so that a
    current value far past a tiny spread scores a huge distance, not an overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = points / sigma - mean / sigma
    return np.clip(np.nan_to_num(scaled, nan=0.0), -1e300, 1e300)


def _slot_bounds(
    profile: NumericalProfile, summary: NumericalSummary
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of each slot: below the reference's minimum the current's
    minimum, above its maximum the current's maximum."""
    edges = profile.edges
    lows = np.concatenate([[min(summary.min, edges[0])], edges])
    highs = np.concatenate([edges, [max(summary.max, edges[-1])]])
    return lows, highs


def _bin_means(
    sums: np.ndarray, counts: np.ndarray, lows: np.ndarray, highs: np.ndarray
) -> np.ndarray:
    """Each slot's mean value, kept inside the slot (a sum of values near 1e308 overflows)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        means = sums / np.maximum(counts, 1)
        middle = lows / 2 + highs / 2
    means = np.where(np.isfinite(means), means, middle)
    return np.clip(means, lows, highs)


def _coarse_starts(counts: np.ndarray) -> np.ndarray:
    """First slot of each of ~COARSE_BINS groups of equal reference mass."""
    cumulative = np.cumsum(counts) / max(int(counts.sum()), 1)
    cuts = np.searchsorted(cumulative, np.arange(1, COARSE_BINS) / COARSE_BINS, side="left") + 1
    starts = np.unique(np.concatenate([[0], cuts]))
    return starts[starts < len(counts)]


def _categorical_scores(
    profile: CategoricalProfile, summary: CategoricalSummary
) -> tuple[dict[str, float], Histogram]:
    unseen = summary.unseen
    ref_counts = np.concatenate([profile.counts, [profile.other, 0]])
    cur_counts = np.concatenate([summary.counts, [summary.outside - (unseen or 0), unseen or 0]])
    used = (ref_counts + cur_counts) > 0
    chi2, chi2_pvalue = st.chi2_homogeneity(ref_counts[used], cur_counts[used])
    scores = {
        "chi2_statistic": chi2,
        "chi2_pvalue": chi2_pvalue,
        "psi": st.psi(ref_counts[used], cur_counts[used]),
        "jensen_shannon": st.jensen_shannon(ref_counts[used], cur_counts[used]),
        "unseen_share": unseen / summary.values if unseen is not None else math.nan,
        "_categories": float(np.count_nonzero(used)),
    }
    return scores, _categorical_histogram(profile, ref_counts, cur_counts)


def _categorical_histogram(
    profile: CategoricalProfile, ref_counts: np.ndarray, cur_counts: np.ndarray
) -> Histogram:
    k = len(profile.categories)
    ref_share = ref_counts / max(int(ref_counts.sum()), 1)
    cur_share = cur_counts / max(int(cur_counts.sum()), 1)
    named = np.argsort(-np.maximum(ref_share[:k], cur_share[:k]), kind="stable")
    shown = np.sort(named[:HISTOGRAM_CATEGORIES])
    labels = [profile.categories[i] for i in shown]
    ref = ref_share[shown].tolist()
    cur = cur_share[shown].tolist()
    rest = np.ones(k, bool)
    rest[shown] = False
    other_ref = float(ref_share[:k][rest].sum() + ref_share[k])
    other_cur = float(cur_share[:k][rest].sum() + cur_share[k])
    if other_ref or other_cur:
        labels.append(LABEL_OTHER)
        ref.append(other_ref)
        cur.append(other_cur)
    if cur_share[k + 1]:
        labels.append(LABEL_UNSEEN)
        ref.append(0.0)
        cur.append(float(cur_share[k + 1]))
    return Histogram(CATEGORICAL, tuple(labels), None, tuple(ref), tuple(cur))


def _verdict(
    name: str,
    profile: NumericalProfile | CategoricalProfile,
    summary: NumericalSummary | CategoricalSummary,
    method: str,
    threshold: float | None,
    scores: dict[str, float],
    missing: dict[str, Any],
    histogram: Histogram | None,
    *,
    values_known: bool = True,
) -> ColumnDrift:
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    score = scores.get(SCORE_OF[method], math.nan)
    if not values_known or math.isnan(score):
        values_drifted = False
    elif method in PVALUE_METHODS:
        values_drifted = score < limit
    else:
        values_drifted = score >= limit
    drifted = values_drifted or missing["drifted"]
    parts = []
    if values_known:
        parts.append(_describe_values(profile, summary, scores))
        parts.append(_describe_method(method, score, limit, values_drifted))
    else:
        parts.append(
            "no current values to compare"
            if summary.values == 0
            else f"only {summary.values} current value(s) to compare"
        )
    if missing["drifted"] or missing["current"] or missing["reference"]:
        parts.append(f"missing {missing['reference']:.1%} → {missing['current']:.1%}")
    sentence = ("drifted: " if drifted else "no drift: ") + "; ".join(p for p in parts if p)
    return ColumnDrift(
        column=name,
        kind=profile.kind,
        method=method,
        score=float(score),
        threshold=limit,
        drifted=bool(drifted),
        values_drifted=bool(values_drifted),
        missing_drifted=bool(missing["drifted"]),
        reference_rows=profile.rows,
        current_rows=summary.rows,
        reference_missing=float(missing["reference"]),
        current_missing=float(missing["current"]),
        scores={k: float(v) for k, v in scores.items()},
        verdict=sentence,
        histogram=histogram,
    )


def _describe_method(method: str, score: float, limit: float, drifted: bool) -> str:
    names = {
        "ks": "KS p-value",
        "chi2": "χ² p-value",
        "wasserstein": "Wasserstein",
        "psi": "PSI",
        "jensen_shannon": "Jensen–Shannon",
    }
    if method in PVALUE_METHODS:
        sign = "<" if drifted else "≥"
        return f"{names[method]} {score:.3g} {sign} {limit:g}"
    sign = "≥" if drifted else "<"
    unit = " σ" if method == "wasserstein" else ""
    return f"{names[method]} {score:.3f}{unit} {sign} {limit:g}"


def _describe_values(
    profile: NumericalProfile | CategoricalProfile,
    summary: NumericalSummary | CategoricalSummary,
    scores: dict[str, float],
) -> str:
    if isinstance(summary, NumericalSummary):
        assert isinstance(profile, NumericalProfile)
        if profile.std == 0:
            return (
                f"the reference is constant at {profile.mean:.6g}; current mean {summary.mean:.6g}"
            )
        text = f"mean {profile.mean:.4g} → {summary.mean:.4g} ({scores['mean_shift']:+.2f} σ)"
        ratio = scores["std_ratio"]
        if math.isfinite(ratio):
            text += f", spread ×{ratio:.2f}"
            same_moments = abs(scores["mean_shift"]) < 0.1 and abs(ratio - 1) < 0.1
            if same_moments and scores["wasserstein_norm"] >= DEFAULT_THRESHOLDS["wasserstein"]:
                text += ", shape changed"
        return text
    assert isinstance(profile, CategoricalProfile)
    parts = []
    unseen = scores.get("unseen_share", math.nan)
    if math.isfinite(unseen) and unseen > 0:
        top = max(summary.unseen_labels.items(), key=lambda kv: kv[1], default=None)
        named = f" (most: {top[0]!r})" if top else ""
        parts.append(f"unseen categories {unseen:.1%} of values{named}")
    ref_share = profile.counts / max(profile.values, 1)
    cur_share = summary.counts / max(summary.values, 1)
    if len(ref_share):
        i = int(np.argmax(np.abs(cur_share - ref_share)))
        parts.append(f"{profile.categories[i]!r} {ref_share[i]:.1%} → {cur_share[i]:.1%}")
    return ", ".join(parts)
