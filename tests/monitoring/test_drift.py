"""drift(reference, current): what is flagged, what is not, and bad input said plainly.

The detection tests state issue 12's requirement: at large samples (an effect size decides)
a 0.01 σ shift is not flagged, and a 0.5 σ mean shift, a 1.6× spread, a change of skew at
equal mean and spread, a new category taking 15 % of rows and a category going from 60 %
to 30 % always are; at 1,000 rows (a test decides) the same large changes are flagged.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats

from modelyard.errors import InvalidParameter
from modelyard.monitoring import ReferenceProfile, drift
from modelyard.monitoring.comparison import SMALL_SAMPLE


def _standard(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def _tables(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A reference and a current table of n rows: one column per kind of change, and
    unchanged columns beside them."""
    rng = np.random.default_rng(seed)
    cats = np.array(["a", "b", "c", "d"])
    mix_ref = rng.choice(cats[:3], n, p=[0.6, 0.2, 0.2])
    mix_cur = rng.choice(cats[:3], n, p=[0.3, 0.35, 0.35])
    new_cur = rng.choice(cats, n, p=[0.85 * 0.5, 0.85 * 0.3, 0.85 * 0.2, 0.15])
    skewed = rng.lognormal(0, 0.5, n) if n < SMALL_SAMPLE else rng.gamma(4.0, size=n)
    reference = {
        "tiny_shift": rng.normal(size=n),
        "shift": rng.normal(size=n),
        "scale": rng.normal(size=n),
        "skew": rng.normal(size=n),
        "same": rng.normal(10, 3, size=n),
        "mix": mix_ref,
        "new_category": rng.choice(cats[:3], n, p=[0.5, 0.3, 0.2]),
        "same_category": rng.choice(cats, n),
    }
    current = {
        "tiny_shift": rng.normal(0.01, size=n),
        "shift": rng.normal(0.5, size=n),
        "scale": rng.normal(0, 1.6, size=n),
        "skew": _standard(skewed),
        "same": rng.normal(10, 3, size=n),
        "mix": mix_cur,
        "new_category": new_cur,
        "same_category": rng.choice(cats, n),
    }
    return reference, current


CHANGED = {"shift", "scale", "skew", "mix", "new_category"}


@pytest.mark.parametrize("n", [1_000, 10_000, 200_000])
def test_real_changes_are_flagged_and_negligible_ones_are_not(n: int) -> None:
    reference, current = _tables(n)
    report = drift(reference, current)
    flagged = {name for name, col in report.columns.items() if col.drifted}
    if n >= 10_000:  # a 0.01 σ shift is noise to a test at 1,000 rows too, but by chance
        assert "tiny_shift" not in flagged
    assert flagged - {"tiny_shift"} == CHANGED
    assert report.errors == {}
    assert report.share_drifted == pytest.approx(len(flagged) / 8)


def test_the_method_follows_the_sample_size() -> None:
    small = drift(*_tables(1_000)).columns
    large = drift(*_tables(10_000)).columns
    assert (small["shift"].method, small["mix"].method) == ("ks", "chi2")
    assert (large["shift"].method, large["mix"].method) == ("wasserstein", "jensen_shannon")
    assert large["shift"].threshold == 0.1 and small["shift"].threshold == 0.05


@pytest.mark.slow
def test_at_a_million_rows_per_side_every_change_is_flagged_and_a_tiny_shift_is_not() -> None:
    reference, current = _tables(1_000_000, seed=5)
    report = drift(reference, current)
    flagged = {name for name, col in report.columns.items() if col.drifted}
    assert flagged == CHANGED
    # what each effect size says, so the margins to the 0.1 threshold are visible
    scores = {name: round(col.score, 2) for name, col in report.columns.items()}
    assert scores["tiny_shift"] <= 0.02
    assert scores["shift"] >= 0.45 and scores["scale"] >= 0.4 and scores["skew"] >= 0.12
    assert scores["mix"] >= 0.2 and scores["new_category"] >= 0.2


