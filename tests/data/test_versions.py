"""Dataset versions: snapshot any table, de-duplicated storage, pointers, pull, diff, runs."""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from tests.data.conftest import sales_frame

from modelyard.data.pointer import read_pointer
from modelyard.errors import InvalidParameter, NotFound
from modelyard.store.lineage import edges_of


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_snapshot_records_digest_schema_rows_and_profile(data_client, frame, tmp_path):
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path, index=False)
    v = data_client.snapshot(path, "sales", description="first cut")
    assert v.ref == "sales@1" and v.num_rows == len(frame)
    assert (
        v.schema_types()["price"] == "float64" and v.schema_types()["region"] == "category<string>"
    )
    assert v.profile["columns"]["units"]["mean"] == pytest.approx(frame["units"].mean())
    assert v.files[0].sha256 == sha(path) and v.num_bytes == path.stat().st_size
    assert v.created_by == "ana" and v.description == "first cut"
    assert data_client.resolve("sales") == data_client.resolve("sales@1") == v
    assert data_client.resolve(f"sales@{v.digest[:10]}") == v


def test_the_same_files_are_the_same_version_and_stored_once(data_client, frame, tmp_path):
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    first = data_client.snapshot(path, "sales")
    again = data_client.snapshot(path, "sales")
    other = data_client.snapshot(path, "sales_copy")  # same bytes, another name
    assert again == first and other.digest == first.digest and other.ref == "sales_copy@1"
    blobs = list(data_client.artifacts.blobs.iter_blobs())
    assert len([b for b in blobs if b.digest == first.files[0].sha256]) == 1
    frame.iloc[:10].to_csv(path, index=False)
    assert data_client.snapshot(path, "sales").ref == "sales@2"


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_in_memory_tables_are_stored_as_parquet(data_client, frame, kind):
    if kind == "polars":
        polars = pytest.importorskip("polars")
        table = polars.from_pandas(frame.drop(columns=["region"]))
        reference = frame.drop(columns=["region"])
    elif kind == "arrow":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        reference = frame
    else:
        table = reference = frame
    v = data_client.snapshot(table, "orders")
    assert v.format == "parquet" and v.files[0].path == "orders.parquet"
    loaded = data_client.load(v.ref)
    assert loaded.shape == reference.shape
    assert loaded["price"].equals(reference["price"])


def test_a_frame_and_its_parquet_file_share_the_content_digest(data_client, frame, tmp_path):
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path, index=False)
    assert data_client.snapshot(frame, "a").digest == data_client.snapshot(path, "b").digest


def test_folders_of_parts_snapshot_and_pull_as_a_folder(data_client, tmp_path):
    frame = sales_frame(600)
    folder = tmp_path / "lake" / "sales"
    (folder / "year=2024").mkdir(parents=True)
    frame.iloc[:300].to_parquet(folder / "year=2024" / "a.parquet", index=False)
    frame.iloc[300:].to_parquet(folder / "year=2024" / "b.parquet", index=False)
    v = data_client.snapshot(folder, "sales")
    assert v.num_rows == 600 and [f.path for f in v.files] == [
        "year=2024/a.parquet",
        "year=2024/b.parquet",
    ]
    pointer = tmp_path / "lake" / "sales.dataset.yaml"
    assert read_pointer(pointer).is_folder
    before = {f.path: sha(folder / f.path) for f in v.files}
    (folder / "year=2024" / "a.parquet").unlink()
    (folder / "year=2024" / "b.parquet").write_bytes(b"corrupted")
    (folder / "stray.txt").write_text("not data")
    report = data_client.pull(pointer)
    assert sorted(report.written) == sorted(before) and report.extra == ("stray.txt",)
    assert {p: sha(folder / p) for p in before} == before


def test_pointer_file_is_small_complete_and_the_data_is_git_ignored(data_client, frame, tmp_path):
    path = tmp_path / "data" / "sales.parquet"
    path.parent.mkdir()
    frame.to_parquet(path, index=False)
    v = data_client.snapshot(path, "sales")
    pointer = path.with_name("sales.parquet.dataset.yaml")
    body = yaml.safe_load(pointer.read_text())
    assert body["name"] == "sales" and body["version"] == 1 and body["digest"] == v.digest
    assert body["path"] == "sales.parquet" and body["rows"] == len(frame)
    assert body["files"] == [
        {"path": "sales.parquet", "sha256": sha(path), "size": path.stat().st_size}
    ]
    assert body["schema"]["price"] == "float64"
    assert pointer.stat().st_size < 2_000
    assert (path.parent / ".gitignore").read_text().splitlines() == ["/sales.parquet"]
    data_client.snapshot(path, "sales")  # the .gitignore line is not repeated
    assert (path.parent / ".gitignore").read_text().count("sales.parquet") == 1


