"""Windows over the prediction log: exactly the window's rows, read with DuckDB from the
Parquet log the serving writer made; drift per variant, version and slice against the
version's reference; latency, errors, counts; bad input gets a plain verdict."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from modelyard.artifacts.blobs import BlobStore
from modelyard.errors import InvalidParameter
from modelyard.monitoring.log_windows import (
    NO_PREDICTIONS,
    evaluate_window,
    rolling_metrics,
    window_bounds,
)
from modelyard.monitoring.prediction_rows import LogWindow, _ranked_quantiles, latency_quantiles
from modelyard.monitoring.profiles import ReferenceProfile
from modelyard.serving.prediction_log import partition_path

from .prediction_log_data import (
    DEPLOYMENT,
    HOUR_MS,
    T0,
    Request,
    open_stores,
    write_log,
    write_raw_file,
)

RNG = np.random.default_rng(42)
TRAIN = {
    "price": RNG.normal(10, 2, 3000),
    "units": RNG.normal(100, 10, 3000),
    "region": RNG.choice(["north", "south"], 3000),
}
INPUTS = ReferenceProfile.from_table(TRAIN, source="train")
PREDICTIONS = ReferenceProfile.from_table({"prediction": RNG.normal(50, 5, 3000)}, source="train")


def traffic(
    n: int,
    *,
    price_shift: float = 0.0,
    prediction_shift: float = 0.0,
    seed: int = 0,
    variant: str = "blue",
    version: int = 1,
    start: int = T0,
    records: bool = False,
) -> list[Request]:
    """``n`` requests of two rows each, drawn like the training data (plus shifts)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        price = (rng.normal(10, 2, 2) + price_shift).round(4).tolist()
        units = rng.normal(100, 10, 2).round(3).tolist()
        region = rng.choice(["north", "south"], 2).tolist()
        predictions = (rng.normal(50, 5, 2) + prediction_shift).round(3).tolist()
        columns = {"price": price, "units": units, "region": region}
        inputs = (
            [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
            if records
            else columns
        )
        out.append(
            Request(
                f"{variant}-{seed}-{i}",
                start + i * 1000,
                inputs,
                predictions,
                variant=variant,
                version=version,
                latency_ms=float(i % 100),
            )
        )
    return out


def window(stores, start: int = T0, end: int = T0 + HOUR_MS, **options):
    options.setdefault("reference", INPUTS)
    options.setdefault("prediction_reference", PREDICTIONS)
    return evaluate_window(stores.artifacts, stores.db, DEPLOYMENT, start, end, **options)


def observation(result, name: str, **labels: str):
    found = [
        o
        for o in result.observations
        if o.name == name and all(o.label(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_a_shifted_feature_and_shifted_predictions_drift_and_nothing_else(tmp_path: Path) -> None:
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, traffic(600, price_shift=4.0, prediction_shift=10.0))
        result = window(s)
    assert result.rows == 1200
    report = result.input_drift
    assert report is not None and report.current_rows == 1200
    assert {name for name, c in report.columns.items() if c.drifted} == {"price"}
    assert result.prediction_drift is not None
    assert result.prediction_drift.columns["prediction"].drifted
    price = observation(result, "feature_drift", feature="price", variant="blue", version="1")
    assert price.value == report.columns["price"].score
    assert price.threshold == report.columns["price"].threshold
    assert price.label("method") == report.columns["price"].method
    share = observation(result, "drift_share", variant="blue", version="1")
    assert share.value == pytest.approx(1 / 3) and share.count == 1200


def test_unshifted_traffic_does_not_drift(tmp_path: Path) -> None:
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, traffic(600, seed=1))
        result = window(s)
    assert result.input_drift is not None and not result.input_drift.dataset_drifted
    assert not any(c.drifted for c in result.input_drift.columns.values())
    assert not result.prediction_drift.columns["prediction"].drifted


def test_each_version_is_compared_with_its_own_reference(tmp_path: Path) -> None:
    shifted = ReferenceProfile.from_table(
        {**TRAIN, "price": TRAIN["price"] + 4.0}, source="train v2"
    )
    with open_stores(tmp_path) as s:
        write_log(
            s.artifacts,
            traffic(300, price_shift=4.0, variant="green", version=2)
            + traffic(400, variant="blue", version=1, seed=3),
        )
        result = window(s, reference={1: INPUTS, 2: shifted}, prediction_reference=None)
    groups = {(g.variant, g.version): g for g in result.drift if g.slice is None}
    assert set(groups) == {("blue", 1), ("green", 2)}
    for group in groups.values():
        assert not group.input_drift.columns["price"].drifted
    assert result.input_drift is groups[("blue", 1)].input_drift  # the most rows
    unknown = observation(result, "prediction_drift", variant="green", version="2")
    assert unknown.value is None and "no predictions reference" in unknown.reason


def test_slices_break_drift_down_by_the_column_value(tmp_path: Path) -> None:
    requests = traffic(500, seed=4)
    for r in requests:  # the south's prices move up by 4σ, the north's stay
        r.inputs["price"] = [
            p + 8.0 if g == "south" else p
            for p, g in zip(r.inputs["price"], r.inputs["region"], strict=True)
        ]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        result = window(s, slices=["region"])
    by_slice = {g.slice: g for g in result.drift}
    assert set(by_slice) == {None, "region=north", "region=south"}
    assert by_slice["region=south"].input_drift.columns["price"].drifted
    assert not by_slice["region=north"].input_drift.columns["price"].drifted
    # a slice's own column is not compared within the slice (it is constant there)
    assert "region" not in by_slice["region=north"].input_drift.columns
    assert by_slice["region=north"].rows + by_slice["region=south"].rows == 1000
    south = observation(result, "feature_drift", feature="price", slice="region=south")
    assert south.value == by_slice["region=south"].input_drift.columns["price"].score


def test_inputs_logged_as_records_read_like_columns(tmp_path: Path) -> None:
    with open_stores(tmp_path / "a") as a, open_stores(tmp_path / "b") as b:
        write_log(a.artifacts, traffic(200, seed=5))
        write_log(b.artifacts, traffic(200, seed=5, records=True))
        columnar, records = window(a), window(b)
    assert columnar.rows == records.rows == 400
    for name, column in columnar.input_drift.columns.items():
        assert records.input_drift.columns[name].score == pytest.approx(column.score)


def test_requests_latency_and_errors(tmp_path: Path) -> None:
    requests = traffic(200, seed=6)
    requests += [
        Request(f"e{i}", T0 + 500 + i, None, None, status="error", latency_ms=900.0)
        for i in range(4)
    ]
    latencies = np.array([r.latency_ms for r in requests])
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        result = window(s, reference=None, prediction_reference=None)
    (stats,) = result.requests
    assert (stats.requests, stats.errors, stats.rows) == (204, 4, 400)
    assert stats.latency_p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert stats.latency_p99_ms == pytest.approx(np.percentile(latencies, 99))
    error_rate = observation(result, "error_rate", variant="blue")
    assert error_rate.value == pytest.approx(4 / 204) and error_rate.count == 204
    assert error_rate.ci_low < error_rate.value < error_rate.ci_high
    assert observation(result, "latency_p99_ms").value == stats.latency_p99_ms
    drift = observation(result, "drift_share")
    assert drift.value is None and drift.reason  # no reference given: unknown, not "ok"


def test_the_window_is_start_inclusive_and_end_exclusive(tmp_path: Path) -> None:
    times = [T0 - 1, T0, T0 + HOUR_MS - 1, T0 + HOUR_MS, T0 + 3 * HOUR_MS]
    requests = [Request(f"r{i}", t, {"price": [1.0]}, [1.0]) for i, t in enumerate(times)]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        result = window(s, reference=None, prediction_reference=None)
        later = window(
            s, T0 + 2 * HOUR_MS, T0 + 4 * HOUR_MS, reference=None, prediction_reference=None
        )
    assert result.requests[0].requests == 2
    assert later.requests[0].requests == 1


def test_an_empty_window_says_there_were_no_predictions(tmp_path: Path) -> None:
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, traffic(5))
        result = window(s, T0 + 5 * HOUR_MS, T0 + 6 * HOUR_MS, metrics=["mae"])
    assert result.empty and result.input_drift is None and result.rows == 0
    values = {o.name: (o.value, o.reason) for o in result.observations}
    assert values["requests"] == (0.0, None)
    for name in (
        "drift_share",
        "prediction_drift",
        "error_rate",
        "latency_p99_ms",
        "feedback_coverage",
        "metric",
    ):
        assert values[name] == (None, NO_PREDICTIONS)


def test_malformed_json_is_counted_and_skipped(tmp_path: Path) -> None:
    good = traffic(300, seed=7)
    ts = T0 + 10 * 60_000
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, good)
        write_raw_file(
            s.artifacts,
            ts,
            {
                "request_id": ["bad1", "bad2", "ok1"],
                "ts": [ts * 1000] * 3,
                "deployment": [DEPLOYMENT] * 3,
                "revision": [1] * 3,
                "variant": ["blue"] * 3,
                "model": ["demand"] * 3,
                "version": [1] * 3,
                "role": ["primary"] * 3,
                "status": ["ok"] * 3,
                "latency_ms": [1.0] * 3,
                "n_rows": [1] * 3,
                "key": [None] * 3,
                "inputs": [
                    '{"price": [10.0, ',
                    '[{"price": }]',
                    json.dumps({"price": [10.0], "units": [100.0], "region": ["north"]}),
                ],
                "outputs": ["[50.0]", "[50.0]", "[50.0"],
                "error": [None] * 3,
                "contract": [None] * 3,
            },
        )
        result = window(s)
    (stats,) = result.requests
    assert stats.malformed_inputs == 2 and stats.malformed_outputs == 1
    assert any("2 requests" in note and "not valid JSON" in note for note in result.notes)
    assert result.input_drift.current_rows == 601  # the good rows and ok1
    assert result.prediction_drift.columns["prediction"].current_rows == 601


