"""The A/B report: effects with confidence intervals and p-values that agree with SciPy,
and a slice whose loss is hidden by the overall gain is called out."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from modelyard.errors import MissingExtra
from modelyard.serving import ab_report as ab_report_module
from modelyard.serving.ab_report import ab_report, compare, group_stats


def test_welch_and_proportion_tests_match_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 300), rng.normal(10.5, 3, 250)
    c = compare(a, b)
    assert c.test == "Welch t"
    assert c.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-6)
    assert c.ci_low < c.difference < c.ci_high
    x, y = (rng.random(2000) < 0.10).astype(float), (rng.random(2000) < 0.13).astype(float)
    p = compare(x, y)
    assert p.test == "two-proportion z" and p.p_value < 0.01
    wilson = group_stats(np.array([1.0, 0.0, 0.0, 0.0]))
    assert 0 <= wilson.ci_low < 0.25 < wilson.ci_high <= 1


samples = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3)), min_size=2, max_size=60
)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on a constant group
@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_welch_p_value_and_interval_are_scipys(control, treatment):
    a, b = np.asarray(control), np.asarray(treatment)
    c = compare(a, b)
    if c.test != "Welch t" or (a.var() == 0 and b.var() == 0):
        return  # both groups 0/1 (the proportion test) or no spread (p is 0 or 1)
    expected = stats.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    low, high = expected.confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-9)
    for values, group in ((a, c.control), (b, c.treatment)):
        if values.var() > 0 and not np.all((values == 0) | (values == 1)):
            low, high = stats.t.interval(
                0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values)
            )
            assert (group.ci_low, group.ci_high) == pytest.approx((low, high), rel=1e-9)


counts = st.integers(2, 5_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@settings(max_examples=80, deadline=None)
@given(counts, counts)
def test_proportion_test_and_wilson_intervals_are_scipys(control, treatment):
    (na, ka), (nb, kb) = control, treatment
    a = np.r_[np.ones(ka), np.zeros(na - ka)]
    b = np.r_[np.ones(kb), np.zeros(nb - kb)]
    c = compare(a, b)
    assert c.test == "two-proportion z"
    if 0 < ka + kb < na + nb:  # the z-test is the 2x2 chi-square test without correction
        table = [[ka, na - ka], [kb, nb - kb]]
        expected = stats.chi2_contingency(table, correction=False).pvalue
        assert c.p_value == pytest.approx(expected, rel=1e-6, abs=1e-12)
    for (n, k), group in ((control, c.control), (treatment, c.treatment)):
        low, high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert (group.ci_low, group.ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-12)
    se = np.sqrt(ka / na * (1 - ka / na) / na + kb / nb * (1 - kb / nb) / nb)
    half = stats.norm.ppf(0.975) * se
    assert (c.ci_low, c.ci_high) == pytest.approx((c.difference - half, c.difference + half))


def test_without_scipy_the_report_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    ab_report_module._z.cache_clear()  # the quantile is kept once SciPy has answered
    with pytest.raises(MissingExtra, match=r"pip install 'modelyard\[serving\]'"):
        compare(np.array([1.0, 2.0, 4.0]), np.array([2.0, 3.0, 7.0]))
    with pytest.raises(MissingExtra, match="The A/B report needs the 'scipy' package"):
        group_stats(np.array([1.0, 0.0, 0.0]))


def synthetic(n: int = 4000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """b converts better in 'toys' and 'food' but worse in 'tools' (a hidden loss)."""
    rng = np.random.default_rng(seed)
    rate = {("a", "toys"): 0.10, ("b", "toys"): 0.20, ("a", "food"): 0.10,
            ("b", "food"): 0.20, ("a", "tools"): 0.30, ("b", "tools"): 0.15}  # fmt: skip
    predictions, feedback = [], []
    for i in range(n):
        variant = "a" if rng.random() < 0.5 else "b"
        category = ("toys", "food", "tools")[i % 3]
        rid = f"r{i}"
        predictions.append({"request_id": rid, "variant": variant, "role": "primary",
                            "status": "ok", "inputs": json.dumps([{"category": category}]),
                            "outputs": "[1]"})  # fmt: skip
        converted = float(rng.random() < rate[(variant, category)])
        feedback.append({"request_id": rid, "row": 0, "value": converted, "label": None,
                         "variant": None})  # fmt: skip
    return pd.DataFrame(predictions), pd.DataFrame(feedback)


def test_a_gain_overall_does_not_hide_a_loss_in_one_slice():
    predictions, feedback = synthetic()
    report = ab_report(predictions, feedback, deployment="web", slice_by="category")
    assert report.overall is not None and report.overall.difference > 0
    by_slice = {c.slice: c for c in report.slices}
    assert by_slice["tools"].difference < 0 and by_slice["tools"].significant
    assert by_slice["toys"].significant and by_slice["toys"].difference > 0
    assert any("hides a significant loss in category=tools" in w for w in report.warnings)
    assert all(c.p_adjusted >= c.p_value for c in report.slices)  # Holm
    text = report.render()
    assert "category=tools" in text and "95% CI" in text


def test_accuracy_from_labels_and_unmatched_feedback():
    predictions = pd.DataFrame({"request_id": ["r1", "r2", "r3", "r4"],
                                "variant": ["a", "a", "b", "b"], "role": "primary",
                                "status": "ok", "inputs": "[]",
                                "outputs": ["[1]", "[0]", "[1]", "[1]"]})  # fmt: skip
    feedback = pd.DataFrame({"request_id": ["r1", "r2", "r3", "r4", "zz"], "row": 0,
                             "value": None, "label": ["1", "1", "1", "1", "1"],
                             "variant": None})  # fmt: skip
    report = ab_report(predictions, feedback, metric="accuracy")
    assert report.overall.control.mean == 0.5 and report.overall.treatment.mean == 1.0
    assert report.unmatched_feedback == 1
