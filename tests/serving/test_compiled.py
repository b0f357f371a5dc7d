"""The compiled path: on only when the ONNX graph matches the original within the stated
tolerance; the decision is recorded on the version and used by the data plane."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from tests.serving.conftest import FEATURES, frame

from modelyard.serving.compiled import TAG, TAG_DETAIL, check_against, compile_version
from modelyard.serving.inputs import InputSpec
from modelyard.serving.loading import load_version


def test_tree_ensemble_compiles_and_serves_from_the_recorded_graph(yard):
    version = yard.regressor(trees=20)
    X, _ = frame(n=50, seed=9)
    check = compile_version(yard.registry, "demand", 1, holdout=X)
    assert check.enabled and check.rows_checked == 20 + 500 + 50
    assert check.max_abs_error is not None and check.max_abs_error < 1e-4
    tags = yard.registry.get_model_version("demand", 1).tags
    assert tags[TAG] == "onnx" and json.loads(tags[TAG_DETAIL])["rtol"] == 1e-4
    loaded = load_version(yard.registry, "demand", 1)
    assert loaded.path == "onnx"
    native = load_version(yard.registry, "demand", 1, compiled=False)
    assert native.path == "numpy"  # the float64 matrix path, proven equal on the example
    batch = InputSpec.from_signature(version.signature).from_columns(
        {c: X[c].to_numpy() for c in FEATURES}
    )
    import asyncio

    fast, slow = (asyncio.run(v.predict(batch)) for v in (loaded, native))
    assert np.allclose(fast, slow, rtol=1e-4, atol=1e-4)
    loaded.close()
    native.close()


def test_serving_without_onnxruntime_keeps_the_native_path_and_names_the_extra(yard, monkeypatch):
    """The serving extra leaves the compiled path out: a compiled version still serves."""
    yard.regressor(trees=20)
    assert compile_version(yard.registry, "demand", 1).enabled
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    loaded = load_version(yard.registry, "demand", 1)
    assert loaded.path == "numpy"
    assert any("pip install 'modelyard[onnx]'" in note for note in loaded.notes), loaded.notes
    loaded.close()


def test_a_mismatch_beyond_the_tolerance_keeps_the_native_path(yard):
    yard.regressor(trees=20)
    check = compile_version(yard.registry, "demand", 1, rtol=0.0, atol=0.0)
    assert not check.enabled and "differ by more than 0 + 0" in check.reason
    assert yard.registry.get_model_version("demand", 1).tags[TAG] == "off"
    loaded = load_version(yard.registry, "demand", 1)
    assert loaded.path == "numpy"
    loaded.close()


def test_classifier_labels_must_be_identical():
    rows = np.zeros((4, 2))
    same = check_against(lambda m: np.array([0, 1, 1, 0]), lambda m: np.array([0, 1, 1, 0]), rows)
    assert same.enabled and same.classifier
    differ = check_against(lambda m: np.array([0, 1, 1, 0]), lambda m: np.array([0, 1, 0, 0]), rows)
    assert not differ.enabled and "1 of 4 labels differ" in differ.reason


@pytest.mark.parametrize("model", ["classifier"])
def test_linear_classifier_compiles(yard, model):
    yard.classifier()
    check = compile_version(yard.registry, "churn", 1)
    assert check.enabled and check.classifier, check.reason