def test_at_large_samples_a_p_value_would_flag_what_the_effect_size_ignores() -> None:
    """Why large samples use an effect size: KS rejects a 0.01 σ shift at 500,000 rows."""
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=500_000), rng.normal(0.01, size=500_000)
    assert stats.ks_2samp(ref, cur).pvalue < 0.05
    column = drift({"x": ref}, {"x": cur}).columns["x"]
    assert column.method == "wasserstein" and not column.drifted


@pytest.mark.parametrize("n", [1_000, 50_000])
def test_a_column_whose_values_kept_their_shape_but_15_percent_went_missing_has_drifted(
    n: int,
) -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=n)
    current = rng.normal(size=n)
    current[rng.random(n) < 0.15] = np.nan
    column = drift({"x": values}, {"x": current}).columns["x"]
    assert column.drifted and column.missing_drifted and not column.values_drifted
    assert column.current_missing == pytest.approx(0.15, abs=0.02)
    assert "missing 0.0% → 1" in column.verdict


def test_a_small_change_in_the_missing_rate_is_not_drift() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=50_000), rng.normal(size=50_000)
    ref[:2_500], cur[:2_700] = np.nan, np.nan  # 5.0 % → 5.4 %
    assert not drift({"x": ref}, {"x": cur}).columns["x"].missing_drifted


def test_infinite_values_count_as_missing() -> None:
    rng = np.random.default_rng(8)
    cur = rng.normal(size=20_000)
    cur[:3_000] = np.inf
    column = drift({"x": rng.normal(size=20_000)}, {"x": cur}).columns["x"]
    assert column.current_missing == pytest.approx(0.15)
    assert column.drifted and column.missing_drifted


def test_scores_agree_with_scipy_on_the_raw_values() -> None:
    rng = np.random.default_rng(9)
    ref, cur = rng.gamma(2.0, size=30_000), rng.gamma(2.3, 1.1, size=30_000)
    column = drift({"x": ref}, {"x": cur}).columns["x"]
    exact = stats.wasserstein_distance(ref, cur) / ref.std()
    assert column.scores["wasserstein_norm"] == pytest.approx(exact, abs=0.005)
    hist = column.histogram
    assert hist is not None and hist.edges is not None and len(hist.edges) == len(hist.labels) + 1
    inner = np.array(hist.edges[1:-1])
    for values, shares in ((ref, hist.reference), (cur, hist.current)):
        counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(shares))
        assert np.allclose(counts / len(values), shares)


def test_a_report_is_json_without_nan() -> None:
    reference, current = _tables(2_000)
    current["shift"][:] = np.nan
    report = drift(reference, current)
    text = json.dumps(report.to_dict(), allow_nan=False)
    body = json.loads(text)
    assert body["columns"]["shift"]["score"] is None  # no values to score: unknown, not NaN
    assert body["columns"]["shift"]["drifted"] is True
    assert set(body) >= {"columns", "share_drifted", "dataset_drifted", "errors"}
    assert set(body["columns"]["mix"]) >= {"drifted", "method", "score", "threshold", "verdict"}


def test_share_and_dataset_drifted() -> None:
    reference, current = _tables(10_000)
    assert drift(reference, current).dataset_drifted  # 5 of 8 >= 0.5
    strict = drift(reference, current, share=0.7)
    assert strict.share_drifted == pytest.approx(5 / 8) and not strict.dataset_drifted
    with pytest.raises(InvalidParameter, match="share"):
        drift(reference, current, share=0)


def test_columns_restrict_the_check() -> None:
    reference, current = _tables(2_000)
    report = drift(reference, current, columns=["same", "mix"])
    assert list(report.columns) == ["same", "mix"]
    with pytest.raises(InvalidParameter, match="'nope'") as raised:
        drift(reference, current, columns=["nope"])
    assert raised.value.field == "nope"


# -- overrides ---------------------------------------------------------------------------


