"""An observation is a named value with sorted labels; an unknown value says why."""

from __future__ import annotations

import json
import math

import pytest

from modelyard.errors import InvalidParameter
from modelyard.monitoring.observations import Observation, labels_of


def test_labels_are_sorted_and_stringified_so_equal_things_compare_equal() -> None:
    a = Observation("metric", 1.5, (("version", 3), ("metric", "mae")), count=10)
    b = Observation("metric", 1.5, (("metric", "mae"), ("version", "3")), count=10)
    assert a == b
    assert a.labels == (("metric", "mae"), ("version", "3"))


def test_label_reads_one_key_or_none() -> None:
    o = Observation("feature_drift", 0.3, labels_of(feature="price", method="psi"))
    assert o.label("feature") == "price"
    assert o.label("method") == "psi"
    assert o.label("slice") is None


def test_labels_of_leaves_out_none() -> None:
    assert labels_of(variant="blue", slice=None, version=2) == (
        ("variant", "blue"),
        ("version", "2"),
    )


def test_a_label_key_twice_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidParameter) as caught:
        Observation("metric", 1.0, (("metric", "mae"), ("metric", "rmse")))
    assert caught.value.field == "labels"


def test_nan_becomes_an_unknown_value_with_a_reason() -> None:
    o = Observation("metric", math.nan)
    assert o.value is None
    assert o.reason


def test_is_frozen() -> None:
    o = Observation("requests", 3.0)
    with pytest.raises(AttributeError):
        o.value = 4.0  # type: ignore[misc]


def test_to_dict_is_json_safe_and_round_trips() -> None:
    o = Observation(
        "metric",
        2.0,
        labels_of(metric="mae", slice="region=north"),
        count=5,
        ci_low=1.0,
        ci_high=math.inf,
        reason=None,
    )
    text = json.dumps(o.to_dict(), allow_nan=False)
    back = Observation.from_dict(json.loads(text))
    assert back.ci_high is None
    assert back.labels == o.labels and back.value == 2.0 and back.count == 5