def test_a_reference_column_missing_from_the_log_is_named(tmp_path: Path) -> None:
    requests = traffic(200, seed=8)
    for r in requests:
        del r.inputs["units"]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        result = window(s)
    report = result.input_drift
    assert "units" in report.errors and "missing" in report.errors["units"]
    missing = observation(result, "feature_drift", feature="units", variant="blue")
    assert missing.value is None and "missing" in missing.reason


def test_a_column_logged_only_as_null_is_all_missing_not_absent(tmp_path: Path) -> None:
    requests = traffic(200, seed=14)
    for r in requests:
        r.inputs["units"] = [None] * len(r.inputs["units"])
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        result = window(s)
    report = result.input_drift
    units = report.columns.get("units")
    reason = report.errors.get("units", "")
    assert "missing from the prediction log" not in reason
    assert (units is not None and units.drifted and units.current_missing == 1.0) or reason


def test_a_numerical_column_logged_as_text_is_a_changed_type(tmp_path: Path) -> None:
    requests = traffic(200, seed=9)
    for r in requests:
        r.inputs["price"] = [f"${p:.2f}" for p in r.inputs["price"]]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        result = window(s)
    report = result.input_drift
    assert "changed type" in report.errors["price"]
    assert report.share_drifted > 0  # counted as drifted, never a silent "no drift"
    assert not report.columns.get("units") or not report.columns["units"].drifted