def test_method_and_threshold_can_be_chosen_per_column() -> None:
    reference, current = _tables(20_000)
    report = drift(
        reference, current, method={"shift": "psi", "mix": "chi2"}, threshold={"shift": 5.0}
    )
    shift = report.columns["shift"]
    assert (shift.method, shift.threshold) == ("psi", 5.0)
    assert shift.score == shift.scores["psi"] and not shift.drifted
    assert report.columns["mix"].method == "chi2" and report.columns["mix"].drifted


def test_an_unknown_method_names_the_column() -> None:
    reference, current = _tables(1_000)
    with pytest.raises(InvalidParameter, match="column 'price', which is not compared"):
        drift(reference, current, method={"price": "ks"})
    with pytest.raises(InvalidParameter, match="'shift'") as raised:
        drift(reference, current, method={"shift": "magic"})
    assert raised.value.field == "method.shift"
    with pytest.raises(InvalidParameter, match="not a categorical method"):
        drift(reference, current, method={"mix": "ks"})
    for bad in (-1, 0, math.nan, "high", True):
        with pytest.raises(InvalidParameter, match="'shift'"):
            drift(reference, current, threshold={"shift": bad})


# -- bad input ---------------------------------------------------------------------------


def test_an_empty_current_table_is_a_clear_error() -> None:
    reference, _ = _tables(1_000)
    empty = {name: values[:0] for name, values in reference.items()}
    with pytest.raises(InvalidParameter, match="no rows") as raised:
        drift(reference, empty)
    assert raised.value.field == "current"


def test_an_all_null_current_column_is_drifted_and_says_so() -> None:
    rng = np.random.default_rng(1)
    current = pd.DataFrame({"x": [np.nan] * 500, "y": [None] * 500})
    reference = pd.DataFrame({"x": rng.normal(size=500), "y": rng.choice(["a", "b"], 500)})
    report = drift(reference, current)
    for name in ("x", "y"):
        column = report.columns[name]
        assert column.drifted and column.missing_drifted and not column.values_drifted
        assert "no current values" in column.verdict and math.isnan(column.score)
    assert report.share_drifted == 1


def test_a_column_null_on_both_sides_is_an_error_not_a_pass() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 50, "ok": np.arange(50.0)})
    report = drift(frame, frame)
    assert "x" in report.errors and "too few" in report.errors["x"]
    assert report.share_drifted == 0.5


def test_a_column_missing_from_the_current_data_is_named_and_counts_as_drifted() -> None:
    reference, current = _tables(1_000)
    del current["same"]
    report = drift(reference, current)
    assert report.errors["same"] == "column 'same' is missing from the current data"
    assert "same" not in report.columns
    assert report.share_drifted == pytest.approx(6 / 8)  # 5 changed + the missing one


def test_a_changed_type_is_named() -> None:
    reference, current = _tables(1_000)
    current["same"] = current["same"].astype(str)
    current["mix"] = np.arange(1_000)
    report = drift(reference, current)
    assert "changed type" in report.errors["same"]
    assert "numerical" in report.errors["same"] and "categorical" in report.errors["same"]
    assert "changed type" in report.errors["mix"]


def test_a_reference_of_one_row_cannot_be_tested_and_says_so() -> None:
    reference = {"x": np.array([1.0]), "c": np.array(["a"])}
    current = {"x": np.arange(100.0), "c": np.array(["a", "b"] * 50)}
    report = drift(reference, current)
    assert report.columns == {}
    assert set(report.errors) == {"x", "c"}
    assert "1 value(s) in the reference" in report.errors["x"]
    assert report.dataset_drifted


def test_huge_numbers_are_compared_without_overflow() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=20_000) * 1e300
    same = drift({"x": ref}, {"x": rng.normal(size=20_000) * 1e300}).columns["x"]
    moved = drift({"x": ref}, {"x": (rng.normal(size=20_000) + 0.5) * 1e300}).columns["x"]
    assert not same.drifted and moved.drifted
    assert all(math.isfinite(v) for v in moved.scores.values())
    assert moved.scores["mean_shift"] == pytest.approx(0.5, abs=0.05)


