"""Profiles are exact for in-memory tables and close when a file is streamed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.data.conftest import sales_frame

from modelyard.data.profile import QUANTILES, TableProfiler, profile_table
from modelyard.data.sources import open_source


def test_numeric_columns_match_pandas_exactly(frame):
    profile = profile_table(frame)
    price = profile["columns"]["price"]
    expected = frame["price"]
    assert profile["num_rows"] == len(frame) and profile["exact"]
    assert price["kind"] == "numeric" and price["type"] == "float64"
    assert price["nulls"] == expected.isna().sum()
    assert price["count"] == expected.notna().sum()
    assert price["distinct"] == expected.nunique()
    assert price["min"] == expected.min() and price["max"] == expected.max()
    assert price["mean"] == pytest.approx(expected.mean())
    assert price["std"] == pytest.approx(expected.std())
    for q in QUANTILES:
        assert price["quantiles"][str(q)] == pytest.approx(expected.quantile(q))
    counts, edges = np.histogram(expected.dropna(), bins=len(price["histogram"]["counts"]))
    assert price["histogram"]["counts"] == counts.tolist()
    assert price["histogram"]["edges"] == pytest.approx(edges.tolist())


def test_categories_strings_booleans_and_times(frame):
    columns = profile_table(frame)["columns"]
    region = columns["region"]
    assert region["kind"] == "categorical" and region["type"] == "category<string>"
    top = frame["region"].value_counts()
    assert region["top"][0] == [top.index[0], int(top.iloc[0])]
    assert region["distinct"] == 4
    sku = columns["sku"]
    assert sku["distinct"] == frame["sku"].nunique()
    assert sku["min_length"] == sku["max_length"] == 10
    assert sku["top"][0][1] == frame["sku"].value_counts().iloc[0]
    assert columns["promo"]["mean"] == pytest.approx(frame["promo"].mean())
    day = columns["day"]
    assert day["kind"] == "datetime"
    assert day["min"].startswith(str(frame["day"].min().date()))
    assert day["max"].startswith(str(frame["day"].max().date()))
    assert columns["store"]["top"][0][1] == frame["store"].value_counts().iloc[0]


def test_polars_and_arrow_tables_profile_like_pandas(frame):
    polars = pytest.importorskip("polars")
    plain = frame.drop(columns=["region"])
    a = profile_table(plain)["columns"]["price"]
    b = profile_table(polars.from_pandas(plain))["columns"]["price"]
    c = profile_table(pa.Table.from_pandas(plain))["columns"]["price"]
    assert a["quantiles"] == b["quantiles"] == c["quantiles"]
    assert a["distinct"] == b["distinct"] == c["distinct"]


def test_a_streamed_parquet_file_profiles_close_to_exact(tmp_path):
    frame = sales_frame(60_000, seed=3)
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7_000)
    source = open_source(path)
    profiler = TableProfiler(source.schema, ranges=source.ranges)
    batches = 0
    for batch in source.batches():
        profiler.update(batch)
        batches += 1
    streamed = profiler.result()
    exact = profile_table(frame)
    assert batches >= 9
    s, e = streamed["columns"]["price"], exact["columns"]["price"]
    for key in ("count", "nulls", "distinct", "min", "max"):  # exact even when streamed
        assert s[key] == e[key], key
    assert s["mean"] == pytest.approx(e["mean"]) and s["std"] == pytest.approx(e["std"])
    assert s["histogram"]["counts"] == e["histogram"]["counts"]  # edges from the footers
    for q in ("0.1", "0.5", "0.9"):
        assert s["quantiles"][q] == pytest.approx(e["quantiles"][q], rel=0.01)
    assert streamed["columns"]["sku"]["top"] == exact["columns"]["sku"]["top"]


def test_distinct_counts_switch_to_a_sketch_past_the_exact_limit(monkeypatch):
    from modelyard.data import profile as module

    monkeypatch.setattr(module, "DISTINCT_EXACT_LIMIT", 1_000)
    values = np.arange(50_000, dtype=np.int64)
    acc = module.accumulator_for(pa.int64())
    for chunk in np.array_split(values, 5):
        acc.update(pa.array(chunk))
    result = acc.result()
    assert not result["exact"]
    assert result["distinct"] == pytest.approx(50_000, rel=0.03)
    strings = module.accumulator_for(pa.string())
    for chunk in np.array_split(values, 5):
        strings.update(pa.array([f"id-{v}" for v in chunk]))
    assert strings.result()["distinct"] == pytest.approx(50_000, rel=0.03)


def test_empty_and_all_null_columns_profile_without_errors():
    frame = pd.DataFrame({"x": pd.Series([None, None], dtype="float64"), "s": [None, None]})
    columns = profile_table(frame)["columns"]
    assert columns["x"]["nulls"] == 2 and columns["x"]["distinct"] == 0
    assert columns["s"]["nulls"] == 2
    empty = profile_table(pd.DataFrame({"x": pd.Series([], dtype="float64")}))
    assert empty["num_rows"] == 0


@pytest.mark.parametrize("dtype", ["int8", "int64", "uint16", "uint64"])
def test_integer_columns_profile_exactly_whatever_their_range(dtype):
    rng = np.random.default_rng(5)
    low = 0 if dtype.startswith("u") else -100
    narrow = pd.Series(rng.integers(low, 100, 5_000), dtype=dtype)
    wide = pd.Series(rng.integers(-(2**40), 2**40, 5_000), dtype="int64")
    huge = pd.Series(np.uint64(2**63 + 5) + rng.integers(0, 50, 5_000).astype("uint64"))
    for series in (narrow, wide, huge):
        column = profile_table(pd.DataFrame({"x": series}))["columns"]["x"]
        assert column["distinct"] == series.nunique()
        assert (column["min"], column["max"]) == (series.min(), series.max())
        for q in QUANTILES:
            assert column["quantiles"][str(q)] == pytest.approx(series.quantile(q))