def test_pull_restores_exactly_the_snapshotted_bytes(data_client, frame, tmp_path):
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    original = sha(path)
    data_client.snapshot(path, "sales")
    frame.iloc[:5].to_csv(path, index=False)  # the working copy drifts
    report = data_client.pull(tmp_path / "sales.csv.dataset.yaml")
    assert report.written == ("sales.csv",) and sha(path) == original
    assert data_client.pull(tmp_path / "sales.csv.dataset.yaml").unchanged == ("sales.csv",)
    elsewhere = data_client.pull(tmp_path / "sales.csv.dataset.yaml", tmp_path / "copy.csv")
    assert sha(tmp_path / "copy.csv") == original and elsewhere.written == ("sales.csv",)


def test_a_pointer_for_an_in_memory_table_restores_a_parquet_file(data_client, frame, tmp_path):
    pointer = tmp_path / "orders.dataset.yaml"
    v = data_client.snapshot(frame, "orders", pointer=pointer)
    data_client.pull(pointer)
    assert sha(tmp_path / "orders.parquet") == v.files[0].sha256
    assert pd.read_parquet(tmp_path / "orders.parquet").shape == frame.shape


def test_diff_reports_schema_and_profile_changes(data_client, frame):
    data_client.snapshot(frame, "sales")
    changed = frame.drop(columns=["promo"]).assign(price=frame["price"] * 2, channel="web")
    data_client.snapshot(changed, "sales")
    result = data_client.diff("sales@1", "sales@2")
    by_column = {c.column: c for c in result.changes}
    assert by_column["promo"].change == "removed" and by_column["channel"].change == "added"
    assert by_column["price"].change == "profile" and by_column["price"].psi > 1
    assert "units" not in by_column  # unchanged columns are not listed
    assert result.schema_changed and not result.same_content
    same = data_client.diff("sales@1", "sales@1")
    assert same.same_content and same.changes == ()


def test_runs_record_the_versions_they_read(data_client, frame, tmp_path):
    from modelyard.tracking.client import TrackingClient

    tracking = TrackingClient.from_settings(data_client.settings)
    run = tracking.create_run(tracking.create_experiment("demand"))
    v = data_client.snapshot(frame, "sales", run_id=run.info.run_id)
    data_client.log_input(run.info.run_id, "sales@1", context="training")
    (logged,) = tracking.get_run(run.info.run_id).inputs
    assert (logged.name, logged.digest, logged.source) == ("sales", v.digest, "sales@1")
    with data_client.db.read() as conn:
        edges = set(edges_of(conn, f"dataset:sales@{v.digest}"))
    assert (f"dataset:sales@{v.digest}", f"run:{run.info.run_id}", "input") in edges
    assert (f"run:{run.info.run_id}", f"dataset:sales@{v.digest}", "output") in edges


def test_a_parquet_file_larger_than_the_memory_limit_is_streamed(data_client, tmp_path):
    frame = sales_frame(30_000, seed=7)
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=4_000)
    streamed = data_client.snapshot(path, "big", memory_limit=0, pointer=False)
    exact = data_client.snapshot(frame, "big_exact")
    assert streamed.digest == exact.digest
    assert not streamed.profile["exact"] and exact.profile["exact"]
    units_streamed, units_exact = (v.profile["columns"]["units"] for v in (streamed, exact))
    assert units_streamed["histogram"] == units_exact["histogram"]
    assert units_streamed["distinct"] == units_exact["distinct"]


def test_bad_input_names_what_is_wrong(data_client, tmp_path):
    with pytest.raises(InvalidParameter, match="dataset name"):
        data_client.snapshot(sales_frame(5), "bad name/with slash")
    with pytest.raises(NotFound, match="does not exist"):
        data_client.snapshot(tmp_path / "missing.parquet", "sales")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidParameter, match="not a CSV or Parquet"):
        data_client.snapshot(tmp_path / "notes.txt", "sales")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(InvalidParameter, match="not a readable Parquet"):
        data_client.snapshot(tmp_path / "broken.parquet", "sales")
    with pytest.raises(InvalidParameter, match="cannot read a dict"):
        data_client.snapshot({"a": 1}, "sales")
    with pytest.raises(NotFound, match="dataset 'nope'"):
        data_client.resolve("nope@1")
    data_client.snapshot(sales_frame(5), "sales")
    with pytest.raises(NotFound, match="version 9"):
        data_client.resolve("sales@9")
    (tmp_path / "p.dataset.yaml").write_text("modelyard_dataset: 1\nname: x\n")
    with pytest.raises(InvalidParameter, match="lacks version"):
        data_client.pull(tmp_path / "p.dataset.yaml")
    (tmp_path / "q.dataset.yaml").write_text(
        "modelyard_dataset: 1\nname: x\nversion: 1\ndigest: d\npath: q\n"
        "files: [{path: ../../etc/passwd, sha256: ab, size: 1}]\n"
    )
    with pytest.raises(InvalidParameter, match=r"'\.\.' segments"):
        data_client.pull(tmp_path / "q.dataset.yaml")