def test_a_remote_store_downloads_only_the_window_and_cleans_up(tmp_path: Path) -> None:
    blobs = BlobStore(MemoryFileSystem(), f"/bucket-{uuid.uuid4().hex}")
    assert blobs.local_path("0" * 64) is None
    downloaded: list[str] = []
    real_download = blobs.download

    def download(digest: str, local_path: str) -> str:
        downloaded.append(local_path)
        return real_download(digest, local_path)

    blobs.download = download  # type: ignore[method-assign]
    with open_stores(tmp_path, blobs) as s:
        write_log(s.artifacts, traffic(100, seed=10) + traffic(50, seed=11, start=T0 + 5 * HOUR_MS))
        window_files = s.artifacts.list_recursive(partition_path(DEPLOYMENT, T0))
        result = window(s)
    assert result.rows == 200 and result.input_drift.current_rows == 200
    assert len(downloaded) == len(window_files)  # the window's hour only
    assert not any(Path(p).exists() for p in downloaded)  # removed when the window closed
    assert not [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("modelyard-")]


def test_rolling_metrics_bucket_the_window(tmp_path: Path) -> None:
    requests = traffic(10, seed=12) + traffic(4, seed=13, start=T0 + HOUR_MS + 5)
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        rolling = rolling_metrics(
            s.artifacts,
            s.db,
            DEPLOYMENT,
            T0,
            T0 + 2 * HOUR_MS,
            step="1h",
            slices=["region"],
            metrics=["mae"],
        )
    assert [(r.bucket_ms, r.requests) for r in rolling.requests] == [(T0, 10), (T0 + HOUR_MS, 4)]
    overall = {c.bucket_ms: c.predictions for c in rolling.coverage if c.slice is None}
    assert overall == {T0: 20, T0 + HOUR_MS: 8}
    assert all(m.value is None and m.note for m in rolling.live)  # no feedback yet


def test_window_bounds_read_durations() -> None:
    assert window_bounds("1h", end_ms=T0) == (T0 - HOUR_MS, T0)
    assert window_bounds("7d", end_ms=T0)[0] == T0 - 7 * 24 * HOUR_MS
    for bad in ("0s", "1M", "soon"):
        with pytest.raises(InvalidParameter) as caught:
            window_bounds(bad, end_ms=T0)
        assert caught.value.field == "window"


def test_an_inverted_range_and_bad_slices_are_refused(tmp_path: Path) -> None:
    with open_stores(tmp_path) as s:
        with pytest.raises(InvalidParameter) as caught:
            window(s, T0 + 10, T0)
        assert caught.value.field == "end_ms"
        with pytest.raises(InvalidParameter) as caught:
            window(s, slices=[""])
        assert caught.value.field == "slices"


def test_latency_quantiles_by_ranks_equal_numpy_when_memory_is_short(tmp_path: Path) -> None:
    """The out-of-core path (ranks from a window function), used when quantile_cont would
    exceed DuckDB's memory limit, gives the same numbers."""
    requests = traffic(150, seed=15) + traffic(40, seed=16, variant="green", version=2)
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        with LogWindow(s.artifacts, DEPLOYMENT, T0, T0 + HOUR_MS) as log:
            direct = latency_quantiles(log, (0.5, 0.9, 0.99))
            ranked = _ranked_quantiles(log, (0.5, 0.9, 0.99), None)
    for variant, version in (("blue", 1), ("green", 2)):
        latencies = [r.latency_ms for r in requests if r.variant == variant]
        expected = np.percentile(latencies, [50, 90, 99])
        assert direct[(variant, version, None)] == pytest.approx(expected)
        assert ranked[(variant, version, None)] == pytest.approx(expected)
