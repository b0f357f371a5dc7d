"""Splits: k-fold covers every row once; time-aware folds never train on the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidParameter
from modelyard.validation.splits import KFold, StratifiedKFold, TimeSeriesSplit, make_splitter


def test_kfold_validates_every_row_exactly_once():
    frame = pd.DataFrame({"x": range(103)})
    folds = KFold(5).split(frame, None)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(103))
    for f in folds:
        assert not set(f.train) & set(f.test)


def test_stratified_folds_keep_the_class_balance():
    y = np.array([0] * 90 + [1] * 10)
    folds = StratifiedKFold(5).split(pd.DataFrame({"y": y}), y)
    assert [int(y[f.test].sum()) for f in folds] == [2, 2, 2, 2, 2]


def test_time_split_expanding_with_gap():
    days = pd.date_range("2024-01-01", periods=50, freq="D")
    frame = pd.DataFrame({"day": np.repeat(days, 2)})
    folds = TimeSeriesSplit("day", n_splits=4, gap="3d").split(frame, None)
    assert len(folds) == 4
    for f in folds:
        train, test = frame["day"].iloc[f.train], frame["day"].iloc[f.test]
        assert test.min() - train.max() > pd.Timedelta("3d")
    assert folds[0].train_period[0] == "2024-01-01T00:00:00"
    assert len(folds[1].train) > len(folds[0].train)  # expanding


def test_sliding_window_trains_on_a_fixed_span():
    frame = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=100, freq="D")})
    folds = TimeSeriesSplit("day", 3, window="sliding", train_size="20d").split(frame, None)
    for f in folds:
        train = frame["day"].iloc[f.train]
        assert train.max() - train.min() < pd.Timedelta("20d")


@settings(max_examples=120, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 400), min_size=8, max_size=120),
    n_splits=st.integers(2, 6),
    gap_days=st.integers(0, 20),
    sliding=st.booleans(),
    window_days=st.integers(1, 200),
    test_days=st.one_of(st.none(), st.integers(1, 60)),
)
def test_time_split_never_trains_on_rows_later_than_the_validation_rows(
    offsets, n_splits, gap_days, sliding, window_days, test_days
):
    frame = pd.DataFrame(
        {"t": pd.Timestamp("2024-01-01") + pd.to_timedelta(offsets, unit="D")}
    ).sample(frac=1, random_state=0)  # order of rows must not matter
    splitter = TimeSeriesSplit(
        "t",
        n_splits,
        window="sliding" if sliding else "expanding",
        gap=f"{gap_days}d",
        train_size=f"{window_days}d" if sliding else None,
        test_size=f"{test_days}d" if test_days else None,
    )
    try:
        folds = splitter.split(frame, None)
    except InvalidParameter:
        return  # too few distinct times, or a fold left without training rows: refused
    times = frame["t"].to_numpy()
    seen_test: set[int] = set()
    for f in folds:
        train, test = times[f.train], times[f.test]
        assert len(train) and len(test)
        assert train.max() < test.min()  # never train on the future
        assert test.min() - train.max() > np.timedelta64(gap_days, "D")  # the gap holds
        if sliding:
            assert test.min() - train.min() <= np.timedelta64(gap_days + window_days, "D")
        assert not seen_test & set(f.test.tolist())  # validation blocks do not overlap
        seen_test |= set(f.test.tolist())


def test_a_time_column_that_is_not_a_time_is_named():
    frame = pd.DataFrame({"day": ["2024-01-01", "2024-01-02"] * 5, "store": range(10)})
    with pytest.raises(InvalidParameter, match=r"time column 'day' holds .* not times"):
        TimeSeriesSplit("day", 2).split(frame, None)
    with pytest.raises(InvalidParameter, match="time column 'when' is not in the data"):
        TimeSeriesSplit("when", 2).split(frame, None)


def test_bad_split_options_are_refused():
    with pytest.raises(InvalidParameter, match="sliding window needs train_size"):
        TimeSeriesSplit("day", 3, window="sliding")
    with pytest.raises(InvalidParameter, match="gap must be a duration"):
        TimeSeriesSplit("day", 3, gap="soon")
    with pytest.raises(InvalidParameter, match="n_splits must be an integer >= 2"):
        KFold(1).split(pd.DataFrame({"x": [1, 2]}), None)
    with pytest.raises(InvalidParameter, match="cv 'loo' is unknown"):
        make_splitter("loo", "regression")
    days = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=10, freq="D")})
    with pytest.raises(InvalidParameter, match="no training rows"):
        TimeSeriesSplit("day", 4, gap="30d").split(days, None)
    assert isinstance(make_splitter(3, "classification"), StratifiedKFold)
    assert isinstance(make_splitter({"kind": "time", "column": "day"}, "x"), TimeSeriesSplit)
