"""Reference profiles: what they keep, how they are stored, and stored bytes read as untrusted."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelyard.errors import InvalidParameter
from modelyard.monitoring.profiles import (
    BINS,
    CategoricalProfile,
    NumericalProfile,
    ReferenceProfile,
)


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60_000
    price = rng.lognormal(2, 0.5, n)
    price[:600] = np.nan
    return pd.DataFrame(
        {
            "price": price,
            "units": rng.integers(0, 5, n),  # few distinct values: bins collapse onto them
            "region": rng.choice(["north", "south", None], n, p=[0.5, 0.4, 0.1]),
        }
    )


def test_a_numerical_column_keeps_quantile_bins_moments_and_a_sorted_sample(table) -> None:
    profile = ReferenceProfile.from_table(table, source="train", sample_size=5_000)
    price = profile.columns["price"]
    assert isinstance(price, NumericalProfile)
    values = table["price"].dropna().to_numpy()
    assert (price.rows, price.missing) == (60_000, 600)
    assert len(price.edges) == BINS + 1 and np.all(np.diff(price.edges) > 0)
    assert (
        (price.min, price.max) == (values.min(), values.max()) == (price.edges[0], price.edges[-1])
    )
    assert price.counts.sum() == len(values) and price.counts[0] == 0
    # every bin holds about 0.1 % of the values (edges come from a 50,000-value sample)
    shares = price.counts[1:-1] / len(values)
    assert shares.min() > 0.0004 and shares.max() < 0.002
    want = np.bincount(np.searchsorted(price.edges, values, side="right"), minlength=BINS + 2)
    assert np.array_equal(price.counts, want)
    assert price.sums.sum() == pytest.approx(values.sum())
    assert (price.mean, price.std) == pytest.approx((values.mean(), values.std()))
    assert len(price.sample) == 5_000 and np.all(np.diff(price.sample) >= 0)
    assert np.isin(price.sample, values).all()


def test_a_column_of_few_values_gets_one_bin_per_value(table) -> None:
    units = ReferenceProfile.from_table(table, source="t").columns["units"]
    assert isinstance(units, NumericalProfile)
    assert list(units.edges) == [0, 1, 2, 3, 4]
    assert units.counts.sum() == 60_000


def test_a_categorical_column_keeps_counts_of_its_top_categories(table) -> None:
    region = ReferenceProfile.from_table(table, source="t").columns["region"]
    assert isinstance(region, CategoricalProfile)
    assert region.categories == ("north", "south")  # most frequent first
    assert region.counts.sum() + region.missing == 60_000 and region.complete
    few = ReferenceProfile.from_table(table, source="t", top_k=1).columns["region"]
    assert isinstance(few, CategoricalProfile)
    assert few.categories == ("north",) and few.other == region.counts[1] and not few.complete


def test_columns_pick_and_unsupported_types_are_skipped_by_name() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "tags": [[1], [2], [3]]})
    profile = ReferenceProfile.from_table(table, source="t")
    assert list(profile.columns) == ["x"] and "list" in profile.skipped["tags"]
    with pytest.raises(InvalidParameter, match="'tags'"):
        ReferenceProfile.from_table(table, source="t", columns=["tags"])
    with pytest.raises(InvalidParameter, match="'nope'"):
        ReferenceProfile.from_table(table, source="t", columns=["nope"])
    with pytest.raises(InvalidParameter, match="bins"):
        ReferenceProfile.from_table(table, source="t", bins=1)


def test_a_profile_survives_bytes(table) -> None:
    profile = ReferenceProfile.from_table(table, source="train@3")
    data = profile.to_bytes()
    assert len(data) < 200_000  # two bins arrays and a 10,000-value sample, not the table
    back = ReferenceProfile.from_bytes(data)
    assert (back.rows, back.source, list(back.columns)) == (60_000, "train@3", list(table))
    for name, col in profile.columns.items():
        other = back.columns[name]
        if isinstance(col, NumericalProfile):
            assert isinstance(other, NumericalProfile)
            for key in ("edges", "counts", "sums", "sample"):
                assert np.array_equal(getattr(col, key), getattr(other, key))
            assert (col.mean, col.std) == (other.mean, other.std)
        else:
            assert isinstance(other, CategoricalProfile)
            assert (col.categories, col.other) == (other.categories, other.other)
            assert np.array_equal(col.counts, other.counts)


# -- stored bytes are untrusted ------------------------------------------------------------


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _archive(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def _with_header(data: bytes, change) -> bytes:
    members = _members(data)
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    change(header)
    members["header.npy"] = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    return _archive(members)


@pytest.fixture
def stored() -> bytes:
    rng = np.random.default_rng(1)
    table = {"x": rng.normal(size=2_000), "c": rng.choice(["a", "b"], 2_000)}
    return ReferenceProfile.from_table(table, source="t").to_bytes()


def test_stored_bytes_round_trip(stored: bytes) -> None:
    assert list(ReferenceProfile.from_bytes(stored).columns) == ["x", "c"]


@pytest.mark.parametrize(
    ("attack", "says"),
    [
        (lambda data: b"", "not an .npz"),
        (lambda data: b"\x93NUMPY" + data, "not an .npz"),
        (lambda data: data[: len(data) // 2], "damaged"),
        (lambda data: _archive(_members(data), zipfile.ZIP_DEFLATED), "compressed"),
        (
            lambda data: _archive({**_members(data), "extra.npy": _npy(np.zeros(3))}),
            "no column names",
        ),
        (
            lambda data: _archive(
                {**_members(data), "c0_edges.npy": _npy(np.array([1, "x"], object))}
            ),
            "cannot be read",
        ),
        (
            lambda data: _archive({**_members(data), "c0_counts.npy": _npy(np.zeros(3, np.int64))}),
            "len(edges) + 1",
        ),
        (
            lambda data: _archive({**_members(data), "c0_edges.npy": _npy(np.ones(1001))}),
            "strictly increasing",
        ),
        (
            lambda data: _archive({**_members(data), "c0_sums.npy": _npy(np.zeros(3, np.float32))}),
            "float64",
        ),
        (lambda data: _with_header(data, lambda h: h.update(format="other")), "format"),
        (lambda data: _with_header(data, lambda h: h.update(version=99)), "version 99"),
        (lambda data: _with_header(data, lambda h: h.update(rows=-1)), "rows"),
        (
            lambda data: _with_header(data, lambda h: h["columns"][1].update(counts=[1, 2, 3])),
            "counts do not match",
        ),
        (
            lambda data: _with_header(data, lambda h: h["columns"][1].update(categories=[1, 2])),
            "not a list of strings",
        ),
        (
            lambda data: _with_header(data, lambda h: h["columns"][0].update(kind="image")),
            "unknown kind",
        ),
        (
            lambda data: _with_header(data, lambda h: h["columns"][0].update(missing=5)),
            "do not add up",
        ),
        (lambda data: _with_header(data, lambda h: h.update(columns="x")), "column list"),
    ],
)
def test_hostile_bytes_are_refused_with_the_reason(stored: bytes, attack, says: str) -> None:
    with pytest.raises(InvalidParameter, match="not a usable reference profile") as raised:
        ReferenceProfile.from_bytes(attack(stored))
    assert says in str(raised.value)
    assert raised.value.field == "reference"


def test_a_profile_is_never_unpickled(stored: bytes) -> None:
    members = _members(stored)
    members["c0_sample.npy"] = _npy(np.array([{"evil": 1}], dtype=object))
    with pytest.raises(InvalidParameter, match="cannot be read"):
        ReferenceProfile.from_bytes(_archive(members))


def test_a_column_of_many_labels_remembers_them_as_a_bounded_hash_sketch() -> None:
    from modelyard.monitoring.profiles import LABEL_SKETCH

    ids = np.char.add("id", np.arange(40_000).astype(str))
    column = ReferenceProfile.from_table({"id": ids}, source="t").columns["id"]
    assert isinstance(column, CategoricalProfile)
    assert column.sketch_capped and len(column.known_hashes) == LABEL_SKETCH
    few = ReferenceProfile.from_table({"id": ids[:3_000]}, source="t").columns["id"]
    assert isinstance(few, CategoricalProfile)
    assert not few.sketch_capped and len(few.known_hashes) == 3_000
    complete = ReferenceProfile.from_table({"id": ids[:50]}, source="t").columns["id"]
    assert isinstance(complete, CategoricalProfile) and len(complete.known_hashes) == 0


def test_tampered_label_hashes_are_refused() -> None:
    ids = np.char.add("id", np.arange(3_000).astype(str))
    data = ReferenceProfile.from_table({"id": ids}, source="t").to_bytes()
    members = _members(data)
    members["c0_hashes.npy"] = _npy(np.arange(5, 0, -1).astype(np.uint64))
    with pytest.raises(InvalidParameter, match="label hashes"):
        ReferenceProfile.from_bytes(_archive(members))
    members["c0_hashes.npy"] = _npy(np.arange(5).astype(np.int64))
    with pytest.raises(InvalidParameter, match="uint64"):
        ReferenceProfile.from_bytes(_archive(members))
