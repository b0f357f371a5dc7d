"""The content digest depends on the rows, not on how they were stored or batched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.data.conftest import sales_frame

from modelyard.data.digest import TableHasher, column_hashes, logical_type
from modelyard.data.snapshot import scan
from modelyard.data.sources import open_source


def digest_of(table: pa.Table, batch_rows: int | None = None) -> str:
    hasher = TableHasher(table.schema)
    for batch in table.to_batches(max_chunksize=batch_rows):
        hasher.update(batch)
    return hasher.hexdigest()


def test_the_same_rows_give_the_same_digest_however_they_are_batched():
    table = pa.Table.from_pandas(sales_frame(500), preserve_index=False)
    assert digest_of(table, 7) == digest_of(table, 100) == digest_of(table)


def test_parquet_row_groups_and_compression_do_not_change_the_digest(tmp_path):
    frame = sales_frame(2_000)
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "a.parquet", row_group_size=300)
    pq.write_table(
        pa.Table.from_pandas(frame), tmp_path / "b.parquet", compression="zstd", row_group_size=5000
    )
    a = scan(open_source(tmp_path / "a.parquet"), memory_limit=0)  # streamed
    b = scan(open_source(tmp_path / "b.parquet"))
    c = scan(open_source(frame))
    assert a.streamed and not b.streamed
    assert a.digest == b.digest == c.digest
    assert a.num_rows == 2_000


def test_a_folder_of_parts_has_the_digest_of_the_whole_table(tmp_path):
    frame = sales_frame(900)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, 900, 300)):
        frame.iloc[start : start + 300].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    assert scan(open_source(folder)).digest == scan(open_source(frame)).digest


def test_storage_types_hash_alike_but_values_and_names_do_not():
    base = pa.table({"s": pa.array(["a", "bb", None]), "t": pa.array([1, 2, 3], pa.int64())})
    large = base.cast(pa.schema([("s", pa.large_string()), ("t", pa.int64())]))
    assert digest_of(base) == digest_of(large)
    changed = pa.table({"s": pa.array(["a", "bb", "c"]), "t": pa.array([1, 2, 3], pa.int64())})
    renamed = base.rename_columns(["x", "t"])
    reordered = base.select(["t", "s"])
    assert len({digest_of(base), digest_of(changed), digest_of(renamed), digest_of(reordered)}) == 4


def test_timestamps_in_any_unit_hash_alike_and_types_are_logical():
    ns = pa.array(pd.to_datetime(["2024-01-01", "2024-06-30"]).values.astype("datetime64[ns]"))
    s = ns.cast(pa.timestamp("s"))
    assert (column_hashes(ns) == column_hashes(s)).all()
    assert logical_type(ns.type) == logical_type(s.type) == "timestamp"
    assert logical_type(pa.dictionary(pa.int32(), pa.string())) == "category<string>"


def test_negative_zero_and_nan_payloads_do_not_change_the_digest():
    a = pa.array([0.0, float("nan")])
    b = pa.array([-0.0, np.float64(np.frombuffer(np.uint64(0x7FF8000000000001).tobytes())[0])])
    assert (column_hashes(a) == column_hashes(b)).all()


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=60),
    numbers=st.data(),
    cut=st.integers(min_value=1, max_value=60),
)
def test_digest_is_independent_of_batch_boundaries(values, numbers, cut):
    ints = numbers.draw(
        st.lists(
            st.one_of(st.none(), st.integers(-(2**40), 2**40)),
            min_size=len(values),
            max_size=len(values),
        )
    )
    table = pa.table({"s": pa.array(values, pa.string()), "i": pa.array(ints, pa.int64())})
    assert digest_of(table, cut) == digest_of(table)