def test_a_constant_reference_flags_any_change() -> None:
    same = drift({"x": np.full(10_000, 3.0)}, {"x": np.full(10_000, 3.0)}).columns["x"]
    moved = drift({"x": np.full(10_000, 3.0)}, {"x": np.full(10_000, 3.5)}).columns["x"]
    assert not same.drifted and moved.drifted


def test_unseen_categories_are_counted_and_named() -> None:
    rng = np.random.default_rng(6)
    reference = {"c": rng.choice(["a", "b"], 20_000)}
    current = {"c": np.where(rng.random(20_000) < 0.15, "zz", rng.choice(["a", "b"], 20_000))}
    column = drift(reference, current).columns["c"]
    assert column.scores["unseen_share"] == pytest.approx(0.15, abs=0.01)
    assert "'zz'" in column.verdict and column.drifted
    assert column.histogram is not None and column.histogram.labels[-1] == "(unseen)"


def test_pandas_arrow_and_dict_tables_give_one_answer() -> None:
    reference, current = _tables(3_000)
    from_dicts = drift(reference, current)
    from_pandas = drift(pd.DataFrame(reference), pd.DataFrame(current))
    from_arrow = drift(pa.table(reference), pa.table(current))
    for other in (from_pandas, from_arrow):
        assert {n: c.score for n, c in other.columns.items()} == pytest.approx(
            {n: c.score for n, c in from_dicts.columns.items()}
        )


def test_booleans_and_timestamps_are_compared() -> None:
    rng = np.random.default_rng(2)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 30, 2_000), unit="D")
    reference = pd.DataFrame({"flag": rng.random(2_000) < 0.5, "day": days})
    current = pd.DataFrame({"flag": rng.random(2_000) < 0.9, "day": days + pd.Timedelta(days=60)})
    report = drift(reference, current)
    assert report.columns["flag"].kind == "categorical" and report.columns["flag"].drifted
    assert report.columns["day"].kind == "numerical" and report.columns["day"].drifted


def test_a_stored_profile_gives_the_same_verdicts_as_the_table() -> None:
    reference, current = _tables(20_000)
    profile = ReferenceProfile.from_bytes(
        ReferenceProfile.from_table(reference, source="train").to_bytes()
    )
    direct, stored = drift(reference, current), drift(profile, current)
    assert {n: c.score for n, c in stored.columns.items()} == pytest.approx(
        {n: c.score for n, c in direct.columns.items()}
    )


def test_a_reference_of_no_rows_is_said_per_column_and_survives_bytes() -> None:
    empty = {"x": np.zeros(0), "c": np.array([], dtype=str)}
    profile = ReferenceProfile.from_bytes(ReferenceProfile.from_table(empty, source="e").to_bytes())
    report = drift(profile, {"x": np.arange(10.0), "c": np.array(["a"] * 10)})
    assert set(report.errors) == {"x", "c"} and report.dataset_drifted


def test_a_summary_is_a_current_side_of_its_own_profile_only() -> None:
    reference, current = _tables(2_000)
    profile = ReferenceProfile.from_table(reference, source="train")
    summary = profile.summarizer()
    summary.update(current)
    assert drift(profile, summary).columns["shift"].drifted
    with pytest.raises(InvalidParameter, match="another reference profile"):
        drift(reference, summary)


def test_a_change_of_shape_at_the_same_mean_and_spread_is_named() -> None:
    reference, current = _tables(20_000)
    verdict = drift(reference, current).columns["skew"].verdict
    assert verdict.startswith("drifted:") and "shape changed" in verdict


def test_an_all_null_column_of_no_type_is_missing_values_not_a_changed_type() -> None:
    rng = np.random.default_rng(1)
    reference = {"x": rng.normal(size=300), "c": rng.choice(["a", "b"], 300)}
    for current in (
        pd.DataFrame({"x": [None] * 300, "c": [None] * 300}, dtype=object),
        pa.table({"x": pa.nulls(300), "c": pa.nulls(300)}),
    ):
        report = drift(reference, current)
        assert report.errors == {}
        assert all(c.missing_drifted and c.current_missing == 1 for c in report.columns.values())


