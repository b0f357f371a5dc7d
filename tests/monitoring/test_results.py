"""The result types: frozen values whose dict form is JSON without NaN."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from modelyard.monitoring.results import ColumnDrift, DriftReport, Histogram


def _column(name: str, drifted: bool, score: float = 0.3) -> ColumnDrift:
    return ColumnDrift(
        column=name,
        kind="numerical",
        method="wasserstein",
        score=score,
        threshold=0.1,
        drifted=drifted,
        values_drifted=drifted,
        missing_drifted=False,
        reference_rows=100,
        current_rows=90,
        reference_missing=0.0,
        current_missing=0.0,
        scores={"wasserstein_norm": score, "ks_pvalue": math.nan, "psi": math.inf},
        verdict="drifted: mean moved",
        histogram=Histogram(
            "numerical", ("[0, 1)", "[1, 2)"), (0.0, 1.0, math.inf), (0.5, 0.5), (0.2, 0.8)
        ),
    )


def test_to_dict_is_the_cli_json_shape_without_nan() -> None:
    report = DriftReport(
        columns={"price": _column("price", True), "promo": _column("promo", False, math.nan)},
        share_drifted=2 / 3,
        dataset_drifted=True,
        share_threshold=0.5,
        reference_rows=100,
        current_rows=90,
        errors={"region": "column 'region' is missing from the current data"},
    )
    body = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert body["share_drifted"] == pytest.approx(2 / 3) and body["dataset_drifted"] is True
    price = body["columns"]["price"]
    assert {k: price[k] for k in ("drifted", "method", "score", "threshold")} == {
        "drifted": True,
        "method": "wasserstein",
        "score": 0.3,
        "threshold": 0.1,
    }
    assert body["columns"]["promo"]["score"] is None
    assert price["scores"] == {"wasserstein_norm": 0.3, "ks_pvalue": None, "psi": None}
    assert price["histogram"]["edges"] == [0.0, 1.0, None]
    assert body["errors"]["region"].startswith("column 'region'")
    assert report.drifted_columns == ["price", "region"]


def test_results_are_frozen() -> None:
    column = _column("price", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        column.drifted = False  # type: ignore[misc]