def test_large_and_dictionary_strings_are_categories() -> None:
    labels = ["a", "b", "c"] * 500
    reference = pa.table({"c": pa.array(labels, pa.large_string())})
    current = pa.table({"c": pa.array(labels).dictionary_encode()})
    column = drift(reference, current).columns["c"]
    assert column.kind == "categorical" and not column.drifted


def test_new_labels_beyond_the_top_categories_are_unseen_not_rare() -> None:
    """A column of ids replaced by new ids has drifted, though the reference kept only its
    top categories: its label sketch tells new labels from rare old ones."""
    n = 30_000
    rng = np.random.default_rng(3)
    reference = {"id": np.char.add("u", rng.integers(0, 20_000, n).astype(str))}
    old_ids = {"id": rng.choice(reference["id"], n)}
    new_ids = {"id": np.char.add("v", rng.integers(0, 20_000, n).astype(str))}
    profile = ReferenceProfile.from_bytes(
        ReferenceProfile.from_table(reference, source="t", top_k=100).to_bytes()
    )
    same, moved = drift(profile, old_ids).columns["id"], drift(profile, new_ids).columns["id"]
    assert same.scores["unseen_share"] == 0 and not same.drifted
    assert moved.scores["unseen_share"] == pytest.approx(1, abs=0.02) and moved.drifted
    assert "unseen categories" in moved.verdict and "'v" in moved.verdict


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n, k: rng.normal(0.3 * k, 1 + 0.2 * k, n),
        lambda rng, n, k: rng.lognormal(0.1 * k, 1, n),
        lambda rng, n, k: rng.poisson(3 + k, n).astype(float),
    ],
)
def test_binned_wasserstein_and_sample_ks_match_scipy_on_the_values(draw) -> None:
    rng = np.random.default_rng(12)
    ref, cur = draw(rng, 40_000, 0), draw(rng, 40_000, 1)
    column = drift({"x": ref}, {"x": cur}).columns["x"]
    exact = stats.wasserstein_distance(ref, cur) / ref.std()
    assert column.scores["wasserstein_norm"] == pytest.approx(exact, abs=0.005)
    small = drift({"x": ref[:3_000]}, {"x": cur[:2_000]}).columns["x"]  # samples hold all
    want = stats.ks_2samp(ref[:3_000], cur[:2_000], method="asymp")
    assert small.scores["ks_statistic"] == pytest.approx(want.statistic)
    assert small.scores["ks_pvalue"] == pytest.approx(want.pvalue, rel=0.01, abs=1e-6)


_VALUES = hs.one_of(
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.sampled_from([0.0, 1.0, 1e308, -1e308, 5e-324]),
)


@settings(max_examples=80, deadline=None)
@given(
    ref_x=hs.lists(_VALUES, min_size=1, max_size=40),
    cur_x=hs.lists(_VALUES, min_size=1, max_size=40),
    ref_c=hs.lists(hs.one_of(hs.none(), hs.sampled_from(["a", "b", "ü", ""])), min_size=1),
    cur_c=hs.lists(hs.one_of(hs.none(), hs.text(max_size=3)), min_size=1),
)
def test_any_values_get_a_verdict_or_a_named_error_never_a_crash(ref_x, cur_x, ref_c, cur_c):
    n, m = min(len(ref_x), len(ref_c)), min(len(cur_x), len(cur_c))
    reference = pd.DataFrame({"x": np.array(ref_x[:n]), "c": pd.Series(ref_c[:n], dtype=object)})
    current = pd.DataFrame({"x": np.array(cur_x[:m]), "c": pd.Series(cur_c[:m], dtype=object)})
    stored = ReferenceProfile.from_table(reference, source="r").to_bytes()
    report = drift(ReferenceProfile.from_bytes(stored), current)
    assert set(report.columns) | set(report.errors) == {"x", "c"}
    for column in report.columns.values():
        assert column.verdict.startswith(("drifted: ", "no drift: "))
    json.dumps(report.to_dict(), allow_nan=False)
